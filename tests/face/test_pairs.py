"""Pair lists: LFW pairs.txt (3- and 4-field lines, the 'folds pairs-per-fold' header), 'path1 path2 label'
lists, and malformed lines failing with the file, the line and the fix."""

import numpy as np
import pytest

from bnas_tf.face import pairs

LFW = """2 2
Abel_Pacheco 1 4
Akhmed_Zakayev 1 3
Abdel_Madi_Shabneh 1 Dean_Barker 1
Abdel_Madi_Shabneh 1 Giancarlo_Fisichella 1
Ana_Palacio 2 3
Ana_Palacio 1 2
Ben_Afflek 1 Ben_Curtis 3
Cara_Rogers 1 Daniel 2
"""


def _write(tmp_path, text, name="pairs.txt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_lfw_same_and_different_lines_with_folds_and_image_paths(tmp_path):
    path = _write(tmp_path, LFW)
    found = pairs.read_pairs(path, "/data/lfw")
    assert found.name == "pairs" and len(found) == 8
    assert found.same.tolist() == [True, True, False, False, True, True, False, False]
    assert found.folds.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert found.left[0] == "/data/lfw/Abel_Pacheco/Abel_Pacheco_0001.jpg"
    assert found.right[0] == "/data/lfw/Abel_Pacheco/Abel_Pacheco_0004.jpg"
    assert found.right[2] == "/data/lfw/Dean_Barker/Dean_Barker_0001.jpg"
    assert found.lines == (2, 3, 4, 5, 6, 7, 8, 9)
    assert pairs.read_pairs(path).left[0].startswith(str(tmp_path))  # default image root: the file's folder


def test_list_format_with_and_without_folds(tmp_path):
    text = "# CFP-style pairs\na/1.jpg b/1.jpg 0\n\na/1.jpg a/2.jpg 1  # same\n" + "x.png y.png 1\n" * 8
    found = pairs.read_pairs(_write(tmp_path, text, "cfp_fp.txt"), "/img")
    assert found.name == "cfp_fp" and len(found) == 10 and found.lines[:2] == (2, 4)
    assert found.same[:2].tolist() == [False, True] and found.left[0] == "/img/a/1.jpg"
    assert found.folds.tolist() == list(range(10))  # 10 contiguous folds of one pair
    with_folds = pairs.read_pairs(_write(tmp_path, "a b 1 0\nc d 0 0\ne f 1 1\ng h 0 1\n", "agedb.txt"))
    assert with_folds.folds.tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize(
    "text,fmt,message",
    [
        (
            "2 2\nAbel 1\n",
            "lfw",
            "pairs.txt line 2: 2 fields 'Abel 1'; each line is 'name n1 n2' (same person) or 'name1 n1 name2 n2'",
        ),
        (
            "1 1\nAbel 1 x\nA 1 B 1\n",
            "lfw",
            "pairs.txt line 2: image number 'x' in 'Abel 1 x' is not a positive integer",
        ),
        ("1 1\nAbel 1 0\nA 1 B 1\n", "lfw", "image number '0'"),
        (
            "2 2\n" + "A 1 2\n" * 3,
            "lfw",
            "header '2 2' (line 1) promises 2 folds x 4 lines = 8 pairs, the file has 3; "
            "fix the header or restore the missing lines",
        ),
        (
            "1 2\nA 1 2\nA 1 2\nA 1 2\nA 1 B 1\n",
            "lfw",
            "fold 1 (from line 2) has 3 same-person lines, the header says 2",
        ),
        ("Abel 1 2\n", "lfw", "line 1: expected the header 'folds pairs-per-fold' (e.g. '10 300')"),
        ("a.jpg b.jpg yes\n", "list", "pairs.txt line 1: label 'yes' must be 1 (same identity) or 0 (different)"),
        ("a.jpg b.jpg\n", "list", "line 1: 2 fields 'a.jpg b.jpg'; each line is 'path1 path2 label'"),
        ("a b 1 0\nc d 0\n", "list", "line 2: no fold, but other lines give one; give a fold on every line or on none"),
        ("a b 1 x\n", "list", "line 1: fold 'x' must be a non-negative integer"),
        ("# only a comment\n", "auto", "has no pairs"),
        (
            "a b 1\nc d 0\n",
            "list",
            "pairs.txt: 2 pairs cannot form the 10 folds of the verification protocol; write at "
            "least 10 pairs, or give every line a fold",
        ),
    ],
)
def test_malformed_lines_name_the_file_the_line_and_the_fix(tmp_path, text, fmt, message):
    with pytest.raises(ValueError) as info:
        pairs.read_pairs(_write(tmp_path, text), format=fmt)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_file_and_bad_spec(tmp_path):
    with pytest.raises(ValueError, match="cannot read pair list .*No such file"):
        pairs.read_pairs(str(tmp_path / "none.txt"))
    assert pairs.parse_spec("lfw=data/lfw/pairs.txt@data/lfw") == ("lfw", "data/lfw/pairs.txt", "data/lfw")
    assert pairs.parse_spec("cfp=cfp.txt") == ("cfp", "cfp.txt", None)
    with pytest.raises(ValueError, match="must be 'name=pairs_file' or 'name=pairs_file@image_root'"):
        pairs.parse_spec("data/lfw/pairs.txt")


def test_pairs_from_labels_balance_every_fold_and_respect_identities():
    labels = np.repeat(np.arange(5), 6)
    left, right, same, folds = pairs.pairs_from_labels(labels, 200, seed=3)
    assert len(same) == 200 and np.bincount(folds).tolist() == [20] * 10
    for fold in range(10):
        assert same[folds == fold].sum() == 10
    assert np.all((labels[left] == labels[right]) == same) and np.all(left[same] != right[same])
    again = pairs.pairs_from_labels(labels, 200, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((left, right, same, folds), again))
