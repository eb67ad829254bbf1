"""Verification pair lists: LFW's ``pairs.txt`` and simple ``path1 path2 label`` lists (SPEC P1 §4.4).

**LFW** (``pairs.txt``, ``format="lfw"``): a header ``F P`` (``10 300``: F folds, each of P same-person
and P different-person lines), then per fold

- ``name n1 n2``: same person, images ``name/name_000n1.jpg`` and ``name/name_000n2.jpg``;
- ``name1 n1 name2 n2``: different people.

**List** (``format="list"``, for CFP, AgeDB or your own pairs): one pair per line,
``path1 path2 label [fold]``, label ``1`` = same identity, ``0`` = different; paths relative to the
image root (default: the list's folder); an optional 4th field gives the fold (0-based, on every line
or none); without it the pairs form 10 contiguous folds in file order. CFP-FP's ``Protocol/Split``
files and AgeDB-30's pairs convert to this by writing one line per pair. ``#`` starts a comment;
blank lines are skipped. ``format="auto"`` reads a first line of one or two integers as an LFW header.

Everything here is plain Python and numpy; decoding the images is :mod:`bnas_tf.face.data`'s job.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from bnas_tf.face.metrics import DEFAULT_FOLDS, fold_ids, pair_scores, ten_fold_accuracy, verification_summary

FORMATS = ("auto", "lfw", "list")
LFW_EXTENSION = ".jpg"
_LFW_FIX = (
    "each line is 'name n1 n2' (same person) or 'name1 n1 name2 n2' (different people) after a "
    "'folds pairs-per-fold' header such as '10 300'"
)
_LIST_FIX = "each line is 'path1 path2 label' or 'path1 path2 label fold', label 1 (same identity) or 0 (different)"


@dataclasses.dataclass(frozen=True)
class PairList:
    """Pairs read from a file: image paths, same-identity flags, folds and the line each pair came from."""

    name: str
    source: str
    left: tuple
    right: tuple
    same: np.ndarray
    folds: np.ndarray
    lines: tuple

    def __len__(self):
        return len(self.same)


@dataclasses.dataclass(frozen=True)
class PairSet:
    """Decoded pairs: ``images`` (N, H, W, C) float32 in [-1, 1], and per pair the indices of its two
    images, whether they show the same identity and its fold."""

    name: str
    images: np.ndarray
    left: np.ndarray
    right: np.ndarray
    same: np.ndarray
    folds: np.ndarray

    def __len__(self):
        return len(self.same)

    def scores(self, embeddings) -> np.ndarray:
        """Cosine similarity of every pair, given one embedding per image of ``images``."""
        return pair_scores(embeddings, self.left, self.right)

    def summary(self, embeddings, far=None) -> dict:
        """:func:`~bnas_tf.face.metrics.verification_summary` of these pairs for ``embeddings``."""
        kwargs = {} if far is None else {"far": far}
        return {"name": self.name, **verification_summary(self.scores(embeddings), self.same, self.folds, **kwargs)}

    def accuracy(self, embeddings) -> float:
        """The 10-fold verification accuracy (mean over folds) of ``embeddings``."""
        return ten_fold_accuracy(self.scores(embeddings), self.same, self.folds)["mean"]


class PairsFormatError(ValueError):
    """A pair list line that does not parse; the message names the file, the line and the expected layout."""


def _content_lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            raw = f.read().splitlines()
    except OSError as error:
        raise ValueError(
            f"cannot read pair list {path!r}: {error.strerror}; pass the path of a pairs.txt or "
            f"'path1 path2 label' file"
        ) from None
    out = []
    for number, line in enumerate(raw, start=1):
        text = line.split("#", 1)[0].strip()
        if text:
            out.append((number, text.split()))
    if not out:
        raise ValueError(f"pair list {path!r} has no pairs; {_LIST_FIX}")
    return out


def _is_header(fields) -> bool:
    return 1 <= len(fields) <= 2 and all(f.isdigit() for f in fields)


def _lfw_number(path, number, text, line) -> int:
    if not text.isdigit() or int(text) < 1:
        raise PairsFormatError(
            f"{path} line {number}: image number {text!r} in {' '.join(line)!r} is not a positive integer; {_LFW_FIX}"
        )
    return int(text)


def lfw_image(root, name, index, extension=LFW_EXTENSION) -> str:
    """LFW's file name of image ``index`` of ``name``: ``root/name/name_0003.jpg``."""
    return os.path.join(root, name, f"{name}_{index:04d}{extension}")


def parse_lfw(path, image_root=None, *, name=None, extension=LFW_EXTENSION) -> PairList:
    """Read LFW's ``pairs.txt`` (header ``folds pairs-per-fold``, 3-field same / 4-field different lines)."""
    root = os.path.dirname(os.path.abspath(path)) if image_root is None else os.fspath(image_root)
    lines = _content_lines(path)
    (header_line, header), body = lines[0], lines[1:]
    if not _is_header(header):
        raise PairsFormatError(
            f"{path} line {header_line}: expected the header 'folds pairs-per-fold' (e.g. "
            f"'10 300'), got {' '.join(header)!r}; add the header line, or read the file with "
            "format='list' if it is a 'path1 path2 label' list"
        )
    folds, per_fold = (int(header[0]), int(header[1])) if len(header) == 2 else (1, int(header[0]))
    if folds < 1 or per_fold < 1:
        raise PairsFormatError(
            f"{path} line {header_line}: header {' '.join(header)!r} must give folds >= 1 and "
            "pairs-per-fold >= 1, e.g. '10 300'"
        )
    left, right, same, numbers = [], [], [], []
    for number, fields in body:
        if len(fields) == 3:
            person, a, b = fields
            left.append(lfw_image(root, person, _lfw_number(path, number, a, fields), extension))
            right.append(lfw_image(root, person, _lfw_number(path, number, b, fields), extension))
            same.append(True)
        elif len(fields) == 4:
            first, a, second, b = fields
            left.append(lfw_image(root, first, _lfw_number(path, number, a, fields), extension))
            right.append(lfw_image(root, second, _lfw_number(path, number, b, fields), extension))
            same.append(False)
        else:
            raise PairsFormatError(f"{path} line {number}: {len(fields)} fields {' '.join(fields)!r}; {_LFW_FIX}")
        numbers.append(number)
    expected = folds * 2 * per_fold
    if len(body) != expected:
        raise PairsFormatError(
            f"{path}: header {' '.join(header)!r} (line {header_line}) promises {folds} folds x "
            f"{2 * per_fold} lines = {expected} pairs, the file has {len(body)}; fix the header "
            "or restore the missing lines"
        )
    fold_of = np.repeat(np.arange(folds), 2 * per_fold)
    same = np.array(same, dtype=bool)
    for fold in range(folds):
        count = int(same[fold_of == fold].sum())
        if count != per_fold:
            first_line = numbers[fold * 2 * per_fold]
            raise PairsFormatError(
                f"{path}: fold {fold + 1} (from line {first_line}) has {count} same-person lines, "
                f"the header says {per_fold} same and {per_fold} different per fold; fix the "
                "lines or the header"
            )
    if folds == 1:
        fold_of = _default_folds(path, len(same))
    return PairList(
        name or _default_name(path), os.fspath(path), tuple(left), tuple(right), same, fold_of, tuple(numbers)
    )


def parse_list(path, image_root=None, *, name=None) -> PairList:
    """Read a ``path1 path2 label [fold]`` pair list (CFP, AgeDB or your own)."""
    root = os.path.dirname(os.path.abspath(path)) if image_root is None else os.fspath(image_root)
    left, right, same, folds, numbers = [], [], [], [], []
    for number, fields in _content_lines(path):
        if len(fields) not in (3, 4):
            raise PairsFormatError(f"{path} line {number}: {len(fields)} fields {' '.join(fields)!r}; {_LIST_FIX}")
        if fields[2] not in ("0", "1"):
            raise PairsFormatError(
                f"{path} line {number}: label {fields[2]!r} must be 1 (same identity) or 0 (different); {_LIST_FIX}"
            )
        if len(fields) == 4 and not fields[3].isdigit():
            raise PairsFormatError(
                f"{path} line {number}: fold {fields[3]!r} must be a non-negative integer; {_LIST_FIX}"
            )
        left.append(os.path.join(root, fields[0]))
        right.append(os.path.join(root, fields[1]))
        same.append(fields[2] == "1")
        folds.append(int(fields[3]) if len(fields) == 4 else None)
        numbers.append(number)
    given = [f is not None for f in folds]
    if any(given) and not all(given):
        line = numbers[given.index(False)]
        raise PairsFormatError(
            f"{path} line {line}: no fold, but other lines give one; give a fold on every line "
            "or on none (then the pairs form 10 folds in file order)"
        )
    fold_of = np.array(folds, dtype=int) if all(given) else _default_folds(path, len(same))
    return PairList(
        name or _default_name(path),
        os.fspath(path),
        tuple(left),
        tuple(right),
        np.array(same, dtype=bool),
        fold_of,
        tuple(numbers),
    )


def read_pairs(path, image_root=None, *, format="auto", name=None, extension=LFW_EXTENSION) -> PairList:
    """Read a pair list in ``format`` ("lfw", "list" or "auto": an integer header line means LFW);
    ``extension``: the image files' suffix in the LFW layout."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)} (got {format!r})")
    path = os.fspath(path)
    if format == "auto":
        format = "lfw" if _is_header(_content_lines(path)[0][1]) else "list"
    if format == "lfw":
        return parse_lfw(path, image_root, name=name, extension=extension)
    return parse_list(path, image_root, name=name)


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """A recipe's pair-list entry ``name=pairs_file[@image_root]`` -> ``(name, pairs_file, image_root)``."""
    name, sep, rest = str(spec).partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise ValueError(
            f"pair list {spec!r} must be 'name=pairs_file' or 'name=pairs_file@image_root', e.g. "
            "'lfw=data/lfw/pairs.txt@data/lfw'"
        )
    path, _, root = rest.partition("@")
    return name.strip(), path.strip(), (root.strip() or None)


def _default_folds(path, count):
    if count < DEFAULT_FOLDS:
        raise PairsFormatError(
            f"{path}: {count} pairs cannot form the {DEFAULT_FOLDS} folds of the verification "
            f"protocol; write at least {DEFAULT_FOLDS} pairs, or give every line a fold"
        )
    return fold_ids(count, DEFAULT_FOLDS)


def _default_name(path) -> str:
    return os.path.splitext(os.path.basename(os.fspath(path)))[0]


def pairs_from_labels(labels, num_pairs: int, *, folds: int = DEFAULT_FOLDS, seed: int = 0):
    """Seeded verification pairs among labelled images: ``(left, right, same, folds)`` index arrays.

    Each fold holds as many same-identity as different-identity pairs (LFW's balance); a same pair is two
    distinct images of one identity, a different pair two images of two identities. Used to build held-out
    pairs from an identity dataset (the embedded digits: each digit an identity).
    """
    labels = np.asarray(labels)
    identities, counts = np.unique(labels, return_counts=True)
    repeated = identities[counts >= 2]
    if len(identities) < 2 or not len(repeated):
        raise ValueError(
            f"pairs need at least 2 identities and one with 2 or more images (got {len(identities)} "
            f"identities, {len(repeated)} with 2+ images); hold out more images"
        )
    per_fold = max(1, num_pairs // (2 * folds))
    rng = np.random.default_rng(seed)
    members = {identity: np.flatnonzero(labels == identity) for identity in identities}
    left, right, same, fold_of = [], [], [], []
    for fold in range(folds):
        for _ in range(per_fold):
            a, b = rng.choice(members[rng.choice(repeated)], 2, replace=False)
            left.append(a), right.append(b), same.append(True), fold_of.append(fold)
        for _ in range(per_fold):
            first, second = rng.choice(identities, 2, replace=False)
            left.append(rng.choice(members[first])), right.append(rng.choice(members[second]))
            same.append(False), fold_of.append(fold)
    return np.array(left), np.array(right), np.array(same, dtype=bool), np.array(fold_of)
