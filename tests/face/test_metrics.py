"""Verification metrics (pure numpy, loaded without TensorFlow) against numbers worked out by hand."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

PATH = os.path.join(os.path.dirname(__file__), "..", "..", "bnas_tf", "face", "metrics.py")
_spec = importlib.util.spec_from_file_location("face_metrics_standalone", PATH)
metrics = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(metrics)


def test_module_needs_no_tensorflow():
    code = (
        "import importlib.util, sys; s = importlib.util.spec_from_file_location('m', sys.argv[1]); "
        "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); "
        "m.ten_fold_accuracy([0.9, 0.1] * 10, [True, False] * 10); print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code, PATH], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _hand_example():
    """10 folds of 2 pairs (one same, one different): same pairs score 0.9 and different pairs 0.1, except
    fold 3, whose same pair scores 0.05 (below every different pair)."""
    same = np.array([True, False] * 10)
    scores = np.where(same, 0.9, 0.1)
    scores[6] = 0.05  # fold 3's same pair
    folds = np.repeat(np.arange(10), 2)
    return scores, same, folds


def test_ten_fold_protocol_matches_the_hand_computed_example():
    # Folds != 3: the other 9 folds hold the 0.05 outlier; candidates are -0.95, 0.075, 0.5, 1.9 with training
    # accuracies 9/18, 8/18, 17/18, 9/18 -> threshold 0.5, and the held-out fold (0.9 same, 0.1 different) is 2/2.
    # Fold 3: the other folds are separable, threshold 0.5 (18/18); its 0.05 same pair is missed -> 1/2.
    # mean = (9 * 1 + 0.5) / 10 = 0.95; std = sqrt((9 * 0.05^2 + 0.45^2) / 10) = 0.15.
    scores, same, folds = _hand_example()
    result = metrics.ten_fold_accuracy(scores, same, folds)
    assert result["accuracies"] == [1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert result["thresholds"] == pytest.approx([0.5] * 10)
    assert result["mean"] == pytest.approx(0.95)
    assert result["std"] == pytest.approx(0.15)


def test_threshold_is_chosen_on_the_other_folds_not_the_test_fold():
    # Fold 0's own best threshold would be 0.65 (both right); the other folds put it at 0.35, which fold 0 gets wrong
    same = np.array([True, False] * 10)
    scores = np.where(same, 0.4, 0.3)
    scores[0], scores[1] = 0.7, 0.6
    result = metrics.ten_fold_accuracy(scores, same, np.repeat(np.arange(10), 2))
    assert result["thresholds"][0] == pytest.approx(0.35) and result["accuracies"][0] == 0.5
    assert result["mean"] == pytest.approx(0.95)


def test_best_threshold_ties_go_to_the_lowest_candidate():
    threshold, accuracy = metrics.best_threshold([0.2, 0.4, 0.6, 0.8], [False, True, False, True])
    # candidates -0.8 (2/4), 0.3 (3/4), 0.5 (2/4), 0.7 (3/4), 1.8 (2/4)
    assert (threshold, accuracy) == (pytest.approx(0.3), 0.75)


def test_best_threshold_is_the_best_of_every_candidate():
    rng = np.random.default_rng(0)
    scores = np.round(rng.uniform(-1, 1, 300), 2)  # rounded: many tied scores
    same = rng.uniform(size=300) < scores / 2 + 0.5
    accuracies = [metrics.accuracy_at(scores, same, t) for t in metrics.candidate_thresholds(scores)]
    threshold, accuracy = metrics.best_threshold(scores, same)
    assert accuracy == pytest.approx(max(accuracies))
    assert threshold == pytest.approx(metrics.candidate_thresholds(scores)[int(np.argmax(accuracies))])
    assert metrics.accuracy_at(scores, same, threshold) == pytest.approx(accuracy)


def test_roc_curve_and_auc_by_hand():
    fpr, tpr, thresholds = metrics.roc_curve([0.9, 0.8, 0.7, 0.6], [True, False, True, False])
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert thresholds[0] == np.inf and thresholds[1:].tolist() == [0.9, 0.8, 0.7, 0.6]
    assert metrics.auc(fpr, tpr) == pytest.approx(0.75)  # 3 of the 4 (same, different) pairs ranked right


def test_roc_groups_tied_scores_into_one_point():
    fpr, tpr, _ = metrics.roc_curve([0.5, 0.5, 0.1], [True, False, False])
    assert fpr.tolist() == [0.0, 0.5, 1.0] and tpr.tolist() == [0.0, 1.0, 1.0]


def test_tar_at_far_needs_enough_different_pairs():
    small = metrics.tar_at_far([0.9, 0.1], [True, False], far=1e-3)
    assert small["tar"] is None and "needs at least 1000 different-identity pairs, the list has 1" in small["reason"]
    rng = np.random.default_rng(0)
    same = np.r_[np.ones(100, bool), np.zeros(1000, bool)]
    scores = np.r_[rng.uniform(0.5, 1.0, 100), rng.uniform(0.0, 0.6, 1000)]
    scores[100] = 0.99  # one different pair above every same pair but one: FAR 1/1000 allows accepting it
    result = metrics.tar_at_far(scores, same, far=1e-3)
    assert result["reason"] is None
    assert result["tar"] == pytest.approx(np.mean(scores[:100] >= result["threshold"]))
    assert np.mean(scores[100:] >= result["threshold"]) <= 1e-3


def test_cosine_and_fold_ids():
    assert metrics.cosine_similarity([[3, 4], [0, 0]], [[6, 8], [1, 0]]).tolist() == [1.0, 0.0]
    assert metrics.fold_ids(23, 10).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] + [k for k in range(3, 10) for _ in (0, 1)]
    with pytest.raises(ValueError, match="needs at least 10 pairs"):
        metrics.fold_ids(5)


def test_summary_is_json_ready():
    import json

    scores, same, folds = _hand_example()
    summary = metrics.verification_summary(scores, same, folds)
    json.dumps(summary)
    assert summary["accuracy"] == pytest.approx(0.95) and summary["accuracy_std"] == pytest.approx(0.15)
    assert summary["threshold"] == pytest.approx(0.5) and summary["tar_at_far"]["tar"] is None
    assert summary["same_pairs"] == summary["different_pairs"] == 10
