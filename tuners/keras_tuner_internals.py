"""The KerasTuner internals bnas-tf relies on, in one place. Pinned to keras-tuner 1.4.8.

Our oracles and tuners follow KerasTuner's public contract (``populate_space``,
``get_state``/``set_state``, ``run_trial``), but crash-safe state, retries,
grouped trials and the chief/worker mode need a few things KerasTuner does
not export. Every such use goes through this module, so an upgrade of
keras-tuner is checked here and in ``tests/tuners/test_keras_tuner_internals.py``:

- ``Trial``, ``TrialStatus``, ``BaseTuner``, ``maybe_distribute`` (``keras_tuner.engine``):
  a trial (``Trial.load`` reads a trial.json) and its status values; the tuner
  base class without ``Tuner``'s one-model-per-trial loop (a weight-sharing
  search trains one supernet for many trials); the context that builds a
  candidate under the tuner's ``distribution_strategy``.
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
  ``KERASTUNER_TUNER_ID`` as KerasTuner reads them; :func:`check_distributed_environment`
  refuses a partial setting, which KerasTuner runs as a single process.
- :func:`connect_to_chief`: a worker's ``OracleClient`` talks to the chief through
  its ``stub``; we give it one that waits at most :func:`chief_timeout` seconds
  for the chief (KerasTuner waits an hour per request, silently) and answers in
  the chief's place once the chief has finished (``keras_tuner.src.protos``).
- :func:`trial_callbacks`: ``Tuner``'s per-trial copy of the user's callbacks
  with TensorBoard pointed at the trial's folder.

Our oracles also override two private hooks of ``keras_tuner.Oracle``:
``_save_trial(trial)`` (called after every update and end of a trial, to write
trial.json) and ``_check_consecutive_failures()`` (called by ``end_trial`` once
a trial has ended for good, to stop the search).
"""

from __future__ import annotations

import functools
import math
import os
import time
from datetime import datetime

import grpc
import keras_tuner
from keras_tuner.engine.base_tuner import BaseTuner
from keras_tuner.engine.trial import Trial, TrialStatus
from keras_tuner.engine.tuner import maybe_distribute
from keras_tuner.src import protos
from keras_tuner.src.distribute import utils as _distribute_utils

#: The keras-tuner release these internals were read from.
PINNED_VERSION = "1.4.8"

synchronized = keras_tuner.synchronized

__all__ = [
    "PINNED_VERSION",
    "BaseTuner",
    "CHIEF_TIMEOUT_VARIABLE",
    "DEFAULT_CHIEF_TIMEOUT",
    "DISTRIBUTED_VARIABLES",
    "Trial",
    "TrialStatus",
    "check_distributed_environment",
    "chief_address",
    "chief_timeout",
    "connect_to_chief",
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


#: What KerasTuner's chief/worker mode reads: all three or none (docs/scaling_out.md).
DISTRIBUTED_VARIABLES = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
#: Seconds a worker waits for its chief, when it starts and on every request, before it stops with an error.
CHIEF_TIMEOUT_VARIABLE = "BNAS_TF_CHIEF_TIMEOUT"
DEFAULT_CHIEF_TIMEOUT = 300.0
#: A waiting worker tries the chief's address this often (gRPC would back off to every 2 minutes).
_RECONNECT_MS = 1000


def check_distributed_environment() -> None:
    """Refuse a partial chief/worker setting, and a ``BNAS_TF_CHIEF_TIMEOUT`` that is not a number of seconds.
    KerasTuner runs a process with ``KERASTUNER_TUNER_ID`` but no ``KERASTUNER_ORACLE_IP`` as a whole
    single-process search of its own, without a word."""
    chief_timeout()
    present = [name for name in DISTRIBUTED_VARIABLES if name in os.environ]
    missing = [name for name in DISTRIBUTED_VARIABLES if name not in os.environ]
    if present and missing:
        raise ValueError(
            f"{' and '.join(present)} {'is' if len(present) == 1 else 'are'} set but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not: a chief/worker search needs all of "
            f"{', '.join(DISTRIBUTED_VARIABLES)} (docs/scaling_out.md); unset {' and '.join(present)} for a "
            "single-process search"
        )


def chief_address() -> str:
    """``KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT``, where the chief serves the oracle."""
    return f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"


def chief_timeout() -> float:
    """Seconds a worker waits for its chief: ``BNAS_TF_CHIEF_TIMEOUT`` if set, else 300."""
    text = os.environ.get(CHIEF_TIMEOUT_VARIABLE)
    if text is None:
        return DEFAULT_CHIEF_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{CHIEF_TIMEOUT_VARIABLE} must be a number of seconds > 0 (got {text!r})")
    return seconds


def connect_to_chief(tuner, search_over) -> None:
    """Put a :class:`ChiefLine` under a worker's ``OracleClient`` and wait until the chief answers.

    ``search_over(oracle_file)`` says whether the saved search state (the chief's oracle.json) says the search
    has ended; with the chief gone too, the worker is told to stop instead of waiting for nobody.

    Raises:
        ConnectionError: the chief did not answer within :func:`chief_timeout` seconds.
    """
    client = tuner.oracle
    saved_state = oracle_file(client._oracle)
    line = ChiefLine(
        chief_address(),
        chief_timeout(),
        lambda: search_over(saved_state),
        project_dir(client._oracle),
        os.environ["KERASTUNER_TUNER_ID"],
    )
    client.stub = line
    line.wait_for_chief()


class ChiefLine:
    """A worker's stub of the chief's ``Oracle`` gRPC service that never waits longer than ``timeout`` seconds.

    Every request first waits for the chief's address to accept connections, then gets ``timeout`` seconds
    to be answered: a chief that is not there (not started, a wrong address, stopped) becomes a one-line
    ``ConnectionError`` naming the address and the fix. When the chief cannot be reached and the search
    state says the search is over, the line answers in its place: no more trials (``STOPPED``), and
    trials as the chief saved them, so a worker started or restarted after its chief finished exits.
    """

    def __init__(self, address: str, timeout: float, search_over, project: str, tuner_id: str):
        self.address, self.timeout, self.search_over = address, timeout, search_over
        self.project, self.tuner_id, self.finished = project, tuner_id, False
        options = [(f"grpc.{kind}_reconnect_backoff_ms", _RECONNECT_MS) for kind in ("initial", "min", "max")]
        self.channel = grpc.insecure_channel(address, options=options)
        self.stub = protos.get_service_grpc().OracleStub(self.channel)

    def __getattr__(self, method: str):
        return functools.partial(self._request, method)

    def wait_for_chief(self) -> bool:
        """Wait until the chief's address accepts connections (True), or the search is over and nobody is
        there (False).

        Raises:
            ConnectionError: neither within ``timeout`` seconds.
        """
        deadline = time.monotonic() + self.timeout
        while not self.finished:
            ready = grpc.channel_ready_future(self.channel)
            try:
                ready.result(timeout=max(0.0, min(_RECONNECT_MS / 1000, deadline - time.monotonic())))
                return True
            except grpc.FutureTimeoutError:
                ready.cancel()
            if self.search_over():
                self._finish()
            elif time.monotonic() >= deadline:
                raise ConnectionError(
                    f"cannot reach the chief at {self.address} within {self.timeout:g} s: start the chief "
                    "(KERASTUNER_TUNER_ID=chief) with the same command, or check KERASTUNER_ORACLE_IP and "
                    f"KERASTUNER_ORACLE_PORT; {CHIEF_TIMEOUT_VARIABLE} sets the wait (docs/scaling_out.md)"
                )
        return False

    def _finish(self):
        self.finished = True
        print(
            f"the search in {self.project} is over: its chief finished and no longer answers at {self.address}; "
            f"worker {self.tuner_id} has nothing to do",
            flush=True,
        )

    def _request(self, method: str, request, **kwargs):
        if self.wait_for_chief():
            try:
                return getattr(self.stub, method)(request, **dict(kwargs, timeout=self.timeout))
            except grpc.RpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                if not self.search_over():
                    raise ConnectionError(
                        f"the chief at {self.address} did not answer {method} within {self.timeout:g} s: it "
                        "stopped or cannot be reached; start it again with the same command (it resumes from "
                        f"its saved state), then this worker ({CHIEF_TIMEOUT_VARIABLE} sets the wait)"
                    ) from None
                self._finish()
        return self._answer_for_finished_chief(method, request)

    def _answer_for_finished_chief(self, method: str, request):
        service = protos.get_service()
        if method == "CreateTrial":
            stopped = Trial(keras_tuner.HyperParameters(), status=TrialStatus.STOPPED)
            return service.CreateTrialResponse(trial=stopped.to_proto())
        saved = os.path.join(self.project, f"trial_{getattr(request, 'trial_id', '')}", "trial.json")
        if method == "GetTrial" and os.path.exists(saved):
            return service.GetTrialResponse(trial=Trial.load(saved).to_proto())
        raise ConnectionError(
            f"the search in {self.project} is over and its chief at {self.address} has stopped, so {method} "
            "has nobody to answer it; the chief's run folder holds the results"
        )


# --- a tuner's trials ---------------------------------------------------------------
def trial_callbacks(tuner, callbacks, trial) -> list:
    """A deep copy of ``callbacks`` for one trial, with any TensorBoard callback logging in the trial's folder."""
    callbacks = tuner._deepcopy_callbacks(callbacks)
    tuner._configure_tensorboard_dir(callbacks, trial)
    return callbacks
