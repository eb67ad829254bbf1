"""When a search stops: a round whose every trial failed is never scored, pruned or turned into a genotype.

A round -- a pruning round of SPEC P1/P4, a search epoch of P2, a generation
of P3 -- whose every trial failed has no valid measurement: abandoning an op,
discretising α or breeding genes from it would decide on nothing. The oracles
then raise :class:`SearchStopped` once their state is saved, so the finished
trials stay finished and searching again in the same project folder (with the
cause fixed) goes on from them. KerasTuner's ``max_consecutive_failed_trials``
stop raises the same error instead of a traceback.

Why trials failed is read from them (:func:`failure_kind`): the budget
rejected them before training, their loss was not finite (the network
diverged: the learning rate is too high), or training raised (the error's
last line is quoted).
"""

from __future__ import annotations

import re

from bnas_tf.tuners import deployment as deployment_lib
from bnas_tf.tuners import keras_tuner_internals as internals
from bnas_tf.tuners.keras_tuner_internals import TrialStatus

DIVERGED, OVER_BUDGET, ERROR = "diverged", "over_budget", "error"
CHEAPER_SPACE = "raise the budget, or search a cheaper space (fewer cells or channels, lce_friendly=True)"
FIXES = {
    DIVERGED: "lower the learning rate (the tuner's learning_rate)",
    OVER_BUDGET: CHEAPER_SPACE,
    ERROR: "fix what the error says",
}
# what the tuners write when a loss is not finite (SupernetTuner, WidthCandidates, Evolution)
_NON_FINITE = re.compile(r"non-finite|not finite|NaN/inf")
_LONGEST_REASON = 200


class SearchStopped(ValueError, RuntimeError):
    """The search stopped: a round had no valid measurement, or too many trials failed in a row.

    A ``ValueError`` because the fix is a setting or an input to change, and a ``RuntimeError`` as KerasTuner's
    consecutive-failure stop it replaces. The message is one line, ``"<what>: <cause>; <fix>; <kept>"``.

    Attributes:
        what: what failed, e.g. ``"every sampled path of round 2 failed"``.
        kind: why, one of :data:`DIVERGED`, :data:`OVER_BUDGET`, :data:`ERROR`.
        cause: the cause in words, e.g. ``"the loss is not finite (the network diverged)"``.
        fix: what to change.
        kept: what stays on disk and how to go on (may be empty).
    """

    def __init__(self, what: str, kind: str, cause: str, fix: str, kept: str = ""):
        self.what, self.kind, self.cause, self.fix, self.kept = what, kind, cause, fix, kept
        super().__init__("; ".join(part for part in (f"{what}: {cause}", fix, kept) if part))


def failure_kind(trial) -> str:
    """Why a FAILED trial failed: :data:`OVER_BUDGET`, :data:`DIVERGED` or :data:`ERROR`."""
    if deployment_lib.is_rejected(trial):
        return OVER_BUDGET
    return DIVERGED if _NON_FINITE.search(trial.message or "") else ERROR


def failure_reason(message: str | None) -> str:
    """One line of a failed trial's message: the last unindented line of a traceback (the error), without the
    exception's module path, shortened to 200 characters."""
    lines = [
        line.strip()
        for line in (message or "").splitlines()
        if line.strip() and not line[0].isspace() and not line.startswith(("Traceback", "During handling"))
    ]
    reason = re.sub(r"^(?:\w+\.)+(\w+:)", r"\1", lines[-1]) if lines else "no message"
    return reason if len(reason) <= _LONGEST_REASON else reason[: _LONGEST_REASON - 3] + "..."


def _cause(kind: str, trials: list, deployment) -> str:
    if kind == DIVERGED:
        return "the loss is not finite (the network diverged)"
    if kind == OVER_BUDGET and deployment is not None and deployment.budget is not None:
        costs = [
            float(t.metrics.get_last_value(deployment_lib.COST_METRIC))
            for t in trials
            if t.metrics.exists(deployment_lib.COST_METRIC)
        ]
        cheapest = f": the cheapest candidate costs {min(costs):,.0f}" if costs else ""
        return (
            f"no searched architecture is within the deployment budget {deployment.budget:,.0f} "
            f"{deployment.cost_name}{cheapest}"
        )
    if kind == OVER_BUDGET:
        return "every candidate is over the deployment budget"
    return failure_reason(next((t.message for t in reversed(trials) if failure_kind(t) == ERROR), None))


def stop(oracle, what: str, trials: list, deployment=None) -> SearchStopped:
    """The error that stops ``oracle``'s search because ``trials`` (all FAILED) gave no measurement.

    The cause is the one most of them share (a non-finite loss first, then an error, then the budget: a diverged
    trial says what to change even when others of its round were rejected)."""
    kinds = [failure_kind(t) for t in trials]
    kind = next((k for k in (DIVERGED, ERROR, OVER_BUDGET) if k in kinds), ERROR)
    ended = [t for t in oracle.trials.values() if t.status in (TrialStatus.COMPLETED, TrialStatus.FAILED)]
    kept = ""
    if internals.oracle_directory(oracle) is not None:
        kept = (
            f"the {len(ended)} finished trials stay in {internals.project_dir(oracle)}, "
            "and searching again there goes on from them"
        )
    return SearchStopped(what, kind, _cause(kind, trials, deployment), FIXES[kind], kept)
