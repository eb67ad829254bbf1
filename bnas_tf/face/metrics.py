"""Face verification metrics as pure numpy functions (SPEC P1 §4.4: LFW / CFP / AgeDB verification accuracy).

A verification pair is two images and a flag: same identity or not. A model
scores a pair by the cosine similarity of the two embeddings and calls it
"same" when the score reaches a threshold. The standard LFW protocol
(``pairs.txt``: 10 folds) reports the 10-fold accuracy: for each fold the
threshold is the one with the best accuracy on the other 9 folds, and the
accuracy is measured on the held-out fold; the result is the mean ± std
(population std, as the LFW/ArcFace evaluation code does) of the 10
accuracies. The ROC curve, its AUC and TAR@FAR (true accept rate at a false
accept rate) use all pairs.

Nothing here imports TensorFlow: embeddings and scores are numpy arrays.
"""

from __future__ import annotations

import numpy as np

DEFAULT_FOLDS = 10
DEFAULT_FAR = 1e-3

__all__ = [
    "accuracy_at",
    "auc",
    "best_threshold",
    "cosine_similarity",
    "fold_ids",
    "pair_scores",
    "roc_curve",
    "tar_at_far",
    "ten_fold_accuracy",
    "verification_summary",
]


def cosine_similarity(a, b) -> np.ndarray:
    """Row-wise cos(a_i, b_i) = a_i · b_i / (|a_i| |b_i|); a zero vector gives 0.

    >>> cosine_similarity([[1, 0], [1, 1]], [[1, 0], [-1, -1]]).tolist()
    [1.0, -1.0]
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.sum(a * b, axis=1)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def pair_scores(embeddings, left, right) -> np.ndarray:
    """Cosine similarity of every pair (``embeddings[left[i]]``, ``embeddings[right[i]]``)."""
    embeddings = np.asarray(embeddings)
    return cosine_similarity(embeddings[np.asarray(left)], embeddings[np.asarray(right)])


def accuracy_at(scores, same, threshold: float) -> float:
    """Share of pairs called right when "same" means ``score >= threshold``."""
    scores, same = np.asarray(scores, dtype=np.float64), np.asarray(same, dtype=bool)
    return float(np.mean((scores >= threshold) == same))


def candidate_thresholds(scores) -> np.ndarray:
    """Every threshold that splits the scores differently: the midpoints between consecutive distinct
    scores, plus one below the lowest (all "same") and one above the highest (all "different")."""
    values = np.unique(np.asarray(scores, dtype=np.float64))
    if values.size == 0:
        return np.array([0.0])
    return np.concatenate([[values[0] - 1.0], (values[:-1] + values[1:]) / 2.0, [values[-1] + 1.0]])


def best_threshold(scores, same) -> tuple[float, float]:
    """``(threshold, accuracy)``: the candidate threshold with the best accuracy; ties go to the lowest.

    At threshold t the right calls are the same pairs scoring >= t plus the different pairs below it; both
    counts come from sorted scores (``searchsorted``), so all candidates cost O(n log n), not O(n²).
    """
    scores, same = np.asarray(scores, dtype=np.float64), np.asarray(same, dtype=bool)
    thresholds = candidate_thresholds(scores)
    same_below = np.searchsorted(np.sort(scores[same]), thresholds, side="left")
    different_below = np.searchsorted(np.sort(scores[~same]), thresholds, side="left")
    accuracies = (int(same.sum()) - same_below + different_below) / max(len(scores), 1)
    best = int(np.argmax(accuracies))
    return float(thresholds[best]), float(accuracies[best])


def fold_ids(num_pairs: int, folds: int = DEFAULT_FOLDS) -> np.ndarray:
    """Fold of each pair when a pair list has none: ``folds`` contiguous blocks, in file order, as LFW's
    ``pairs.txt`` (and the ArcFace evaluation's unshuffled KFold) lay them out.

    >>> fold_ids(5, 2).tolist()
    [0, 0, 0, 1, 1]
    """
    if folds < 2 or num_pairs < folds:
        raise ValueError(
            f"{folds}-fold evaluation needs at least {max(folds, 2)} pairs and folds >= 2 "
            f"(got {num_pairs} pairs); write more pairs or lower the number of folds"
        )
    blocks = np.array_split(np.arange(num_pairs), folds)
    return np.concatenate([np.full(len(block), k, dtype=int) for k, block in enumerate(blocks)])


def ten_fold_accuracy(scores, same, folds=None) -> dict:
    """The LFW protocol: per fold, the best threshold on the other folds, the accuracy on this one.

    ``folds``: the fold id of every pair (``pairs.txt`` order), or None for :func:`fold_ids`'s 10 blocks.
    Returns ``mean``, ``std`` (population), the per-fold ``accuracies`` and ``thresholds``.

    >>> same = [True, False] * 10
    >>> scores = [0.9, 0.1] * 10
    >>> ten_fold_accuracy(scores, same)["mean"]
    1.0
    """
    scores, same = np.asarray(scores, dtype=np.float64), np.asarray(same, dtype=bool)
    folds = fold_ids(len(scores)) if folds is None else np.asarray(folds)
    if not (len(scores) == len(same) == len(folds)):
        raise ValueError(
            f"scores ({len(scores)}), same ({len(same)}) and folds ({len(folds)}) must have one entry per pair"
        )
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        test = folds == fold
        threshold, _ = best_threshold(scores[~test], same[~test])
        thresholds.append(threshold)
        accuracies.append(accuracy_at(scores[test], same[test], threshold))
    accuracies = np.array(accuracies)
    return {
        "mean": float(accuracies.mean()),
        "std": float(accuracies.std()),
        "accuracies": accuracies.tolist(),
        "thresholds": thresholds,
    }


def roc_curve(scores, same) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` with thresholds descending from +inf: at threshold t, tpr = share of same
    pairs with score >= t, fpr = share of different pairs with score >= t (scikit-learn's convention)."""
    scores, same = np.asarray(scores, dtype=np.float64), np.asarray(same, dtype=bool)
    positives, negatives = int(same.sum()), int((~same).sum())
    if not positives or not negatives:
        raise ValueError(
            f"a ROC curve needs same and different pairs; got {positives} same and {negatives} "
            "different: check the pair list's labels"
        )
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], same[order]
    last_of_value = np.r_[ranked[1:] != ranked[:-1], True]  # one point per distinct score, all its pairs in
    tp, fp = np.cumsum(hits)[last_of_value], np.cumsum(~hits)[last_of_value]
    thresholds = ranked[last_of_value]
    return (
        np.concatenate([[0.0], fp / negatives]),
        np.concatenate([[0.0], tp / positives]),
        np.concatenate([[np.inf], thresholds]),
    )


def auc(fpr, tpr) -> float:
    """Area under the ROC curve (trapezoids)."""
    fpr, tpr = np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def tar_at_far(scores, same, far: float = DEFAULT_FAR) -> dict:
    """TAR at FAR <= ``far``: the best true accept rate whose false accept rate is at most ``far``.

    Measurable only with at least 1/far different pairs (1000 for 1e-3); otherwise ``tar`` is None and
    ``reason`` says why. Returns ``tar``, ``far``, ``threshold``, ``reason``.
    """
    same = np.asarray(same, dtype=bool)
    negatives = int((~same).sum())
    needed = int(np.ceil(1.0 / far))
    if negatives < needed:
        return {
            "tar": None,
            "far": far,
            "threshold": None,
            "reason": f"FAR={far:g} needs at least {needed} different-identity pairs, the list has {negatives}",
        }
    fpr, tpr, thresholds = roc_curve(scores, same)
    ok = fpr <= far
    best = int(np.argmax(np.where(ok, tpr, -1.0)))
    return {"tar": float(tpr[best]), "far": far, "threshold": float(thresholds[best]), "reason": None}


def verification_summary(scores, same, folds=None, far: float = DEFAULT_FAR) -> dict:
    """Everything a report shows (JSON-able): 10-fold accuracy, the best threshold on all pairs with its
    (fpr, tpr) operating point, ROC + AUC, TAR@FAR."""
    protocol = ten_fold_accuracy(scores, same, folds)
    threshold, accuracy = best_threshold(scores, same)
    fpr, tpr, _ = roc_curve(scores, same)
    scores, same = np.asarray(scores, dtype=np.float64), np.asarray(same, dtype=bool)
    operating = {"fpr": float(np.mean(scores[~same] >= threshold)), "tpr": float(np.mean(scores[same] >= threshold))}
    return {
        "accuracy": protocol["mean"],
        "accuracy_std": protocol["std"],
        "fold_accuracies": protocol["accuracies"],
        "fold_thresholds": protocol["thresholds"],
        "threshold": threshold,
        "accuracy_at_threshold": accuracy,
        "operating_point": operating,
        "auc": auc(fpr, tpr),
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
        "tar_at_far": tar_at_far(scores, same, far),
        "num_pairs": int(len(same)),
        "same_pairs": int(same.sum()),
        "different_pairs": int((~same).sum()),
    }
