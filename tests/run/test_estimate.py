"""``bnas-tf estimate``: the step counts worked out by hand, the projection and all-reduce arithmetic, the memory
stop and a failing child with a stand-in child process, and one quick end-to-end run through the CLI."""

import json
import os
import re
import sys
import textwrap

import numpy as np
import pytest

from bnas_tf import recipes
from bnas_tf.pipeline import cli, estimate, estimate_steps
from bnas_tf.pipeline import estimate_counts as counts
from bnas_tf.pipeline.estimate_counts import Count, Measured

CIFAR10 = counts.dataset_facts("cifar10")


def by_kind(result: list) -> dict:
    return {c.kind: (c.steps, c.images, c.traces) for c in result}


# --- data ----------------------------------------------------------------------------------
def test_split_sizes_of_cifar10_and_of_digits_whose_test_is_carved():
    assert counts.split_sizes(CIFAR10) == {
        "train": 45000,
        "validation": 5000,
        "test": 10000,
        "search_weights": 22500,
        "search_architecture": 22500,
        "search_validation": 5000,
    }
    # 1797 digits: test round(359.4) = 359, validation round(179.7) = 180, train 1258 = 629 + 629
    assert counts.split_sizes(counts.dataset_facts("digits")) == {
        "train": 1258,
        "validation": 180,
        "test": 359,
        "search_weights": 629,
        "search_architecture": 629,
        "search_validation": 180,
    }


def test_split_sizes_follow_the_data_loader():
    from bnas_tf.data import split_indices

    for total in (1797, 50):
        parts = split_indices(total, counts.VALIDATION_FRACTION, counts.TEST_FRACTION)
        facts = counts.DatasetFacts("x", (8, 8, 1), 2, total, None)
        assert counts.split_sizes(facts) == {name: len(indices) for name, indices in parts.items()}


def test_dataset_facts_resize_cap_and_refuse_an_unknown_dataset():
    assert counts.dataset_facts("digits", image_size=32).input_shape == (32, 32, 1)
    assert counts.dataset_facts("imagenet2012").num_classes == 1000
    capped = counts.dataset_facts("cifar10", max_examples=1000)
    assert (capped.train_examples, capped.test_examples) == (1000, 1000)
    with pytest.raises(ValueError, match=r"does not know the sizes of dataset 'faces'.*--examples N") as info:
        counts.dataset_facts("faces", input_shape=(112, 112, 3), classes=10)
    assert "\n" not in str(info.value)
    faces = counts.dataset_facts("faces", input_shape=(112, 112, 3), classes=10575, examples=494414)
    assert (faces.pixels, faces.test_examples) == (112 * 112, None)


def test_eval_calls_merge_batches_up_to_the_pixel_limit():
    assert counts.eval_calls(5000, 400, 4, 1024) == 13  # 1600 x 1024 pixels > 2**19: every batch alone
    assert counts.eval_calls(5000, 64, 1, 1024) == 10  # 8 batches of 64 a call: 78 full batches + 8 rows
    assert counts.eval_calls(180, 32, 3, 256) == 1


def test_eval_calls_follow_merged_batches():
    import tensorflow as tf

    from bnas_tf.tuners.batches import merged_batches

    for examples, batch, paths, pixels in ((50, 8, 2, 16), (37, 5, 3, 64), (10, 10, 1, 4)):
        data = tf.data.Dataset.from_tensor_slices((np.zeros((examples, 4, 4, 1)), np.zeros(examples))).batch(batch)
        blocks = list(merged_batches(data, paths, pixels=pixels * 16 * paths * 2))
        assert counts.eval_calls(examples, batch, paths, 16, limit=pixels * 16 * paths * 2) == len(blocks)


# --- the searches, counted by hand ----------------------------------------------------------
def test_operation_pruning_with_ucb_counts_bnas_1bit_ucb():
    """K = 8, T = 3, one fine-tune epoch, batch 400: S = ceil(22500 / 400) = 57; paths 4,4,3,3,2,2,1 (sum 19);
    every group's evaluation 13 calls of 5000 images; 6 fine-tune epochs (none after the last round).
    Layouts: every op until the fine-tune after round 4 needs 3 of 8, then those 3."""
    result = by_kind(counts.search_counts(recipes.get("bnas_1bit_ucb", "paper"), CIFAR10, ops=8))
    assert result == {
        "path": (7 * 3 * 57, 3 * 57 * 400 * 19, 1),
        "eval": (7 * 3 * 13 + 6 * 13, 3 * 5000 * 19 + 6 * 5000, 2),
        "mixed": (6 * 57, 6 * 57 * 400, 1),
        "alpha": (6 * 57, 6 * 57 * 400, 2),
    }


def test_operation_pruning_after_a_warm_up_counts_bnas_xnor():
    """L = 5 warm-up epochs (3 weights only), T = 3, batch 128: S = 176. After the warm-up a round samples
    O_smaller: candidates 4,4,3,3,2,2,1 and as many paths; the layout is renewed at rounds 2, 4 and 6 (2 x
    candidates < layout). Evaluation of 39 batches of 128 and one of 8: 4 batches a call in mixed mode (10 calls);
    for 4/3/2/1 paths 40/39/20/10 calls (at 3 paths the 8 images join the last full batch)."""
    steps, warmup, finetune = 176, 5, 6
    result = by_kind(counts.search_counts(recipes.get("bnas_xnor", "paper"), CIFAR10, ops=8))
    path_calls = 3 * (40 + 40 + 39 + 39 + 20 + 20 + 10)
    assert result == {
        "mixed": ((warmup + finetune) * steps, (warmup + finetune) * steps * 128, 1),
        "alpha": ((2 + finetune) * steps, (2 + finetune) * steps * 128, 3),
        "eval": (path_calls + (warmup + finetune) * 10, 3 * 5000 * 19 + (warmup + finetune) * 5000, 4),
        "path": (7 * 3 * steps, 3 * steps * 128 * 19, 3),
    }


def test_child_parent_counts_cpnas_on_child_and_parent():
    """Every remaining op sampled once a group: 8..2 paths (sum 35); batch 512: S = 44, 10 evaluation calls."""
    result = by_kind(counts.search_counts(recipes.get("cpnas", "paper"), CIFAR10, ops=8))
    path = (7 * 3 * 44, 3 * 44 * 512 * 35, 2)
    evaluation = (7 * 3 * 10, 3 * 5000 * 35, 2)
    assert result == {"path": path, "eval": evaluation, "path_parent": path, "eval_parent": evaluation}


def test_differentiable_counts_binary_darts():
    """50 epochs of S = 352 weight and α steps; the mixture's validation in 10 calls an epoch."""
    result = by_kind(counts.search_counts(recipes.get("binary_darts", "paper"), CIFAR10, ops=7))
    assert result == {
        "mixed": (50 * 352, 50 * 352 * 64, 1),
        "alpha": (50 * 352, 50 * 352 * 64, 1),
        "eval": (50 * 10, 50 * 5000, 1),
    }


def test_evolution_counts_every_candidate_and_the_uniform4x_start():
    """32 x 50 candidates of 10 epochs of ceil(45000 / 128) = 352 steps and 40 validation steps; 150 epochs of
    the uniform-4x network."""
    result = by_kind(counts.search_counts(recipes.get("evolution_vgg_small", "paper"), CIFAR10))
    assert result == {
        "candidate": (1600 * 10 * 352, 1600 * 10 * 352 * 128, 1600),
        "candidate_eval": (1600 * 10 * 40, 1600 * 10 * 5000, 1600),
        "uniform4x": (150 * 352, 150 * 352 * 128, 1),
        "uniform4x_eval": (150 * 40, 150 * 5000, 1),
    }


def test_retraining_counts_epochs_validation_and_the_final_test():
    """600 epochs of ceil(45000 / 96) = 469 steps; 53 validation steps an epoch and once more, 105 test steps."""
    result = by_kind(counts.train_counts(recipes.get("bnas_1bit_ucb", "paper"), CIFAR10))
    assert result == {"train": (600 * 469, 600 * 469 * 96, 1), "train_eval": (601 * 53 + 105, 601 * 5000 + 10000, 1)}


def test_search_steps_per_epoch_replace_the_epoch_length():
    settings = {"op_set": ("conv_3x3", "max_pool_3x3", "identity"), "repetitions": 2, "search_steps_per_epoch": 20}
    recipe = recipes.get("cpnas", "quick", dict(settings, search_batch_size=32))
    result = by_kind(counts.search_counts(recipe, counts.dataset_facts("digits"), ops=3))
    assert result["path"] == (2 * 2 * 20, 2 * 20 * 32 * (3 + 2), 1)  # rounds of 3 then 2 paths, one layout


def test_group_paths():
    assert counts.group_paths("operation_pruning", 7) == 4
    assert counts.group_paths("child_parent", 7) == 7
    assert counts.group_paths("differentiable", 7) == 1


# --- projections, memory and all-reduce -------------------------------------------------------
def test_projection_scales_by_images_and_adds_the_traces_of_the_function():
    measured = {
        "path": Measured("path", (2.0, 4.0, 3.0), images_per_step=400, trace_seconds=10.0),
        "mixed": Measured("mixed", (1.0, 2.0), images_per_step=100, trace_seconds=0.5),  # the path's function
    }
    plan = [Count("path", 10, 4000, 2), Count("mixed", 5, 500, 1), Count("alpha", 5, 500, 1)]
    assert counts.project(plan, measured) == {
        "path": 4000 * 3.0 / 400 + 2 * 10.0,
        "mixed": 500 * 1.5 / 100 + 10.0,  # its function's largest measured trace
        "alpha": None,
    }


def test_memory_probes_predict_the_full_batch():
    assert counts.probe_batches(400) == (12, 24)
    assert counts.probe_batches(96) == (3, 6)
    assert counts.probe_batches(5) == (2, 4)
    assert counts.probe_batches(4) == ()  # the step itself is small
    # the 20-cell evaluation network of bnas_1bit_ucb measured 3.90 GB at batch 3 and 4.45 GB at 6 (an image:
    # 0.55 / 3 GB): at batch 96, 4.45 + 90 x 0.1833 = 20.95 GB
    assert counts.predicted_memory(((3, 3.90e9), (6, 4.45e9)), 96) == pytest.approx(20.95e9)
    assert counts.memory_margin(24 * 2**30) == pytest.approx(2.4 * 2**30)
    assert counts.memory_margin(4 * 2**30) == 2**30


def test_ring_all_reduce_and_what_replicas_change():
    assert counts.ring_allreduce_bytes(1_000_000, 1) == 0
    assert counts.ring_allreduce_bytes(1_000_000, 2) == 4_000_000  # 2 x 1/2 x 4 bytes
    assert counts.ring_allreduce_bytes(1_000_000, 4) == 6_000_000  # 2 x 3/4 x 4 bytes
    plan = [Count("path", 10, 4000), Count("eval", 3, 300), Count("train", 20, 2000)]
    rows = counts.data_parallel(
        plan,
        {"path": 100.0, "eval": 20.0, "train": 60.0},
        {"supernet": 1000, "evaluation": 500},
        search_batch=400,
        train_batch=96,
    )
    assert [(r.replicas, r.search_batch, r.train_batch) for r in rows] == [(1, 400, 96), (2, 200, 48), (4, 100, 24)]
    assert [(r.search_seconds, r.train_seconds) for r in rows] == [(120, 60), (60, 30), (30, 15)]
    assert [r.total_bytes for r in rows] == [0, 10 * 4000 + 20 * 2000, 10 * 6000 + 20 * 3000]  # eval: no gradient
    assert (rows[2].search_step_bytes, rows[2].train_step_bytes) == (6000, 3000)


# --- the watched processes, with a stand-in that speaks their protocol -------------------------------
STAND_IN = textwrap.dedent(
    """
    import json, sys, time
    spec = json.loads(sys.argv[-1])
    def say(event):
        print({prefix!r} + json.dumps(event), flush=True)
    for unit in spec["units"]:
        if unit[0] == {forget!r}:
            continue
        say({{"start": unit[0]}})
        if unit[0] == {crash!r}:
            print("RuntimeError: the stand-in broke", file=sys.stderr)
            sys.exit(1)
        if unit[0] == {hold!r}:
            time.sleep(30)
        if unit[0] == {too_large!r}:
            say({{"too_large": unit[0], "needed": 40 * 2**30, "room": 10 * 2**30, "batch": 400,
                  "probes": [[12, 4 * 2**30], [24, 5 * 2**30]], "high_water": 5 * 2**30}})
            say({{"measured": {{"kind": unit[0], "seconds": [0.3, 0.1], "images_per_step": 24, "trace_seconds": 9.0,
                               "high_water": 1000, "tf_peak": 0}}}})
            continue
        for kind in unit:
            say({{"measured": {{"kind": kind, "seconds": [1.0, 3.0], "images_per_step": 8, "trace_seconds": 9.0,
                               "high_water": 1000, "tf_peak": 0}}}})
    """
)


def _stand_in(monkeypatch, crash=None, hold=None, too_large=None, forget=None):
    script = STAND_IN.format(prefix=estimate.EVENT, crash=crash, hold=hold, too_large=too_large, forget=forget)
    monkeypatch.setattr(estimate, "child_command", lambda spec: [sys.executable, "-c", script, json.dumps(spec)])


def test_a_kind_that_runs_out_of_memory_is_named_and_the_rest_measured_in_a_new_process(monkeypatch):
    _stand_in(monkeypatch, hold="path")
    started = []
    real_event = estimate._event

    def event(line, outcome):
        kind = real_event(line, outcome)
        started.extend([kind] if kind else [])
        return kind

    def low_memory():  # low once the path step has started; stopping its process frees the memory
        if started[-1:] == ["path"] and not stopped:
            stopped.append("path")
            return 2**30, 24 * 2**30
        return None

    stopped = []
    monkeypatch.setattr(estimate, "_event", event)
    monkeypatch.setattr(estimate, "_low_memory", low_memory)
    groups = [[("eval",), ("path",), ("eval_parent",), ("mixed", "alpha")]]
    outcome = estimate.measure({}, groups)
    assert set(outcome.measured) == {"eval", "eval_parent"}  # eval_parent: measured by a second process
    assert outcome.notes["path"].startswith("did not fit in this machine's memory: its process was stopped at")
    assert "with 1.0 GB of 24.0 GB left; measure a smaller batch (--set search_batch_size=N" in outcome.notes["path"]
    assert outcome.notes["mixed"] == "not measured: needs more memory than path, which did not fit"
    assert outcome.notes["alpha"] == outcome.notes["mixed"]
    assert outcome.measured["eval"].median == 2.0 and outcome.measured["eval"].trace_seconds == 9.0


def test_a_batch_predicted_too_large_is_named_with_its_memory(monkeypatch):
    _stand_in(monkeypatch, too_large="path")
    groups = [[("train", "train_eval")], [("eval",), ("path",), ("mixed", "alpha")]]
    outcome = estimate.measure({}, groups)
    assert set(outcome.measured) == {"train", "train_eval", "eval", "path", "mixed", "alpha"}
    assert outcome.scaled == {
        "path": "the full batch does not fit in this machine's memory, so its steps are timed at batch 24 and scaled "
        "by images: at batch 400 a step needs about 40.0 GB (extrapolated from 4.0 GB at batch 12 and 5.0 GB at 24), "
        "this machine has at most 10.0 GB for it (its memory less a 10% margin and what other processes hold); run "
        "it on a machine with more memory, or with --set search_batch_size=N"
    }
    assert not outcome.notes  # the kinds that need more memory than the path step probe their own batches
    # timed at batch 24: a 1,000-image count projects 1000 x 0.2 s / 24 images, plus the traces
    projected = counts.project([Count("path", steps=10, images=1000, traces=1)], outcome.measured)
    assert projected["path"] == pytest.approx(1000 * 0.2 / 24 + 9.0)


def test_a_failing_process_names_its_error_and_the_other_units_still_run(monkeypatch):
    _stand_in(monkeypatch, crash="path")
    outcome = estimate.measure({}, [[("train", "train_eval")], [("path",), ("mixed",)]])
    assert set(outcome.measured) == {"train", "train_eval", "mixed"}
    assert outcome.notes == {"path": "failed: RuntimeError: the stand-in broke"}


def test_a_unit_a_process_ends_without_is_named_not_measured_again(monkeypatch):
    _stand_in(monkeypatch, forget="eval")
    outcome = estimate.measure({}, [[("eval",), ("path",)]])
    assert set(outcome.measured) == {"path"}
    assert outcome.notes == {"eval": "not measured: its process ended without a measurement"}


def test_a_full_batch_waits_for_the_other_measuring_process_only_when_it_would_then_fit(tmp_path, monkeypatch):
    from bnas_tf.pipeline import estimate_steps

    gb = 2**30
    looks = [(1 * gb, 24 * gb), (20 * gb, 24 * gb)]  # the other process ends between the two looks
    monkeypatch.setattr(estimate_steps, "_available", lambda: looks.pop(0))
    monkeypatch.setattr(estimate_steps.time, "sleep", lambda seconds: None)
    events, calls, others = [], [], {"rss": 12 * gb}
    spec = {"input_shape": [8, 8, 1], "classes": 2, "steps": 2, "paths": 1, "lock": str(tmp_path / "steps.lock")}
    bench = estimate_steps.Bench(recipes.get("cpnas", "quick"), spec, events.append)
    monkeypatch.setattr(bench, "others_ending", lambda: others["rss"])

    def call(batch, count):
        calls.append((batch, count))
        return {"path": [5.0, 1.0, 2.0]}

    # 10 GB more: not in the 1 GB available, but in the 1 + 12 GB once the other process ends (less the margin)
    assert bench.full_batches("path", call, 400, 10 * gb) == {"path": [1.0, 2.0]}  # the first call left out
    assert events == [{"waiting": "path"}] and calls == [(400, 3)]
    assert not (tmp_path / f"waiting-{os.getpid()}").exists()
    for more, ending in ((30 * gb, 12 * gb), (10 * gb, 5 * gb), (10 * gb, 0)):  # never enough, or nothing ends
        looks[:], others["rss"] = [(1 * gb, 24 * gb)], ending
        most = bench.full_batches("path", call, 400, more)  # what it would have at most: 1 GB + ending - 2.4 GB
        assert most == pytest.approx(1 * gb + ending - 2.4 * gb + bench.pool)
    assert calls == [(400, 3)]


def test_only_live_measuring_processes_that_do_not_wait_free_memory(tmp_path):
    from bnas_tf.pipeline import estimate_steps

    spec = {"input_shape": [8, 8, 1], "classes": 2, "steps": 1, "paths": 1, "lock": str(tmp_path / "steps.lock")}
    bench = estimate_steps.Bench(recipes.get("cpnas", "quick"), spec, lambda event: None)
    (tmp_path / f"alive-{os.getpid()}").touch()  # itself
    assert bench.others_ending() == 0
    (tmp_path / f"alive-{os.getppid()}").touch()  # a live process of the same run
    assert bench.others_ending() > 0
    (tmp_path / f"waiting-{os.getppid()}").touch()  # that waits itself: it will not end
    assert bench.others_ending() == 0


# --- end to end ------------------------------------------------------------------------------
def test_estimate_quick_cpnas_through_the_cli(capsys):
    assert cli.main(["estimate", "--recipe", "cpnas", "--profile", "quick", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    planned, measured = out.split("\nmeasured on this machine")
    recipe, digits = recipes.get("cpnas", "quick"), counts.dataset_facts("digits")
    expected = counts.search_counts(recipe, digits, ops=len(recipe.search_space().op_set))
    expected += counts.train_counts(recipe, digits)
    kinds = [c.kind for c in expected]
    assert kinds == ["path", "eval", "path_parent", "eval_parent", "train", "train_eval"]
    for count in expected:
        row = next(line.split() for line in planned.splitlines() if line.split()[:1] == [count.kind])
        assert row[1:4] == [f"{count.steps:,}", f"{count.images:,}", f"{count.traces:,}"], row
        row = next(line.split() for line in measured.splitlines() if line.split()[:1] == [count.kind])
        assert float(row[3]) > 0 and float(row[4]) > 0, row  # a median step time and a projection
    assert re.search(r"projected wall time on this machine .*: search [\d.]+ \S+, retraining [\d.]+ \S+, total", out)
    assert re.search(r"peak memory: \d+\.\d GB RSS", out)
    replicas = out.split("data-parallel replicas")[1].splitlines()[2:5]
    batches = (recipe.search_batch_size, recipe.train_batch_size)
    assert [line.split()[:3] for line in replicas] == [[str(r)] + [f"{b / r:g}" for b in batches] for r in (1, 2, 4)]


def test_the_steps_run_under_the_mirrored_strategy_a_mirrored_run_trains_with():
    events = []
    spec = {
        "recipe": "cpnas",
        "profile": "quick",
        "overrides": ["search_batch_size=8"],
        "input_shape": [16, 16, 1],
        "classes": 10,
        "steps": 1,
        "paths": 2,
        "strategy": "mirrored",
        "units": [["path"]],
    }
    assert estimate_steps.measure_units(spec, events.append) == 0
    assert {"replicas": 1} in events  # this host's one CPU device
    measured = [event["measured"] for event in events if "measured" in event]
    assert [m["kind"] for m in measured] == ["path"] and min(measured[0]["seconds"]) > 0
