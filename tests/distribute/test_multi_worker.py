"""A ChildParent search on two local worker processes (MultiWorkerMirroredStrategy over 127.0.0.1)."""

import json
import os
import subprocess
import sys
import time

import pytest

WORKER = os.path.join(os.path.dirname(__file__), "worker_search.py")
TIMEOUT_SECONDS = 60


def _start(directory, temporary, workers):
    return [
        subprocess.Popen(
            [
                sys.executable,
                WORKER,
                json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}),
                str(directory),
                str(TIMEOUT_SECONDS),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TMPDIR=str(temporary)),
        )
        for index in range(2)
    ]


def _result(process, timeout):
    out, err = process.communicate(timeout=timeout)
    lines = out.strip().splitlines()
    assert lines, err[-3000:]
    return process.returncode, dict(json.loads(lines[-1]), printed=out), err


def _committed_tag(directory):
    try:
        with open(os.path.join(directory, "p4", "supernet", "latest.json")) as file:
            return json.load(file)["tag"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.mark.slow
def test_two_workers_search_and_a_killed_worker_stops_the_search_until_a_rerun_resumes_it(tmp_path, loopback_workers):
    directory, temporary = tmp_path / "search", tmp_path / "tmp"
    temporary.mkdir()
    chief, other = _start(directory, temporary, loopback_workers(2))
    deadline = time.time() + 240
    while _committed_tag(directory) in (None, "init") and time.time() < deadline:  # the first group's commit
        assert chief.poll() is None, chief.stderr.read()[-3000:]
        time.sleep(0.2)
    assert _committed_tag(directory) not in (None, "init")
    other.kill()
    other.wait()
    started = time.time()
    code, stopped, err = _result(chief, timeout=TIMEOUT_SECONDS + 120)
    # the chief stops with the reason and the way to resume, not hanging on the lost worker
    assert code == 3, err[-3000:]
    assert "stopped answering" in stopped["stopped"] and "start every worker again" in stopped["stopped"]
    assert time.time() - started < TIMEOUT_SECONDS + 120, time.time() - started
    resumed_from = _committed_tag(directory)

    runs = [_result(process, timeout=300) for process in _start(directory, temporary, loopback_workers(2))]
    assert [code for code, _, _ in runs] == [0, 0], runs[0][2][-3000:] + runs[1][2][-3000:]
    (_, first, _), (_, second, _) = runs
    assert first["replicas"] == 2 and first["chief"] and not second["chief"]
    # the same oracle decisions in both processes: the same scores and genotype
    assert first["genotype"] == second["genotype"] and first["scores"] == second["scores"]
    assert len(first["scores"]) == 5  # 3 paths, then 2: the trials before the kill came from the checkpoint
    # both start from the chief's last commit (the other worker from its temporary copy of the chief's folder)
    assert all(f"Restored the supernet weights of trial {resumed_from}" in run["printed"] for run in (first, second))
    # only the chief's folder is kept: the other worker's temporary copy is gone when it ends
    assert first["project_dir"] == str(directory / "p4") and not os.path.exists(second["project_dir"])
    assert sorted(os.listdir(directory)) == ["p4"]
    assert _committed_tag(directory) != resumed_from
