"""``bnas-tf estimate``: what a recipe's full run will cost, before renting the machines for it.

The recipe's real networks at full size (its search supernet or Evolution candidate, and its evaluation network)
run a few steps of every kind the search and the retraining use, on random data of the dataset's shape (nothing
is downloaded): path-mode and mixed-mode weight steps, α steps, the supernet's evaluation calls, candidate
training, retraining steps and their validation (:mod:`bnas_tf.pipeline.estimate_steps`).
:mod:`bnas_tf.pipeline.estimate_counts` counts how many of each the full run takes. This module runs the
measurements and prints the step counts, the median step times (the first, traced, step left out), the projected
wall time on this machine, the peak memory and what 1, 2 and 4 data-parallel replicas would change on paper.

The steps run in child processes (``python -m bnas_tf.pipeline.estimate --measure SPEC``), the evaluation network
in one and the search's networks in others (:data:`GROUPS`), two at a time (tracing a large graph keeps one core
busy for minutes; a lock keeps two processes from running full batches at once), each reporting its measurements
as lines of JSON.
A full batch whose predicted memory would not fit is not run (:mod:`~bnas_tf.pipeline.estimate_steps`): its
steps are timed at the larger probe batch and the projection scales them by images; and this
process watches the machine's available memory (``/proc/meminfo``, Linux): under
:func:`~bnas_tf.pipeline.estimate_counts.memory_margin`, it stops the largest child and reports that the kind it
was measuring does not fit in this machine's memory at the recipe's batch, leaves out the kinds that need more
(:data:`~bnas_tf.pipeline.estimate_counts.HEAVIER`) and measures the child's other kinds in a new one. So a
paper-size batch that does not fit is said so, and the machine, shared or not, is not driven out of memory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time

from bnas_tf import recipes
from bnas_tf.pipeline import estimate_counts as counts_lib
from bnas_tf.space.ops import get_op_set

POLL_SECONDS = 0.2
#: measuring processes at a time
PARALLEL = max(1, min(2, os.cpu_count() or 1))
EVENT = "bnas-tf-estimate "
#: the measurement units of each process, in order: the evaluation network's, then the search's from the lightest
#: in memory. A process keeps the memory its largest step took until it ends, so each training kind of the supernet
#: has its own (after the lighter evaluation of the same batch), and the other process's checks see it freed.
GROUPS = (
    (("train", "train_eval"),),
    (("candidate", "candidate_eval"),),
    (("uniform4x", "uniform4x_eval"),),
    (("features",), ("eval",), ("path",)),
    (("eval_parent",), ("path_parent",)),
    (("mixed", "alpha"),),
)


@dataclasses.dataclass
class Plan:
    """What is counted and measured for one recipe."""

    recipe: object
    facts: counts_lib.DatasetFacts
    ops: int  # K of a cell search, 0 for Evolution
    paths: int  # paths of a first-round group (what a measured path step trains at once)
    search: list  # estimate_counts.Count of the search
    train: list  # ... of the retraining
    groups: list  # per measuring process, the kinds measured together, in order


def plan(recipe, facts: counts_lib.DatasetFacts) -> Plan:
    """The counts of ``recipe`` on ``facts`` and the measurement units of each process (:data:`GROUPS`)."""
    ops = len(get_op_set(recipe.op_set)) if hasattr(recipe, "op_set") else 0
    search = counts_lib.search_counts(recipe, facts, ops=ops)
    train = counts_lib.train_counts(recipe, facts)
    kinds = {c.kind for c in search + train}
    groups = []
    for group in GROUPS:
        units = [tuple(k for k in unit if k in kinds) for unit in group]
        if any(units):
            groups.append([unit for unit in units if unit])
    return Plan(
        recipe=recipe,
        facts=facts,
        ops=ops,
        paths=counts_lib.group_paths(recipe.strategy, ops),
        search=search,
        train=train,
        groups=groups,
    )


# --- the command --------------------------------------------------------------------------------
def _count(name: str, value, low: int):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise ValueError(f"--{name} must be an integer >= {low} (got {value})")


def run(args) -> int:
    _count("steps", args.steps, 1)
    _count("classes", args.classes, 2)
    _count("examples", args.examples, 2)
    overrides = list(args.overrides) + ([f"dataset={args.dataset}"] if args.dataset else [])
    recipe = recipes.get(args.recipe, args.profile, overrides)
    facts = counts_lib.dataset_facts(
        recipe.dataset,
        image_size=recipe.image_size,
        max_examples=recipe.max_examples,
        input_shape=args.input_shape,
        classes=args.classes,
        examples=args.examples,
    )
    recipe.check_images(*facts.input_shape[:2])
    the_plan = plan(recipe, facts)
    _print_plan(the_plan, args.profile)
    spec = {
        "recipe": args.recipe,
        "profile": args.profile,
        "overrides": overrides,
        "input_shape": list(facts.input_shape),
        "classes": facts.num_classes,
        "steps": args.steps,
        "paths": the_plan.paths,
        "strategy": getattr(args, "strategy", None),
    }
    print(f"\nmeasuring {args.steps} step(s) of each kind after its first (traced) one, on random data:", flush=True)
    outcome = measure(spec, the_plan.groups)
    _print_results(the_plan, outcome, args.steps)
    return 0


# --- the measuring processes --------------------------------------------------------------------
@dataclasses.dataclass
class Outcome:
    measured: dict = dataclasses.field(default_factory=dict)  # kind -> estimate_counts.Measured
    peak_rss: dict = dataclasses.field(default_factory=dict)  # kind -> its process's RSS seen while measuring it
    notes: dict = dataclasses.field(default_factory=dict)  # kind -> why it was not measured
    parameters: dict = dataclasses.field(default_factory=dict)  # network -> trainable parameters
    high_water: int = 0  # the measuring processes' largest RSS high-water mark
    tf_peak: int = 0  # TensorFlow's own peak (0: not tracked)
    replicas: int | None = None  # the MirroredStrategy's replicas the steps ran on (None: one device, no strategy)
    scaled: dict = dataclasses.field(default_factory=dict)  # kind -> why it was timed at a smaller batch
    started: float = dataclasses.field(default_factory=time.perf_counter)

    def say(self, kind: str, text: str):
        """A progress line: seconds since the measuring started, the kind, what happened."""
        print(f"  [{time.perf_counter() - self.started:6.0f} s] {kind:<15} {text}", flush=True)

    def done(self, kinds) -> bool:
        return all(kind in self.measured or kind in self.notes for kind in kinds)


@dataclasses.dataclass
class _Child:
    process: subprocess.Popen
    units: list
    errors: object  # the temporary file of its stderr
    buffer: bytes = b""
    current: str | None = None
    stopped: tuple | None = None  # (RSS, available, total) when stopped for memory


def child_command(spec: dict) -> list:
    """The command line of a measuring process."""
    return [sys.executable, "-m", "bnas_tf.pipeline.estimate", "--measure", json.dumps(spec)]


def _available_memory() -> tuple:
    """(available, total) bytes from /proc/meminfo, or (None, None) where there is none."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return info["MemAvailable"], info["MemTotal"]
    except (OSError, KeyError, ValueError, IndexError):
        return None, None


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError):
        return 0


def _low_memory():
    """(available, total) bytes when the machine's available memory is under the margin, else None."""
    available, total = _available_memory()
    if available is None or available >= counts_lib.memory_margin(total):
        return None
    return available, total


def _gb(value: float) -> str:
    return f"{value / 2**30:.1f} GB"


def measure(spec: dict, groups: list) -> Outcome:
    """Measure every group of units in its own process, :data:`PARALLEL` at a time, watched (module docstring)."""
    outcome, queue, running = Outcome(), [[tuple(u) for u in g] for g in groups], []
    with tempfile.TemporaryDirectory() as folder, selectors.DefaultSelector() as selector:
        spec = dict(spec, lock=os.path.join(folder, "steps.lock"))
        try:
            while queue or running:
                while queue and len(running) < PARALLEL:
                    units = [unit for unit in queue.pop(0) if not outcome.done(unit)]  # not left out meanwhile
                    if not units:
                        continue
                    child = _start(spec, units)
                    selector.register(child.process.stdout, selectors.EVENT_READ, child)
                    running.append(child)
                for key, _ in selector.select(POLL_SECONDS):
                    child = key.data
                    chunk = os.read(key.fileobj.fileno(), 1 << 16)
                    *lines, child.buffer = (child.buffer + chunk).split(b"\n")
                    for line in lines:
                        child.current = _event(line.decode(errors="replace"), outcome) or child.current
                    if not chunk:  # the process ended
                        selector.unregister(key.fileobj)
                        running.remove(child)
                        queue[:0] = _finish(child, outcome)
                for child in running:
                    if child.current is not None:
                        seen = max(outcome.peak_rss.get(child.current, 0), _rss(child.process.pid))
                        for unit in child.units:  # kinds measured together share their process's memory
                            if child.current in unit:
                                outcome.peak_rss.update({kind: seen for kind in unit})
                low = _low_memory()
                if low is not None and running:
                    victim = max(running, key=lambda c: _rss(c.process.pid))
                    if victim.stopped is None:
                        victim.stopped = (_rss(victim.process.pid),) + low
                        victim.process.kill()
                        outcome.say(victim.current or "-", "stopped: the machine is running out of memory")
        finally:
            for child in running:
                child.process.kill()
                child.process.wait()
                child.errors.close()
    high_water = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    outcome.high_water = max(outcome.high_water, high_water)
    return outcome


def _start(spec: dict, units: list) -> _Child:
    errors = tempfile.TemporaryFile()
    process = subprocess.Popen(child_command(dict(spec, units=units)), stdout=subprocess.PIPE, stderr=errors)
    return _Child(process=process, units=units, errors=errors)


def _finish(child: _Child, outcome: Outcome) -> list:
    """Note why ``child``'s current kind was not measured, if it was not; returns its units left to measure."""
    child.process.wait()
    current = child.current if child.current not in outcome.measured else None
    if child.stopped is not None:
        rss, available, total = child.stopped
        why = (
            f"did not fit in this machine's memory: its process was stopped at {_gb(rss)} with {_gb(available)} of "
            f"{_gb(total)} left; measure a smaller batch (--set search_batch_size=N or train_batch_size=N) or use "
            "a machine with more memory"
        )
        for kind in [current] if current else [k for unit in child.units for k in unit]:
            outcome.notes.setdefault(kind, why)
            for heavier in counts_lib.HEAVIER.get(kind, ()):
                outcome.notes.setdefault(heavier, f"not measured: needs more memory than {kind}, which did not fit")
    elif child.process.returncode != 0:
        child.errors.seek(0)
        lines = [line for line in child.errors.read().decode(errors="replace").splitlines() if line.strip()]
        if child.process.returncode < 0:
            why = f"failed: its process was killed by {signal.Signals(-child.process.returncode).name}"
        else:
            why = "failed: " + (lines[-1] if lines else f"exit status {child.process.returncode}")
        started = [unit for unit in child.units if current in unit]
        for unit in started or child.units:  # the unit it was in, or (none started) every one
            for kind in unit:
                if kind not in outcome.measured:
                    outcome.notes.setdefault(kind, why)
    child.errors.close()
    left = [unit for unit in child.units if not outcome.done(unit)]
    if child.stopped is None and child.process.returncode == 0:  # it ended by itself: never measured again
        for kind in (kind for unit in left for kind in unit):
            outcome.notes.setdefault(kind, "not measured: its process ended without a measurement")
        return []
    return [left] if left else []


def _event(line: str, outcome: Outcome):
    """Record one line of a measuring process; returns the kind it starts, if it says so."""
    if not line.startswith(EVENT):
        return None
    event = json.loads(line[len(EVENT) :])
    if "measured" in event:
        m = event["measured"]
        measured = counts_lib.Measured(
            kind=m["kind"],
            seconds=tuple(m["seconds"]),
            images_per_step=m["images_per_step"],
            trace_seconds=m["trace_seconds"],
        )
        outcome.measured[measured.kind] = measured
        outcome.high_water = max(outcome.high_water, m["high_water"])
        outcome.tf_peak = max(outcome.tf_peak, m["tf_peak"])
        outcome.say(measured.kind, f"median {measured.median:.3f} s a step")
    if "too_large" in event:  # then timed at its larger probe batch: the projection holds, the memory does not
        kind = event["too_large"]
        outcome.high_water = max(outcome.high_water, event["high_water"])
        outcome.scaled[kind] = _too_large(kind, event)
        outcome.say(kind, outcome.scaled[kind])
    if "failed" in event:
        outcome.notes[event["failed"]] = f"failed: {event['message']}"
        outcome.say(event["failed"], outcome.notes[event["failed"]])
    if "start" in event:
        outcome.say(event["start"], "building and tracing")
    if "waiting" in event:
        outcome.say(event["waiting"], "waiting for the other measuring process to end and free its memory")
    outcome.parameters.update(event.get("parameters", {}))
    outcome.replicas = event.get("replicas", outcome.replicas)
    return event.get("start")


def _too_large(kind: str, event: dict) -> str:
    (small, low), (large, high) = event["probes"]
    setting = "train_batch_size" if kind.startswith("train") else "search_batch_size"
    return (
        f"the full batch does not fit in this machine's memory, so its steps are timed at batch {large} and "
        f"scaled by images: at batch {event['batch']} a step needs about {_gb(event['needed'])} "
        f"(extrapolated from {_gb(low)} at batch {small} and {_gb(high)} at {large}), this machine has at most "
        f"{_gb(max(event['room'], 0))} for it (its memory less a {counts_lib.MEMORY_MARGIN:.0%} margin and what other "
        f"processes hold); run it on a machine with more memory, or with --set {setting}=N"
    )


# --- printing ----------------------------------------------------------------------------------
def _hours(seconds) -> str:
    """A duration in hours (what machines are rented by), in minutes or seconds when shorter than 2 of them."""
    if seconds is None:
        return "-"
    if seconds >= 7200:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.1f} s"


def _bytes(value: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B"


def _print_plan(p: Plan, profile: str):
    r, f = p.recipe, p.facts
    sizes = counts_lib.split_sizes(f)
    print(f"bnas-tf estimate: {r.name}, {profile} profile: {r.strategy} ({r.paper})")
    shape = "x".join(map(str, f.input_shape))
    print(
        f"data: {f.name}, {shape} images, {f.num_classes} classes: {sizes['train']} train "
        f"(search halves {sizes['search_weights']} weights / {sizes['search_architecture']} architecture, "
        f"{sizes['search_validation']} scoring), {sizes['validation']} validation, {sizes['test']} test"
    )
    if r.strategy == "evolution":
        print(f"search: {r.backbone} candidates x{r.width_multiplier:g}, batch {r.search_batch_size}")
    else:
        print(
            f"search supernet: {r.search_cells} cells, {r.search_channels} channels, {p.ops} ops per edge, batch "
            f"{r.search_batch_size}; a first-round path step trains {p.paths} path(s): "
            f"{p.paths * r.search_batch_size} images"
        )
        print(f"evaluation network: {r.cells} cells, {r.channels} channels (a random genotype of the space)")
    print(f"retraining: {r.train_epochs} epochs at batch {r.train_batch_size}")
    print("\nsteps of the full run (bnas_tf.pipeline.estimate_counts says how each is counted):")
    print(f"  {'kind':<15} {'steps':>12} {'images':>15} {'traces':>7}  what")
    for c in p.search + p.train:
        print(f"  {c.kind:<15} {c.steps:>12,} {c.images:>15,} {c.traces:>7,}  {counts_lib.KINDS[c.kind][0]}")


def _print_results(p: Plan, o: Outcome, steps: int):
    projected = counts_lib.project(p.search + p.train, o.measured)
    on = "" if o.replicas is None else f", under MirroredStrategy on {o.replicas} replica(s), the batch split over them"
    print(
        f"\nmeasured on this machine ({steps} step(s) after the traced first{on}; times under the load of the moment):"
    )
    print(f"  {'kind':<15} {'images/step':>11} {'trace s':>9} {'median s':>9} {'projected':>11} {'peak RSS':>9}")
    for c in p.search + p.train:
        m = o.measured.get(c.kind)
        if m is None:
            print(f"  {c.kind:<15} {o.notes.get(c.kind, 'not measured')}")
            continue
        first = "-" if m.trace_seconds is None else f"{m.trace_seconds:.1f}"
        rss = _gb(o.peak_rss[c.kind]) if o.peak_rss.get(c.kind) else "-"
        print(
            f"  {c.kind:<15} {m.images_per_step:>11,} {first:>9} {m.median:>9.3f} "
            f"{_hours(projected[c.kind]):>11} {rss:>9}"
        )
        if c.kind in o.scaled:
            print(f"  {'':<15} {o.scaled[c.kind]}")
    search = _total(projected, p.search)
    train = _total(projected, p.train)
    total = None if search is None or train is None else search + train
    print(
        f"projected wall time on this machine (steps x median step time, plus traces): search {_hours(search)}, "
        f"retraining {_hours(train)}, total {_hours(total)}" + ("" if total is not None else " (- : not measured)")
    )
    tf_peak = _gb(o.tf_peak) if o.tf_peak else "not tracked on this device (CPU)"
    print(
        f"peak memory: {_gb(o.high_water)} RSS (the measuring processes' high-water mark, VmHWM/getrusage); "
        f"TensorFlow's own: {tf_peak}"
    )
    names = ", ".join(f"{name} {count:,}" for name, count in o.parameters.items())
    print(f"trainable parameters: {names or 'not measured'} ({counts_lib.FLOAT_BYTES} bytes of gradient each)")
    print(
        "\ndata-parallel replicas, on paper: batch / R, compute time / R (communication not timed), ring all-reduce"
        " of the float gradients: 2(R-1)/R x their bytes per replica and step"
    )
    print(
        f"  {'R':>2} {'batch: search':>14} {'retraining':>11} {'time: search':>13} {'retraining':>11} "
        f"{'all-reduce a step: search':>26} {'retraining':>11} {'whole run':>10}"
    )
    rows = counts_lib.data_parallel(
        p.search + p.train,
        projected,
        o.parameters,
        search_batch=p.recipe.search_batch_size,
        train_batch=p.recipe.train_batch_size,
    )
    for row in rows:
        print(
            f"  {row.replicas:>2} {row.search_batch:>14g} {row.train_batch:>11g} {_hours(row.search_seconds):>13} "
            f"{_hours(row.train_seconds):>11} {_bytes(row.search_step_bytes):>26} {_bytes(row.train_step_bytes):>11} "
            f"{_bytes(row.total_bytes):>10}"
        )


def _total(projected: dict, counts: list):
    values = [projected.get(c.kind) for c in counts]
    return None if any(v is None for v in values) else sum(values)


# --- the child: build, step, report ---------------------------------------------------------------
def _measure_main(spec: dict) -> int:
    from bnas_tf.pipeline import estimate_steps  # lazy: the child alone loads the networks and TensorFlow

    return estimate_steps.measure_units(spec, lambda event: print(EVENT + json.dumps(event), flush=True))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--measure":
        sys.exit("usage: python -m bnas_tf.pipeline.estimate --measure SPEC_JSON (run by bnas-tf estimate)")
    sys.exit(_measure_main(json.loads(sys.argv[2])))
