"""Crash safety: a search SIGKILLed at several points and rerun loses nothing and ends where an unbroken run ends.

A subprocess runs a tiny OperationPruning (UCB) search: 3 ops, 2 repetitions,
so round 1 has two groups of ceil(3 / 2) = 2 paths (trials 0000-0003), then one
mixed-mode fine-tuning epoch (0004), and round 2 two groups of 1 (0005, 0006). It reads
the bnas_1bit_ucb recipe's search data as ``bnas-tf search`` loads it (``bnas_tf.data``:
every pass over the weights and architecture halves shuffled anew), and ops are
deterministic on one thread, so a resumed search can be compared with an unbroken one
number for number: the same trials, scores, search log and genotype show that every
trial after a rerun trained on the batches the unbroken search gave it. One project is
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

The other searches resume the same way: ChildParent (a child and a parent supernet),
Differentiable (mixed-mode epochs with α steps on the architecture half) and Evolution
(Keras ``fit`` on the recipe's training part) are each killed right after a committed
trial and once from outside, and end number for number as their unbroken runs
(``-m slow``). In the default suite, Child-Parent and Evolution (Differentiable with
``-m slow``) are stopped in-process after their first trials and continued by a new tuner
on new data objects, as a rerun builds them: every trial must train on exactly the batches
it trained on in the unbroken search (compared by fingerprint, so the check holds whatever
the threads do to the sums).
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import tensorflow as tf

from bnas_tf import recipes
from bnas_tf.pipeline.search import load_search_data
from bnas_tf.space.supernet import CellSpace
from bnas_tf.tuners import ChildParent, Differentiable, Evolution, OperationPruning

#: The recipe whose search data every search here reads (digits, 16x16, batches of 32, shuffled each pass).
RECIPE = "bnas_1bit_ucb"
SPACE = CellSpace(op_set=["conv_3x3", "max_pool_3x3", "identity"], cells=2, channels=8, nodes=1, reduction_cells=[1])
STEPS = 3


#: strategy -> (tuner class, its tiny search's arguments): pruning 7 trials (see above); Child-Parent 10 paths
#: (groups of every candidate: 3, 3, 2, 2) on a child and a parent supernet; Differentiable 3 mixed-mode epochs;
#: Evolution 2 generations of 2 width candidates
STRATEGIES = {
    "pruning": (OperationPruning, (SPACE,), dict(repetitions=2, ucb=True)),
    "child_parent": (ChildParent, (SPACE,), dict(repetitions=2)),
    "differentiable": (Differentiable, (SPACE,), dict(epochs=3)),
    "evolution": (
        Evolution,
        ("vgg_small",),
        dict(
            population_size=2, generations=2, epochs_per_candidate=1, width_multiplier=0.0625, input_shape=(16, 16, 1)
        ),
    ),
}


def make_tuner(strategy: str, folder: str, mixin=None, **overrides):
    """The tiny search of ``strategy`` in ``folder/search`` (resumed when it exists), ``mixin`` mixed in first and
    ``overrides`` replacing its settings."""
    tuner_class, arguments, settings = STRATEGIES[strategy]
    if mixin is not None:
        tuner_class = type(tuner_class.__name__, (mixin, tuner_class), {})
    settings = dict(settings, seed=3, num_classes=10, directory=folder, project_name="search", **overrides)
    return tuner_class(*arguments, **settings)


def search_parts(strategy: str):
    """(train, validation, architecture) of the recipe's search data as the pipeline hands them to the tuner."""
    bundle = load_search_data(recipes.get(RECIPE))
    if strategy == "evolution":
        return bundle.train.repeat(), bundle.validation, None
    return bundle.search_weights, bundle.search_validation, bundle.search_architecture


def run_search(tuner, strategy: str, train, validation, architecture, verbose=0):
    if strategy == "evolution":
        tuner.search(train, validation_data=validation, steps_per_epoch=STEPS, verbose=verbose)
    else:
        tuner.search(train, validation, architecture_data=architecture, steps_per_epoch=STEPS, verbose=verbose)


SCRIPT = textwrap.dedent("""
    import os, signal, sys, json, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from bnas_tf.determinism import enable_determinism
    enable_determinism()  # one thread: every rerun rounds as the unbroken run does
    from bnas_tf.tuners import state, supernet_tuner
    sys.path.insert(0, os.environ["TEST_DIR"])
    from test_kill_resume import make_tuner, run_search, search_parts

    from test_kill_resume import STRATEGIES

    folder, strategy = sys.argv[1], sys.argv[2]
    tuner_class = STRATEGIES[strategy][0]
    # points in the search, each right after (CRASH_AT: SIGKILL) or right before (STALL_AT: wait to be
    # killed from outside) owner.method is called with arguments where reached(at, *args) holds
    POINTS = {
        "commit": (supernet_tuner.SupernetTuner, "_save_weights", lambda at, tag, record: tag == at),
        "reported": (tuner_class, "on_trial_end", lambda at, trial: trial.trial_id == at),
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

    tuner = make_tuner(strategy, folder)
    run_search(tuner, strategy, *search_parts(strategy), verbose=1)
    with open(os.path.join(folder, "genotype.json"), "w") as f:
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


def _environment():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TEST_DIR=os.path.dirname(os.path.abspath(__file__)))


def _start(script, folder, crash=None, stall=None, strategy="pruning"):
    env = _environment()
    for name, point in (("CRASH_AT", crash), ("STALL_AT", stall)):
        env.pop(name, None)
        if point:
            env[name] = point
    log_path = os.path.join(folder, "log.txt")
    log = open(log_path, "a")
    log.write(f"\n--- run (CRASH_AT={crash}, STALL_AT={stall}) ---\n")
    log.flush()
    process = subprocess.Popen(
        [sys.executable, str(script), folder, strategy], env=env, stdout=log, stderr=subprocess.STDOUT
    )
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


def _stall_point(kills, index):
    """Where an outside kill's run waits: the next entry's crash point."""
    return kills[index + 1][2] if index + 1 < len(kills) else None


def _kill_and_rerun(base, kills, strategy="pruning"):
    """An unbroken run of ``strategy``'s search, and one killed at each of ``kills`` in turn, then run to its end."""
    script = base / "search.py"
    script.write_text(SCRIPT)
    reference, broken = str(base / "reference"), str(base / "broken")
    os.makedirs(reference)
    os.makedirs(broken)
    _wait(_start(script, reference, strategy=strategy))

    project = os.path.join(broken, "search")
    snapshots = []
    for index, (name, trigger, crash) in enumerate(kills):
        stall = _stall_point(kills, index) if trigger else None
        process = _start(script, broken, crash, stall=stall, strategy=strategy)
        if trigger:
            _kill_when(process, trigger(project))
        else:
            _wait(process, killed=True)
        snapshots.append((name, _completed(project), _checkpoint_tag(project)))
    _wait(_start(script, broken, strategy=strategy))
    return {"reference": reference, "broken": broken, "snapshots": snapshots}


def _json(*parts):
    with open(os.path.join(*parts)) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return _kill_and_rerun(tmp_path_factory.mktemp("kill_resume"), KILLS)


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
    assert _json(runs["broken"], "genotype.json") == _json(runs["reference"], "genotype.json")
    # the same means, scores and abandoned ops, round by round
    assert _json(runs["broken"], "search", "search_log.json") == _json(runs["reference"], "search", "search_log.json")


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
        [sys.executable, script, folder, "pruning"], capture_output=True, text=True, timeout=TIMEOUT, env=_environment()
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ValueError: {expected} {path} is corrupt"), last
    assert "restore it from a backup" in last and "overwrite=True" in last


# --- the other searches -----------------------------------------------------------------------------------------
#: per strategy: a kill right after a committed trial (the script's own) and one from outside while a later trial
#: trains (its run stalls before the next crash point, if any, to wait for the kill)
OTHER_KILLS = {
    "child_parent": [
        ("first group committed, not reported", None, "commit:0002"),
        ("a trial of round 2 started", lambda project: _exists(project, "trial_0007", "trial.json"), None),
    ],
    "differentiable": [
        ("epoch 0 committed, not reported", None, "commit:0000"),
        ("epoch 2 started", lambda project: _exists(project, "trial_0002", "trial.json"), None),
    ],
    "evolution": [
        ("candidate 0 reported", None, "reported:0"),
        ("candidate 2 started", lambda project: _exists(project, "trial_2", "trial.json"), None),
    ],
}


@pytest.mark.slow  # about a minute each: four processes
@pytest.mark.parametrize("strategy", sorted(OTHER_KILLS))
def test_other_searches_killed_and_rerun_end_like_unbroken_ones(tmp_path, strategy):
    runs = _kill_and_rerun(tmp_path, OTHER_KILLS[strategy], strategy)
    reference = _trials(os.path.join(runs["reference"], "search"))
    assert reference and all(t[0] == "COMPLETED" for t in reference.values())
    assert _trials(os.path.join(runs["broken"], "search")) == reference  # trials, statuses, scores, metrics
    assert _json(runs["broken"], "genotype.json") == _json(runs["reference"], "genotype.json")
    if strategy != "differentiable":  # pruning rounds, generations (a Differentiable search has its trials only)
        log = ("search", "search_log.json")
        assert _json(runs["broken"], *log) == _json(runs["reference"], *log)


class Stopped(Exception):
    """Ends a search in-process right after a trial is reported, as a kill there would."""


class FedBatches:
    """Tuner mixin: notes each trial it begins in ``fed``, where :func:`_fed` notes the batches read; stops the
    search once ``stop_after`` trials ended (None: never)."""

    fed = None
    stop_after = None

    def on_trial_begin(self, trial):
        self.fed.append(("trial", trial.trial_id))
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if self.stop_after is not None and len(self.oracle.end_order) >= self.stop_after:
            raise Stopped(trial.trial_id)


def _fed(dataset, fed):
    """``dataset`` noting a fingerprint of each batch in ``fed`` as it is read (no prefetching after it: a batch
    is noted when the training reads it)."""

    def note(x, y):
        fed.append(("batch", hashlib.sha1(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest()))
        return y

    def noted(x, y):
        labels = tf.py_function(note, [x, y], y.dtype)
        labels.set_shape(y.shape)
        return x, labels

    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.inject_prefetch = False
    return dataset.map(noted).with_options(options)


def _search_in_process(strategy, folder, stop_after=None, **settings) -> dict:
    """Run (or continue) ``strategy``'s search on newly made data objects, as a new process would; returns
    ``{trial_id: fingerprints of the batches read after it began}`` (a group's after its last path)."""
    fed = []
    tuner = make_tuner(strategy, folder, mixin=FedBatches, **settings)
    tuner.fed, tuner.stop_after = fed, stop_after
    train, validation, architecture = search_parts(strategy)
    architecture = None if architecture is None else _fed(architecture, fed)
    try:
        run_search(tuner, strategy, _fed(train, fed), validation, architecture)
    except Stopped:
        assert stop_after is not None
    batches = {}
    for kind, value in fed:
        if kind == "trial":
            trial_id = value
            batches[trial_id] = []
        else:
            batches[trial_id].append(value)
    return batches


#: (strategy, trials before the stop, settings that keep it small): Child-Parent stops after its first group of 3
#: paths and continues with a group of 2; Differentiable after its first mixed-mode epoch; Evolution after its
#: first candidate
IN_PROCESS = [
    pytest.param("child_parent", 3, dict(repetitions=1), id="child_parent"),
    # its α steps read the architecture half as the pruning search's fine-tuning epoch does (above)
    pytest.param("differentiable", 1, dict(epochs=2), id="differentiable", marks=pytest.mark.slow),
    pytest.param("evolution", 1, dict(generations=1), id="evolution"),
]


@pytest.mark.parametrize("strategy,stop_after,settings", IN_PROCESS)
def test_continued_search_trains_each_trial_on_the_unbroken_runs_batches(tmp_path, strategy, stop_after, settings):
    unbroken = _search_in_process(strategy, str(tmp_path / "unbroken"), **settings)
    first = _search_in_process(strategy, str(tmp_path / "stopped"), stop_after, **settings)
    rest = _search_in_process(strategy, str(tmp_path / "stopped"), **settings)
    assert len(first) == stop_after and rest and not set(first) & set(rest)  # nothing trained twice
    assert {**first, **rest} == unbroken
    assert sum(len(batches) for batches in rest.values()) >= STEPS  # the continued part trained
