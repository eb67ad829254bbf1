"""Tiny complete searches on digits: each oracle ends with one op per edge, seeded runs agree, resume continues."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bnas_tf import Genotype, data
from bnas_tf.space.supernet import CellSpace
from bnas_tf.tuners import ChildParent, OperationPruning

SPACE = CellSpace(op_set=["conv_3x3", "max_pool_3x3", "identity"], cells=2, channels=8, nodes=2, reduction_cells=[1])


@pytest.fixture(scope="module")
def bundle():
    return data.load("digits", batch_size=32, search_split=True, max_examples=600)


@pytest.fixture(autouse=True)
def _deterministic():
    tf.config.experimental.enable_op_determinism()
    yield


def _search(tuner, bundle, **kwargs):
    tuner.search(
        bundle.search_weights,
        bundle.search_validation,
        architecture_data=bundle.search_architecture,
        steps_per_epoch=4,
        verbose=0,
        **kwargs,
    )
    return tuner


def _pruning(tmp_path, name, **kwargs):
    settings = dict(repetitions=2, warmup_epochs=2, warmup_weights_only=1, finetune_epochs=1, seed=3)
    settings.update(kwargs)
    return OperationPruning(SPACE, directory=str(tmp_path), project_name=name, **settings)


def _assert_one_op_per_edge(tuner):
    genotype = tuner.best_genotype()
    assert isinstance(genotype, Genotype)
    assert len(genotype.normal) == len(genotype.reduce) == SPACE.num_edges
    for kind in ("normal", "reduce"):
        assert all(len(r) == 1 for r in tuner.oracle.remaining[kind])
    assert tuner.oracle.phase == "done"
    return genotype


def test_operation_pruning_with_warmup_prunes_to_one_op_per_edge(tmp_path, bundle):
    tuner = _search(_pruning(tmp_path, "p1"), bundle)
    genotype = _assert_one_op_per_edge(tuner)
    log = json.load(open(os.path.join(tuner.project_dir, "search_log.json")))["rounds"]
    assert len(log) == SPACE.num_ops - 1  # K - 1 rounds
    first = log[0]["edges"]["normal_e0"]
    # with a warm-up, round 1 samples O_smaller: ceil(3 / 2) = 2 of the 3 ops
    assert len(first["candidates"]) == 2 and first["abandoned"] in first["candidates"]
    phases = [t.hyperparameters.values["phase"] for t in tuner.oracle.trials.values()]
    # 2 warm-up epochs; round 1 samples ceil(3/2) = 2 ops: 2 repetitions x 2 paths; round 2 samples
    # ceil(2/2) = 1 op: 2 repetitions x 1 path; 1 fine-tune epoch between the rounds
    assert phases.count("warmup") == 2 and phases.count("finetune") == 1 and phases.count("sample") == 6
    best = tuner.get_best_hyperparameters()[0].values
    assert [best[f"normal_e{e}"] for e in range(SPACE.num_edges)] == [op for op, _ in genotype.normal]


# each supernet oracle's tiny seeded search as one command: deterministic mode first (bnas_tf.determinism), then
# the searches
SEEDED_SEARCHES = """
import hashlib, json, sys
from bnas_tf import enable_determinism
enable_determinism(seed=0)
from bnas_tf import data
from bnas_tf.space.supernet import CellSpace
from bnas_tf.tuners import ChildParent, Differentiable, OperationPruning
space = CellSpace(op_set=["conv_3x3", "max_pool_3x3", "identity"], cells=2, channels=8, nodes=2, reduction_cells=[1])
zero_space = CellSpace(op_set=["zero", "conv_3x3", "max_pool_3x3"], cells=2, channels=8, nodes=2, reduction_cells=[1],
                       inter_cell_skip=True)
folder = dict(directory=sys.argv[1])
tuners = {
    "pruning": OperationPruning(space, project_name="p1", repetitions=2, warmup_epochs=2, warmup_weights_only=1,
                                finetune_epochs=1, seed=3, ucb=True, **folder),
    "child_parent": ChildParent(space, project_name="p4", repetitions=1, beta=2.0, seed=5, **folder),
    "differentiable": Differentiable(zero_space, project_name="p2", epochs=2, seed=1, **folder),
}
bundle = data.load("digits", batch_size=32, search_split=True, max_examples=600)
out = {}
for name, tuner in tuners.items():
    tuner.search(bundle.search_weights, bundle.search_validation, architecture_data=bundle.search_architecture,
                 steps_per_epoch=4, verbose=0)
    weights = [w for trainer in tuner._trainers() for w in trainer.supernet.all_weights()]
    out[name] = dict(genotype=tuner.best_genotype().to_dict(), trials=len(tuner.oracle.trials),
                     scores=[trial.score for _, trial in sorted(tuner.oracle.trials.items())],
                     weights=hashlib.sha256(b"".join(w.numpy().tobytes() for w in weights)).hexdigest())
print(json.dumps(out))
"""


def test_seeded_searches_give_the_same_genotype(tmp_path):
    # each supernet oracle's search as the same command twice, at the same time (one thread each): the same
    # scores, genotype and supernet weights to the bit (Evolution's seeded genes: test_evolution's
    # test_same_seed_same_search_other_seed_other_genes; its candidates are plain Keras fits)
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", SEEDED_SEARCHES, str(tmp_path / name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
        for name in ("a", "b")
    ]
    outputs = []
    for run in runs:
        out, err = run.communicate(timeout=900)
        assert run.returncode == 0, err[-3000:]
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    a, b = outputs
    # pruning (UCB, 3 ops): 2 x ceil(3 / 2) paths, a fine-tune epoch, 2 x ceil(2 / 2) paths
    assert {name: run["trials"] for name, run in a.items()} == {"pruning": 7, "child_parent": 5, "differentiable": 2}
    for name in a:
        assert a[name]["scores"] == b[name]["scores"], name
        assert a[name]["genotype"] == b[name]["genotype"] and a[name]["weights"] == b[name]["weights"], name


def test_enable_determinism_after_tensorflow_started_names_the_fix():
    from bnas_tf.determinism import enable_determinism

    tf.constant(1.0) + 1.0  # the runtime is up: thread counts are fixed
    with pytest.raises(RuntimeError, match="Call it first thing in the script"):
        enable_determinism(threads=tf.config.threading.get_intra_op_parallelism_threads() + 7)
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        enable_determinism(threads=0)


def test_seed_zero_is_a_seed():
    # KerasTuner's Oracle takes `seed or random.randint(...)`: seed 0 used to search with a random seed
    from bnas_tf.tuners.differentiable import DifferentiableOracle
    from bnas_tf.tuners.evolution import EvolutionOracle
    from bnas_tf.tuners.pruning import OperationPruningOracle

    for make in (
        lambda seed: OperationPruningOracle(SPACE, ucb=True, seed=seed),
        lambda seed: DifferentiableOracle(SPACE, seed=seed),
        lambda seed: EvolutionOracle("vgg_small", seed=seed),
    ):
        assert make(0).seed == 0 and make(0).get_state()["seed"] == 0
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            make(-1)


def test_ucb_variant_samples_half_the_ops_each_repetition_and_counts_them(tmp_path, bundle):
    tuner = _search(_pruning(tmp_path, "ucb", ucb=True), bundle)
    _assert_one_op_per_edge(tuner)
    oracle = tuner.oracle
    assert oracle.warmup_epochs == 0
    # round 1: ceil(3 / 2) = 2 paths x 2 repetitions; round 2: ceil(2 / 2) = 1 path x 2 repetitions
    counts = np.array(oracle.times_selected["normal"][0])
    assert counts.sum() == 2 * 2 + 1 * 2
    assert len(oracle.log[0]["edges"]["normal_e0"]["candidates"]) == 3


def test_child_parent_trains_a_parent_and_scores_with_beta(tmp_path, bundle):
    tuner = _search(
        ChildParent(SPACE, repetitions=2, beta=2.0, seed=5, directory=str(tmp_path), project_name="cp"), bundle
    )
    _assert_one_op_per_edge(tuner)
    assert tuner.parent.supernet.binarization.tag == "W32/A32" and tuner.child.supernet.binarization.tag == "W1/A32"
    trial = next(t for t in tuner.oracle.trials.values() if t.status == "COMPLETED")
    child, parent = (trial.metrics.get_last_value(m) for m in ("child_accuracy", "parent_accuracy"))
    assert trial.score == pytest.approx(child + 2.0 * (parent - child))
    assert os.path.exists(os.path.join(tuner.project_dir, "parent", "latest.json"))


def test_stopped_search_resumes_from_saved_state_and_weights(tmp_path, bundle):
    first = _pruning(tmp_path, "resume", ucb=True)
    first.oracle.max_trials = 3  # stop after round 1's first repetition (ceil(3 / 2) = 2 paths) and one path more
    _search(first, bundle)
    finished = {tid: t.status for tid, t in first.oracle.trials.items()}
    assert len(finished) == 3 and first.oracle.phase == "sample"
    saved = [w.numpy() for w in first.child.supernet.all_weights()[:5]]

    assert os.path.exists(first._get_tuner_fname())  # written at search begin, so a rerun always reloads
    orphan = os.path.join(str(tmp_path), "orphan")  # the weights without the search state they belong to
    shutil.copytree(os.path.join(first.project_dir, "supernet"), os.path.join(orphan, "supernet"))
    with pytest.raises(ValueError, match=r"holds the results of trial \d+, which the search state .* does not know"):
        _search(_pruning(tmp_path, "orphan", ucb=True), bundle)

    resumed = _pruning(tmp_path, "resume", ucb=True)  # overwrite=False: reloads oracle and supernet
    resumed._build(bundle.search_weights, bundle.search_validation)
    for before, after in zip(saved, resumed.child.supernet.all_weights()[:5]):
        np.testing.assert_array_equal(before, after)
    _search(resumed, bundle)
    _assert_one_op_per_edge(resumed)
    trials = resumed.oracle.trials
    samples = [t for t in trials.values() if t.hyperparameters.values["phase"] == "sample"]
    assert len(samples) == 2 * 2 + 2 * 1  # nothing re-run or lost
    assert len(trials) == len(samples) + 1  # and one fine-tune epoch between the two rounds
    for tid, status in finished.items():
        if status == "COMPLETED":
            assert trials[tid].status == "COMPLETED"


def test_bad_search_inputs(tmp_path, bundle):
    tuner = _pruning(tmp_path, "bad")
    with pytest.raises(ValueError, match="validation_data is required"):
        tuner.search(bundle.search_weights)
    with pytest.raises(TypeError, match="tf.data.Dataset"):
        tuner.search(np.zeros((4, 16, 16, 1)), bundle.search_validation)
    with pytest.raises(ValueError, match="at least 2 ops per edge"):
        OperationPruning(CellSpace(op_set=["conv_3x3"], cells=2, channels=8, nodes=2), directory=str(tmp_path))
    with pytest.raises(ValueError, match="repetitions must be a positive integer"):
        OperationPruning(SPACE, repetitions=0, directory=str(tmp_path))


P2_SPACE = CellSpace(
    op_set=["zero", "conv_3x3", "max_pool_3x3"], cells=2, channels=8, nodes=2, reduction_cells=[1], inter_cell_skip=True
)


def test_differentiable_search_discretises_with_zeroise_and_diversity(tmp_path, bundle):
    from bnas_tf.tuners import Differentiable

    tuner = _search(
        Differentiable(P2_SPACE, epochs=3, gamma=3.0, seed=1, directory=str(tmp_path), project_name="p2"), bundle
    )
    genotype = tuner.best_genotype()
    assert len(genotype.normal) == 2 * P2_SPACE.nodes  # two inputs per node (DARTS discretisation)
    epochs = [t.hyperparameters.values for t in tuner.oracle.trials.values()]
    assert [v["epoch"] for v in epochs] == [0, 1, 2]
    # diversity weight lambda * exp(-t / tau) with lambda = 1, tau = 7.7
    assert epochs[1]["diversity_weight"] == pytest.approx(np.exp(-1 / 7.7))
    alpha = np.array(tuner.oracle.alpha["normal"])
    assert np.abs(alpha).sum() > 0  # alpha was trained and reported


def test_zeroise_rule_in_discretisation():
    from bnas_tf.tuners import discretise

    space = CellSpace(op_set=["zero", "conv_3x3", "max_pool_3x3"], cells=2, channels=8, nodes=1)
    # one node, edges from inputs 0 and 1; softmax weights of edge 0 ~ [0.5, 0.3, 0.2], edge 1 ~ [0.2, 0.5, 0.3]
    logits = {
        kind: [np.log([0.5, 0.3, 0.2]).tolist(), np.log([0.2, 0.5, 0.3]).tolist()] for kind in ("normal", "reduce")
    }
    assert discretise(space, logits, gamma=1.0).normal == (("zero", 0), ("conv_3x3", 1))  # 0.5 beats 0.3
    assert discretise(space, logits, gamma=3.0).normal == (("conv_3x3", 0), ("conv_3x3", 1))  # 0.5/3 < 0.3


def test_oracle_idles_while_a_round_waits_and_never_prunes_half_a_round(tmp_path):
    from bnas_tf.tuners import OperationPruningOracle

    oracle = OperationPruningOracle(SPACE, repetitions=2, ucb=True, seed=0)
    oracle._set_project_dir(str(tmp_path), "idle")
    a = [oracle.create_trial(f"a/slot{i}") for i in range(2)]  # worker a: repetition 1, ceil(3 / 2) = 2 paths
    b = [oracle.create_trial(f"b/slot{i}") for i in range(2)]  # worker b: repetition 2
    assert {t.hyperparameters.values["group"] for t in a} == {"r0t0"}
    assert {t.hyperparameters.values["group"] for t in b} == {"r0t1"}
    assert oracle.create_trial("c/slot0").status == "IDLE"  # the round is handed out and still running
    for trial in a + b[:1]:
        oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert oracle.round == 0 and all(len(r) == 3 for r in oracle.remaining["normal"])  # not pruned yet
    oracle.update_trial(b[1].trial_id, {"val_accuracy": 0.9})
    b[1].status = "COMPLETED"
    oracle.end_trial(b[1])
    assert oracle.round == 1 and all(len(r) == 2 for r in oracle.remaining["normal"])


def test_deterministic_flag_sets_one_thread_before_the_command_runs():
    code = (
        "from bnas_tf.pipeline import cli, run_folder\n"
        "run_folder.recipe_from_args(cli.build_parser().parse_args(['search', '--deterministic']))\n"
        "import tensorflow as tf\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads(), "
        "tf.config.threading.get_inter_op_parallelism_threads(), tf.constant(2.0).numpy())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert out.stdout.split() == ["1", "1", "2.0"]
