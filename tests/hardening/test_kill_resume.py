"""Crash safety: a search SIGKILLed at several points and rerun loses nothing and ends where an unbroken run ends.

A subprocess runs a tiny OperationPruning (UCB) search: 3 ops, 2 repetitions,
so round 1 has two groups of ceil(3 / 2) = 2 paths (trials 0000-0003), then one
mixed-mode fine-tuning epoch (0004), and round 2 two groups of 1 (0005, 0006). The data
has a fixed order (no reshuffling) and ops are deterministic on one thread, so a resumed
search can be compared with an unbroken one number for number. One project is
killed seven times (``KILLS``), each rerun of the same command continuing it:
from outside when a file appears (a trial COMPLETED, the search log of a
pruned round, a new trial), or by the script itself at an exact point
(``CRASH_AT``): right after a group's checkpoint is committed and before its
trials are reported (the first group, before any trial has ended, and the
last), after one of them is reported, and after a trial file says COMPLETED
while oracle.json does not know it yet.

After each kill: every trial COMPLETED before it is COMPLETED after with the
same metrics, and the supernet checkpoint is at or past the last finished
trial. At the end: the same trials, metrics, search log and genotype as the
unbroken run.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent("""
    import os, signal, sys, json, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from bnas_tf.determinism import enable_determinism
    enable_determinism()  # one thread: every rerun rounds as the unbroken run does
    from bnas_tf import data
    from bnas_tf.space.supernet import CellSpace
    from bnas_tf.tuners import OperationPruning
    from bnas_tf.tuners import state, supernet_tuner

    # points in the search, each right after (CRASH_AT: SIGKILL) or right before (STALL_AT: wait to be
    # killed from outside) owner.method is called with arguments where reached(at, *args) holds
    POINTS = {
        "commit": (supernet_tuner.SupernetTuner, "_save_weights", lambda at, tag, record: tag == at),
        "reported": (supernet_tuner.SupernetTuner, "on_trial_end", lambda at, trial: trial.trial_id == at),
        "trial-file": (state.AtomicOracleState, "_save_trial",
                       lambda at, trial: trial.trial_id == at and trial.status == "COMPLETED"),
    }
    def at_point(spec, action, before):
        kind, _, at = spec.partition(":")
        owner, method, reached = POINTS[kind]
        original = getattr(owner, method)
        def wrapped(self, *args):
            if before and reached(at, *args):
                action()
            original(self, *args)
            if not before and reached(at, *args):
                action()
        setattr(owner, method, wrapped)
    def die():
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    def stall():
        sys.stdout.flush()
        time.sleep(600)
    if os.environ.get("CRASH_AT"):
        at_point(os.environ["CRASH_AT"], die, before=False)
    if os.environ.get("STALL_AT"):
        at_point(os.environ["STALL_AT"], stall, before=True)

    x, y = data.digits_arrays(16)
    train = tf.data.Dataset.from_tensor_slices((x[:320], y[:320])).batch(32)  # fixed order: no reshuffling
    validation = tf.data.Dataset.from_tensor_slices((x[1500:], y[1500:])).batch(100)
    space = CellSpace(op_set=["conv_3x3", "max_pool_3x3", "identity"], cells=2, channels=8, nodes=1,
                      reduction_cells=[1])
    tuner = OperationPruning(space, repetitions=2, ucb=True, seed=3, num_classes=10, directory=sys.argv[1],
                             project_name="search")
    tuner.search(train, validation, steps_per_epoch=3, verbose=1)
    with open(os.path.join(sys.argv[1], "genotype.json"), "w") as f:
        json.dump(tuner.best_genotype().to_dict(), f)
""")
TRIALS = 7
TIMEOUT = 300


def _trials(project):
    """{trial_id: (status, score, metrics)} from the trial files."""
    out = {}
    if not os.path.isdir(project):
        return out
    for name in sorted(os.listdir(project)):
        path = os.path.join(project, name, "trial.json")
        if name.startswith("trial_") and os.path.exists(path):
            with open(path) as f:
                state = json.load(f)
            metrics = {m: [o["value"] for o in h["observations"]] for m, h in state["metrics"]["metrics"].items()}
            out[state["trial_id"]] = (state["status"], state["score"], metrics)
    return out


def _completed(project):
    return {tid: t for tid, t in _trials(project).items() if t[0] == "COMPLETED"}


def _checkpoint_tag(project):
    path = os.path.join(project, "supernet", "latest.json")
    if not os.path.exists(path):
        return -1
    with open(path) as f:
        tag = json.load(f)["tag"]
    return -1 if tag == "init" else int(tag)


def _start(script, folder, crash=None, stall=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for name, point in (("CRASH_AT", crash), ("STALL_AT", stall)):
        env.pop(name, None)
        if point:
            env[name] = point
    log_path = os.path.join(folder, "log.txt")
    log = open(log_path, "a")
    log.write(f"\n--- run (CRASH_AT={crash}, STALL_AT={stall}) ---\n")
    log.flush()
    process = subprocess.Popen([sys.executable, str(script), folder], env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log_path = log_path
    return process


def _log_tail(process, lines=40):
    """The end of the run's output, so a failure in CI shows the script's traceback."""
    with open(process.log_path) as f:
        return "".join(f.readlines()[-lines:])


def _kill_when(process, condition):
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert process.poll() is None, f"the search ended before the kill point; it printed:\n{_log_tail(process)}"
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def _wait(process, killed=False):
    code = process.wait(timeout=TIMEOUT)
    assert code == (-signal.SIGKILL if killed else 0), f"exit code {code}; the run printed:\n{_log_tail(process)}"


def _exists(project, *parts):
    return lambda: os.path.exists(os.path.join(project, *parts))


# (name, the file whose appearance triggers the kill from outside, or the script's own CRASH_AT).
# An outside kill lands whenever the poll sees the file, so a late one could carry the run past the next
# entry's crash point (it would then exit 0): the run stalls right before that point, waiting for the kill.
KILLS = [
    ("first group committed, no trial ended yet", None, "commit:0001"),
    ("first trial file COMPLETED", lambda project: lambda: len(_completed(project)) >= 1, None),
    ("group r0t1 committed, trial 0002 reported", None, "reported:0002"),
    ("right after round 1's pruning", lambda project: _exists(project, "search_log.json"), None),
    ("trial 0005 file ahead of oracle.json", None, "trial-file:0005"),
    ("during the last group", lambda project: _exists(project, "trial_0006", "trial.json"), None),
    ("last group committed, not reported", None, "commit:0006"),
]


def _stall_point(index):
    """Where an outside kill's run waits: the next entry's crash point."""
    return KILLS[index + 1][2] if index + 1 < len(KILLS) else None


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("kill_resume")
    script = base / "search.py"
    script.write_text(SCRIPT)
    reference, broken = str(base / "reference"), str(base / "broken")
    os.makedirs(reference)
    os.makedirs(broken)
    _wait(_start(script, reference))

    project = os.path.join(broken, "search")
    snapshots = []
    for index, (name, trigger, crash) in enumerate(KILLS):
        process = _start(script, broken, crash, stall=_stall_point(index) if trigger else None)
        if trigger:
            _kill_when(process, trigger(project))
        else:
            _wait(process, killed=True)
        snapshots.append((name, _completed(project), _checkpoint_tag(project)))
    _wait(_start(script, broken))
    return {"reference": reference, "broken": broken, "snapshots": snapshots}


def test_kills_lose_no_finished_trial_and_keep_its_weights(runs):
    final = _trials(os.path.join(runs["broken"], "search"))
    assert [point for point, _, _ in runs["snapshots"]] == [name for name, _, _ in KILLS]
    (first, nothing, first_tag), *later = runs["snapshots"]
    assert not nothing and first_tag == 1, (first, first_tag)  # committed, not reported: the rerun reports them
    for point, completed, tag in later:
        assert completed, point
        for trial_id, (_status, score, metrics) in completed.items():
            assert final[trial_id] == ("COMPLETED", score, metrics), (point, trial_id)
        assert tag >= max(int(t) for t in completed), (point, tag)  # weights at or past the last finished trial


def test_resumed_search_ends_like_an_unbroken_one(runs):
    reference = _trials(os.path.join(runs["reference"], "search"))
    broken = _trials(os.path.join(runs["broken"], "search"))
    assert len(reference) == TRIALS and all(t[0] == "COMPLETED" for t in reference.values())
    assert broken == reference  # same trials, statuses and metrics, nothing run twice or skipped
    with open(os.path.join(runs["broken"], "search", "oracle.json")) as f:
        oracle = json.load(f)
    assert sorted(oracle["end_order"]) == sorted(reference) and not oracle["retry_queue"]
    genotypes = []
    for run in (runs["reference"], runs["broken"]):
        with open(os.path.join(run, "genotype.json")) as f:
            genotypes.append(json.load(f))
    assert genotypes[0] == genotypes[1]
    logs = []
    for run in (runs["reference"], runs["broken"]):
        with open(os.path.join(run, "search", "search_log.json")) as f:
            logs.append(json.load(f))
    assert logs[0] == logs[1]  # the same means, scores and abandoned ops, round by round


@pytest.mark.parametrize(
    "relative_path,expected",
    [("oracle.json", "search state file"), (os.path.join("supernet", "latest.json"), "supernet checkpoint pointer")],
)
def test_half_written_state_file_stops_the_rerun_with_its_name(runs, tmp_path, relative_path, expected):
    import shutil

    folder = str(tmp_path / "copy")
    shutil.copytree(runs["broken"], folder)
    path = os.path.join(folder, "search", relative_path)
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text[: len(text) // 2])
    script = os.path.join(os.path.dirname(runs["broken"]), "search.py")
    done = subprocess.run(
        [sys.executable, script, folder],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ValueError: {expected} {path} is corrupt"), last
    assert "restore it from a backup" in last and "overwrite=True" in last
