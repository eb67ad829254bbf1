"""The KerasTuner internals bnas-tf relies on, in one place. Pinned to keras-tuner 1.4.8.

Our oracles and tuners follow KerasTuner's public contract (``populate_space``,
``get_state``/``set_state``, ``run_trial``), but crash-safe state, retries,
grouped trials and the chief/worker mode need a few things KerasTuner does
not export. Every such use goes through this module, so an upgrade of
keras-tuner is checked here and in ``tests/tuners/test_keras_tuner_internals.py``:

- ``TrialStatus``, ``BaseTuner``, ``maybe_distribute`` (``keras_tuner.engine``):
  the status values of a trial; the tuner base class without ``Tuner``'s
  one-model-per-trial loop (a weight-sharing search trains one supernet for
  many trials); the context that builds a candidate under the tuner's
  ``distribution_strategy``.
- ``synchronized``: the per-oracle, re-entrant lock of ``create_trial`` /
  ``end_trial``; our overrides take it too, so a worker's request never sees
  half-updated search state.
- :func:`retry_queue`: trials sent to run again (INVALID with retries left,
  or running when the search stopped). A trial in it has not ended: our
  oracles neither score it nor answer "stuck" while it waits.
- :func:`started_trial_ids`, :func:`ended_trial_ids` (``start_order``,
  ``end_order``): the order KerasTuner saved trials starting and ending, used
  to reconcile trial files with oracle.json after a crash and to count
  consecutive failures.
- :func:`run_times`: how often a trial ran (a retried one runs more than once).
- :func:`record_trial_start`: the display's start time and number of a trial,
  which ``end_trial`` prints; a trial begun in a process that crashed has none.
- :func:`keep_seed`: KerasTuner draws from ``_seed_state`` and saves ``seed``.
- :func:`oracle_directory`, :func:`project_dir`, :func:`oracle_file`,
  :func:`trial_dir`, :func:`tuner_file`: where KerasTuner keeps the search's
  files, which our state mixins write atomically.
- :func:`has_chief_oracle`, :func:`is_chief_oracle`, :func:`is_worker`: the
  distributed mode, read from ``KERASTUNER_ORACLE_IP``/``_PORT`` and
  ``KERASTUNER_TUNER_ID`` as KerasTuner reads them.
- :func:`trial_callbacks`: ``Tuner``'s per-trial copy of the user's callbacks
  with TensorBoard pointed at the trial's folder.

Our oracles also override two private hooks of ``keras_tuner.Oracle``:
``_save_trial(trial)`` (called after every update and end of a trial, to write
trial.json) and ``_check_consecutive_failures()`` (called by ``end_trial`` once
a trial has ended for good, to stop the search).
"""

from __future__ import annotations

from datetime import datetime

import keras_tuner
from keras_tuner.engine.base_tuner import BaseTuner
from keras_tuner.engine.trial import TrialStatus
from keras_tuner.engine.tuner import maybe_distribute
from keras_tuner.src.distribute import utils as _distribute_utils

#: The keras-tuner release these internals were read from.
PINNED_VERSION = "1.4.8"

synchronized = keras_tuner.synchronized

__all__ = [
    "PINNED_VERSION",
    "BaseTuner",
    "TrialStatus",
    "has_chief_oracle",
    "is_chief_oracle",
    "is_worker",
    "ended_trial_ids",
    "keep_seed",
    "maybe_distribute",
    "oracle_directory",
    "oracle_file",
    "project_dir",
    "record_trial_start",
    "retry_queue",
    "run_times",
    "started_trial_ids",
    "synchronized",
    "trial_callbacks",
    "trial_dir",
    "tuner_file",
]


# --- trials of an oracle ------------------------------------------------------------
def retry_queue(oracle) -> list:
    """The oracle's own list of trial ids waiting to run again (changes to it change the oracle)."""
    return oracle._retry_queue


def started_trial_ids(oracle) -> list:
    """Trial ids in the order they started (a retried trial once)."""
    return oracle.start_order


def ended_trial_ids(oracle) -> list:
    """Trial ids in the order they ended for good (COMPLETED or FAILED; not while waiting for a retry)."""
    return oracle.end_order


def run_times(oracle, trial_id: str) -> int:
    """How many times the trial has ended so far (its first run and every retry)."""
    return oracle._run_times[trial_id]


def record_trial_start(oracle, trial_id: str) -> None:
    """Give a trial a start time and number in the oracle's display when it has none, so ``end_trial`` can
    print it: a trial begun in a process that crashed before saving its start has neither."""
    display = oracle._display
    if trial_id in display.trial_start:
        return
    display.search_start = display.search_start or datetime.now()
    display.trial_start[trial_id] = datetime.now()
    order = started_trial_ids(oracle)
    display.trial_number[trial_id] = order.index(trial_id) + 1 if trial_id in order else len(oracle.trials)


def keep_seed(oracle, seed: int) -> None:
    """Make ``seed`` the oracle's seed and the state of its random draws."""
    oracle.seed = oracle._seed_state = seed


# --- files of a search --------------------------------------------------------------
def oracle_directory(oracle):
    """The directory the tuner gave the oracle, or None while it has none (an oracle used on its own)."""
    return getattr(oracle, "_directory", None)


def project_dir(oracle) -> str:
    """The oracle's project folder (created when missing)."""
    return oracle._project_dir


def oracle_file(oracle) -> str:
    """Path of the oracle's state file, oracle.json."""
    return oracle._get_oracle_fname()


def trial_dir(oracle, trial_id: str) -> str:
    """The trial's folder, holding its trial.json (created when missing)."""
    return oracle._get_trial_dir(trial_id)


def tuner_file(tuner) -> str:
    """Path of the tuner's own state file, ``<tuner_id>.json``."""
    return tuner._get_tuner_fname()


# --- distributed mode ---------------------------------------------------------------
def has_chief_oracle() -> bool:
    """True when this process takes part in a chief/worker search (``KERASTUNER_ORACLE_IP`` set)."""
    return _distribute_utils.has_chief_oracle()


def is_chief_oracle() -> bool:
    """True in the chief, the process whose ``KERASTUNER_TUNER_ID`` contains "chief"."""
    return _distribute_utils.is_chief_oracle()


def is_worker() -> bool:
    """True in a worker of a chief/worker search: it asks the chief for trials and writes no oracle.json."""
    return has_chief_oracle() and not is_chief_oracle()


# --- a tuner's trials ---------------------------------------------------------------
def trial_callbacks(tuner, callbacks, trial) -> list:
    """A deep copy of ``callbacks`` for one trial, with any TensorBoard callback logging in the trial's folder."""
    callbacks = tuner._deepcopy_callbacks(callbacks)
    tuner._configure_tensorboard_dir(callbacks, trial)
    return callbacks
