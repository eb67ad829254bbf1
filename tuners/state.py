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


class AtomicOracleState:
    """Mixin for ``keras_tuner.Oracle`` subclasses: atomic state files, a checked reload, the exact seed."""

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
        for path in (*sorted(glob.glob(os.path.join(project_dir, "trial_*", "trial.json"))), oracle_file):
            read_json(path, what="search state file", recovery=recovery(project_dir))
        super().reload()
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


class AtomicTunerState:
    """Mixin for ``keras_tuner`` tuners: the tuner's own ``<tuner_id>.json`` written atomically, checked on reload."""

    def save(self):
        if not internals.is_worker():
            self.oracle.save()
        atomic_write_json(internals.tuner_file(self), self.get_state())

    def on_search_begin(self):
        """Write the search state before the first trial. KerasTuner reloads a project only when the tuner's
        file exists, and writes that file only when a trial ends: a crash before the first trial ended (a
        supernet group committed with its results, none reported yet) made the rerun start a fresh oracle
        beside the committed weights, and a finished trial could be run again."""
        super().on_search_begin()
        self.save()

    def reload(self):
        read_json(internals.tuner_file(self), what="search state file", recovery=recovery(self.project_dir))
        super().reload()
