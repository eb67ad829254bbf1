"""Deployment objectives: what Larq Compute Engine will run, as a budget or a penalty of any search.

A :class:`DeploymentObjective` names a cost read from
:func:`bnas_tf.deploy.lce_profile.lce_profile` of the network a candidate becomes
(``"size_bytes"``: expected .tflite size; ``"binary_macs"``: accelerated
binary MACs; ``"float_macs"``: MACs LCE runs in float; ``"fallback_macs"``:
the part of them from layers binary in Keras but float in LCE; or any
function of the profile dict) and uses it

- as a hard **budget**: a candidate costing more is rejected before it
  trains, as a FAILED trial whose message gives the reason (rejections do not
  count toward ``max_consecutive_failed_trials``), and no search returns an
  over-budget winner;
- as a **penalty** (SPEC P3 Eq. 4 applied to any objective):
  ``max(objective - penalty * cost / base_cost, 0)`` becomes the objective
  ``deployed_<objective>`` the oracle maximises;
- or neither (``budget=None, penalty=0``): the costs are only recorded, for
  the accuracy-vs-cost Pareto front.

Every trial records ``deploy_cost`` and the four ``lce_*`` figures.
:class:`CandidateCosts` measures them (one Keras build + ``lce_profile`` per
distinct candidate, cached); :class:`DeploymentAware` is the tuner side
shared by every search: rejection, penalised metrics, the winner check and
the Pareto front.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from collections.abc import Mapping
from typing import Callable

from bnas_tf import arguments
from bnas_tf.deploy.cost_names import COSTS  # read from lce_profile; a trial records each as lce_<name>
from bnas_tf.deploy.lce_profile import lce_profile
from bnas_tf.tuners import scores
from bnas_tf.tuners.keras_tuner_internals import TrialStatus

COST_METRIC = "deploy_cost"
BASE_METRIC = "deploy_base_cost"
REJECTED_METRIC = "over_budget"  # 1.0 on trials rejected before training
BUDGET_MESSAGE = "over the deployment budget"


DEPLOYED_PREFIX = "deployed_"


def deployed_name(objective: str) -> str:
    """The penalised objective's metric name: ``deployed_val_accuracy``, ``deployed_score``, ..."""
    return f"{DEPLOYED_PREFIX}{objective}"


@dataclasses.dataclass(frozen=True)
class DeploymentObjective:
    """A cost of the deployed network, used as a budget, a penalty, or only recorded.

    The cost is read from :func:`~bnas_tf.deploy.lce_profile.lce_profile` of the network a candidate
    becomes. With a budget, a candidate costing more fails before training; with a penalty the search
    maximises ``max(objective - penalty * cost / base_cost, 0)`` (SPEC P3 Eq. 4 applied to any cost
    and objective); with neither the costs are only recorded, for the accuracy-vs-cost Pareto front.
    Pass it as ``deployment=`` to ``ChildParent``, ``OperationPruning``, ``Evolution`` or
    ``Differentiable``.

    Args:
        cost: one of :data:`COSTS`, or a function ``lce_profile dict -> float`` (default
            ``"size_bytes"``).
        budget: candidates costing more are rejected before training, a finite number > 0 (None, the
            default: no budget).
        penalty: ``lam`` of ``max(objective - lam * cost / base_cost, 0)``, a finite number >= 0 (0, the
            default: no penalty).
        base_cost: the cost that counts as 1 in the penalty, a finite number > 0; default (None): the
            search's reference network (cells: the costliest one-op-everywhere genotype; widths:
            uniform 1x).
        network: keyword arguments of ``build_network`` / ``build_width_network`` overriding the
            search's own (e.g. ``{"cells": 20, "channels": 36}``: cost the network you will ship,
            not the search-sized one); default None (stored as an empty dict).

    Raises:
        ValueError: a ``cost`` that is neither one of ``COSTS`` nor callable, or a ``budget``,
            ``penalty`` or ``base_cost`` out of its range above.
        TypeError: ``network`` is not a mapping.

    Example:
        ```python
        budget = DeploymentObjective("size_bytes", budget=200_000)
        tuner = ChildParent(space, deployment=budget, ...)
        ```
    """

    cost: str | Callable = "size_bytes"
    budget: float | None = None
    penalty: float = 0.0
    base_cost: float | None = None
    network: Mapping | None = None

    def __post_init__(self):
        if not callable(self.cost) and self.cost not in COSTS:
            raise ValueError(
                f"deployment cost must be one of {', '.join(COSTS)} or a function of the lce_profile "
                f"dict, got {self.cost!r}"
            )
        check = arguments.finite_number
        object.__setattr__(self, "budget", check("deployment budget", self.budget, strict=True, allow_none=True))
        object.__setattr__(self, "penalty", check("deployment penalty", self.penalty))
        object.__setattr__(
            self, "base_cost", check("deployment base_cost", self.base_cost, strict=True, allow_none=True)
        )
        if self.network is not None and not isinstance(self.network, Mapping):
            raise TypeError(
                f"deployment network must be a dict of build_network arguments, got {type(self.network).__name__}"
            )
        object.__setattr__(self, "network", dict(self.network or {}))

    @property
    def cost_name(self) -> str:
        return self.cost if isinstance(self.cost, str) else getattr(self.cost, "__name__", "custom_cost")

    def measure(self, profile: dict) -> float:
        """The cost of a network from its ``lce_profile``."""
        value = self.cost(profile) if callable(self.cost) else profile[self.cost]
        return arguments.finite_number(f"deployment cost {self.cost_name!r}", value)

    def rejection(self, cost: float) -> str | None:
        """Why a candidate of ``cost`` may not train, or None when it is within the budget."""
        if self.budget is None or cost <= self.budget:
            return None
        return (
            f"{BUDGET_MESSAGE}: {self.cost_name} {cost:,.0f} > budget {self.budget:,.0f} (lce_profile of the "
            "network it becomes); not trained"
        )

    def penalise(self, value: float, cost: float, base_cost: float) -> float:
        """``max(value - penalty * cost / base_cost, 0)``, SPEC P3 Eq. 4 with this cost."""
        return float(scores.penalised_score(value, cost, base_cost, self.penalty))

    def get_config(self) -> dict:
        if callable(self.cost):
            raise ValueError(
                "a deployment objective with a cost function cannot be saved as data; name one of "
                f"{', '.join(COSTS)} instead"
            )
        return {
            "cost": self.cost,
            "budget": self.budget,
            "penalty": self.penalty,
            "base_cost": self.base_cost,
            "network": dict(self.network),
        }

    @classmethod
    def from_config(cls, config: dict) -> DeploymentObjective:
        return cls(**config)


def get(value) -> DeploymentObjective | None:
    """``None``, a :class:`DeploymentObjective`, or its config dict."""
    if value is None or isinstance(value, DeploymentObjective):
        return value
    if isinstance(value, Mapping):
        return DeploymentObjective.from_config(dict(value))
    raise TypeError(
        f"deployment must be a bnas_tf.tuners.DeploymentObjective or its config dict, got {type(value).__name__}"
    )


#: Per-layer field of an ``lce_profile`` row that adds up to each cost; a layer's share of ``size_bytes`` is its
#: constants (the flatbuffer's fixed overhead and op tables are left out of per-edge costs).
ROW_FIELDS = {
    "binary_macs": "binary_macs",
    "float_macs": "float_macs",
    "fallback_macs": "fallback_macs",
    "size_bytes": "weight_bytes",
}
_EDGE_LAYER = re.compile(r"^cell(\d+)_e(\d+)_")


def edge_costs(rows: list, cost: str, reduction_cells, num_edges: int) -> dict:
    """Per cell kind and edge, the cost of the layers of that edge summed over the cells of its kind.

    ``rows`` are ``lce_profile(model)["layers"]``; edge layers are named ``cell<i>_e<edge>_...`` by
    ``bnas_tf.build_network``; cell ``i`` is a reduction cell when ``i`` is in ``reduction_cells``.
    Returns ``{"normal": [cost of edge 0, ...], "reduce": [...]}``.

    Example:
        >>> rows = [{"name": "cell0_e1_n2_from1_conv_3x3_conv", "float_macs": 5},
        ...         {"name": "cell1_e1_n2_from1_conv_3x3_conv", "float_macs": 7},
        ...         {"name": "stem_conv", "float_macs": 9}]
        >>> edge_costs(rows, "float_macs", reduction_cells=[1], num_edges=2)
        {'normal': [0.0, 5.0], 'reduce': [0.0, 7.0]}
    """
    if cost not in ROW_FIELDS:
        raise ValueError(
            f"a per-edge cost table needs one of {', '.join(ROW_FIELDS)}, not {cost!r}: a cost "
            "function of the whole profile does not split over edges"
        )
    reductions = set(reduction_cells)
    out = {"normal": [0.0] * num_edges, "reduce": [0.0] * num_edges}
    for row in rows:
        match = _EDGE_LAYER.match(row["name"])
        if match:
            kind = "reduce" if int(match.group(1)) in reductions else "normal"
            out[kind][int(match.group(2))] += float(row[ROW_FIELDS[cost]])
    return out


def is_rejected(trial) -> bool:
    """True for a trial the budget rejected before it trained."""
    return trial.metrics.exists(REJECTED_METRIC)


def report_rejection(oracle, trial_id: str, cost_metrics: dict) -> None:
    """Send a rejected trial's costs to the oracle. KerasTuner wants the objective in every report: it is
    NaN, never measured (numpy's all-NaN warning about it is silenced)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN", RuntimeWarning)
        oracle.update_trial(trial_id, {oracle.objective.name: float("nan"), **cost_metrics})


def first_within_budget(candidates, cost_of, budget):
    """The first of ``candidates`` whose cost is within ``budget`` (all of them when there is none), or None."""
    for candidate in candidates:
        if budget is None or cost_of(candidate) <= budget:
            return candidate
    return None


def pareto_points(records: list, accuracy: str = "val_accuracy") -> list:
    """The non-dominated ``records`` (dicts with ``accuracy`` and ``deploy_cost``), by cost."""
    points = [(r[accuracy], r[COST_METRIC]) for r in records]
    return [records[i] for i in scores.pareto_front(points)]


def _architecture_key(candidate) -> str:
    return json.dumps({k: v for k, v in candidate.to_dict().items() if k != "name"}, sort_keys=True)


class CandidateCosts:
    """``lce_profile`` figures of candidates, measured on the network each one becomes (cached per candidate).

    Args:
        objective: the :class:`DeploymentObjective`.
        build: ``candidate -> tf.keras.Model`` (the deployed network).
        key: ``candidate -> hashable`` (default: its JSON without the name, so one architecture is
            costed once whatever it is called).
    """

    def __init__(self, objective: DeploymentObjective, build: Callable, key: Callable | None = None):
        self.objective, self._build, self._key = objective, build, key or _architecture_key
        self._cache = {}

    def profile(self, candidate) -> dict:
        """``lce_profile`` of the candidate's network (built once per architecture)."""
        key = self._key(candidate)
        if key not in self._cache:
            self._cache[key] = lce_profile(self._build(candidate))
        return self._cache[key]

    def metrics(self, candidate) -> dict:
        """``deploy_cost`` and ``lce_<cost>`` for every cost of :data:`COSTS`."""
        profile = self.profile(candidate)
        metrics = {f"lce_{name}": float(profile[name]) for name in COSTS}
        metrics[COST_METRIC] = self.objective.measure(profile)
        return metrics

    def cost(self, candidate) -> float:
        return self.metrics(candidate)[COST_METRIC]


class DeploymentAware:
    """Tuner mixin: a :class:`DeploymentObjective` for any search.

    The tuner says what a trial's candidate is (:meth:`trial_candidate`), which
    network it becomes (:meth:`deployed_network`) and which candidates define
    ``base_cost`` (:meth:`reference_candidates`); this mixin measures, rejects,
    penalises, checks winners and draws the Pareto front.
    """

    deployment = None
    accuracy_metric = "val_accuracy"

    def _setup_deployment(self, deployment):
        self.deployment = get(deployment)
        self._candidate_costs = None
        self._base_cost = None

    # --- what the tuner provides ------------------------------------------------------
    def trial_candidate(self, trial):
        raise NotImplementedError

    def deployed_network(self, candidate):
        raise NotImplementedError

    def reference_candidates(self) -> list:
        raise NotImplementedError

    # --- measuring ----------------------------------------------------------------------
    def candidate_costs(self) -> CandidateCosts:
        if self._candidate_costs is None:
            self._candidate_costs = CandidateCosts(self.deployment, self.deployed_network)
        return self._candidate_costs

    def base_cost(self) -> float:
        """The penalty's reference cost: the objective's ``base_cost``, else the costliest reference candidate."""
        if self.deployment.base_cost is not None:
            return self.deployment.base_cost
        if self._base_cost is None:
            costs = [self.candidate_costs().cost(c) for c in self.reference_candidates()]
            self._base_cost = max(costs)
            if self._base_cost <= 0:
                raise ValueError(
                    f"every reference network costs 0 {self.deployment.cost_name}: pass "
                    "DeploymentObjective(base_cost=...) to scale the penalty"
                )
        return self._base_cost

    def deployment_check(self, trial) -> tuple[dict, str | None]:
        """The trial's cost metrics, and the reason it may not train (None: within budget or no budget)."""
        if self.deployment is None:
            return {}, None
        metrics = self.candidate_costs().metrics(self.trial_candidate(trial))
        reason = self.deployment.rejection(metrics[COST_METRIC])
        if reason is not None:
            metrics[REJECTED_METRIC] = 1.0
        return metrics, reason

    def with_deployment(self, metrics: dict, cost_metrics: dict, objective: str) -> dict:
        """``metrics`` plus the cost figures and, with a penalty, ``deployed_<objective>``."""
        if self.deployment is None:
            return metrics
        out = dict(metrics, **cost_metrics)
        if self.deployment.penalty:
            base = self.base_cost()
            out[BASE_METRIC] = base
            out[deployed_name(objective)] = self.deployment.penalise(metrics[objective], out[COST_METRIC], base)
        return out

    def within_budget(self, candidates: list, what: str):
        """The first candidate within the budget; ``what`` names the first (the search's own choice)."""
        if self.deployment is None or self.deployment.budget is None:
            return candidates[0]
        costs = self.candidate_costs()
        chosen = first_within_budget(candidates, costs.cost, self.deployment.budget)
        if chosen is None:
            cheapest = min(costs.cost(c) for c in candidates)
            raise ValueError(
                f"no searched architecture is within the deployment budget {self.deployment.budget:,.0f} "
                f"{self.deployment.cost_name}: the cheapest candidate costs {cheapest:,.0f}; raise the "
                "budget, or search a cheaper space (fewer cells or channels, lce_friendly=True)"
            )
        if chosen is not candidates[0]:
            print(
                f"{what} costs {costs.cost(candidates[0]):,.0f} {self.deployment.cost_name}, over the budget "
                f"{self.deployment.budget:,.0f}: returning the best-scored candidate within it instead"
            )
        return chosen

    # --- results ------------------------------------------------------------------------
    def deployment_trials(self) -> list:
        """``{trial_id, val_accuracy, deploy_cost, lce_*, candidate}`` of every completed trial with costs."""
        out = []
        for trial_id, trial in sorted(self.oracle.trials.items()):
            if (
                trial.status != TrialStatus.COMPLETED
                or not trial.metrics.exists(COST_METRIC)
                or not trial.metrics.exists(self.accuracy_metric)
            ):
                continue
            record = {
                name: float(trial.metrics.get_last_value(name))
                for name in (self.accuracy_metric, COST_METRIC) + tuple(f"lce_{c}" for c in COSTS)
                if trial.metrics.exists(name)
            }
            record["trial_id"] = trial_id
            record["candidate"] = self.trial_candidate(trial)
            out.append(record)
        return out

    def deployment_pareto(self) -> list:
        """The accuracy-vs-``deploy_cost`` Pareto front of the completed trials, cheapest first."""
        return pareto_points(self.deployment_trials(), self.accuracy_metric)

    def results_summary(self, num_trials=10):
        super().results_summary(num_trials)
        if self.deployment is None:
            return
        front = self.deployment_pareto()
        print(f"\nAccuracy vs {self.deployment.cost_name} Pareto front ({len(front)} trials):")
        for record in front:
            print(
                f"  trial {record['trial_id']}: {self.accuracy_metric} {record[self.accuracy_metric]:.4f}  "
                f"{self.deployment.cost_name} {record[COST_METRIC]:,.0f}  size {record['lce_size_bytes']:,.0f} B  "
                f"binary MACs {record['lce_binary_macs']:,.0f}  float MACs {record['lce_float_macs']:,.0f}"
            )
