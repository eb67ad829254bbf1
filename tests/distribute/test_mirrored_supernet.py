"""Data-parallel supernet training under MirroredStrategy on two logical CPU devices.

The devices must be configured before TensorFlow starts, so the checks run in a subprocess
(``replica_checks.py``) that prints their results as JSON.
"""

import json
import os
import subprocess
import sys

import pytest

CHECKS = os.path.join(os.path.dirname(__file__), "replica_checks.py")


def _checks(*arguments):
    run = subprocess.run(
        [sys.executable, CHECKS, *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_two_replicas_train_as_one_device_and_leave_masked_ops_untouched(tmp_path):
    result = _checks("steps", str(tmp_path))
    assert result["replicas"] == 2
    # same weights, sharded evaluation of 23 rows a path (padded to 24): the same correct counts exactly
    one_device, mirrored = result["evaluated"]
    assert one_device == mirrored
    # 3 path-mode steps (with P4's kernel-level loss), then 3 mixed-mode weight steps each after an α step,
    # with synchronized BatchNorm:
    # every replica's copy of every weight, momentum buffer, BatchNorm statistic, α and Adam slot equals one
    # device's up to float sums in another order (rtol 1e-5, atol 1e-6), and so do the reported losses
    assert result["weights_close"], result["worst_difference"]
    assert result["losses"][1] == pytest.approx(result["losses"][0], rel=1e-5, abs=1e-6)
    assert result["features_close"] and result["features_shape"][1] == 10  # pair features: host copy, sync BN
    assert result["checkpoint_restored"]  # every replica's copy of the search state comes back from a checkpoint
    # the path-mode filler and mixed mode's abandoned op: weights, BatchNorm statistics and momentum of every
    # replica's copy bit-identical, with per-replica (default) and synchronized BatchNorm
    assert result["frozen_bit_identical"] and result["per_replica_frozen_bit_identical"]
    assert len(result["per_replica_losses"]) == 6
    assert all(loss == loss and abs(loss) < 1e3 for loss in result["per_replica_losses"])
    # a path chunk of 7 rows on 2 replicas, and a search batched by 15: refused before training, with the fix
    refused = result["refused"]
    assert "7 rows" in refused["trainer"] and "multiple of 2" in refused["trainer"]
    assert "train_data has batches of 15 rows" in refused["search"] and "e.g. 16" in refused["search"]
    assert not refused["search_built"]


@pytest.mark.slow
def test_seeded_searches_find_the_same_genotype_on_two_replicas(tmp_path):
    # OperationPruning (UCB), ChildParent and Differentiable, seeded, with synchronized BatchNorm on two
    # replicas and plain BatchNorm on one device: the same genotype. The scores are accuracies of untrained
    # paths on a few dozen images, so float sums in another order may flip a prediction: each trial's score
    # agrees within two images of the validation set (ChildParent's z = A_C + 2 (A_P - A_C) moves by 2/n
    # when one parent prediction flips)
    result = _checks("searches", str(tmp_path))
    images = result["validation_images"]
    for name in ("pruning", "child_parent", "differentiable"):
        one_device, mirrored = result[name]["one_device"], result[name]["mirrored"]
        assert mirrored["genotype"] == one_device["genotype"], name
        assert mirrored["scores"] == pytest.approx(one_device["scores"], abs=2.01 / images), name
