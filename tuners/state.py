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
from datetime import datetime

from keras_tuner.engine import trial as trial_module
from keras_tuner.src.engine.oracle import synchronized

from bnas_tf.files import atomic_write_json, read_json

_TERMINAL = (trial_module.TrialStatus.COMPLETED, trial_module.TrialStatus.FAILED)


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
            self.seed = self._seed_state = seed

    def save(self):
        if getattr(self, "_saves_deferred", False):
            return
        atomic_write_json(self._get_oracle_fname(), self.get_state())

    @synchronized
    def end_trial(self, trial):
        """KerasTuner's end_trial without its oracle.json write in the middle: that write records the trial as
        ended before the subclass's own state knows it, and a crash right then would count it twice. The
        subclass saves once its state is updated. A trial found in the retry queue (after a crash, its results
        committed with the supernet weights) leaves it when it ends."""
        if trial.status in _TERMINAL and trial.trial_id in self._retry_queue:
            self._retry_queue.remove(trial.trial_id)
        display = self._display
        if trial.trial_id not in display.trial_start:  # begun in a process that crashed before saving its start
            display.search_start = display.search_start or datetime.now()
            display.trial_start[trial.trial_id] = datetime.now()
            display.trial_number[trial.trial_id] = (
                self.start_order.index(trial.trial_id) + 1 if trial.trial_id in self.start_order else len(self.trials)
            )
        self._saves_deferred = True
        try:
            super().end_trial(trial)
        finally:
            self._saves_deferred = False

    def _save_trial(self, trial):
        atomic_write_json(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"), trial.get_state())

    def reload(self):
        """KerasTuner's reload, with corrupt files named, then reconciled with oracle.json.

        oracle.json is written after a trial's own file, so after a crash a
        trial file can be one step ahead: a trial oracle.json never started is
        dropped (its id is handed out again), and one it never ended runs
        again (KerasTuner puts it in the retry queue) instead of counting as
        finished.
        """
        if not os.path.exists(self._get_oracle_fname()):
            raise ValueError(
                f"search state file {self._get_oracle_fname()} is missing from a saved search; "
                f"{recovery(self._project_dir)}"
            )
        for path in (
            *sorted(glob.glob(os.path.join(self._project_dir, "trial_*", "trial.json"))),
            self._get_oracle_fname(),
        ):
            read_json(path, what="search state file", recovery=recovery(self._project_dir))
        super().reload()
        started, ended = set(self.start_order), set(self.end_order)
        for trial_id in [t for t in self.trials if t not in started]:
            del self.trials[trial_id]
        for trial_id in started - ended:
            trial = self.trials.get(trial_id)
            if trial is None:
                raise ValueError(
                    f"search state file {self._get_oracle_fname()} lists trial {trial_id}, whose "
                    f"trial.json is missing; {recovery(self._project_dir)}"
                )
            if trial.status in _TERMINAL:
                trial.status = trial_module.TrialStatus.RUNNING


class AtomicTunerState:
    """Mixin for ``keras_tuner`` tuners: the tuner's own ``<tuner_id>.json`` written atomically, checked on reload."""

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        atomic_write_json(self._get_tuner_fname(), self.get_state())

    def on_search_begin(self):
        """Write the search state before the first trial. KerasTuner reloads a project only when the tuner's
        file exists, and writes that file only when a trial ends: a crash before the first trial ended (a
        supernet group committed with its results, none reported yet) made the rerun start a fresh oracle
        beside the committed weights, and a finished trial could be run again."""
        super().on_search_begin()
        self.save()

    def reload(self):
        read_json(self._get_tuner_fname(), what="search state file", recovery=recovery(self.project_dir))
        super().reload()
