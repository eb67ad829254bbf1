"""The steps ``bnas-tf estimate`` times: the recipe's real networks at full size, on random data of the dataset's
shape, in a child process of :mod:`bnas_tf.pipeline.estimate`.

Each kind of step runs through the library's own code, as the search and the retraining run it:

- supernet kinds (:class:`~bnas_tf.tuners.training.SupernetTrainer` on the recipe's
  :func:`~bnas_tf.pipeline.search.cell_space` and search binarization): ``path`` is
  :meth:`~bnas_tf.tuners.training.SupernetTrainer.train_paths` with a first-round group (P sampled paths, one op
  each per edge, the layout holding every op), ``eval`` and ``features`` score those paths
  (:meth:`~bnas_tf.tuners.training.SupernetTrainer.evaluate_paths` on one batch a call; a face search's
  ``path_features``), ``mixed`` and ``alpha`` are :meth:`~bnas_tf.tuners.training.SupernetTrainer.train_mixed` over
  every op, with architecture data when α trains; ``*_parent`` the same on the full-precision parent (P4);
- Keras kinds: ``train``/``train_eval`` are ``fit``/``evaluate`` steps of the evaluation network as
  :func:`bnas_tf.pipeline.train.build_model` builds and :func:`~bnas_tf.pipeline.train.compile_model` compiles it
  (a random genotype of the space; the uniform 1x width network for Evolution; the ArcFace training model for a
  face recipe), ``candidate``/``uniform4x`` the Evolution networks at 1x and 4x, compiled as the tuner does.

A training kind first runs two small batches (:func:`~bnas_tf.pipeline.estimate_counts.probe_batches`): the first
call traces the step (its overhead is the first call less the second), and the peak bytes of TensorFlow's CPU
allocator during a step of each size predict the full batch's
(:func:`~bnas_tf.pipeline.estimate_counts.predicted_memory`; the process's RSS high-water mark where the allocator
keeps no count). A full batch that would not leave :func:`~bnas_tf.pipeline.estimate_counts.memory_margin` of the
machine's memory available is not run: the kind is reported too large, with the memory it needs, and timed at the
larger probe batch instead (the kinds needing more probe their own batches); one that would fit once the other
measuring process has ended waits for it. Otherwise ``steps + 1`` full steps run and the first is left out (it
touches its memory for the first time). Full batches run under a lock shared with the other measuring process: one
process at a time checks the memory, runs them and times them. Step times come
from the trainer's own record (``step_times``) or a Keras batch callback (Keras hands it numbers, so the step has
finished).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import gc
import os
import threading
import time

import numpy as np
import tensorflow as tf

from bnas_tf import recipes
from bnas_tf.pipeline import distribution
from bnas_tf.pipeline import estimate_counts as counts_lib
from bnas_tf.pipeline import train as train_lib
from bnas_tf.pipeline.face_train import face_models
from bnas_tf.pipeline.search import cell_space
from bnas_tf.space.genotype import Genotype, WidthGenotype
from bnas_tf.space.losses import ChildParentKernelLoss
from bnas_tf.space.networks import build_width_network
from bnas_tf.space.supernet import KINDS, Supernet
from bnas_tf.tuners.training import SupernetTrainer

#: How long a full batch that would fit this machine waits for the memory of another measuring process
MEMORY_WAIT_SECONDS = 900


def measure_units(spec: dict, emit) -> int:
    """Measure every unit of ``spec["units"]`` (kinds measured together), reporting through ``emit``."""
    _exit_with_parent()
    if spec.get("lock"):  # seen by the other measuring processes (Bench.others_ending)
        open(os.path.join(os.path.dirname(spec["lock"]), f"alive-{os.getpid()}"), "w").close()
    bench = Bench(recipes.get(spec["recipe"], spec["profile"], spec["overrides"]), spec, emit)
    for unit in spec["units"]:
        unit = tuple(unit)
        try:
            bench.measure(unit)
        except Exception as error:  # reported, and the next unit is measured: one kind's failure is not all's
            lines = str(error).strip().splitlines() or [""]
            for kind in unit:
                emit({"failed": kind, "message": f"{type(error).__name__}: {lines[0]}"[:300]})
    return 0


def _exit_with_parent():
    """End this process when the one that started it ends (nothing is left running after an interrupted run)."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _status(field: str) -> int:
    """``VmRSS``/``VmHWM`` of this process in bytes (0 where /proc is missing)."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))
    return 0


def _available() -> tuple:
    """(available, total) bytes of the machine's memory, or (None, None) without /proc/meminfo."""
    with contextlib.suppress(OSError, KeyError, ValueError, IndexError):
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return info["MemAvailable"], info["MemTotal"]
    return None, None


def _parameters(variables) -> int:
    return int(sum(np.prod(v.shape) for v in variables))


class _BatchTimer(tf.keras.callbacks.Callback):
    """Seconds of every training or test batch of a ``fit``/``evaluate`` call."""

    def __init__(self):
        super().__init__()
        self.seconds, self._start = [], 0.0

    def _begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def _end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)

    on_train_batch_begin = on_test_batch_begin = _begin
    on_train_batch_end = on_test_batch_end = _end


class Bench:
    """Builds the recipe's networks when first needed and times their steps."""

    def __init__(self, recipe, spec: dict, emit):
        self.recipe, self.emit = recipe, emit
        self.input_shape, self.classes = tuple(spec["input_shape"]), int(spec["classes"])
        self.steps, self.paths = int(spec["steps"]), int(spec["paths"])
        self.lock = spec.get("lock")
        # made before any other TensorFlow work of this process; None: one device
        self.strategy = distribution.make(spec.get("strategy"))
        if self.strategy is not None:
            emit({"replicas": self.strategy.num_replicas_in_sync})
        self.rng = np.random.default_rng(recipe.seed)
        self.trainers = {}
        self.pool = 0  # bytes of memory this process's tensors have taken (tensor_peak)

    # --- data ---------------------------------------------------------------------------------
    def images(self, rows: int) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, (rows,) + self.input_shape).astype(np.float32)

    def labels(self, rows: int) -> np.ndarray:
        return self.rng.integers(0, self.classes, rows).astype(np.int32)

    def batches(self, rows: int, batch: int):
        return tf.data.Dataset.from_tensor_slices((self.images(rows), self.labels(rows))).batch(batch)

    # --- timing and memory ----------------------------------------------------------------------
    @contextlib.contextmanager
    def timing(self):
        """Hold the measuring processes' shared lock while full batches run."""
        if self.lock is None:
            yield
            return
        with open(self.lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def sized(self, kinds: tuple, call, batch: int, images_per_row: int, probe: bool = True):
        """Time ``kinds`` through ``call(batch, n) -> {kind: [seconds of n calls]}``: probe two small batches
        (trace, memory), refuse a full batch that would not fit, then time ``steps`` full steps."""
        probes = counts_lib.probe_batches(batch) if probe else ()
        if probes:
            small, large = probes
            first = call(small, 2)
            traces = {kind: max(seconds[0] - seconds[1], 0.0) for kind, seconds in first.items()}
            low = self.tensor_peak(lambda: call(small, 1))
            high = self.tensor_peak(lambda: call(large, 1))
            needed = counts_lib.predicted_memory(((small, low), (large, high)), batch)
            timed = self.full_batches(kinds[0], call, batch, needed - self.pool)
            if isinstance(timed, float):  # the most memory this machine would have for it
                self.too_large(kinds[0], needed, timed, batch, ((small, low), (large, high)))
                # timed at the larger probe batch instead: the projection scales a step's time by its images
                with self.timing():
                    timed = {kind: seconds[1:] for kind, seconds in call(large, self.steps + 1).items()}
                batch = large
        else:
            with self.timing():
                timed = call(batch, self.steps + 1)
            self.tensor_peak(lambda: None)
            traces = {kind: seconds[0] - float(np.median(seconds[1:])) for kind, seconds in timed.items()}
            timed = {kind: seconds[1:] for kind, seconds in timed.items()}
        for kind in kinds:
            self.report(kind, timed[kind], batch * images_per_row, max(traces[kind], 0.0))

    def tensor_peak(self, call) -> int:
        """The peak bytes of the tensors TensorFlow's CPU allocator held while ``call()`` ran (where it keeps no
        count, the process's RSS high-water mark during the call, reset first where Linux lets a process). The
        memory a process's tensors once took stays with it and serves its later steps: :attr:`pool` keeps the
        largest peak."""
        with contextlib.suppress(ValueError):
            self.pool = max(self.pool, tf.config.experimental.get_memory_info("CPU:0")["peak"])
            tf.config.experimental.reset_memory_stats("CPU:0")
        with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        call()
        peak = 0
        with contextlib.suppress(ValueError):
            peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
        peak = peak or _status("VmHWM")
        self.pool = max(self.pool, peak)
        return peak

    def full_batches(self, kind: str, call, batch: int, extra: float):
        """``steps + 1`` calls at ``batch`` less the first, under the lock, once ``extra`` more bytes leave the
        memory margin available. While they would not, but would once the other measuring processes have ended and
        freed their memory, wait for them (outside the lock, so they go on), unless they wait themselves: a process
        that waits does not end. When they do not fit: the most memory this machine would have for the step, its
        available memory less the margin, with what this process and the others ending would free."""
        deadline = time.monotonic() + MEMORY_WAIT_SECONDS
        waiting = os.path.join(os.path.dirname(self.lock), f"waiting-{os.getpid()}") if self.lock else None
        try:
            while True:
                with self.timing():  # full batches one process at a time, so the memory checked is there
                    available, total = _available()
                    if available is None or extra <= available - counts_lib.memory_margin(total):
                        if waiting and os.path.exists(waiting):
                            os.unlink(waiting)
                        times = call(batch, self.steps + 1)
                        self.tensor_peak(lambda: None)
                        return {k: seconds[1:] for k, seconds in times.items()}
                    ending = self.others_ending()  # bytes the other measuring processes free when they end
                    most = available + ending - counts_lib.memory_margin(total)
                    if not ending or extra > most or time.monotonic() > deadline:
                        return float(most + self.pool)
                    if not os.path.exists(waiting):
                        open(waiting, "w").close()
                        self.emit({"waiting": kind})
                time.sleep(2.0)
        finally:
            if waiting and os.path.exists(waiting):
                os.unlink(waiting)

    def others_ending(self) -> int:
        """The memory (RSS, bytes) of the other measuring processes of this run that are alive (each leaves an
        ``alive-PID`` file) and not waiting for memory themselves (``waiting-PID``): what ends and is freed."""
        if self.lock is None:
            return 0
        folder = os.path.dirname(self.lock)
        names, freed = set(os.listdir(folder)), 0
        for name in names:
            pid = name[len("alive-") :] if name.startswith("alive-") else None
            if pid is None or int(pid) == os.getpid() or f"waiting-{pid}" in names:
                continue
            with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
                if "Z" not in status["State"].split()[0]:
                    freed += int(status["VmRSS"].split()[0]) * 1024
        return freed

    def too_large(self, kind, needed, room, batch, probes):
        """Say that ``kind``'s full batch would not fit (it is then timed at its larger probe batch; the kinds
        that need more memory probe their own batches too)."""
        self.emit(
            {
                "too_large": kind,
                "needed": needed,
                "room": room,
                "batch": batch,
                "probes": [list(probe) for probe in probes],
                "high_water": _status("VmHWM"),
            }
        )

    def report(self, kind: str, seconds: list, images_per_step: int, trace_seconds: float | None):
        tf_peak = self.pool
        with contextlib.suppress(ValueError, KeyError):
            tf_peak = max(tf_peak, int(tf.config.experimental.get_memory_info("CPU:0")["peak"]))
        self.emit(
            {
                "measured": {
                    "kind": kind,
                    "seconds": list(seconds),
                    "images_per_step": int(images_per_step),
                    "trace_seconds": trace_seconds,
                    "high_water": _status("VmHWM"),
                    "tf_peak": tf_peak,
                }
            }
        )

    def measure(self, unit: tuple):
        method = {
            "train": self.retraining,
            "candidate": self.candidate,
            "uniform4x": self.candidate,
            "eval": self.evaluation,
            "eval_parent": self.evaluation,
            "features": self.features,
            "path": self.path_steps,
            "path_parent": self.path_steps,
            "mixed": self.mixed_steps,
        }[unit[0]]
        self.emit({"start": unit[0]})  # before building: what the parent names if memory runs out
        method(unit)

    # --- Keras networks -------------------------------------------------------------------------
    def _keras(self, unit, model, x, y, batch):
        """Training steps (``fit``) with memory probes, then validation steps (``evaluate``) at ``batch``."""
        train_kind, eval_kind = unit

        def data(size, count):
            inputs = tuple(part[:size] for part in x) if isinstance(x, tuple) else x[:size]
            targets = {k: v[:size] for k, v in y.items()} if isinstance(y, dict) else y[:size]
            return tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(size).repeat(count)

        def fit(size, count):
            timer = _BatchTimer()
            model.fit(data(size, count), epochs=1, verbose=0, callbacks=[timer])
            return {train_kind: timer.seconds}

        def evaluate(size, count):
            timer = _BatchTimer()
            model.evaluate(data(size, count), verbose=0, callbacks=[timer])
            return {eval_kind: timer.seconds}

        self.sized((train_kind,), fit, batch, 1)
        self.emit({"start": eval_kind})
        self.sized((eval_kind,), evaluate, batch, 1, probe=False)

    def retraining(self, unit):
        recipe, batch = self.recipe, self.recipe.train_batch_size
        tf.keras.utils.set_random_seed(recipe.seed)
        genotype = self.evaluation_genotype()
        labels = self.labels(batch)
        onehot = tf.one_hot(labels, self.classes).numpy()
        with distribution.scope(self.strategy):  # as bnas_tf.pipeline.train.train builds and compiles
            if recipe.task == "face_verification":
                model, _ = face_models(genotype, recipe, num_classes=self.classes, input_shape=self.input_shape)
                x, y, counted = (self.images(batch), labels), onehot, model  # the margin reads the label
            else:
                counted = train_lib.build_model(
                    genotype, recipe, num_classes=self.classes, input_shape=self.input_shape
                )
                model = train_lib.with_kernel_loss(counted, recipe)
                x, y = self.images(batch), {name: onehot for name in model.output_names}
            train_lib.compile_model(model, recipe, steps_per_epoch=1000, epochs=recipe.train_epochs)
        self.emit({"parameters": {"evaluation": _parameters(counted.trainable_weights)}})
        self._keras(unit, model, x, y, batch)

    def evaluation_genotype(self):
        """What the retraining trains here: the uniform 1x width network, or a random genotype of the space
        (every edge, as pruning leaves it; two inputs a node for a differentiable search)."""
        recipe = self.recipe
        if recipe.strategy == "evolution":
            return WidthGenotype.uniform(recipe.backbone, 1.0)
        space = cell_space(recipe)
        every_edge = recipe.strategy != "differentiable"
        return Genotype.random(space.op_set, seed=recipe.seed, nodes=space.nodes, all_edges=every_edge)

    def candidate(self, unit):
        recipe, batch = self.recipe, self.recipe.search_batch_size
        tf.keras.utils.set_random_seed(recipe.seed)
        with distribution.scope(self.strategy):  # as Evolution builds and compiles a candidate under its strategy
            model = build_width_network(
                WidthGenotype.uniform(recipe.backbone, 4.0 if unit[0] == "uniform4x" else 1.0),
                num_classes=self.classes,
                input_shape=self.input_shape,
                binarization=recipe.binarization_config(),
                lce_friendly=recipe.lce_friendly,
                width_multiplier=recipe.width_multiplier,
            )
            schedule = tf.keras.optimizers.schedules.CosineDecay(recipe.search_learning_rate, decay_steps=1000)
            model.compile(  # as bnas_tf.tuners.width_candidates.WidthCandidates compiles a candidate
                optimizer=tf.keras.optimizers.SGD(schedule, momentum=recipe.search_momentum),
                loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
        self.emit({"parameters": {unit[0]: _parameters(model.trainable_weights)}})
        self._keras(unit, model, self.images(batch), self.labels(batch), batch)

    # --- the supernet -------------------------------------------------------------------------
    def trainer(self, member: str = "") -> SupernetTrainer:
        """The child supernet's trainer (``member=""``) or the full-precision parent's (``"_parent"``), as the
        tuner builds them (:class:`~bnas_tf.tuners.supernet_tuner.SupernetTuner`)."""
        if member not in self.trainers:
            recipe = self.recipe
            space = cell_space(recipe)
            if hasattr(recipe, "stem"):  # a face recipe's stem (bnas_tf.pipeline.search._face_operation_pruning)
                space = dataclasses.replace(space, stem=recipe.stem)
            binarization = recipe.search_binarization_config()
            tf.keras.utils.set_random_seed(recipe.seed)
            with distribution.scope(self.strategy):
                supernet = Supernet(
                    space,
                    num_classes=self.classes,
                    input_shape=self.input_shape,
                    binarization=binarization.full_precision() if member else binarization,
                    partial_channels=recipe.partial_channels,
                    name="parent" if member else "child",
                    sync_batch_norm=recipe.sync_batch_norm,
                )
            kernel_loss = None
            if not member and recipe.strategy == "child_parent" and recipe.kernel_loss:
                kernel_loss = ChildParentKernelLoss(recipe.kernel_loss_lambda)
            self.trainers[member] = SupernetTrainer(
                supernet,
                learning_rate=recipe.search_learning_rate,
                momentum=recipe.search_momentum,
                weight_decay=recipe.search_weight_decay,
                alpha_learning_rate=recipe.alpha_learning_rate,
                kernel_loss=kernel_loss,
                distribution_strategy=self.strategy,
            )
            parameters = {("parent" if member else "supernet"): _parameters(supernet.all_weights())}
            if not member:
                parameters["alpha"] = _parameters(supernet.alpha_variables)
            self.emit({"parameters": parameters})
            gc.collect()
            gc.disable()  # as the search runs its steps (bnas_tf.tuners.supernet_tuner._collect)
        return self.trainers[member]

    def path_mode(self, trainer: SupernetTrainer):
        """A first-round group: P paths, each taking a different op on every edge, in the layout of every op."""
        space = trainer.supernet.space
        layout = {kind: [list(range(space.num_ops))] * space.num_edges for kind in KINDS}
        routes = {kind: [self.rng.permutation(space.num_ops).tolist() for _ in layout[kind]] for kind in KINDS}
        trainer.supernet.set_paths(layout, routes, sampled_paths=self.paths)
        trainer.set_active({kind: [set(route[: self.paths]) for route in routes[kind]] for kind in KINDS})

    def mixed_mode(self, trainer: SupernetTrainer):
        space = trainer.supernet.space
        trainer.supernet.set_mixed({kind: [list(range(space.num_ops))] * space.num_edges for kind in KINDS})
        trainer.set_active(None)

    def path_steps(self, unit):
        (kind,) = unit
        trainer = self.trainer(kind.removeprefix("path"))
        self.path_mode(trainer)

        def call(batch, count):
            before = len(trainer.step_times)
            trainer.train_paths(self.batches(self.paths * batch, batch), count)  # a pass: a batch for every path
            return {kind: [seconds for seconds, _ in trainer.step_times[before:]]}

        self.sized(unit, call, self.recipe.search_batch_size, self.paths)

    def _calls(self, kind, function, data):
        def call(batch, count):
            chunk = data(batch)
            out = []
            for _ in range(count):
                start = time.perf_counter()
                function(chunk)
                out.append(time.perf_counter() - start)
            return {kind: out}

        return call

    def evaluation(self, unit):
        (kind,) = unit
        trainer, batch = self.trainer(kind.removeprefix("eval")), self.recipe.search_batch_size
        paths = 1 if self.recipe.strategy == "differentiable" else self.paths
        if paths == 1:
            self.mixed_mode(trainer)
        else:
            self.path_mode(trainer)
        call = self._calls(kind, trainer.evaluate_paths, lambda size: self.batches(size, size))  # one call a pass
        self.sized(unit, call, batch, paths, probe=False)

    def features(self, unit):
        trainer = self.trainer()
        self.path_mode(trainer)
        call = self._calls("features", trainer.path_features, self.images)
        self.sized(unit, call, counts_lib.FEATURES_BATCH, self.paths, probe=False)

    def mixed_steps(self, unit):
        trainer = self.trainer()
        self.mixed_mode(trainer)

        def call(batch, count):
            data = self.batches(batch, batch)
            before = len(trainer.step_times)
            trainer.train_mixed(data, count, architecture_data=data if "alpha" in unit else None)
            seconds = [s for s, _ in trainer.step_times[before:]]
            if "alpha" in unit:  # each step is an α step, then a weight step
                return {"alpha": seconds[0::2], "mixed": seconds[1::2]}
            return {"mixed": seconds}

        self.sized(unit, call, self.recipe.search_batch_size, 1)
