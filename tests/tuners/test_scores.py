"""Hand-computed checks of bnas_tf.tuners.scores (SPEC P1, P2, P3, P4).

Every expected number is worked out in the comment beside it; the code is
only asked to agree with arithmetic done without it.
"""

import math

import numpy as np
import pytest

from bnas_tf.tuners import scores

NAN = float("nan")


# ---------------------------------------------------------------- P1 Eq. 7


def test_softmax_likelihood_two_ops():
    # exp(.5) / (exp(.5) + exp(.7)) = 1 / (1 + exp(.2)) = 1 / 2.221403 = 0.450166
    np.testing.assert_allclose(scores.softmax_likelihood([0.5, 0.7]), [0.450166, 0.549834], atol=1e-6)


def test_softmax_likelihood_is_stable_and_row_wise():
    # ln 1, ln 2, ln 3 shifted by 1000 -> [1, 2, 3] / 6; a naive exp overflows.
    row = 1000.0 + np.log([1.0, 2.0, 3.0])
    got = scores.softmax_likelihood(np.stack([row, [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(got, [[1 / 6, 2 / 6, 3 / 6], [1 / 3] * 3])


# ------------------------------------------------------------ P1 Eq. 8-9


def test_update_likelihood_k4_from_zero():
    # s_smaller = softmax([.5, .7]) = [0.450166, 0.549834]
    # s_larger = 0.5 * (max 0.549834 + mean 0.5) = 0.524917
    # s = 0.5 * 0 + ... -> [0.450166, 0.549834, 0.524917, 0.524917]
    got = scores.update_likelihood([0.0, 0.0, 0.0, 0.0], [0.5, 0.7, NAN, NAN], [True, True, False, False])
    np.testing.assert_allclose(got, [0.450166, 0.549834, 0.524917, 0.524917], atol=1e-6)


def test_update_likelihood_odd_k7_with_previous_s():
    # K = 7, |O_smaller| = ceil(7/2) = 4 at positions 0, 2, 4, 5 with mean
    # accuracies ln 1, ln 2, ln 3, ln 4, so softmax = [1, 2, 3, 4] / 10.
    # Eq. 8: s_larger = 0.5 * (0.4 + (0.1+0.2+0.3+0.4)/4) = 0.5 * 0.65 = 0.325
    # Eq. 9 with previous s = [0.2, 0.4, 0.2, 0.6, 0, 0.2, 1.0]:
    #   0: 0.1 + 0.1   = 0.2      1: 0.2 + 0.325 = 0.525
    #   2: 0.1 + 0.2   = 0.3      3: 0.3 + 0.325 = 0.625
    #   4: 0.0 + 0.3   = 0.3      5: 0.1 + 0.4   = 0.5
    #   6: 0.5 + 0.325 = 0.825
    mask = np.array([True, False, True, False, True, True, False])
    accuracy = np.full(7, NAN)  # unmeasured ops must not be read
    accuracy[mask] = np.log([1.0, 2.0, 3.0, 4.0])
    previous = [0.2, 0.4, 0.2, 0.6, 0.0, 0.2, 1.0]
    got = scores.update_likelihood(previous, accuracy, mask)
    np.testing.assert_allclose(got, [0.2, 0.525, 0.3, 0.625, 0.3, 0.5, 0.825])


def test_update_likelihood_all_ops_smaller_ucb_case():
    # O_smaller = O (P1's 1-bit search): softmax(ln [1, 1, 2]) = [.25, .25, .5]
    # s = 0.5 * [0.4, 0, 0.2] + [.25, .25, .5] = [0.45, 0.25, 0.6]
    got = scores.update_likelihood([0.4, 0.0, 0.2], np.log([1.0, 1.0, 2.0]), [True] * 3)
    np.testing.assert_allclose(got, [0.45, 0.25, 0.6])


def test_update_likelihood_does_not_modify_inputs():
    previous = np.array([0.2, 0.4])
    scores.update_likelihood(previous, [0.5, NAN], np.array([True, False]))
    np.testing.assert_array_equal(previous, [0.2, 0.4])


@pytest.mark.parametrize(
    "s, mean_acc, in_smaller, message",
    [
        ([0, 0], [0.5, 0.7, 0.1], [True, True], "shape of s"),
        ([0, 0], [0.5, 0.7], [True, True, False], "shape"),
        ([0, 0], [0.5, 0.7], [1, 0], "boolean mask"),
        ([0, 0], [0.5, 0.7], [False, False], "at least one op"),
        ([0, 0], [NAN, 0.7], [True, True], "finite"),
        ([NAN, 0], [0.5, 0.7], [True, True], "s must be finite"),
        ([[0, 0]], [[0.5, 0.7]], [[True, True]], "1-D"),
    ],
)
def test_update_likelihood_rejects(s, mean_acc, in_smaller, message):
    with pytest.raises(ValueError, match=message):
        scores.update_likelihood(s, mean_acc, in_smaller)


# --------------------------------------------------------------- P1 Eq. 10


def test_ucb_bonus_equal_counts():
    # 2 * sqrt(2 ln 12 / 3) = 2 * sqrt(2 * 2.484907 / 3) = 2 * 1.287091 = 2.574183
    got = scores.ucb_bonus([0.1, 0.2, 0.3, 0.4], 12, [3, 3, 3, 3])
    np.testing.assert_allclose(got, [2.674183, 2.774183, 2.874183, 2.974183], atol=1e-6)


def test_ucb_bonus_rarely_selected_op_gains_most():
    # N = 8, ln 8 = 2.079442, 2 ln 8 = 4.158883
    #   n = 1: 2 * sqrt(4.158883)     = 2 * 2.039334 = 4.078668
    #   n = 2: 2 * sqrt(2.079442)     = 2 * 1.442027 = 2.884054
    #   n = 4: 2 * sqrt(1.039721)     = 2 * 1.019667 = 2.039334
    # delta = 1 halves them.
    got = scores.ucb_bonus([0.0, 0.0, 0.0, 0.0], 8, [1, 2, 4, 1], delta=1.0)
    np.testing.assert_allclose(got, [2.039334, 1.442027, 1.019667, 2.039334], atol=1e-6)


def test_ucb_bonus_single_sample_has_no_bonus():
    # ln 1 = 0: one sample gives no confidence bonus.
    np.testing.assert_allclose(scores.ucb_bonus([0.3], 1, [1]), [0.3])


@pytest.mark.parametrize(
    "total, counts, delta, message",
    [
        (12, [3, 0, 3], 2.0, "at least once"),
        (0, [1, 1, 1], 2.0, "total_samples must be >= 1"),
        (-3, [1, 1, 1], 2.0, "total_samples must be >= 1"),
        (2, [1, 3, 1], 2.0, "exceeds total_samples"),
        (12, [3, 1.5, 3], 2.0, "whole counts"),
        (12, [3, 3], 2.0, "shape of s"),
        (12, [3, 3, 3], -1.0, "delta must be >= 0"),
        (float("inf"), [3, 3, 3], 2.0, "finite"),
    ],
)
def test_ucb_bonus_rejects(total, counts, delta, message):
    with pytest.raises(ValueError, match=message):
        scores.ucb_bonus([0.0, 0.0, 0.0], total, counts, delta=delta)


# --------------------------------------------------------------- P1 Eq. 11


def test_abandon_worst_ties_go_to_lowest_index():
    assert scores.abandon_worst([0.3, 0.1, 0.1, 0.5], [True] * 4) == 1


def test_abandon_worst_ignores_pruned_ops():
    # Op 1 (0.1) is already gone; of 0.3, 0.1, 0.5 the worst is op 2.
    mask = [True, False, True, True]
    assert scores.abandon_worst([0.3, 0.1, 0.1, 0.5], mask) == 2
    # A pruned op's score may be anything, even NaN.
    assert scores.abandon_worst([0.3, NAN, 0.2, 0.5], mask) == 2


def test_abandon_worst_per_edge():
    values = [[0.3, 0.1, 0.5], [0.2, 0.9, 0.4]]
    mask = [[True, True, True], [False, True, True]]
    # edge 0: min 0.1 at 1; edge 1 without op 0: min 0.4 at 2
    np.testing.assert_array_equal(scores.abandon_worst(values, mask), [1, 2])


def test_abandon_worst_infinite_remaining_beats_masked():
    assert scores.abandon_worst([np.inf, 0.0], [True, False]) == 0


@pytest.mark.parametrize(
    "values, mask, message",
    [
        ([0.1, 0.2], [False, False], "at least one op"),
        ([0.1, 0.2], [True], "shape"),
        ([0.1, 0.2], [1, 1], "boolean mask"),
        ([NAN, 0.2], [True, True], "NaN"),
        ([[[0.1]]], [[[True]]], r"\[K\] or \[edges, K\]"),
    ],
)
def test_abandon_worst_rejects(values, mask, message):
    with pytest.raises(ValueError, match=message):
        scores.abandon_worst(values, mask)


# ----------------------------------------------------------------- P4 Eq. 1


def test_child_parent_score_beta_zero_is_child_accuracy():
    got = scores.child_parent_score([0.6, 0.8], [0.9, 0.85], 0.0)
    np.testing.assert_allclose(got, [0.6, 0.8])


def test_child_parent_score_beta_two():
    # 0.6 + 2 * (0.9 - 0.6) = 1.2;  0.8 + 2 * (0.85 - 0.8) = 0.9
    got = scores.child_parent_score([0.6, 0.8], [0.9, 0.85], 2.0)
    np.testing.assert_allclose(got, [1.2, 0.9])


def test_child_parent_score_scalar_and_broadcast():
    # ImageNet beta 0.33: 0.5 + 0.33 * 0.1 = 0.533
    assert scores.child_parent_score(0.5, 0.6, 0.33) == pytest.approx(0.533)
    # one parent against two children: 0.5 + 0.5*(0.7-0.5) = 0.6; 0.6 + 0.5*0.1 = 0.65
    np.testing.assert_allclose(scores.child_parent_score([0.5, 0.6], 0.7, 0.5), [0.6, 0.65])


@pytest.mark.parametrize(
    "child, parent, beta, message",
    [
        ([0.5, 0.6], [0.7, 0.8, 0.9], 2.0, "do not broadcast"),
        ([0.5, NAN], [0.7, 0.8], 2.0, "acc_child must be finite"),
        ([0.5, 0.6], [0.7, 0.8], NAN, "beta must be finite"),
        ([0.5, 0.6], ["a", 0.8], 2.0, "numeric"),
    ],
)
def test_child_parent_score_rejects(child, parent, beta, message):
    with pytest.raises(ValueError, match=message):
        scores.child_parent_score(child, parent, beta)


# ----------------------------------------------------------------- P3 Eq. 4


def test_width_fitness_penalises_relative_flops():
    # accuracy in percent: 92 - 4 * 5 / 50 = 92 - 0.4 = 91.6
    assert scores.width_fitness(92.0, 5.0, 50.0) == pytest.approx(91.6)


def test_width_fitness_clips_at_zero():
    # 1.5 - 4 * 25 / 50 = -0.5 -> 0;  90 - 4 * 10 / 50 = 89.2
    got = scores.width_fitness([1.5, 90.0], [25.0, 10.0], 50.0)
    np.testing.assert_allclose(got, [0.0, 89.2])


def test_penalised_score_any_cost_and_weight():
    # memory: 0.8 - 0.5 * 2 / 4 = 0.55;  lam 0 leaves accuracy alone
    assert scores.penalised_score(0.8, 2.0, 4.0, 0.5) == pytest.approx(0.55)
    assert scores.penalised_score(0.8, 2.0, 4.0, 0.0) == pytest.approx(0.8)


@pytest.mark.parametrize(
    "acc, cost, base, lam, message",
    [
        (0.9, 10.0, 0.0, 4.0, "base_cost must be > 0"),
        (0.9, 10.0, -5.0, 4.0, "base_cost must be > 0"),
        (0.9, -1.0, 50.0, 4.0, "cost must be >= 0"),
        (0.9, 10.0, 50.0, -1.0, "lam must be >= 0"),
        (NAN, 10.0, 50.0, 4.0, "acc must be finite"),
        ([0.9, 0.8], [1.0, 2.0, 3.0], 50.0, 4.0, "do not broadcast"),
    ],
)
def test_penalised_score_rejects(acc, cost, base, lam, message):
    with pytest.raises(ValueError, match=message):
        scores.penalised_score(acc, cost, base, lam)


# ----------------------------------------------------------------- P2 Eq. 4


def test_zeroise_gamma_changes_the_choice():
    weights = [0.4, 0.35, 0.25]  # Zeroise at 0
    # gamma 1: max(0.4, 0.35, 0.25) -> Zeroise;  gamma 3: 0.4/3 = 0.133 < 0.35
    assert scores.zeroise_select(weights, zero_index=0, gamma=1.0) == 0
    assert scores.zeroise_select(weights, zero_index=0, gamma=3.0) == 1


def test_zeroise_in_the_middle_returns_original_index():
    weights = [0.1, 0.5, 0.4]  # Zeroise at 1
    assert scores.zeroise_select(weights, zero_index=1, gamma=1.0) == 1
    # 0.5 / 2 = 0.25 < 0.4 -> op 2
    assert scores.zeroise_select(weights, zero_index=1, gamma=2.0) == 2


def test_zeroise_none_is_plain_argmax_and_ties_lowest():
    assert scores.zeroise_select([0.2, 0.5, 0.3], zero_index=None, gamma=5.0) == 1
    # 0.6 / 2 = 0.3 ties op 1: lowest index (Zeroise) wins
    assert scores.zeroise_select([0.6, 0.3, 0.1], zero_index=0, gamma=2.0) == 0


@pytest.mark.parametrize(
    "weights, zero_index, gamma, message",
    [
        ([0.5, 0.5], 0, 0.5, "gamma must be >= 1"),
        ([-1.0, 2.0], 0, 3.0, "not logits"),
        ([0.5, 0.5], 2, 3.0, "out of range"),
        ([0.5, 0.5], -1, 3.0, "out of range"),
        ([0.5, 0.5], 0.0, 3.0, "int or None"),
        ([0.5, 0.5], True, 3.0, "int or None"),
        ([[0.5, 0.5]], 0, 3.0, "1-D"),
    ],
)
def test_zeroise_select_rejects(weights, zero_index, gamma, message):
    with pytest.raises(ValueError, match=message):
        scores.zeroise_select(weights, zero_index, gamma)


# ----------------------------------------------------------------- P2 Eq. 5


def test_diversity_weight_decays():
    assert scores.diversity_weight(0) == 1.0
    # exp(-7.7 / 7.7) = e^-1 = 0.367879
    assert scores.diversity_weight(7.7) == pytest.approx(0.367879, abs=1e-6)
    # 0.5 * exp(-2) = 0.5 * 0.135335 = 0.067668
    assert scores.diversity_weight(15.4, lam=0.5) == pytest.approx(0.067668, abs=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(epoch=-1), "epoch must be >= 0"),
        (dict(epoch=1, tau=0.0), "tau must be > 0"),
        (dict(epoch=1, lam=-1.0), "lam must be >= 0"),
        (dict(epoch="one"), "epoch must be a number"),
    ],
)
def test_diversity_weight_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        scores.diversity_weight(**kwargs)


def test_entropy_by_hand():
    # uniform over 4: ln 4 = 1.386294;  one-hot: 0 (0 ln 0 = 0)
    assert scores.entropy([0.25] * 4) == pytest.approx(math.log(4))
    assert scores.entropy([1.0, 0.0]) == 0.0
    # 0.5 ln 2 + 2 * 0.25 ln 4 = 0.5 ln 2 + ln 2 = 1.5 ln 2 = 1.039721
    np.testing.assert_allclose(
        scores.entropy([[0.5, 0.25, 0.25], [1 / 3] * 3]),
        [1.039721, math.log(3)],
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "p, message",
    [
        ([0.5, 0.6], "sum to 1"),
        ([1.5, -0.5], "non-negative"),
        (0.5, "at least one axis"),
        ([NAN, 1.0], "finite"),
    ],
)
def test_entropy_rejects(p, message):
    with pytest.raises(ValueError, match=message):
        scores.entropy(p)


# ------------------------------------------------------------------ reports


def test_pareto_front_hand_made_set():
    points = [
        (0.90, 10.0),  # 0: cheapest with the best accuracy at that cost
        (0.92, 20.0),  # 1: front
        (0.91, 25.0),  # 2: dominated by 1 (less accurate, dearer)
        (0.89, 12.0),  # 3: dominated by 0
        (0.95, 40.0),  # 4: front (most accurate)
        (0.92, 30.0),  # 5: dominated by 1 (same accuracy, dearer)
        (0.85, 5.0),  # 6: front (cheapest)
    ]
    assert scores.pareto_front(points) == [6, 0, 1, 4]


def test_pareto_front_keeps_duplicates_and_empty():
    assert scores.pareto_front([(0.9, 10.0), (0.9, 10.0), (0.8, 10.0)]) == [0, 1]
    assert scores.pareto_front([]) == []


@pytest.mark.parametrize(
    "points, message",
    [
        ([(0.9, 10.0, 1.0)], r"\[n, 2\]"),
        ([0.9, 10.0], r"\[n, 2\]"),
        ([(0.9, NAN)], "finite"),
    ],
)
def test_pareto_front_rejects(points, message):
    with pytest.raises(ValueError, match=message):
        scores.pareto_front(points)


# ------------------------------------------------------- shapes at the boundary


@pytest.mark.parametrize("value", [5.0, []])
def test_softmax_likelihood_rejects_empty_or_scalar(value):
    with pytest.raises(ValueError, match="mean_scores"):
        scores.softmax_likelihood(value)


def test_softmax_likelihood_rejects_non_finite():
    with pytest.raises(ValueError, match="finite"):
        scores.softmax_likelihood([0.1, float("inf")])
