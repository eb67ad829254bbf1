"""Evolutionary width search (SPEC P3): operators, oracle state machine, resume, real tiny searches.

The operator and oracle tests run no TensorFlow. A toy tuner whose
"accuracy" is a known function of the gene checks that evolution finds the
known best gene, resumes exactly and handles failed trials. Three real
searches on digits (VGG-small at width_multiplier 0.125, 16x16x1 inputs,
1 epoch on 320 images) check the metrics, the resume on real training and
the uniform-4x initialisation.
"""

import json
import math
import os
import shutil

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from bnas_tf import WidthGenotype, build_width_network
from bnas_tf.data import from_arrays
from bnas_tf.deploy import costs
from bnas_tf.tuners import scores, width_init
from bnas_tf.tuners.evolution import (
    RATIOS,
    DivergenceMonitor,
    Evolution,
    EvolutionOracle,
    first_generation,
    mutate,
    next_generation,
    survivors,
    tournament_select,
    uniform_crossover,
)

# ------------------------------------------------------------- operators


def test_crossover_and_mutation_are_seeded_and_valid():
    a, b = (0.25,) * 6, (4.0,) * 6
    child = uniform_crossover(a, b, np.random.default_rng(3))
    assert child == uniform_crossover(a, b, np.random.default_rng(3))
    assert set(child) <= {0.25, 4.0} and 0.25 in child and 4.0 in child  # 2^-5 chance of one-sided; seed 3 mixes
    gene = (1.0, 2.0, 0.5, 3.0, 4.0, 0.25)
    assert mutate(gene, 0.0, np.random.default_rng(0)) == gene
    everywhere = mutate(gene, 1.0, np.random.default_rng(0))
    assert everywhere == mutate(gene, 1.0, np.random.default_rng(0))
    assert all(new != old and new in RATIOS for new, old in zip(everywhere, gene))
    rng = np.random.default_rng(0)
    changed = [sum(x != y for x, y in zip(mutate(gene, 1 / 6, rng), gene)) for _ in range(3000)]
    assert np.mean(changed) == pytest.approx(1.0, abs=0.07)  # 6 genes x 1/6


def test_tournament_returns_the_fittest_entrant():
    fitness = [0.1, 0.9, 0.5, 0.9]
    assert tournament_select(fitness, 4, np.random.default_rng(0)) == 1  # all enter; tie 1 vs 3 -> lower index
    rng = np.random.default_rng(5)
    for _ in range(50):
        winner = tournament_select(fitness, 2, rng)
        assert winner != 0  # the worst can never win a 2-entrant tournament without replacement


def test_generations_avoid_known_genes_and_fall_back_in_a_tiny_space():
    genes = first_generation(6, 32, np.random.default_rng(1))
    assert len(set(genes)) == 32 and all(len(g) == 6 and set(g) <= set(RATIOS) for g in genes)
    children = next_generation(genes, list(range(32)), 32, np.random.default_rng(2), mutation_rate=1 / 6, seen=genes)
    assert len(set(children)) == 32 and not set(children) & set(genes)
    # Two ratios x 2 layers = 4 genes, all seen: children repeat seen genes but not each other, then anything.
    tiny = [(1.0, 1.0), (1.0, 2.0), (2.0, 1.0), (2.0, 2.0)]
    four = next_generation(
        tiny, [0, 1, 2, 3], 4, np.random.default_rng(0), mutation_rate=0.5, seen=tiny, ratios=(1.0, 2.0)
    )
    assert sorted(four) == sorted(tiny)
    assert (
        len(next_generation(tiny, [0, 1, 2, 3], 6, np.random.default_rng(0), mutation_rate=0.5, ratios=(1.0, 2.0))) == 6
    )


def test_survivors_rank_fitness_then_accuracy_and_failed_last():
    a, b, c, d = (1.0,) * 6, (2.0,) * 6, (3.0,) * 6, (4.0,) * 6
    individuals = [(a, 0.0, None), (b, 0.0, 0.3), (c, 0.5, 0.9), (d, 0.0, 0.6), (b, 0.1, 0.2)]
    genes, fitness = survivors(individuals, 3)
    assert genes == [c, b, d] and fitness == [0.5, 0.1, 0.0]  # b keeps its better record; a (failed) is out


# ---------------------------------------------------------------- oracle


def _oracle(tmp_path, name="p", **kwargs):
    kwargs = {"population_size": 2, "generations": 2, "seed": 7, **kwargs}
    oracle = EvolutionOracle("vgg_small", **kwargs)
    oracle._set_project_dir(str(tmp_path), name)
    oracle.verbose = 0
    return oracle


def _finish(oracle, trial, fitness=0.5, status="COMPLETED"):
    oracle.update_trial(trial.trial_id, {"fitness": fitness, "val_accuracy": fitness, "flops": 1.0})
    trial.status = status
    oracle.end_trial(trial)


def test_oracle_idles_only_while_other_trials_run(tmp_path):
    oracle = _oracle(tmp_path)
    first = oracle.create_trial("a")
    second = oracle.create_trial("b")
    assert first.status == second.status == "RUNNING"
    assert first.hyperparameters.values != second.hyperparameters.values
    _finish(oracle, first)
    assert oracle.create_trial("a").status == "IDLE"  # generation 0 not done: b still trains
    _finish(oracle, second, fitness=0.0, status="FAILED")
    assert oracle.fitness == {first.trial_id: 0.5, second.trial_id: 0.0}  # failed -> fitness 0
    third = oracle.create_trial("a")  # generation 1 starts at once; nothing else runs
    assert third.status == "RUNNING" and len(oracle.populations) == 2
    fourth = oracle.create_trial("a2")
    _finish(oracle, third)
    _finish(oracle, fourth)
    assert oracle.create_trial("a").status == "STOPPED"
    log = json.load(open(tmp_path / "p" / "search_log.json"))
    assert [ind["status"] for gen in log["log"] for ind in gen["individuals"]] == [
        "COMPLETED",
        "FAILED",
        "COMPLETED",
        "COMPLETED",
    ]


def test_a_lost_trial_is_handed_out_again_instead_of_idling(tmp_path):
    oracle = _oracle(tmp_path)
    first, second = oracle.create_trial("a"), oracle.create_trial("b")
    _finish(oracle, first)
    oracle.ongoing_trials.pop("b")  # worker b vanished: its trial neither runs nor ended
    again = oracle.create_trial("a")
    assert again.status == "RUNNING" and again.hyperparameters.values == second.hyperparameters.values
    _finish(oracle, again)
    assert len(oracle.populations) == 1 and oracle.create_trial("a").status == "RUNNING"  # generation 1


def test_oracle_state_round_trips_through_json(tmp_path):
    oracle = _oracle(tmp_path, population_size=3)
    for _ in range(4):
        _finish(oracle, oracle.create_trial("a"), fitness=0.25)
    running = oracle.create_trial("a")
    state = oracle.get_state()
    assert json.loads(json.dumps(state)) == state  # plain JSON
    shutil.copytree(tmp_path / "p", tmp_path / "q")
    restored = _oracle(tmp_path, "q", population_size=3, seed=None)
    restored.reload()
    assert restored.seed == 7
    assert restored.get_state()["evolution"] == state["evolution"]
    # reload sends the running trial for retry, as KerasTuner does; then both hand out the same next gene.
    assert restored.create_trial("a").trial_id == running.trial_id
    _finish(oracle, running, fitness=0.25)
    _finish(restored, restored.trials[running.trial_id], fitness=0.25)
    assert oracle.create_trial("a").hyperparameters.values == restored.create_trial("a").hyperparameters.values


def test_oracle_validates_its_arguments():
    with pytest.raises(ValueError, match="backbone"):
        EvolutionOracle("vgg_big")
    with pytest.raises(ValueError, match="population_size"):
        EvolutionOracle(population_size=0)
    with pytest.raises(ValueError, match="mutation_rate"):
        EvolutionOracle(mutation_rate=1.5)
    assert EvolutionOracle(seed=0).seed == 0  # KerasTuner alone would draw a random seed for 0


# ------------------------------------------------------------ toy search

TARGET = (1.0, 0.5, 2.0, 4.0, 3.0, 1.0)


class ToyEvolution(Evolution):
    """Accuracy = mean over layers of min(r, t) / t: width helps up to TARGET, then only costs FLOPs."""

    calls = 0
    fail_first_ratio = None

    def evaluate_candidate(self, genotype, *fit_args, **fit_kwargs):
        type(self).calls += 1
        if genotype.ratios[0] == self.fail_first_ratio:
            raise keras_tuner.errors.FailedTrialError("toy failure")
        accuracy = float(np.mean([min(r, t) / t for r, t in zip(genotype.ratios, TARGET)]))
        return {"val_accuracy": accuracy, "flops": float(sum(genotype.ratios))}

    def measure_flops(self, genotype):
        return float(sum(genotype.ratios))


def _without_ids(log):
    """Search log entries without trial ids (KerasTuner pads ids to the digits of max_trials)."""
    return [[{k: v for k, v in i.items() if k != "trial_id"} for i in g["individuals"]] for g in log["log"]]


def _toy(tmp_path, name, overwrite=True, **kwargs):
    kwargs = {"population_size": 4, "generations": 3, "seed": 3, "flops_penalty": 0.01, **kwargs}
    return ToyEvolution(directory=str(tmp_path), project_name=name, overwrite=overwrite, **kwargs)


def test_evolution_finds_the_known_best_gene(tmp_path):
    # 12 x 14 = 168 of 6^6 = 46656 genes: random search would find TARGET with p = 0.4%.
    tuner = _toy(tmp_path, "toy", population_size=12, generations=14, seed=8)
    tuner.search(verbose=0)
    assert tuner.best_genotype() == WidthGenotype("vgg_small", TARGET, name="evolution_best")
    best_per_generation = [max(i["fitness"] for i in g["individuals"]) for g in tuner.search_log()["log"]]
    assert best_per_generation[-1] > best_per_generation[0]
    assert len(tuner.oracle.trials) == 12 * 14


@pytest.mark.parametrize("stop_after", [4, 6])  # end of generation 0, middle of generation 1
def test_resume_continues_without_rerunning_a_trial(tmp_path, stop_after):
    whole = _toy(tmp_path, "whole")
    whole.search(verbose=0)
    ToyEvolution.calls = 0
    _toy(tmp_path, "parts", max_trials=stop_after).search(verbose=0)
    assert ToyEvolution.calls == stop_after
    resumed = _toy(tmp_path, "parts", overwrite=False, seed=None)  # seed comes back from the state
    resumed.search(verbose=0)
    assert ToyEvolution.calls == 12 and len(resumed.oracle.trials) == 12
    assert _without_ids(resumed.search_log()) == _without_ids(whole.search_log())
    assert resumed.best_genotype() == whole.best_genotype()


def test_same_seed_same_search_other_seed_other_genes(tmp_path):
    one, two, other = _toy(tmp_path, "one"), _toy(tmp_path, "two"), _toy(tmp_path, "other", seed=4)
    for tuner in (one, two, other):
        tuner.search(verbose=0)
    assert _without_ids(one.search_log()) == _without_ids(two.search_log())
    assert one.best_genotype() == two.best_genotype()
    genes = [[i["ratios"] for i in g["individuals"]] for g in one.search_log()["log"]]
    assert genes != [[i["ratios"] for i in g["individuals"]] for g in other.search_log()["log"]]


def test_failed_trials_score_zero_and_the_search_goes_on(tmp_path):
    ToyEvolution.fail_first_ratio = 4.0
    try:
        tuner = _toy(tmp_path, "fails", max_consecutive_failed_trials=100)
        tuner.search(verbose=0)
    finally:
        ToyEvolution.fail_first_ratio = None
    failed = [t for t in tuner.oracle.trials.values() if t.status == "FAILED"]
    assert failed and len(tuner.oracle.trials) == 12
    assert all(tuner.oracle.fitness[t.trial_id] == 0.0 for t in failed)
    assert all(t.hyperparameters.values["width_ratio_0"] == 4.0 for t in failed)
    assert tuner.best_genotype().ratios[0] != 4.0


# ------------------------------------------------------ real tiny searches


@pytest.fixture(scope="module")
def digits_data():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = tf.image.resize(data.images.astype("float32")[..., None] / 16.0, (16, 16)).numpy() * 2.0 - 1.0
    y = data.target.astype("int32")
    # Fixed order (no reshuffle) so an interrupted search trains on the same batches as an unbroken one.
    # 320 = 10 x 32: no ragged last batch, so each candidate traces its train step once.
    return (
        tf.data.Dataset.from_tensor_slices((x[:320], y[:320])).batch(32),
        tf.data.Dataset.from_tensor_slices((x[320:420], y[320:420])).batch(50),
    )


REAL = {
    "population_size": 4,
    "generations": 2,
    "seed": 1,
    "epochs_per_candidate": 1,
    "width_multiplier": 0.125,
    "flops_penalty": 0.01,
}


@pytest.fixture(scope="module")
def real_search(tmp_path_factory, digits_data):
    train, validation = digits_data
    tuner = Evolution(directory=str(tmp_path_factory.mktemp("evolution")), project_name="whole", overwrite=True, **REAL)
    tuner.search(train, validation_data=validation, verbose=0)
    return tuner


def test_tiny_search_on_digits_reports_eq4_fitness(real_search):
    tuner = real_search
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 8 and all(t.status == "COMPLETED" for t in trials)
    best = tuner.best_genotype()
    assert isinstance(best, WidthGenotype) and best.backbone == "vgg_small" and set(best.ratios) <= set(RATIOS)
    uniform = build_width_network(
        WidthGenotype.uniform("vgg_small", 1.0), num_classes=10, input_shape=(16, 16, 1), width_multiplier=0.125
    )
    base_flops = costs.profile(uniform)["flops"]
    for trial in trials:
        metric = trial.metrics.get_last_value
        assert metric("base_flops") == base_flops
        assert metric("fitness") == pytest.approx(
            scores.width_fitness(100 * metric("val_accuracy"), metric("flops"), metric("base_flops"), lam=0.01)
        )
        assert tuner.oracle.fitness[trial.trial_id] == pytest.approx(metric("fitness"))
    gene = tuner.oracle.populations[0]["genes"][0]
    model = build_width_network(
        WidthGenotype("vgg_small", gene), num_classes=10, input_shape=(16, 16, 1), width_multiplier=0.125
    )
    assert (
        tuner.oracle.trials[tuner.oracle.populations[0]["trial_ids"][0]].metrics.get_last_value("flops")
        == costs.profile(model)["flops"]
    )
    log = tuner.search_log()["log"]
    assert [len(g["individuals"]) for g in log] == [4, 4]
    front = tuner.pareto()
    points = [(t.metrics.get_last_value("val_accuracy"), t.metrics.get_last_value("flops")) for t in trials]
    assert front and all(
        not any(a >= acc and f <= flops and (a, f) != (acc, flops) for a, f in points) for acc, flops, _ in front
    )


def test_scaled_widths_reach_the_network():
    model = build_width_network(
        WidthGenotype.uniform("vgg_small", 2.0), num_classes=10, input_shape=(16, 16, 1), width_multiplier=0.125
    )
    kernels = [w for w in model.weights if w.name.endswith("kernel:0") and len(w.shape) == 4]
    assert [int(k.shape[-1]) for k in kernels] == [32, 32, 64, 64, 128, 128]  # (128..512) x 0.125 x 2


@pytest.mark.slow  # ~30 s; resume is covered at toy cost by test_resume_continues_without_rerunning_a_trial
def test_resumed_real_search_matches_the_unbroken_one(real_search, digits_data, tmp_path):
    train, validation = digits_data
    first = Evolution(directory=str(tmp_path), project_name="parts", overwrite=True, max_trials=4, **REAL)
    first.search(train, validation_data=validation, verbose=0)
    assert len(first.oracle.trials) == 4
    resumed = Evolution(directory=str(tmp_path), project_name="parts", overwrite=False, **REAL)
    resumed.search(train, validation_data=validation, verbose=0)
    assert len(resumed.oracle.trials) == 8
    assert _without_ids(resumed.search_log()) == _without_ids(real_search.search_log())  # genes, accuracy, FLOPs
    assert resumed.best_genotype() == real_search.best_genotype()


def test_diverging_candidates_fail_with_fitness_zero(digits_data, tmp_path):
    train, validation = digits_data
    tuner = Evolution(
        directory=str(tmp_path),
        project_name="nan",
        overwrite=True,
        learning_rate=1e30,
        **{**REAL, "population_size": 1, "generations": 1},
    )
    with pytest.raises(ValueError, match=r"every individual of generation 0 failed \(1 gene\): the loss is not finite"):
        tuner.search(train.take(3), validation_data=validation, verbose=0)  # nothing to breed from: it stops
    assert [t.status for t in tuner.oracle.trials.values()] == ["FAILED"]
    assert "non-finite" in tuner.oracle.trials["0"].message
    assert set(tuner.oracle.fitness.values()) == {0.0}
    monitor = DivergenceMonitor()
    monitor.set_model(tf.keras.Sequential())
    monitor.on_train_batch_end(4, {"loss": float("inf")})
    assert monitor.diverged_at == (4, math.inf) and monitor.model.stop_training


def test_first_channels_of_the_uniform4x_net(tmp_path):
    teacher = build_width_network(
        WidthGenotype.uniform("vgg_small", 4.0), num_classes=10, input_shape=(16, 16, 1), width_multiplier=0.125
    )
    for weight in teacher.weights:  # distinct values so a wrong slice cannot pass
        weight.assign(np.random.default_rng(0).normal(size=weight.shape))
    width_init.save_weights(tmp_path / "w.npz", teacher)
    saved = width_init.load_weights(tmp_path / "w.npz")
    student = build_width_network(
        WidthGenotype("vgg_small", (0.25, 1.0, 4.0, 0.5, 2.0, 3.0)),
        num_classes=10,
        input_shape=(16, 16, 1),
        width_multiplier=0.125,
    )
    width_init.inherit_first_channels(student, saved)
    for big, small in zip(teacher.weights, student.weights):
        index = tuple(slice(0, n) for n in small.shape)
        np.testing.assert_array_equal(small.numpy(), big.numpy()[index])
    kernel = [w for w in student.weights if w.name == "conv1_conv/kernel:0"][0]
    assert kernel.shape == (3, 3, 4, 16)  # c_in from conv0 at 0.25 (16 x 0.25), c_out 16 x 1
    with pytest.raises(ValueError, match="different backbone"):
        width_init.inherit_first_channels(student, saved[:-1])


def test_uniform4x_is_trained_once_and_reused_on_resume(digits, tmp_path):
    x, y = digits
    bundle = from_arrays(x[:300], y[:300], batch_size=30, validation_fraction=0.2)  # 180 / 60: even batches
    settings = {**REAL, "population_size": 1, "generations": 1, "initial_weights": "uniform4x"}
    Evolution(directory=str(tmp_path), project_name="init", overwrite=True, **settings).search(bundle, verbose=0)
    path = tmp_path / "init" / width_init.UNIFORM4X_FILE
    stamp = os.stat(path).st_mtime_ns
    resumed = Evolution(directory=str(tmp_path), project_name="init", overwrite=False, **{**settings, "generations": 2})
    resumed.search(bundle, verbose=0)
    assert os.stat(path).st_mtime_ns == stamp
    assert len(resumed.oracle.trials) == 2 and all(t.status == "COMPLETED" for t in resumed.oracle.trials.values())


def test_search_needs_validation_data(digits_data, tmp_path):
    train, _ = digits_data
    tuner = Evolution(directory=str(tmp_path), project_name="v", overwrite=True, **REAL)
    with pytest.raises(ValueError, match="validation_data"):
        tuner.search(train)
    for bad, match in (
        ({"initial_weights": "uniform8x"}, "initial_weights"),
        ({"flops_penalty": -1.0}, "lam"),
        ({"width_multiplier": 0}, "width_multiplier"),
        ({"width_multiplier": True}, "width_multiplier"),
        ({"binarization": "W3/A9"}, "binarization"),
    ):
        with pytest.raises(ValueError, match=match):
            Evolution(directory=str(tmp_path), project_name="w", **bad)
