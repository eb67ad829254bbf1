"""Crash-safe KerasTuner state: atomic writes of oracle.json, trial.json and the tuner file, clear errors on reload.

KerasTuner writes its JSON state in place (``open(path, "w")``): a process
killed mid-write leaves a truncated file, and the next run fails inside
``json.loads``. Our oracles and tuners mix these classes in first, so every
state file is written to a temporary file and renamed (:mod:`bnas_tf.files`),
and a corrupt file found on reload raises a ``ValueError`` naming the file
and the ways out.
"""

from __future__ import annotations

import glob
import os

from bnas_tf.files import atomic_write_json, read_json
from bnas_tf.tuners import keras_tuner_internals as internals
from bnas_tf.tuners.keras_tuner_internals import TrialStatus, synchronized

_TERMINAL = (TrialStatus.COMPLETED, TrialStatus.FAILED)


def recovery(project_dir: str) -> str:
    return (
        f"restore it from a backup, or start the search again with overwrite=True (or delete {project_dir}); "
        "the supernet checkpoints alone cannot resume a search"
    )


#: The key of oracle.json that says the oracle has answered "stop" (every trial handed out and ended).
SEARCH_OVER = "search_over"


def search_is_over(oracle_file: str) -> bool:
    """Whether the saved search state says the search has ended (False when there is none yet)."""
    try:
        return bool(read_json(oracle_file).get(SEARCH_OVER, False)) if os.path.exists(oracle_file) else False
    except (ValueError, AttributeError):  # being replaced, or not a search state: let the chief decide
        return False


class AtomicOracleState:
    """Mixin for ``keras_tuner.Oracle`` subclasses: atomic state files, a checked reload, the exact seed, and
    oracle.json saying when the search is over (so a worker arriving after its chief finished can tell)."""

    _search_over = False

    @staticmethod
    def _check_seed(seed):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")

    def _keep_seed(self, seed):
        """Call after ``keras_tuner.Oracle.__init__``: it takes ``seed or random.randint(1, 10000)``, so seed 0
        searched with a random seed (two seeded searches of seed 0 sampled different paths); put it back."""
        if seed is not None:
            internals.keep_seed(self, seed)

    def save(self):
        if getattr(self, "_saves_deferred", False):
            return
        atomic_write_json(internals.oracle_file(self), self.get_state())

    def get_state(self):
        return {**super().get_state(), SEARCH_OVER: self._search_over}

    def set_state(self, state):
        super().set_state(state)
        self._search_over = bool(state.get(SEARCH_OVER, False))

    @synchronized
    def create_trial(self, tuner_id):
        trial = super().create_trial(tuner_id)
        over = trial.status == TrialStatus.STOPPED
        if over != self._search_over:
            self._search_over = over
            self.save()
        return trial

    @synchronized
    def end_trial(self, trial):
        """KerasTuner's end_trial without its oracle.json write in the middle: that write records the trial as
        ended before the subclass's own state knows it, and a crash right then would count it twice. The
        subclass saves once its state is updated. A trial found in the retry queue (after a crash, its results
        committed with the supernet weights) leaves it when it ends."""
        if trial.status in _TERMINAL and trial.trial_id in internals.retry_queue(self):
            internals.retry_queue(self).remove(trial.trial_id)
        internals.record_trial_start(self, trial.trial_id)
        self._saves_deferred = True
        try:
            super().end_trial(trial)
        finally:
            self._saves_deferred = False

    def _save_trial(self, trial):
        atomic_write_json(os.path.join(internals.trial_dir(self, trial.trial_id), "trial.json"), trial.get_state())

    def reload(self):
        """KerasTuner's reload, with corrupt files named, then reconciled with oracle.json.

        oracle.json is written after a trial's own file, so after a crash a
        trial file can be one step ahead: a trial oracle.json never started is
        dropped (its id is handed out again), and one it never ended runs
        again (KerasTuner puts it in the retry queue) instead of counting as
        finished.
        """
        oracle_file, project_dir = internals.oracle_file(self), internals.project_dir(self)
        if not os.path.exists(oracle_file):
            raise ValueError(f"search state file {oracle_file} is missing from a saved search; {recovery(project_dir)}")
        trial_files = sorted(glob.glob(os.path.join(project_dir, "trial_*", "trial.json")))
        for path in (*trial_files, oracle_file):
            read_json(path, what="search state file", recovery=recovery(project_dir))
        for path in trial_files:
            _load_saved(path, project_dir, internals.Trial.load, path)
        _load_saved(oracle_file, project_dir, super().reload)
        started, ended = set(internals.started_trial_ids(self)), set(internals.ended_trial_ids(self))
        for trial_id in [t for t in self.trials if t not in started]:
            del self.trials[trial_id]
        for trial_id in started - ended:
            trial = self.trials.get(trial_id)
            if trial is None:
                raise ValueError(
                    f"search state file {oracle_file} lists trial {trial_id}, whose "
                    f"trial.json is missing; {recovery(project_dir)}"
                )
            if trial.status in _TERMINAL:
                trial.status = TrialStatus.RUNNING


def _load_saved(path: str, project_dir: str, load, *args):
    """``load(*args)``, with valid JSON of the wrong shape (a hand edit, another program's file) reported as a
    corrupt ``path`` instead of a KeyError deep in KerasTuner (which re-raises it as a RuntimeError)."""
    try:
        return load(*args)
    except (KeyError, TypeError, AttributeError, IndexError, RuntimeError) as error:
        cause = error.__cause__ if isinstance(error, RuntimeError) else error
        if not isinstance(cause, (KeyError, TypeError, AttributeError, IndexError)):
            raise
        detail = f"no {cause.args[0]!r} entry" if isinstance(cause, KeyError) and cause.args else str(cause)
        detail = (detail.splitlines() or [type(cause).__name__])[0]
        raise ValueError(
            f"search state file {path} is corrupt (valid JSON, but not a saved search state: {detail}); "
            f"{recovery(project_dir)}"
        ) from None


class AtomicTunerState:
    """Mixin for ``keras_tuner`` tuners: the tuner's own ``<tuner_id>.json`` written atomically, checked on reload."""

    def save(self):
        if not internals.is_worker():
            self.oracle.save()
        atomic_write_json(internals.tuner_file(self), self.get_state())

    def on_search_begin(self):
        """Check the chief/worker setting, then write the search state before the first trial.

        A partial KERASTUNER_* setting is refused (KerasTuner would run it as a single process). A worker
        waits for its chief at most ``BNAS_TF_CHIEF_TIMEOUT`` seconds (then a ConnectionError), and one that
        finds its chief gone after the search ended stops at once (:func:`internals.connect_to_chief`).

        KerasTuner reloads a project only when the tuner's file exists, and writes that file only when a
        trial ends: a crash before the first trial ended (a supernet group committed with its results, none
        reported yet) made the rerun start a fresh oracle beside the committed weights, and a finished trial
        could be run again."""
        internals.check_distributed_environment()
        if internals.is_worker():
            internals.connect_to_chief(self, search_is_over)
        super().on_search_begin()
        self.save()

    def reload(self):
        tuner_file = internals.tuner_file(self)
        read_json(tuner_file, what="search state file", recovery=recovery(self.project_dir))
        _load_saved(tuner_file, self.project_dir, super().reload)
