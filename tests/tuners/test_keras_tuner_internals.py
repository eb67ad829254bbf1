"""The KerasTuner internals bnas-tf relies on keep the meaning we use (keras-tuner 1.4.8), checked on fresh oracles
without training anything. A failure here after an upgrade names the internal to re-read."""

import os
import threading
import time

import keras_tuner
import pytest
import tensorflow as tf

from bnas_tf.tuners import keras_tuner_internals as internals
from bnas_tf.tuners.keras_tuner_internals import TrialStatus


def _oracle(tmp_path=None, **kwargs):
    space = keras_tuner.HyperParameters()
    space.Choice("op", ["a", "b", "c", "d", "e", "f"])
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("score", "max"), max_trials=20, hyperparameters=space, **kwargs
    )
    oracle._set_project_dir(str(tmp_path or "unused"), "project")
    oracle.verbose = 0
    return oracle


def _end(oracle, trial, status=TrialStatus.COMPLETED, score=0.5):
    if status == TrialStatus.COMPLETED:
        oracle.update_trial(trial.trial_id, {"score": score})
    trial.status = status
    oracle.end_trial(trial)


def test_pinned_version():
    assert keras_tuner.__version__ == internals.PINNED_VERSION == "1.4.8"


def test_started_and_ended_trials_in_order(tmp_path):
    oracle = _oracle(tmp_path)
    assert internals.started_trial_ids(oracle) == internals.ended_trial_ids(oracle) == []
    first, second = oracle.create_trial("tuner0"), oracle.create_trial("tuner1")
    assert internals.started_trial_ids(oracle) == [first.trial_id, second.trial_id]
    _end(oracle, second)
    _end(oracle, first, TrialStatus.FAILED)
    assert internals.ended_trial_ids(oracle) == [second.trial_id, first.trial_id]
    assert internals.run_times(oracle, first.trial_id) == 1


def test_a_retried_trial_waits_in_the_retry_queue_until_it_ends(tmp_path):
    oracle = _oracle(tmp_path, max_retries_per_trial=1)
    trial = oracle.create_trial("tuner0")
    _end(oracle, trial, TrialStatus.INVALID)
    assert internals.retry_queue(oracle) == [trial.trial_id] and internals.ended_trial_ids(oracle) == []
    again = oracle.create_trial("tuner0")
    assert again.trial_id == trial.trial_id and internals.retry_queue(oracle) == []
    _end(oracle, again)
    assert internals.ended_trial_ids(oracle) == [trial.trial_id] and internals.run_times(oracle, trial.trial_id) == 2


def test_the_retry_queue_is_the_oracles_own_list(tmp_path):
    oracle = _oracle(tmp_path, max_retries_per_trial=1)
    trial = oracle.create_trial("tuner0")
    _end(oracle, trial, TrialStatus.INVALID)
    internals.retry_queue(oracle).remove(trial.trial_id)
    assert oracle.create_trial("tuner0").trial_id != trial.trial_id  # a new trial, not the retry


def test_reload_sends_running_trials_to_the_retry_queue(tmp_path):
    oracle = _oracle(tmp_path)
    running = oracle.create_trial("tuner0")
    oracle.save()
    restored = _oracle(tmp_path)
    restored.reload()
    assert internals.retry_queue(restored) == [running.trial_id] and not restored.ongoing_trials


def test_end_trial_calls_the_hooks_our_oracles_override(tmp_path):
    calls = []

    class Recording(keras_tuner.oracles.RandomSearchOracle):
        def _save_trial(self, trial):
            calls.append(("save", trial.trial_id))
            super()._save_trial(trial)

        def _check_consecutive_failures(self):
            calls.append(("check", list(internals.ended_trial_ids(self))))

    space = keras_tuner.HyperParameters()
    space.Choice("op", ["a", "b"])
    oracle = Recording(objective=keras_tuner.Objective("score", "max"), max_trials=5, hyperparameters=space)
    oracle._set_project_dir(str(tmp_path), "project")
    oracle.verbose = 0
    trial = oracle.create_trial("tuner0")
    _end(oracle, trial)
    assert ("check", [trial.trial_id]) in calls  # after the trial joined the end order
    assert calls[-1] == ("save", trial.trial_id)
    assert os.path.exists(os.path.join(internals.trial_dir(oracle, trial.trial_id), "trial.json"))


def test_record_trial_start_fills_only_a_missing_start(tmp_path):
    oracle = _oracle(tmp_path)
    oracle.verbose = 1  # the display records starts only when verbose
    trial = oracle.create_trial("tuner0")
    display = oracle._display
    started = display.trial_start[trial.trial_id]
    internals.record_trial_start(oracle, trial.trial_id)
    assert display.trial_start[trial.trial_id] == started and display.trial_number[trial.trial_id] == 1
    oracle.verbose = 0
    second = oracle.create_trial("tuner1")  # a quiet start: as if begun in a process that crashed
    assert second.trial_id not in display.trial_start
    internals.record_trial_start(oracle, second.trial_id)
    assert display.trial_number[second.trial_id] == 2 and second.trial_id in display.trial_start


def test_keep_seed_sets_the_draws(tmp_path):
    draws = []
    for _ in range(2):
        oracle = _oracle(tmp_path, seed=0)
        internals.keep_seed(oracle, 0)
        draws.append([oracle.create_trial(f"tuner{i}").hyperparameters.values["op"] for i in range(4)])
    assert oracle.seed == 0 and draws[0] == draws[1]


def test_files_of_a_search(tmp_path):
    oracle = _oracle(tmp_path)
    fresh = keras_tuner.oracles.RandomSearchOracle(objective=keras_tuner.Objective("score", "max"), max_trials=1)
    assert internals.oracle_directory(fresh) is None and internals.oracle_directory(oracle) == str(tmp_path)
    project = str(tmp_path / "project")
    assert internals.project_dir(oracle) == project and os.path.isdir(project)
    assert internals.oracle_file(oracle) == os.path.join(project, "oracle.json")
    assert internals.trial_dir(oracle, "07") == os.path.join(project, "trial_07")
    tuner = _tuner(tmp_path)
    assert internals.tuner_file(tuner) == os.path.join(project, "tuner0.json")


def _tuner(tmp_path):
    return keras_tuner.Tuner(
        oracle=_oracle(tmp_path),
        hypermodel=lambda hp: tf.keras.Sequential([tf.keras.layers.Dense(2 if hp.Choice("op", ["a", "b"]) else 1)]),
        directory=str(tmp_path),
        project_name="project",
    )


def test_trial_callbacks_are_copies_logging_in_the_trial_folder(tmp_path):
    tuner = _tuner(tmp_path)
    trial = tuner.oracle.create_trial("tuner0")
    board = tf.keras.callbacks.TensorBoard(log_dir=str(tmp_path / "logs"))
    callbacks = internals.trial_callbacks(tuner, [board], trial)
    assert callbacks[0] is not board and board.log_dir == str(tmp_path / "logs")
    assert callbacks[0].log_dir.startswith(os.path.join(str(tmp_path / "logs"), trial.trial_id))


@pytest.mark.parametrize(
    "environment, chief, worker",
    [
        ({}, False, False),
        ({"KERASTUNER_TUNER_ID": "chief"}, False, False),  # no oracle address: not distributed
        (
            {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "8000", "KERASTUNER_TUNER_ID": "chief"},
            True,
            False,
        ),
        (
            {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "8000", "KERASTUNER_TUNER_ID": "tuner1"},
            False,
            True,
        ),
    ],
)
def test_the_distributed_mode_is_read_from_the_environment(monkeypatch, environment, chief, worker):
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert internals.has_chief_oracle() == ("KERASTUNER_ORACLE_IP" in environment)
    assert internals.is_chief_oracle() == chief and internals.is_worker() == worker
    assert internals.BaseTuner._is_worker(None) == worker  # KerasTuner's own test agrees


def test_synchronized_serialises_calls_on_one_oracle_and_is_reentrant():
    inside, overlaps = [], []

    class Slow(keras_tuner.oracles.RandomSearchOracle):
        @internals.synchronized
        def end_trial(self, trial):
            overlaps.append(len(inside))
            inside.append(1)
            time.sleep(0.02)
            inside.pop()

        @internals.synchronized
        def outer(self):
            self.end_trial(None)  # the same thread takes the lock again without waiting

    oracle = Slow(objective=keras_tuner.Objective("score", "max"), max_trials=1)
    threads = [threading.Thread(target=oracle.end_trial, args=(None,)) for _ in range(4)]
    threads.append(threading.Thread(target=oracle.outer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads) and overlaps == [0] * 5


def test_maybe_distribute_enters_the_strategy():
    with internals.maybe_distribute(None):
        assert not tf.distribute.has_strategy()
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with internals.maybe_distribute(strategy):
        assert tf.distribute.get_strategy() is strategy
