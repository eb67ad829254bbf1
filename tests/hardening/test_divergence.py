"""Non-finite is an error, never a result: a round with no valid measurement is not turned into a genotype.

At the oracle level a planted measurement diverges (NaN loss) for a chosen round: the search stops with one
line naming the cause and the fix, nothing is pruned, discretised or bred from it, the state on disk stays
valid and searching again goes on. End to end, ``bnas-tf search`` with a learning rate of 1e30 exits 2 and a
rerun of the same folder with a sane rate finishes. Training stops on a NaN loss, and ``verify`` refuses
NaN outputs (Keras or .tflite) and a label space the model does not have.
"""

import contextlib
import io
import json
import os
from types import SimpleNamespace

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from bnas_tf.convert import verification
from bnas_tf.pipeline import cli
from bnas_tf.pipeline.train import StopOnNonFinite
from bnas_tf.space.supernet import CellSpace
from bnas_tf.tuners import ChildParentOracle, DifferentiableOracle, OperationPruningOracle
from bnas_tf.tuners.evolution import Evolution
from bnas_tf.tuners.failures import SearchStopped

SPACE = CellSpace(op_set=("conv_3x3", "max_pool_3x3", "identity"), cells=2, channels=8, nodes=1, reduction_cells=[1])
DIVERGED = "training loss became nan (NaN/inf): the sampled paths diverged"


def _one_line(message):
    assert "\n" not in message.strip(), f"not one line:\n{message}"
    return message


def _end(oracle, trial, metrics=None):
    """End ``trial`` COMPLETED with ``metrics``, or (None) FAILED as a diverged path."""
    if metrics is None:
        trial.status, trial.message = "FAILED", DIVERGED
    else:
        oracle.update_trial(trial.trial_id, metrics)
        trial.status = "COMPLETED"
    oracle.end_trial(trial)


def _run_round(oracle, measure):
    """Hand out one round's paths and end them with ``measure(values)`` (None: diverged); ended trials."""
    pending, ended, start = [], [], oracle.round
    while oracle.round == start and oracle.phase != "done":
        trial = oracle.create_trial(f"t/slot{len(pending)}")
        if trial.status == "RUNNING":
            pending.append(trial)
            continue
        assert pending, "the oracle idles with nothing running"
        for running in pending:
            ended.append(running)
            _end(oracle, running, measure(running.hyperparameters.values))
        pending = []
    return ended


def _pruning(tmp_path, name="p1"):
    oracle = OperationPruningOracle(SPACE, repetitions=2, ucb=True, finetune_epochs=0, seed=0)
    oracle._set_project_dir(str(tmp_path), name)
    oracle.verbose = 0
    return oracle


def _child_parent(tmp_path, name="p4"):
    oracle = ChildParentOracle(SPACE, repetitions=2, seed=0, max_consecutive_failed_trials=10)
    oracle._set_project_dir(str(tmp_path), name)
    oracle.verbose = 0
    return oracle


def _accuracy(values):
    return {"val_accuracy": {"conv_3x3": 0.8, "max_pool_3x3": 0.6, "identity": 0.7}[values["normal_e0"]]}


def _score(values):
    return dict(_accuracy(values), score=_accuracy(values)["val_accuracy"])


@pytest.mark.parametrize("make, measure", [(_pruning, _accuracy), (_child_parent, _score)], ids=["P1", "P4"])
def test_a_round_whose_every_path_diverged_is_not_pruned_and_stops_the_search(tmp_path, make, measure):
    oracle = make(tmp_path)
    _run_round(oracle, measure)  # round 0 is measured and prunes one op per edge
    remaining = json.loads(json.dumps(oracle.remaining))
    with pytest.raises(SearchStopped) as stopped:
        _run_round(oracle, lambda values: None)
    message = _one_line(str(stopped.value))
    assert message.startswith("every sampled path of round 1 failed")
    assert "the loss is not finite" in message and "lower the learning rate" in message
    assert stopped.value.kind == "diverged" and isinstance(stopped.value, ValueError)
    # nothing was scored or pruned on the failed round, and its trials stay FAILED
    assert oracle.round == 1 and len(oracle.log) == 1 and oracle.remaining == remaining and oracle.phase != "done"
    failed = [t for t in oracle.trials.values() if t.status == "FAILED"]
    assert failed and all(t.hyperparameters.values["round"] == 1 for t in failed)

    # the saved state is whole: a new oracle reloads it and goes on, sampling round 1 anew
    resumed = make(tmp_path)
    resumed.reload()
    assert resumed.round == 1 and resumed.remaining == remaining
    new = _run_round(resumed, measure)
    assert resumed.round == 2 and len(resumed.log) == 2
    assert {t.trial_id for t in new}.isdisjoint(t.trial_id for t in failed)
    assert all(t.status == "FAILED" for t in (resumed.trials[f.trial_id] for f in failed))
    assert len(resumed.trials) == len(oracle.trials) + len(new)


def test_a_round_with_one_valid_path_is_scored_from_it_alone(tmp_path):
    oracle = _child_parent(tmp_path)
    issued = []

    def first_path_only(values):
        issued.append(values)
        return _score(values) if len(issued) == 1 else None

    _run_round(oracle, first_path_only)
    assert oracle.round == 1
    means = oracle.log[0]["edges"]["normal_e0"]["mean"]
    assert means == {issued[0]["normal_e0"]: _accuracy(issued[0])["val_accuracy"]}


def test_consecutive_failures_stop_with_one_line_and_the_state_saved(tmp_path):
    oracle = OperationPruningOracle(SPACE, repetitions=3, ucb=True, seed=0, max_consecutive_failed_trials=2)
    oracle._set_project_dir(str(tmp_path), "p1")
    oracle.verbose = 0
    trial = oracle.create_trial("t/slot0")  # round 0, repetition 0 (a group of 2 paths)
    second = oracle.create_trial("t/slot1")
    _end(oracle, trial)
    _end(oracle, second)
    third = oracle.create_trial("t/slot0")
    fourth = oracle.create_trial("t/slot1")
    _end(oracle, third)
    with pytest.raises(SearchStopped, match="2 consecutive groups of sampled paths failed") as stopped:
        _end(oracle, fourth)
    assert "the loss is not finite" in _one_line(str(stopped.value))
    resumed = OperationPruningOracle(SPACE, repetitions=3, ucb=True, seed=0, max_consecutive_failed_trials=2)
    resumed._set_project_dir(str(tmp_path), "p1")
    resumed.reload()  # the last trial's end reached oracle.json before the stop
    assert all(resumed.trials[t.trial_id].status == "FAILED" for t in (trial, second, third, fourth))
    assert len(resumed.end_order) == 4


def _differentiable(tmp_path, epochs=2):
    oracle = DifferentiableOracle(SPACE, epochs=epochs, seed=0)
    oracle._set_project_dir(str(tmp_path), "p2")
    oracle.verbose = 0
    return oracle


def _alpha_metrics():
    return {
        "val_accuracy": 0.5,
        **{f"alpha_{k}_{e}_{op}": float(op) for k in ("normal", "reduce") for e in range(2) for op in range(3)},
    }


def test_a_diverged_differentiable_epoch_is_not_discretised_and_runs_again(tmp_path):
    oracle = _differentiable(tmp_path)
    _end(oracle, oracle.create_trial("t"), _alpha_metrics())
    epoch_1 = oracle.create_trial("t")
    epoch_1.message = "mixed-mode loss became NaN/inf"
    epoch_1.status = "FAILED"
    with pytest.raises(SearchStopped, match="search epoch 1 failed: the loss is not finite"):
        oracle.end_trial(epoch_1)
    assert oracle.epoch == 1 and len(oracle.log) == 1
    resumed = _differentiable(tmp_path)
    resumed.reload()
    again = resumed.create_trial("t")
    assert again.status == "RUNNING" and again.hyperparameters.values["epoch"] == 1


def test_no_finished_differentiable_epoch_gives_no_genotype(tmp_path):
    oracle = _differentiable(tmp_path, epochs=1)
    trial = oracle.create_trial("t")
    trial.status, trial.message = "FAILED", "mixed-mode loss became NaN/inf"
    with pytest.raises(SearchStopped):
        oracle.end_trial(trial)
    with pytest.raises(ValueError, match="no search epoch has finished"):
        oracle.genotype()


class PlantedEvolution(Evolution):
    """No training: every candidate diverges while ``diverge`` is set, else its accuracy is its first ratio."""

    diverge = True

    def evaluate_candidate(self, genotype, *fit_args, **fit_kwargs):
        if self.diverge:
            raise keras_tuner.errors.FailedTrialError(f"candidate {list(genotype.ratios)}: the loss became non-finite")
        return {"val_accuracy": genotype.ratios[0] / 4.0, "flops": float(sum(genotype.ratios))}

    def measure_flops(self, genotype):
        return float(sum(genotype.ratios))


def _evolution(tmp_path, overwrite):
    settings = dict(population_size=3, generations=2, seed=0, num_classes=10, input_shape=(16, 16, 1))
    settings.update(max_consecutive_failed_trials=10)  # the generation, not the limit, stops the search
    return PlantedEvolution(directory=str(tmp_path), project_name="p3", overwrite=overwrite, **settings)


def test_a_generation_whose_every_gene_diverged_breeds_nothing_and_the_search_goes_on(tmp_path):
    PlantedEvolution.diverge = True
    tuner = _evolution(tmp_path, overwrite=True)
    try:
        with pytest.raises(SearchStopped) as stopped:
            tuner.search(verbose=0)
    finally:
        PlantedEvolution.diverge = False
    message = _one_line(str(stopped.value))
    assert message.startswith("every individual of generation 0 failed (3 genes): the loss is not finite")
    assert "lower the learning rate" in message
    assert len(tuner.oracle.populations) == 1 and [t.status for t in tuner.oracle.trials.values()] == ["FAILED"] * 3

    resumed = _evolution(tmp_path, overwrite=False)
    resumed.search(verbose=0)
    trials = resumed.oracle.trials.values()
    assert sum(t.status == "COMPLETED" for t in trials) == 6 and sum(t.status == "FAILED" for t in trials) == 3
    genes = [g for population in resumed.oracle.populations for g in population["genes"]]
    assert genes[:3] == tuner.oracle.populations[0]["genes"]  # generation 0 was handed out again
    completed = [t.hyperparameters.values for t in trials if t.status == "COMPLETED"]
    assert list(resumed.best_genotype().ratios) in [[v[f"width_ratio_{i}"] for i in range(6)] for v in completed]


# --- the command line: a diverging search stops, a rerun of the same folder goes on -------------------------
TOY_SEARCH = [
    "max_examples=300",
    "search_steps_per_epoch=2",
    "search_cells=2",
    "search_channels=4",
    "op_set=conv_3x3,identity",
    "repetitions=1",
]


def _main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    return status, out.getvalue(), err.getvalue()


def _search(run_dir, *settings):
    sets = [arg for setting in TOY_SEARCH + list(settings) for arg in ("--set", setting)]
    return _main(["search", "--recipe", "bnas_1bit_ucb", *sets, "--output", run_dir, "--quiet"])


def test_diverging_cli_search_exits_2_and_a_rerun_with_a_lower_rate_goes_on(tmp_path):
    run_dir = str(tmp_path / "run")
    status, out, err = _search(run_dir, "search_learning_rate=1e30")
    assert status == 2, err
    assert _one_line(err).startswith("bnas-tf search: error: every sampled path of round 0 failed (1 path)")
    assert "the loss is not finite" in err and "lower search_learning_rate (now 1e+30)" in err
    assert f"a rerun with --output {run_dir} goes on" in err
    assert not os.path.exists(os.path.join(run_dir, "genotype.json"))
    assert not os.path.exists(os.path.join(run_dir, "search_log.json"))

    status, out, err = _search(run_dir)
    assert status == 0, err
    log = json.load(open(os.path.join(run_dir, "search_log.json")))
    assert [t["status"] for t in log["trials"]] == ["FAILED", "COMPLETED"]
    assert os.path.isfile(os.path.join(run_dir, "genotype.json"))
    assert all(np.isfinite(list(r["edges"]["normal_e0"]["mean"].values())).all() for r in log["rounds"])


# --- retraining and verification -------------------------------------------------------------------------------
def test_training_stops_on_a_non_finite_loss_naming_the_setting():
    inputs = tf.keras.Input((4,))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs))
    model.compile("sgd", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.ones((8, 4), "float32")
    x[4:] = np.nan  # the second batch's loss is NaN
    with pytest.raises(ValueError) as error:
        model.fit(
            x,
            np.zeros(8),
            batch_size=4,
            shuffle=False,
            epochs=1,
            verbose=0,
            callbacks=[StopOnNonFinite(SimpleNamespace(train_learning_rate=0.5))],
        )
    message = _one_line(str(error.value))
    assert "the loss at epoch 1, batch 2 became nan" in message and "lower train_learning_rate (now 0.5)" in message


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from bnas_tf.convert import to_tflite

    inputs = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.GlobalAveragePooling2D()(tf.keras.layers.Conv2D(4, 3, padding="same")(inputs))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(3)(x))
    path = str(tmp_path_factory.mktemp("verify") / "m.tflite")
    to_tflite(model, path)
    return model, path


def _images(count=6):
    return np.random.default_rng(0).uniform(-1, 1, (count, 8, 8, 1)).astype("float32")


def test_verify_refuses_non_finite_tflite_outputs(converted, monkeypatch):
    model, path = converted
    monkeypatch.setattr(verification, "tflite_outputs", lambda *args, **kwargs: np.full((6, 3), np.nan, "float32"))
    with pytest.raises(ValueError, match=r"18 of 18 \.tflite outputs are not finite") as error:
        verification.verify(model, path, (_images(), np.zeros(6, "int64")))
    assert "do not deploy" in _one_line(str(error.value))


def test_verify_refuses_a_label_space_the_model_does_not_have(converted):
    model, path = converted
    with pytest.raises(ValueError, match="the data has 10 classes but the model has 3 outputs"):
        verification.verify(model, path, (_images(), np.zeros(6, "int64")), num_classes=10)
    with pytest.raises(ValueError, match=r"the data has label 5 but the model has 3 outputs \(classes 0..2\)"):
        verification.verify(model, path, (_images(), np.array([0, 1, 2, 5, 0, 1])))
    report = verification.verify(model, path, (_images(), np.array([0, 1, 2, 2, 0, 1])), num_classes=3)
    assert report["top1_agreement"] == 1.0
