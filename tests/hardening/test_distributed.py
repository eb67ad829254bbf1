"""KerasTuner's chief/worker mode: one chief and two workers, as separate processes on 127.0.0.1.

Each process runs the same script; KERASTUNER_TUNER_ID says which it is. The
chief serves the oracle over gRPC and returns when the search is over; it
records every create/end of a trial (and every pruning round) as it serves
them, which is what the checks read:

- OperationPruning (UCB, 3 ops, 2 repetitions of ceil(K / 2) paths, one fine-tune epoch): 7 trials, each ended once,
  each group's paths handed to one worker and reported once, both workers used, a round pruned
  only once all its trials ended and no trial of the next round created before;
- Evolution (population 4, 2 generations): 8 trials, each ended once, both workers used,
  generation 1 bred only after generation 0 ended.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from bnas_tf import data
    from bnas_tf.space.supernet import CellSpace
    from bnas_tf.tuners import Evolution, OperationPruning

    strategy, folder = sys.argv[1], sys.argv[2]
    if os.environ.get("CRASH_AT") == "first-commit":  # die right after the first group's checkpoint commit
        import signal
        from bnas_tf.tuners import supernet_tuner
        save = supernet_tuner.SupernetTuner._save_weights
        def save_then_die(self, tag, record):
            save(self, tag, record)
            if tag != "init":
                sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        supernet_tuner.SupernetTuner._save_weights = save_then_die
    x, y = data.digits_arrays(16)
    train = tf.data.Dataset.from_tensor_slices((x[:320], y[:320])).batch(32)
    validation = tf.data.Dataset.from_tensor_slices((x[1500:], y[1500:])).batch(100)
    if strategy == "pruning":
        space = CellSpace(op_set=["conv_3x3", "max_pool_3x3", "identity"], cells=2, channels=8, nodes=1,
                          reduction_cells=[1])
        tuner = OperationPruning(space, repetitions=2, ucb=True, seed=3, num_classes=10, directory=folder,
                                 project_name="search")
    else:
        tuner = Evolution("vgg_small", population_size=4, generations=2, seed=3, epochs_per_candidate=1,
                          width_multiplier=0.0625, num_classes=10, input_shape=(16, 16, 1), idle_wait_seconds=0.2,
                          directory=folder, project_name="search")

    chief = os.environ["KERASTUNER_TUNER_ID"] == "chief"
    events = []
    if chief:  # record what the chief serves, in order (its gRPC server runs one request at a time)
        oracle = tuner.oracle
        create, end = oracle.create_trial, oracle.end_trial
        def logged_create(tuner_id):
            trial = create(tuner_id)
            if trial.status == "RUNNING":
                values = trial.hyperparameters.values
                events.append({"event": "create", "tuner": tuner_id, "trial": trial.trial_id,
                               "round": values.get("round"), "group": values.get("group"), "path": values.get("path")})
            return trial
        def logged_end(trial):
            end(trial)
            events.append({"event": "end", "trial": trial.trial_id, "status": oracle.trials[trial.trial_id].status})
        oracle.create_trial, oracle.end_trial = logged_create, logged_end
        if strategy == "pruning":
            finish = oracle._finish_round
            def logged_finish(round_groups):
                events.append({"event": "prune", "round": oracle.round, "ended": list(oracle.end_order)})
                finish(round_groups)
            oracle._finish_round = logged_finish
        else:
            start_generation = oracle._start_generation
            def logged_generation():
                events.append({"event": "generation", "index": len(oracle.populations),
                               "ended": list(oracle.end_order)})
                start_generation()
            oracle._start_generation = logged_generation

    if strategy == "pruning":
        tuner.search(train, validation, steps_per_epoch=2, verbose=0)
    else:
        tuner.search(train, validation_data=validation, steps_per_epoch=2, verbose=0)
    if chief:
        genotype = tuner.best_genotype()
        with open(os.path.join(folder, "chief.json"), "w") as f:
            json.dump({"events": events, "genotype": genotype.to_dict()}, f)
    print("done", os.environ["KERASTUNER_TUNER_ID"], flush=True)
""")
TIMEOUT = 240
WORKERS = ("worker0", "worker1")
CHIEF_TIMEOUT = "BNAS_TF_CHIEF_TIMEOUT"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_cluster(tmp_path, strategy, crash_worker0=False, late_workers=()):
    """Chief and workers as processes; with ``crash_worker0`` worker0 dies after its first commit and the
    same command starts it again. ``late_workers`` start once the chief has finished (the same command, no
    chief listening any more); their logs are returned under "late"."""
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    folder = str(tmp_path / strategy)
    os.makedirs(folder)
    port = str(_free_port())
    processes = []

    def start(tuner_id, crash=None, **variables):
        env = dict(
            os.environ,
            TF_CPP_MIN_LOG_LEVEL="2",
            KERASTUNER_TUNER_ID=tuner_id,
            KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=port,
            **variables,
        )
        env.pop("CRASH_AT", None)
        if crash:
            env["CRASH_AT"] = crash
        log = open(os.path.join(folder, f"{tuner_id}.log"), "a")
        process = subprocess.Popen(
            [sys.executable, str(script), strategy, folder], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        processes.append((tuner_id, process))
        return process

    def wait(tuner_id, process, expected=0):
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
        assert code == expected, (
            f"{tuner_id} exited {code}:\n" + open(os.path.join(folder, f"{tuner_id}.log")).read()[-3000:]
        )

    deadline = time.monotonic() + TIMEOUT
    try:
        start("chief")
        crashing = start("worker0", "first-commit" if crash_worker0 else None)
        start("worker1")
        if crash_worker0:
            wait("worker0", crashing, expected=-signal.SIGKILL)
            start("worker0")
        for tuner_id, process in list(processes):
            if process is not crashing or not crash_worker0:
                wait(tuner_id, process)
        # a wait for the chief longer than the test's deadline: only knowing the search is over ends them
        late = [(tuner_id, start(tuner_id, **{CHIEF_TIMEOUT: str(10 * TIMEOUT)})) for tuner_id in late_workers]
        for tuner_id, process in late:
            wait(tuner_id, process)
    finally:
        for _, process in processes:  # only ours, by pid
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
    with open(os.path.join(folder, "chief.json")) as f:
        result = json.load(f)
    with open(os.path.join(folder, "search", "oracle.json")) as f:
        result["oracle"] = json.load(f)
    result["late"] = {}
    for tuner_id in late_workers:
        with open(os.path.join(folder, f"{tuner_id}.log")) as f:
            result["late"][tuner_id] = f.read()
    return result


def _ended_once(events, planned):
    ends = [e["trial"] for e in events if e["event"] == "end"]
    creates = [e["trial"] for e in events if e["event"] == "create"]
    assert len(creates) == len(set(creates)) == planned  # nothing lost, nothing handed out twice
    assert sorted(ends) == sorted(creates)  # each ended exactly once
    assert all(e["status"] == "COMPLETED" for e in events if e["event"] == "end")
    workers = {e["tuner"].split("/")[0] for e in events if e["event"] == "create"}
    assert workers == set(WORKERS)  # both workers trained something


def test_operation_pruning_on_one_chief_and_two_workers(tmp_path):
    # then, with the chief gone, worker0 restarted and a new worker2: both told the search is over
    result = _run_cluster(tmp_path, "pruning", late_workers=("worker0", "worker2"))
    events, oracle = result["events"], result["oracle"]
    _ended_once(events, planned=2 * 2 + 1 + 2 * 1)
    assert sorted(oracle["end_order"]) == sorted(oracle["start_order"]) and len(oracle["end_order"]) == 7
    samples = [e for e in events if e["event"] == "create" and e["group"]]
    groups = {}
    for e in samples:
        groups.setdefault(e["group"], []).append(e)
    assert sorted(groups) == ["r0t0", "r0t1", "r1t0", "r1t1"]
    for group_id, members in groups.items():
        assert sorted(m["path"] for m in members) == list(range(2 if group_id.startswith("r0") else 1))
        assert len({m["tuner"].split("/")[0] for m in members}) == 1  # one worker trains a group's paths together
    prunes = [(i, e) for i, e in enumerate(events) if e["event"] == "prune"]
    assert [e["round"] for _, e in prunes] == [0, 1]
    for index, prune in prunes:
        round_trials = {e["trial"] for e in samples if e["round"] == prune["round"]}
        assert round_trials <= set(prune["ended"])  # the whole round ended before it was scored
        later = [i for i, e in enumerate(events) if e["event"] == "create" and e["round"] == prune["round"] + 1]
        assert all(i > index for i in later)  # and nothing of the next round started before the pruning
    assert len(result["genotype"]["normal"]) == 2 and len(result["genotype"]["reduce"]) == 2
    assert oracle["search"]["phase"] == "done" and oracle["search_over"] is True
    for tuner_id, log in result["late"].items():
        last_run = log.split("done worker0", 1)[1] if tuner_id == "worker0" else log  # after its first run
        assert "is over: its chief finished and no longer answers at 127.0.0.1:" in last_run, log[-2000:]
        assert f"worker {tuner_id} has nothing to do" in last_run and f"done {tuner_id}" in last_run


def test_a_worker_killed_after_a_commit_rejoins_without_training_again(tmp_path):
    result = _run_cluster(tmp_path, "pruning", crash_worker0=True)
    events = result["events"]
    _ended_once(events, planned=2 * 2 + 1 + 2 * 1)  # every trial created once: none trained twice
    with open(tmp_path / "pruning" / "worker0.log") as f:
        log = f.read()
    first_group = [e["trial"] for e in events if e["event"] == "create" and e["tuner"].startswith("worker0")][:2]
    reported = [line.split()[1] for line in log.splitlines() if "reported from the supernet checkpoint" in line]
    assert reported and set(reported) <= set(first_group)


def _closed_port():
    return _free_port()  # bound then released: nobody listens on it


def _worker_command(tmp_path, variables, recipe="evolution_vgg_small"):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", CHIEF_TIMEOUT):
        env.pop(name, None)
    env.update(variables)
    command = [sys.executable, "-m", "bnas_tf.pipeline.cli", "search", "--recipe", recipe, "-q", "-o", str(tmp_path)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT / 2)


def test_a_worker_whose_chief_cannot_be_reached_stops_with_a_clear_error(tmp_path):
    port = str(_closed_port())
    variables = dict(KERASTUNER_TUNER_ID="worker0", KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=port)
    done = _worker_command(tmp_path / "run", {**variables, CHIEF_TIMEOUT: "1"})
    assert done.returncode == 2, done.stdout + done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"bnas-tf search: error: cannot reach the chief at 127.0.0.1:{port} within 1 s: ")
    assert "start the chief (KERASTUNER_TUNER_ID=chief)" in error and CHIEF_TIMEOUT in error


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            dict(KERASTUNER_TUNER_ID="worker0"),  # KerasTuner would run a whole single-process search
            "KERASTUNER_TUNER_ID is set but KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT are not: a chief/worker "
            "search needs all of KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT "
            "(docs/scaling_out.md); unset KERASTUNER_TUNER_ID for a single-process search",
        ),
        (
            dict(KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT="1"),
            "KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT are set but KERASTUNER_TUNER_ID is not",
        ),
        (
            dict(KERASTUNER_TUNER_ID="worker0", KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT="1")
            | {CHIEF_TIMEOUT: "soon"},
            "BNAS_TF_CHIEF_TIMEOUT must be a number of seconds > 0 (got 'soon')",
        ),
    ],
)
def test_bad_chief_worker_settings_are_refused_before_any_file(tmp_path, monkeypatch, capsys, variables, expected):
    from bnas_tf.pipeline import cli

    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", CHIEF_TIMEOUT):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["search", "--recipe", "evolution_vgg_small", "-o", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip().startswith(f"bnas-tf search: error: {expected}")
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.slow  # ~30 s; OperationPruning on one chief and two workers stays in the default suite
def test_evolution_on_one_chief_and_two_workers(tmp_path):
    result = _run_cluster(tmp_path, "evolution")
    events, oracle = result["events"], result["oracle"]
    _ended_once(events, planned=4 * 2)
    generations = [(i, e) for i, e in enumerate(events) if e["event"] == "generation"]
    assert [e["index"] for _, e in generations] == [0, 1]
    populations = oracle["evolution"]["populations"]
    first = set(populations[0]["trial_ids"])
    index, second = generations[1]
    assert first <= set(second["ended"])  # generation 1 is bred from finished trials only
    assert all(e["trial"] not in first for e in events[index:] if e["event"] == "create")
    assert sorted(populations[0]["trial_ids"] + populations[1]["trial_ids"]) == sorted(oracle["end_order"])
    assert len(result["genotype"]["ratios"]) == 6


def test_evolution_trains_each_candidate_under_a_tf_distribute_strategy(tmp_path):
    import tensorflow as tf

    from bnas_tf import data
    from bnas_tf.tuners import Evolution

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    trained_under = []

    class Recorded(Evolution):
        def _train(self, model, *args, **kwargs):
            trained_under.append((model.distribute_strategy, model.optimizer))
            return super()._train(model, *args, **kwargs)

    x, y = data.digits_arrays(16)
    train = tf.data.Dataset.from_tensor_slices((x[:128], y[:128])).batch(32)
    validation = tf.data.Dataset.from_tensor_slices((x[1600:], y[1600:])).batch(100)
    tuner = Recorded(
        "vgg_small",
        population_size=2,
        generations=1,
        seed=1,
        epochs_per_candidate=1,
        width_multiplier=0.0625,
        num_classes=10,
        input_shape=(16, 16, 1),
        distribution_strategy=strategy,
        directory=str(tmp_path),
        project_name="strategy",
    )
    tuner.search(train, validation_data=validation, steps_per_epoch=2, verbose=0)
    assert len(trained_under) == 2 and all(model_strategy is strategy for model_strategy, _ in trained_under)
    assert all(t.status == "COMPLETED" for t in tuner.oracle.trials.values())


def test_weight_sharing_searches_take_a_strategy_and_check_it(tmp_path):
    # data-parallel supernet training itself: tests/distribute
    import tensorflow as tf

    from bnas_tf.space.supernet import CellSpace
    from bnas_tf.tuners import OperationPruning

    space = CellSpace(op_set=["conv_3x3", "identity"], cells=2, channels=8, nodes=1, reduction_cells=[1])
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    tuner = OperationPruning(
        space, distribution_strategy=strategy, sync_batch_norm=True, directory=str(tmp_path), project_name="taken"
    )
    assert tuner.distribution_strategy is strategy and tuner.sync_batch_norm is True
    with pytest.raises(TypeError, match="must be a tf.distribute.Strategy .* got str"):
        OperationPruning(space, distribution_strategy="mirrored", directory=str(tmp_path), project_name="name")
    with pytest.raises(TypeError, match="sync_batch_norm must be True or False"):
        OperationPruning(space, sync_batch_norm="yes", directory=str(tmp_path), project_name="flag")
