"""`bnas-tf run --strategy multi_worker` end to end: two worker processes on this host (TF_CONFIG on 127.0.0.1)
search one supernet, retrain the winner together, and only the chief writes, converts and verifies."""

import json
import os
import subprocess
import sys

import pytest
from toysize import toy_overrides

from bnas_tf import recipes


@pytest.mark.slow
def test_two_workers_run_one_search_and_only_the_chief_writes(tmp_path, loopback_workers):
    run_dir = str(tmp_path / "run")
    cluster = {"worker": loopback_workers(2)}
    settings = [arg for value in toy_overrides(recipes.DEFAULT_RECIPE) for arg in ("--set", value)]
    command = [sys.executable, "-m", "bnas_tf.pipeline.cli", "run", "--strategy", "multi_worker", *settings]
    processes = []
    for index in range(2):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            BNAS_TF_COLLECTIVE_TIMEOUT="120",
        )
        processes.append(
            subprocess.Popen([*command, "-o", run_dir], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    outputs = [process.communicate(timeout=600)[0].decode() for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert "2 replica(s), multi-worker" in outputs[0]
    assert f"worker done: the chief converts the winner and writes {run_dir}" in outputs[1]
    metrics = json.loads(open(os.path.join(run_dir, "metrics.json")).read())
    assert metrics["tflite"]["top1_agreement"] >= 0.99
    for name in ("genotype.json", "model.keras", "model.tflite", "report.md"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert not [name for name in os.listdir(run_dir) if "worker" in name]  # the other worker's copy is elsewhere
