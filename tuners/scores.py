"""Scores that drive the searches: the papers' maths as small numpy functions.

Each function implements one equation of ``shared/SPEC.md`` and says which:

- SPEC P1 Eq. 7-9 (performance-based pruning): :func:`softmax_likelihood`,
  :func:`update_likelihood`;
- SPEC P1 Eq. 10 (UCB for 1-bit search): :func:`ucb_bonus`;
- SPEC P1 Eq. 11 / P4 (abandon the worst op): :func:`abandon_worst`;
- SPEC P4 Eq. 1-2 (Child-Parent indicator): :func:`child_parent_score`,
  then :func:`softmax_likelihood`;
- SPEC P3 Eq. 4 (width fitness): :func:`width_fitness`, built on
  :func:`penalised_score`;
- SPEC P2 Eq. 4-5 (Zeroise rule, diversity): :func:`zeroise_select`,
  :func:`diversity_weight`, :func:`entropy`;
- reports: :func:`pareto_front`.

Only numpy and math: the oracles call these on JSON-restored state.
:func:`diversity_weight` is defined beside the loss it weights
(:mod:`bnas_tf.space.schedules`, pure Python) and exported here with the rest. Public functions validate their
inputs and
raise ``ValueError`` saying what was wrong; inner helpers trust them.
"""

import math

import numpy as np

from bnas_tf.arguments import number
from bnas_tf.space.schedules import diversity_weight

__all__ = [
    "softmax_likelihood",
    "update_likelihood",
    "ucb_bonus",
    "child_parent_score",
    "penalised_score",
    "width_fitness",
    "zeroise_select",
    "abandon_worst",
    "diversity_weight",
    "entropy",
    "pareto_front",
]


# --------------------------------------------------------------------------
# Validation helpers (the public boundary)
# --------------------------------------------------------------------------


def _float_array(name, values, ndim=None, min_size=1):
    """``values`` as a float array, checked for rank and size."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric, got {values!r}") from error
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {array.shape}")
    if array.ndim >= 1 and array.shape[-1] < min_size:
        raise ValueError(f"{name} must hold at least {min_size} value(s) per edge, got shape {array.shape}")
    return array


def _require_finite(name, array):
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array.tolist()}")


def _boolean_mask(name, mask, shape):
    array = np.asarray(mask)
    if array.dtype != bool:
        raise ValueError(
            f"{name} must be a boolean mask, got dtype {array.dtype}; pass e.g. np.array([True, False, ...])"
        )
    if array.shape != shape:
        raise ValueError(f"{name} must have the scores' shape {shape}, got {array.shape}")
    return array


def _broadcast(names, arrays):
    try:
        return np.broadcast_arrays(*arrays)
    except ValueError as error:
        shapes = ", ".join(f"{name} {array.shape}" for name, array in zip(names, arrays))
        raise ValueError(f"shapes do not broadcast: {shapes}") from error


# --------------------------------------------------------------------------
# P1 / P4: selection likelihood, UCB, abandon the worst
# --------------------------------------------------------------------------


def _softmax(values):
    shifted = values - np.max(values, axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / np.sum(exponentials, axis=-1, keepdims=True)


def softmax_likelihood(mean_scores):
    """Softmax over an edge's ops, SPEC P1 Eq. 7 and P4 Eq. 2.

    ``s(o_k) = exp(y_k) / sum_m exp(y_m)`` over the last axis, where ``y_k``
    is the mean of op k's measurements (accuracies in P1, Child-Parent
    scores z in P4). The maximum is subtracted first, so large scores do
    not overflow; the result is unchanged because softmax is shift
    invariant.

    Args:
        mean_scores: finite array of shape ``[K]`` (one edge) or
            ``[edges, K]``.

    Returns:
        Float array of the same shape; each row sums to 1.

    Example:
        >>> softmax_likelihood([0.5, 0.7]).round(6)
        array([0.450166, 0.549834])
    """
    scores = _float_array("mean_scores", mean_scores, min_size=1)
    if scores.ndim == 0:
        raise ValueError(f"mean_scores must have at least one axis (the edge's ops), got the scalar {mean_scores!r}")
    _require_finite("mean_scores", scores)
    return _softmax(scores)


def update_likelihood(s, mean_acc, in_smaller):
    """Selection likelihood update, SPEC P1 Eq. 8-9.

    For one edge with K ops, of which ``O_smaller`` (``in_smaller``) were
    sampled and measured:

    - Eq. 7: ``s_smaller = softmax(mean_acc[O_smaller])``;
    - Eq. 8: ``s_larger = 1/2 (max s_smaller + (1/|O_smaller|) sum s_smaller)``,
      one value shared by every op outside ``O_smaller``. P1 writes the mean
      with ``ceil(K/2)``, which is ``|O_smaller|`` in its pruning rounds
      (also for odd K, e.g. K = 7 and 4 smaller ops); we divide by
      ``|O_smaller|`` so the formula also holds for the UCB variant, where
      ``O_smaller`` is every op and ``s_larger`` is not used;
    - Eq. 9: ``s <- 1/2 s + q s_smaller + (1 - q) s_larger`` with
      ``q_k = 1`` if op k is in ``O_smaller`` else 0.

    Args:
        s: current likelihoods of the edge's K ops, finite, shape ``[K]``.
        mean_acc: mean validation accuracy of each op, shape ``[K]``; only
            entries where ``in_smaller`` is True are read (the others may be
            NaN: those ops were not measured).
        in_smaller: boolean mask of shape ``[K]`` marking ``O_smaller``; at
            least one True.

    Returns:
        The new likelihoods, float array of shape ``[K]``.

    Example (K = 4, ops 0 and 1 measured at 0.5 and 0.7):
        >>> update_likelihood([0, 0, 0, 0], [0.5, 0.7, np.nan, np.nan],
        ...                   [True, True, False, False]).round(6)
        array([0.450166, 0.549834, 0.524917, 0.524917])

        softmax([.5, .7]) = [0.450166, 0.549834]; s_larger =
        0.5 * (0.549834 + 0.5) = 0.524917.
    """
    likelihood = _float_array("s", s, ndim=1)
    _require_finite("s", likelihood)
    accuracy = _float_array("mean_acc", mean_acc, ndim=1)
    if accuracy.shape != likelihood.shape:
        raise ValueError(f"mean_acc must have the shape of s {likelihood.shape}, got {accuracy.shape}")
    smaller = _boolean_mask("in_smaller", in_smaller, likelihood.shape)
    if not smaller.any():
        raise ValueError("in_smaller must mark at least one op of O_smaller")
    _require_finite("mean_acc where in_smaller", accuracy[smaller])

    s_smaller = _softmax(accuracy[smaller])
    s_larger = 0.5 * (np.max(s_smaller) + np.mean(s_smaller))
    new_s = 0.5 * likelihood
    new_s[smaller] += s_smaller
    new_s[~smaller] += s_larger
    return new_s


def ucb_bonus(s, total_samples, times_selected, delta=2.0):
    """Upper-confidence-bound likelihood for 1-bit search, SPEC P1 Eq. 10.

    ``s(o_k) + delta * sqrt(2 ln N / n_k)`` with N the total number of
    samples so far and ``n_k`` the times op k was selected.

    Every ``n_k`` must be >= 1: P1 samples without replacement, so each
    round measures every op of ``O_smaller = O`` once and no op is scored
    unmeasured. An op with ``n_k = 0`` has no honest score (the bound is
    infinite, and any large finite stand-in would be made up), so this
    raises instead of inventing one.

    Args:
        s: likelihoods of the edge's K ops, finite, shape ``[K]``.
        total_samples: N, a number >= 1 and >= every ``n_k``.
        times_selected: ``n_k``, shape ``[K]``, whole numbers in ``1..N``.
        delta: weight of the bonus, finite and >= 0 (P1: 2).

    Returns:
        Float array of shape ``[K]``.

    Example (N = 12 samples, 4 ops each selected 3 times):
        >>> ucb_bonus([0, 0, 0, 0], 12, [3, 3, 3, 3]).round(6)
        array([2.574183, 2.574183, 2.574183, 2.574183])

        2 * sqrt(2 * ln 12 / 3) = 2 * sqrt(1.656604) = 2 * 1.287091 = 2.574183.
    """
    likelihood = _float_array("s", s, ndim=1)
    _require_finite("s", likelihood)
    n_total = number("total_samples", total_samples)
    if n_total < 1:
        raise ValueError(f"total_samples must be >= 1 (N counts samples drawn so far), got {total_samples!r}")
    counts = _float_array("times_selected", times_selected, ndim=1)
    if counts.shape != likelihood.shape:
        raise ValueError(f"times_selected must have the shape of s {likelihood.shape}, got {counts.shape}")
    _require_finite("times_selected", counts)
    if np.any(counts != np.round(counts)):
        raise ValueError(f"times_selected must be whole counts, got {counts.tolist()}")
    if np.any(counts < 1):
        raise ValueError(
            "every op must have been selected at least once (n_k >= 1) "
            "before its UCB score is computed: P1 samples each op once per "
            f"round; got times_selected {counts.tolist()}"
        )
    if np.any(counts > n_total):
        raise ValueError(
            f"times_selected {counts.tolist()} exceeds total_samples "
            f"{total_samples!r}: an op cannot be selected more often than "
            "samples were drawn"
        )
    weight = number("delta", delta, minimum=0.0)
    return likelihood + weight * np.sqrt(2.0 * math.log(n_total) / counts)


def abandon_worst(scores, remaining_mask):
    """Op to abandon on each edge, SPEC P1 Eq. 11 and P4 Algorithm 1.

    ``argmin_k s(o_k)`` over the ops still in the space. Ties go to the
    lowest index, so a resumed search prunes the same op.

    Args:
        scores: shape ``[K]`` or ``[edges, K]``; entries outside
            ``remaining_mask`` are ignored, remaining ones must not be NaN.
        remaining_mask: boolean mask of the scores' shape, at least one
            True per edge.

    Returns:
        ``int`` for one edge, else an int array of shape ``[edges]``.

    Example:
        >>> abandon_worst([0.3, 0.1, 0.1, 0.5], [True, True, True, True])
        1
        >>> abandon_worst([0.3, 0.1, 0.1, 0.5], [True, False, True, True])
        2
    """
    values = _float_array("scores", scores, min_size=1)
    if values.ndim not in (1, 2):
        raise ValueError(f"scores must have shape [K] or [edges, K], got {values.shape}")
    remaining = _boolean_mask("remaining_mask", remaining_mask, values.shape)
    if not np.all(remaining.any(axis=-1)):
        raise ValueError("remaining_mask must keep at least one op on every edge")
    if np.any(np.isnan(values[remaining])):
        raise ValueError(f"scores of remaining ops must not be NaN, got {values.tolist()}")
    masked = np.where(remaining, values, np.inf)
    lowest = np.min(masked, axis=-1, keepdims=True)
    # argmax of a boolean array is its first True: the lowest tied index,
    # and a remaining op scored +inf still beats the masked-out ones.
    worst = np.argmax(remaining & (masked == lowest), axis=-1)
    return int(worst) if values.ndim == 1 else worst


def child_parent_score(acc_child, acc_parent, beta):
    """Child-Parent score of a sampled architecture, SPEC P4 Eq. 1.

    ``z = A_C + beta * (A_P - A_C)``: the child's (1-bit) accuracy plus
    ``beta`` times the gap to its full-precision parent. ``beta = 0`` is P1's
    plain accuracy (P4's "BNAS†"); P4 uses 2 on CIFAR and 0.33 on ImageNet.
    Broadcasts over arrays.

    Args:
        acc_child: finite accuracy (or array) of the 1-bit child.
        acc_parent: finite accuracy (or array) of the full-precision parent,
            broadcastable with ``acc_child``.
        beta: finite float.

    Returns:
        Float array of the broadcast shape (0-d for scalars).

    Example:
        >>> round(child_parent_score(0.6, 0.9, 2.0), 6)  # 0.6 + 2 * 0.3
        1.2
    """
    child = _float_array("acc_child", acc_child)
    parent = _float_array("acc_parent", acc_parent)
    _require_finite("acc_child", child)
    _require_finite("acc_parent", parent)
    child, parent = _broadcast(("acc_child", "acc_parent"), (child, parent))
    weight = number("beta", beta)
    score = child + weight * (parent - child)
    return float(score) if score.ndim == 0 else score


# --------------------------------------------------------------------------
# P3: accuracy penalised by cost
# --------------------------------------------------------------------------


def penalised_score(acc, cost, base_cost, lam):
    """Accuracy minus a relative-cost penalty, clipped at 0 (SPEC P3 Eq. 4).

    ``max(acc - lam * cost / base_cost, 0)`` for any cost (FLOPs, memory
    bits, latency). KerasTuner sums objectives without weights, so a search
    that trades accuracy for cost needs an explicit scalarisation like this
    one. Broadcasts over arrays.

    Args:
        acc: finite accuracy (or array).
        cost: finite cost >= 0, broadcastable with ``acc``.
        base_cost: cost of the reference model, finite and > 0.
        lam: penalty weight, finite and >= 0.

    Returns:
        Float (scalars) or float array of the broadcast shape.

    Example:
        >>> penalised_score(0.92, 5.0, 50.0, 4.0)  # 0.92 - 4 * 0.1
        0.52
    """
    accuracy = _float_array("acc", acc)
    costs = _float_array("cost", cost)
    _require_finite("acc", accuracy)
    _require_finite("cost", costs)
    if np.any(costs < 0):
        raise ValueError(f"cost must be >= 0, got {costs.tolist()}")
    accuracy, costs = _broadcast(("acc", "cost"), (accuracy, costs))
    base = number("base_cost", base_cost, minimum=0.0, strict=True)
    weight = number("lam", lam, minimum=0.0)
    score = np.maximum(accuracy - weight * costs / base, 0.0)
    return float(score) if score.ndim == 0 else score


def width_fitness(acc, flops, base_flops, lam=4.0):
    """Fitness of a width gene, SPEC P3 Eq. 4.

    ``f(a) = max(Acc - lam * FLOPs(a) / FLOPs(uniform 1x), 0)`` with P3's
    ``lam = 4``; FLOPs = float FLOPs + binary FLOPs / 64. This is
    :func:`penalised_score` with FLOPs as the cost. ``Acc`` is the top-1
    accuracy **in percent**: P3 divides the FLOPs by the original network's
    "to get the same order of magnitude of accuracy", and with a fraction
    ``lam = 4`` would clip every network of P3's Table 1 to 0.

    Example (P3 Table 1: VGG-Auto-A, 92.17% at 11.3M FLOPs; uniform 1x 13.2M):
        >>> round(width_fitness(92.17, 11.3, 13.2), 3)  # 92.17 - 4 * 11.3 / 13.2
        88.746
    """
    return penalised_score(acc, flops, base_flops, lam)


# --------------------------------------------------------------------------
# P2: Zeroise rule and diversity regulariser
# --------------------------------------------------------------------------


def zeroise_select(alpha, zero_index, gamma):
    """Op kept on an edge at discretisation, SPEC P2 Eq. 4.

    ``argmax(alpha_z / gamma, alpha_op1, ..., alpha_opn)``: Zeroise's weight
    is divided by ``gamma >= 1`` before the argmax, so larger ``gamma`` keeps
    fewer zero edges. ``alpha`` are the edge's **softmax weights**, not
    logits, as in P2's code (dividing a negative logit by gamma would
    *raise* it). Only the order matters, so any non-negative weights work;
    they need not sum to 1. Ties go to the lowest original index.

    Args:
        alpha: non-negative finite weights, shape ``[K]``.
        zero_index: index of Zeroise in ``alpha``, or None when the op set
            has no zero op (plain argmax).
        gamma: finite float >= 1 (P2 Table 5; its code's default is 3).

    Returns:
        ``int``, the chosen op's index in ``alpha`` (``zero_index`` when
        Zeroise wins).

    Example:
        >>> zeroise_select([0.4, 0.35, 0.25], zero_index=0, gamma=1.0)
        0
        >>> zeroise_select([0.4, 0.35, 0.25], zero_index=0, gamma=3.0)
        1
    """
    weights = _float_array("alpha", alpha, ndim=1)
    _require_finite("alpha", weights)
    if np.any(weights < 0):
        raise ValueError(
            f"alpha must be softmax weights (>= 0), not logits: pass softmax(alpha); got {weights.tolist()}"
        )
    divisor = number("gamma", gamma, minimum=1.0)
    if zero_index is not None:
        if isinstance(zero_index, bool) or not isinstance(zero_index, (int, np.integer)):
            raise ValueError(f"zero_index must be an int or None, got {zero_index!r}")
        if not 0 <= zero_index < weights.size:
            raise ValueError(f"zero_index {zero_index} is out of range for {weights.size} ops")
        weights = weights.copy()
        weights[zero_index] /= divisor
    return int(np.argmax(weights))


def entropy(p):
    """Shannon entropy in nats over the last axis, as in SPEC P2 Eq. 5.

    ``H(p) = -sum_k p_k ln p_k`` with ``0 ln 0 = 0``. For P2's regulariser
    ``p = softmax(alpha)`` of one edge.

    Args:
        p: probabilities, shape ``[K]`` or ``[..., K]``; each row
            non-negative and summing to 1 (within 1e-5).

    Returns:
        ``float`` for one distribution, else an array of the leading shape.

    Example:
        >>> round(entropy([0.25, 0.25, 0.25, 0.25]), 6)  # ln 4
        1.386294
    """
    probabilities = _float_array("p", p, min_size=1)
    if probabilities.ndim == 0:
        raise ValueError(f"p must have at least one axis, got {p!r}")
    _require_finite("p", probabilities)
    if np.any(probabilities < 0):
        raise ValueError(f"p must be non-negative probabilities, got {probabilities.tolist()}")
    if not np.allclose(probabilities.sum(axis=-1), 1.0, rtol=0.0, atol=1e-5):
        raise ValueError(
            "p must sum to 1 over its last axis (pass softmax(alpha), not "
            f"alpha), got sums {probabilities.sum(axis=-1).tolist()}"
        )
    logs = np.log(np.where(probabilities > 0, probabilities, 1.0))
    result = -np.sum(probabilities * logs, axis=-1)
    return float(result) if result.ndim == 0 else result


# --------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------


def pareto_front(points):
    """Indices of the non-dominated (accuracy, cost) points, sorted by cost.

    Point i is dominated when another point j has ``acc_j >= acc_i`` and
    ``cost_j <= cost_i`` with at least one strict. Identical points do not
    dominate each other, so duplicates are all kept. Order: cost ascending,
    then accuracy descending, then index. O(n^2), meant for reports.

    Args:
        points: finite array-like of shape ``[n, 2]`` (n may be 0), rows
            ``(accuracy, cost)``.

    Returns:
        ``list`` of ``int``.

    Example:
        >>> pareto_front([(0.90, 10), (0.92, 20), (0.91, 25), (0.89, 12)])
        [0, 1]
    """
    array = _float_array("points", points, min_size=0)
    if array.size == 0:
        return []
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"points must have shape [n, 2] of (accuracy, cost), got {array.shape}")
    _require_finite("points", array)
    accuracy, cost = array[:, 0], array[:, 1]
    no_worse = (accuracy[None, :] >= accuracy[:, None]) & (cost[None, :] <= cost[:, None])
    better = (accuracy[None, :] > accuracy[:, None]) | (cost[None, :] < cost[:, None])
    dominated = np.any(no_worse & better, axis=1)
    front = np.flatnonzero(~dominated)
    # lexsort sorts by the last key first: cost, then -accuracy, then index.
    order = np.lexsort((front, -accuracy[front], cost[front]))
    return [int(index) for index in front[order]]
