"""`bnas-tf run --recipe bnas_face` end to end on digits-as-identities: search scored by verification, ArcFace
retraining, 10-fold verification of Keras and .tflite embeddings, the cosine check, the report's ROC section."""

import json
import os

import pytest
from test_run_command import _assert_real_png, _main, _set

FACE_FILES = (
    "genotype.json",
    "model.keras",
    "model.tflite",
    "metrics.json",
    "report.md",
    "verification.json",
    "roc.png",
    "accuracy.png",
    "search_progress.png",
)


def _check_run(run_dir):
    for name in FACE_FILES:
        assert os.path.isfile(os.path.join(run_dir, name)), name
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    verification = json.load(open(os.path.join(run_dir, "verification.json")))
    assert metrics["task"] == "face_verification" and metrics["search"]["strategy"] == "face_operation_pruning"
    keras, tflite = verification["keras"]["test"], verification["tflite"]["test"]
    assert len(keras["fold_accuracies"]) == 10 and 0.0 <= keras["accuracy"] <= 1.0
    assert keras["tar_at_far"]["tar"] is None and "different-identity pairs" in keras["tar_at_far"]["reason"]
    report = open(os.path.join(run_dir, "report.md")).read()
    assert "## Face verification" in report and "](roc.png)" in report and f"{keras['threshold']:.4f}" in report
    _assert_real_png(os.path.join(run_dir, "roc.png"))
    return metrics, keras, tflite


def test_toy_face_run_writes_verification_roc_and_tflite(tmp_path):
    run_dir = str(tmp_path / "face")
    status, out, err = _main(["run", "--recipe", "bnas_face", *_set("bnas_face"), "--output", run_dir])
    assert status == 0, err
    metrics, keras, _ = _check_run(run_dir)
    assert metrics["tflite"]["verified_on"] == {"test": 60} and metrics["tflite"]["min_cosine"] > 0.9
    assert metrics["keras"]["verification"]["test"]["num_pairs"] == 100
    assert "verification_accuracy" in out and "verification accuracy (10-fold) test Keras" in out
    status, _, err = _main(["report", run_dir])  # redraws the ROC from the folder alone
    assert status == 0, err
    status, out, err = _main(
        [
            "convert",
            run_dir,
            "-o",
            str(tmp_path / "again.tflite"),
            "--verify-on",
            "digits",
            "--embedding",
            "--max-samples",
            "64",
            "--min-cosine",
            "0.9",
        ]
    )
    assert status == 0, err
    assert "verify on digits (64 samples): embedding cosine similarity min" in out


@pytest.mark.slow
def test_quick_profile_completes_on_digits_as_identities(tmp_path):
    run_dir = str(tmp_path / "quick")
    status, out, err = _main(["run", "--recipe", "bnas_face", "--output", run_dir])
    assert status == 0, err
    metrics, keras, tflite = _check_run(run_dir)
    assert keras["accuracy"] > 0.8 and abs(tflite["accuracy"] - keras["accuracy"]) <= 0.01
    assert metrics["tflite"]["min_cosine"] >= 0.999 and metrics["tflite"]["verified_on"] == {"test": 256}
