"""Each paper's search decision against an answer planted by hand, at the oracle level (no training).

A fake measurement gives every sampled path an accuracy chosen from the op it takes on one edge (``normal_e0``),
so that edge's means are exactly the planted numbers and each decision can be worked out in the comments.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from bnas_tf.space.supernet import CellSpace
from bnas_tf.tuners import ChildParent, ChildParentOracle, OperationPruningOracle

OPS = ("conv_3x3", "max_pool_3x3", "identity", "avg_pool_3x3")
SPACE = CellSpace(op_set=OPS, cells=2, channels=8, nodes=1, reduction_cells=[1])  # 2 edges per cell kind


def drive(oracle, measure, until_round):
    """Run the oracle's rounds with ``measure(values) -> metrics`` until it has finished ``until_round`` rounds."""
    pending = []
    while oracle.round < until_round and oracle.phase != "done":
        trial = oracle.create_trial(f"t/slot{len(pending)}")
        if trial.status in ("IDLE", "STOPPED"):
            assert pending, "the oracle idles with nothing running"
            for running in pending:
                oracle.update_trial(running.trial_id, measure(running.hyperparameters.values))
                running.status = "COMPLETED"
                oracle.end_trial(running)
            pending = []
            continue
        pending.append(trial)
    return oracle


def test_pruning_samples_the_smallest_alpha_half_and_abandons_the_eq_7_to_9_argmin(tmp_path):
    oracle = OperationPruningOracle(SPACE, repetitions=2, warmup_epochs=1, warmup_weights_only=0, seed=0)
    oracle._set_project_dir(str(tmp_path), "p1")
    alpha = {"conv_3x3": 0.4, "max_pool_3x3": 0.1, "identity": 0.3, "avg_pool_3x3": 0.2}

    def measure(values):
        if values["phase"] == "warmup":  # the warm-up reports α; only normal_e0's are planted, others are 0
            return {"val_accuracy": 0.0, **{f"alpha_normal_0_{k}": alpha[op] for k, op in enumerate(OPS)}}
        return {"val_accuracy": {"max_pool_3x3": 0.6, "avg_pool_3x3": 0.8}[values["normal_e0"]]}

    drive(oracle, measure, until_round=1)
    record = oracle.log[0]["edges"]["normal_e0"]
    # Step 2a: O_smaller = the ceil(4/2) = 2 ops with the smallest α: max_pool (0.1) and avg_pool (0.2).
    assert record["candidates"] == ["max_pool_3x3", "avg_pool_3x3"]
    # Eq. 7: s_smaller = softmax([0.6, 0.8]) = [0.450166, 0.549834].
    # Eq. 8: s_larger = 1/2 (0.549834 + (0.450166 + 0.549834) / 2) = 0.524917 for conv and identity.
    # Eq. 9 from s = 0: s = [0.524917, 0.450166, 0.524917, 0.549834]; Eq. 11: argmin = max_pool.
    assert record["score"] == pytest.approx(
        {"conv_3x3": 0.524917, "max_pool_3x3": 0.450166, "identity": 0.524917, "avg_pool_3x3": 0.549834}, abs=1e-6
    )
    assert record["abandoned"] == "max_pool_3x3"
    assert oracle.remaining["normal"][0] == [0, 2, 3]


@pytest.mark.parametrize("beta, abandoned", [(0.0, "avg_pool_3x3"), (2.0, "max_pool_3x3")])
def test_child_parent_beta_decides_which_op_is_abandoned(tmp_path, beta, abandoned):
    # Planted child (1-bit) and parent (full-precision) accuracies of the op on normal_e0:
    child = {"conv_3x3": 0.60, "max_pool_3x3": 0.55, "identity": 0.58, "avg_pool_3x3": 0.50}
    parent = {"conv_3x3": 0.90, "max_pool_3x3": 0.70, "identity": 0.80, "avg_pool_3x3": 0.85}
    # Eq. 1, z = A_C + beta (A_P - A_C):
    #   beta = 0: z = A_C = [0.60, 0.55, 0.58, 0.50]          -> worst avg_pool (0.50)
    #   beta = 2: z = [1.20, 0.85, 1.02, 1.20]                 -> worst max_pool (0.85)
    # Eq. 2 (softmax of the mean z over the edge) keeps the order, so its argmin is z's.
    tuner = SimpleNamespace(beta=beta)

    def measure(values):
        op = values["normal_e0"]
        return ChildParent.path_metrics(tuner, [child[op]], [parent[op]])[0]

    oracle = ChildParentOracle(SPACE, repetitions=2, beta=beta, seed=0)
    oracle._set_project_dir(str(tmp_path), f"cp{beta}")
    drive(oracle, measure, until_round=1)
    record = oracle.log[0]["edges"]["normal_e0"]
    assert record["candidates"] == list(OPS)  # P4 samples every op of the edge in each repetition
    z = {op: child[op] + beta * (parent[op] - child[op]) for op in OPS}
    expected = np.exp(list(z.values())) / np.exp(list(z.values())).sum()
    assert list(record["score"].values()) == pytest.approx(expected.tolist(), abs=1e-9)
    assert record["abandoned"] == abandoned


def test_width_fitness_with_table_1_in_percent_ranks_the_searched_net_first():
    from bnas_tf.tuners import scores

    # P3 Table 1 (VGG-small, CIFAR-10, W1/A1): FLOPs (M) and top-1 (%); FLOPs are divided by uniform 1x's 13.2M.
    table = {
        "uniform_1x": (13.2, 90.24),
        "uniform_2x": (45.3, 91.65),
        "uniform_3x": (96.2, 91.87),
        "uniform_4x": (166.0, 92.56),
        "auto_a": (11.3, 92.17),
        "auto_b": (59.3, 93.06),
    }
    fitness = {name: scores.width_fitness(acc, flops, 13.2, lam=4.0) for name, (flops, acc) in table.items()}
    # Eq. 4 by hand: 1x 90.24 - 4 = 86.24; A 92.17 - 4 * 11.3 / 13.2 = 88.746; 2x 91.65 - 13.727 = 77.923;
    # B 93.06 - 17.970 = 75.090; 3x 91.87 - 29.152 = 62.718; 4x 92.56 - 50.303 = 42.257.
    assert fitness["uniform_1x"] == pytest.approx(86.24)
    assert fitness["auto_a"] == pytest.approx(88.746, abs=1e-3)
    assert sorted(fitness, key=fitness.get, reverse=True) == [
        "auto_a",
        "uniform_1x",
        "uniform_2x",
        "auto_b",
        "uniform_3x",
        "uniform_4x",
    ]
    # The same accuracies as fractions score 0 for every network: Eq. 4 needs Acc in percent.
    assert all(scores.width_fitness(acc / 100, flops, 13.2, lam=4.0) == 0.0 for flops, acc in table.values())


@pytest.mark.parametrize("ucb, abandoned", [(False, "max_pool_3x3"), (True, "identity")])
def test_one_bit_search_samples_half_the_ops_and_ucb_changes_the_abandoned_op(tmp_path, ucb, abandoned):
    # No warm-up, so O_smaller = O (K = 4 ops); each repetition trains ceil(4 / 2) = 2 paths (Algorithm 1, line 6).
    oracle = OperationPruningOracle(SPACE, repetitions=3, ucb=ucb, warmup_epochs=0, seed=0)
    oracle._set_project_dir(str(tmp_path), f"ucb{ucb}")
    table = {"conv_3x3": 0.80, "max_pool_3x3": 0.70, "identity": 0.78, "avg_pool_3x3": 0.75}
    issued = []

    def measure(values):
        issued.append(values)
        return {"val_accuracy": table[values["normal_e0"]]}

    drive(oracle, measure, until_round=1)
    for repetition in range(3):
        paths = [v for v in issued if v["repetition"] == repetition]
        assert len(paths) == 2 and all(v["group_size"] == 2 for v in paths)
        for edge in ("normal_e0", "normal_e1", "reduce_e0", "reduce_e1"):
            assert paths[0][edge] != paths[1][edge]  # without replacement within a repetition
    record = oracle.log[0]["edges"]["normal_e0"]
    # The seeded draw (seed 0): 6 samples, every op at least once, two of them twice: the counts n_k differ.
    assert record["sampled"] == {"conv_3x3": 2, "max_pool_3x3": 1, "identity": 2, "avg_pool_3x3": 1}
    # Eq. 7-9 from s = 0, every op measured: s = softmax([0.80, 0.70, 0.78, 0.75])
    #   = [0.260670, 0.235864, 0.255508, 0.247957]: without UCB the argmin is max_pool (0.70).
    # Eq. 10, N = 6: + 2 sqrt(2 ln 6 / n_k) = 2.677133 (n = 2) or 3.786038 (n = 1):
    #   [2.937803, 4.021902, 2.932641, 4.033995]: the argmin is identity, the less accurate of the two ops
    #   sampled twice; max_pool, sampled once, keeps its place to be explored.
    expected = np.array([0.260670, 0.235864, 0.255508, 0.247957])
    if ucb:
        expected = expected + np.array([2.677133, 3.786038, 2.677133, 3.786038])
    assert list(record["score"].values()) == pytest.approx(expected.tolist(), abs=1e-5)
    assert record["abandoned"] == abandoned


def test_an_op_never_selected_is_kept_by_ucb(tmp_path):
    # T = 1: one repetition of 2 paths leaves 2 of the 4 ops unselected; their UCB bound is infinite.
    oracle = OperationPruningOracle(SPACE, repetitions=1, ucb=True, seed=0)
    oracle._set_project_dir(str(tmp_path), "t1")
    table = {"conv_3x3": 0.80, "max_pool_3x3": 0.70, "identity": 0.78, "avg_pool_3x3": 0.75}
    drive(oracle, lambda values: {"val_accuracy": table[values["normal_e0"]]}, until_round=1)
    record = oracle.log[0]["edges"]["normal_e0"]
    assert len(record["sampled"]) == 2 and record["abandoned"] in record["sampled"]


def test_differentiable_keeps_the_two_strongest_inputs_per_node_with_the_zeroise_rule():
    from bnas_tf.tuners import discretise

    space = CellSpace(op_set=["zero", "conv_3x3", "max_pool_3x3"], cells=2, channels=8, nodes=4)
    # 14 edges: node 2 <- 0, 1; node 3 <- 0, 1, 2; node 4 <- 0..3; node 5 <- 0..4. Softmax weights
    # [zero, conv, pool] planted per edge; an edge's strength is its best non-zero weight (DARTS), its op
    # argmax(w_zero / gamma, w_conv, w_pool) (P2 Eq. 4).
    weights = [
        [0.1, 0.6, 0.3],  # 2<-0 strength 0.6 conv
        [0.1, 0.3, 0.6],  # 2<-1 strength 0.6 pool
        [0.2, 0.7, 0.1],  # 3<-0 0.7 conv
        [0.5, 0.3, 0.2],  # 3<-1 0.3: zero 0.5 beats conv 0.3 at gamma 1, not at gamma 3 (0.167)
        [0.1, 0.2, 0.7],  # 3<-2 0.7 pool
        [0.3, 0.4, 0.3],  # 4<-0 0.4
        [0.1, 0.1, 0.8],  # 4<-1 0.8 pool
        [0.6, 0.25, 0.15],  # 4<-2 0.25: zero at gamma 1 and (0.6 / 3 = 0.2 < 0.25) conv at gamma 3
        [0.2, 0.5, 0.3],  # 4<-3 0.5 conv
        [0.4, 0.35, 0.25],  # 5<-0 0.35
        [0.1, 0.2, 0.7],  # 5<-1 0.7 pool
        [0.8, 0.15, 0.05],  # 5<-2 0.15: the weakest, dropped
        [0.3, 0.3, 0.4],  # 5<-3 0.4
        [0.9, 0.06, 0.04],  # 5<-4 0.06: dropped
    ]
    logits = {kind: np.log(weights).tolist() for kind in ("normal", "reduce")}
    # top-2 by strength: node 2 {0, 1}; node 3 {0 (0.7), 2 (0.7)}; node 4 {1 (0.8), 3 (0.5)}; node 5 {1, 3}.
    expected = (
        ("conv_3x3", 0),
        ("max_pool_3x3", 1),
        ("conv_3x3", 0),
        ("max_pool_3x3", 2),
        ("max_pool_3x3", 1),
        ("conv_3x3", 3),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 3),
    )
    assert discretise(space, logits, gamma=3.0).normal == expected
    # node 2 has two inputs, so both edges stay whatever their strength; with 2<-1 at [0.5, 0.3, 0.2] the
    # Zeroise rule decides its op: zero at gamma 1 (0.5 > 0.3), conv at gamma 3 (0.5 / 3 = 0.167 < 0.3)
    weights[1] = [0.5, 0.3, 0.2]
    logits = {kind: np.log(weights).tolist() for kind in ("normal", "reduce")}
    assert discretise(space, logits, gamma=1.0).normal[:2] == (("conv_3x3", 0), ("zero", 1))
    assert discretise(space, logits, gamma=3.0).normal[:2] == (("conv_3x3", 0), ("conv_3x3", 1))


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
def test_evolution_finds_the_planted_optimum_of_a_width_landscape(tmp_path, seed):
    from bnas_tf.tuners.evolution import EvolutionOracle, genotype_from_values

    # A planted landscape over VGG-small's 6 width genes: fitness = how many ratios equal TARGET (best: 6).
    # 6 ratios per gene give 6^6 = 46,656 genes; 16 individuals x 25 generations evaluate 400 of them.
    target = (0.5, 1.0, 2.0, 0.25, 3.0, 4.0)
    oracle = EvolutionOracle("vgg_small", population_size=16, generations=25, seed=seed)
    oracle._set_project_dir(str(tmp_path), "planted")
    oracle.verbose = 0
    best = (-1.0, None)
    while True:
        trial = oracle.create_trial("t")
        if trial.status == "STOPPED":
            break
        ratios = genotype_from_values("vgg_small", trial.hyperparameters.values).ratios
        fitness = float(sum(a == b for a, b in zip(ratios, target)))
        best = max(best, (fitness, ratios), key=lambda pair: pair[0])
        oracle.update_trial(trial.trial_id, {"fitness": fitness, "val_accuracy": fitness, "flops": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert best == (6.0, target)
    assert max(oracle.fitness.values()) == 6.0
