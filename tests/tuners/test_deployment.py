"""Deployment objectives: budgets reject before training, penalties rescore, winners stay in budget."""

import math
import re

import numpy as np
import pytest

from bnas_tf import build_network, data
from bnas_tf.deploy.lce_profile import lce_profile
from bnas_tf.space.genotype import WidthGenotype
from bnas_tf.space.supernet import CellSpace
from bnas_tf.tuners import ChildParent, DeploymentObjective, Differentiable, OperationPruning
from bnas_tf.tuners import deployment as deployment_lib
from tests.tuners.test_evolution import ToyEvolution

SPACE = CellSpace(op_set=["conv_3x3", "max_pool_3x3", "identity"], cells=2, channels=8, nodes=2, reduction_cells=[1])


# ------------------------------------------------------------ the objective as data
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(cost="latency"), "deployment cost must be one of size_bytes"),
        (dict(budget=0), "deployment budget must be a finite number > 0"),
        (dict(budget=float("inf")), "deployment budget must be a finite number"),
        (dict(penalty=-1.0), "deployment penalty must be a finite number >= 0"),
        (dict(penalty=True), "deployment penalty must be a finite number >= 0"),  # a flag, not a weight
        (dict(base_cost=0.0), "deployment base_cost must be a finite number > 0"),
    ],
)
def test_objective_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DeploymentObjective(**kwargs)


def test_objective_measures_rejects_and_penalises():
    objective = DeploymentObjective("float_macs", budget=1000, penalty=0.5)
    assert objective.measure({"float_macs": 800, "size_bytes": 5}) == 800.0
    assert objective.rejection(1000) is None
    reason = objective.rejection(1500)
    assert "over the deployment budget" in reason and "float_macs 1,500 > budget 1,000" in reason
    assert objective.penalise(0.9, 400, 1000) == pytest.approx(0.9 - 0.5 * 0.4)
    assert objective.penalise(0.1, 400, 1000) == 0.0  # clipped at 0 (SPEC P3 Eq. 4)
    assert DeploymentObjective.from_config(objective.get_config()) == objective
    assert deployment_lib.get(objective.get_config()) == objective


def test_cost_function_objective_and_its_limits():
    objective = DeploymentObjective(lambda profile: profile["binary_macs"] / 64 + profile["float_macs"])
    assert objective.measure({"binary_macs": 640, "float_macs": 5}) == 15.0
    with pytest.raises(ValueError, match="cannot be saved as data"):
        objective.get_config()
    with pytest.raises(ValueError, match="cost 'custom_cost'|cost '<lambda>'"):
        DeploymentObjective(lambda profile: -1.0).measure({})


def test_first_within_budget_and_pareto_points():
    cost = {"a": 30, "b": 10, "c": 20}.__getitem__
    assert deployment_lib.first_within_budget(["a", "b", "c"], cost, 25) == "b"
    assert deployment_lib.first_within_budget(["a", "c"], cost, 5) is None
    assert deployment_lib.first_within_budget(["a"], cost, None) == "a"
    records = [
        {"val_accuracy": 0.9, "deploy_cost": 30},
        {"val_accuracy": 0.8, "deploy_cost": 10},
        {"val_accuracy": 0.7, "deploy_cost": 20},
    ]
    assert deployment_lib.pareto_points(records) == [records[1], records[0]]


# ------------------------------------------------------------ weight-sharing searches
@pytest.fixture(scope="module")
def bundle():
    return data.load("digits", batch_size=32, search_split=True, max_examples=600)


def _network_cost(genotype, cost="size_bytes"):
    model = build_network(
        genotype,
        cells=SPACE.cells,
        channels=SPACE.channels,
        num_classes=10,
        input_shape=(16, 16, 1),
        binarization="W1/A1",
        reduction_cells=SPACE.reduction_cells,
    )
    return lce_profile(model)[cost]


def _uniform_costs(cost):
    return [
        _network_cost(SPACE.genotype({k: [op] * SPACE.num_edges for k in ("normal", "reduce")}), cost)
        for op in range(SPACE.num_ops)
    ]


def _search(tuner, bundle):
    tuner.search(bundle.search_weights, bundle.search_validation, steps_per_epoch=3, verbose=0)
    return tuner


def test_child_parent_with_a_size_budget_rejects_before_training_and_returns_a_winner_in_budget(tmp_path, bundle):
    costs = _uniform_costs("size_bytes")
    budget = (min(costs) + max(costs)) / 2  # some sampled paths fit, some do not
    tuner = _search(
        ChildParent(
            SPACE,
            repetitions=2,
            seed=3,
            binarization="W1/A1",
            directory=str(tmp_path),
            project_name="cp",
            deployment=DeploymentObjective("size_bytes", budget=budget),
        ),
        bundle,
    )
    trials = list(tuner.oracle.trials.values())
    rejected = [t for t in trials if t.status == "FAILED"]
    completed = [t for t in trials if t.status == "COMPLETED"]
    assert rejected and completed and tuner.oracle.phase == "done"
    for trial in rejected:
        assert "over the deployment budget" in trial.message and "not trained" in trial.message
        assert trial.metrics.get_last_value("deploy_cost") > budget
        assert trial.metrics.get_last_value("over_budget") == 1.0
        assert not trial.metrics.exists("child_accuracy")  # never evaluated: it did not train
    for trial in completed:
        assert trial.metrics.get_last_value("deploy_cost") <= budget
        assert trial.metrics.get_last_value("lce_size_bytes") == trial.metrics.get_last_value("deploy_cost")
    # the recorded cost is lce_profile of the network the path becomes
    trial = completed[0]
    assert trial.metrics.get_last_value("deploy_cost") == _network_cost(tuner.trial_candidate(trial))
    assert _network_cost(tuner.best_genotype()) <= budget
    front = tuner.deployment_pareto()
    assert front and all(r["trial_id"] in {t.trial_id for t in completed} for r in front)


def test_operation_pruning_penalty_becomes_the_objective(tmp_path, bundle, capsys):
    objective = DeploymentObjective("binary_macs", penalty=0.05)
    tuner = _search(
        OperationPruning(
            SPACE,
            repetitions=2,
            warmup_epochs=0,
            finetune_epochs=0,
            seed=3,
            binarization="W1/A1",
            directory=str(tmp_path),
            project_name="op",
            deployment=objective,
        ),
        bundle,
    )
    assert tuner.oracle.objective.name == "deployed_val_accuracy"
    base = max(_uniform_costs("binary_macs"))
    completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    assert len(completed) == 2 * 2 + 2 * 1  # no budget: every path trains (ceil(K / 2) paths a repetition)
    for trial in completed:
        metric = trial.metrics.get_last_value
        assert metric("deploy_base_cost") == base
        expected = max(metric("val_accuracy") - 0.05 * metric("deploy_cost") / base, 0.0)
        assert metric("deployed_val_accuracy") == pytest.approx(expected)
        assert trial.score == pytest.approx(expected)
    tuner.results_summary(1)
    assert "Accuracy vs binary_macs Pareto front" in capsys.readouterr().out


def test_winner_over_budget_falls_back_to_the_best_sampled_path_or_fails_clearly():
    class Stub(deployment_lib.DeploymentAware):
        def __init__(self, budget):
            self._setup_deployment(DeploymentObjective("size_bytes", budget=budget))
            self._candidate_costs = type("Costs", (), {"cost": staticmethod({"pruned": 50, "p1": 40, "p2": 20}.get)})

    assert Stub(30).within_budget(["pruned", "p1", "p2"], "the pruned architecture") == "p2"
    assert Stub(60).within_budget(["pruned", "p1", "p2"], "the pruned architecture") == "pruned"
    with pytest.raises(
        ValueError,
        match="no searched architecture is within the deployment budget 10 size_bytes: the cheapest candidate costs 20",
    ):
        Stub(10).within_budget(["pruned", "p1", "p2"], "the pruned architecture")


def test_differentiable_budget_keeps_the_winner_in_budget(tmp_path, bundle):
    costs = _uniform_costs("size_bytes")
    tuner = Differentiable(
        SPACE,
        epochs=2,
        seed=0,
        binarization="W1/A1",
        directory=str(tmp_path),
        project_name="d",
        deployment=DeploymentObjective("size_bytes", budget=max(costs)),
    )
    tuner.search(
        bundle.search_weights,
        bundle.search_validation,
        architecture_data=bundle.search_architecture,
        steps_per_epoch=2,
        verbose=0,
    )
    for trial in tuner.oracle.trials.values():  # every epoch's discretised genotype is costed
        assert trial.metrics.get_last_value("deploy_cost") == _network_cost(tuner.trial_candidate(trial))
    genotype = tuner.best_genotype()
    assert _network_cost(genotype) <= max(costs)


# ------------------------------------------------------------ evolution
def test_evolution_budget_fails_genes_before_training_and_keeps_searching(tmp_path):
    settings = dict(num_classes=10, input_shape=(16, 16, 1), width_multiplier=0.125, binarization="W1/A1")
    uniform = ToyEvolution(directory=str(tmp_path), project_name="probe", **settings)
    uniform._setup_deployment(DeploymentObjective("float_macs"))
    budget = uniform.candidate_costs().cost(WidthGenotype.uniform("vgg_small", 2.0))
    ToyEvolution.calls = 0
    tuner = ToyEvolution(
        directory=str(tmp_path),
        project_name="budget",
        population_size=4,
        generations=3,
        seed=3,
        flops_penalty=0.01,
        deployment=DeploymentObjective("float_macs", budget=budget),
        **settings,
    )
    tuner.search(verbose=0)  # 3 consecutive rejections must not stop it (they are not training failures)
    trials = list(tuner.oracle.trials.values())
    rejected = [t for t in trials if deployment_lib.is_rejected(t)]
    assert len(trials) == 12 and rejected
    assert ToyEvolution.calls == 12 - len(rejected)  # rejected genes never reached evaluate_candidate
    for trial in rejected:
        assert trial.status == "FAILED" and "over the deployment budget" in trial.message
        assert trial.metrics.get_last_value("deploy_cost") > budget and tuner.oracle.fitness[trial.trial_id] == 0.0
    best = tuner.best_genotype()
    assert tuner.candidate_costs().cost(best) <= budget


def test_evolution_penalty_is_subtracted_inside_the_fitness(tmp_path):
    tuner = ToyEvolution(
        directory=str(tmp_path),
        project_name="penalty",
        population_size=4,
        generations=1,
        seed=3,
        flops_penalty=0.01,
        num_classes=10,
        input_shape=(16, 16, 1),
        width_multiplier=0.125,
        deployment=DeploymentObjective("size_bytes", penalty=0.1),
    )
    tuner.search(verbose=0)
    for trial in tuner.oracle.trials.values():
        m = trial.metrics.get_last_value
        accuracy = m("val_accuracy") - 0.1 * m("deploy_cost") / m("deploy_base_cost")  # the deployment penalty
        expected = max(100 * accuracy - 0.01 * m("flops") / m("base_flops"), 0)  # Eq. 4, accuracy in percent
        assert m("fitness") == pytest.approx(expected)
        assert math.isclose(
            m("deploy_base_cost"), tuner.candidate_costs().cost(WidthGenotype.uniform("vgg_small", 1.0))
        )


def test_edge_costs_split_the_profile_by_cell_kind_and_edge():
    genotype = SPACE.genotype({k: [0] * SPACE.num_edges for k in ("normal", "reduce")})  # conv_3x3 everywhere
    model = build_network(
        genotype,
        cells=SPACE.cells,
        channels=SPACE.channels,
        num_classes=10,
        input_shape=(16, 16, 1),
        binarization="W1/A1",
        reduction_cells=SPACE.reduction_cells,
    )
    profile = lce_profile(model)
    table = deployment_lib.edge_costs(profile["layers"], "binary_macs", SPACE.reduction_cells, SPACE.num_edges)
    outside = sum(r["binary_macs"] for r in profile["layers"] if not re.match(r"cell\d+_e\d+_", r["name"]))
    assert all(c > 0 for kind in table for c in table[kind])  # every edge holds a binary conv
    assert sum(table["normal"]) + sum(table["reduce"]) + outside == profile["binary_macs"]
    with pytest.raises(ValueError, match="does not split over edges"):
        deployment_lib.edge_costs(profile["layers"], "latency", SPACE.reduction_cells, SPACE.num_edges)


def _alpha_preference(tuner, op):
    """Mean over edges of op's α minus the edge's mean α, after the search."""
    alpha = tuner.search_oracle().alpha
    return float(np.mean([a[op] - np.mean(a) for kind in ("normal", "reduce") for a in alpha[kind]]))


def test_differentiable_penalty_pushes_alpha_away_from_costly_ops(tmp_path, bundle):
    def run(name, deployment):
        tuner = Differentiable(
            SPACE,
            epochs=2,
            seed=0,
            binarization="W1/A1",
            alpha_learning_rate=0.05,
            directory=str(tmp_path),
            project_name=name,
            deployment=deployment,
        )
        tuner.search(
            bundle.search_weights,
            bundle.search_validation,
            architecture_data=bundle.search_architecture,
            steps_per_epoch=3,
            verbose=0,
        )
        return tuner

    plain = run("plain", None)
    penalised = run("penalised", DeploymentObjective("binary_macs", penalty=10.0))
    table = penalised.op_cost_table()
    conv = SPACE.op_set.index("conv_3x3")
    assert all(row[conv] == max(row) > 0 for kind in table for row in table[kind])  # conv is the costly op
    assert _alpha_preference(penalised, conv) < _alpha_preference(plain, conv) - 0.05
