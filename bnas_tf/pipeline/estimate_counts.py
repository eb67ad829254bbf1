"""What a recipe's full run will cost, counted without TensorFlow: steps, images, traces, projections, all-reduce.

``bnas-tf estimate`` (:mod:`bnas_tf.pipeline.estimate`) times a few steps of each kind; this module says how many
of each the full search and retraining take and what that makes. Everything here is arithmetic on the recipe's
settings and the dataset's sizes, so it is tested with hand-worked numbers.

How each count is made (the code it mirrors in brackets):

- **Data** (``bnas_tf.data.bundle.split_indices``): of the source's n train examples, ``round(0.1 n)`` are
  validation and, for a dataset without a test split, ``round(0.2 n)`` test; the rest, *train*, is cut in two
  halves, ``search_architecture`` = ``train // 2`` and ``search_weights`` the rest; ``search_validation`` is the
  first 5000 validation examples. CIFAR-10: 45000 train (22500 + 22500), 5000 validation, 10000 test.
- **Steps per epoch** (``SupernetTuner.search``, ``bnas_tf.pipeline.train.train``): ``search_steps_per_epoch``,
  else ``ceil(search_weights / search_batch_size)`` for a supernet, ``ceil(train / search_batch_size)`` for an
  Evolution candidate; retraining: ``train_steps_per_epoch``, else ``ceil(train / train_batch_size)``. A step is
  counted as a full batch (an epoch's last, partial batch as a full one).
- **Operation pruning, P1** (``tuners/sampling.py``, ``tuners/pruning.py``): K ops leave K - 1 rounds. The warm-up
  (L = ``warmup_epochs`` mixed-mode epochs, none with ``ucb``) takes S weight steps an epoch and S α steps in each
  epoch after the first ``warmup_weights_only``. Round r has m = K - r remaining ops; its candidates are
  ``ceil(m / 2)`` (O_smaller) once α is known (after a warm-up or a fine-tune epoch, never with ``ucb``), else m;
  a group trains P = min(candidates, ceil(m / 2)) paths; T = ``repetitions`` groups a round, each S path steps of
  P batches. Between rounds (not after the last) ``finetune_epochs`` mixed epochs of S weight and S α steps.
- **Child-Parent, P4** (``tuners/child_parent.py``): the same loop without warm-up or fine-tuning, every remaining
  op sampled once a group (P = m), each group trained on the child and on the parent supernet.
- **Differentiable, P2** (``tuners/differentiable.py``): ``search_epochs`` epochs of S weight steps and S α steps
  (first-order DARTS, one α step before each weight step).
- **Evolution, P3** (``tuners/evolution.py``, ``tuners/width_candidates.py``): ``population_size`` x
  ``generations`` candidates of ``epochs_per_candidate`` epochs, each a new network (one trace); with
  ``initial_weights = uniform4x`` first ``initial_epochs`` epochs of the 4x-wide network.
- **Evaluation**: a supernet scores each group's P paths on ``search_validation`` and each mixed epoch's mixture
  (one path); the calls merge consecutive batches up to 2**19 input pixels, every path's copy counted
  (``tuners/batches.py``, ``merged_batches``). A face search (``bnas_face``) scores paths on the features of its
  pairs' images, 256 a call, counted as 2 x ``generated_pairs`` (pairs sharing an image need fewer). Keras
  training (Evolution, retraining) validates every epoch (``ceil(validation / batch)`` steps); retraining also
  scores validation and test once at the end.
- **Traces**: a supernet traces its weight step once per *layout* (the ops its graph holds; ``_update_layout``
  keeps a graph while its every needed op is in it and at least half its slots are needed), and so its α step and
  its evaluation; path and mixed mode share the weight step. Each Keras network traces its step once.

The projection multiplies images by the measured seconds per image of the kind (a path step of P paths carries P
batches, so the measured step scales with P) and adds each trace's measured overhead (what the traced first call
took more than a step); the measured overhead is the full layout's, an upper bound for the smaller layouts of later
rounds. Mixed steps are timed with every op mixed, an upper bound for fine-tune epochs after pruning. The all-reduce
volume of a search step counts every supernet weight, an upper bound for path steps (only the sampled paths' ops
get gradients).
"""

from __future__ import annotations

import dataclasses
import math

#: ``bnas_tf.data.load``'s split of a source's train examples (bnas_tf/data/bundle.py)
VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.2
SEARCH_VALIDATION_SIZE = 5000
#: input pixels (rows x height x width, every path's copy) one evaluation call takes at most (tuners/batches.py)
EVAL_PIXELS = 2**19
#: images per call when a face search computes its paths' features (tuners/features.py)
FEATURES_BATCH = 256
FLOAT_BYTES = 4
REPLICAS = (1, 2, 4)

#: dataset name -> (input shape, classes, train examples, test examples or None when test is carved from train)
KNOWN_DATASETS = {
    "cifar10": ((32, 32, 3), 10, 50_000, 10_000),
    "cifar100": ((32, 32, 3), 100, 50_000, 10_000),
    "imagenet2012": ((224, 224, 3), 1000, 1_281_167, 50_000),
    "digits": ((16, 16, 1), 10, 1_797, None),
}

#: step kind -> (what it is, the traced function it runs: kinds sharing one share its traces)
KINDS = {
    "path": ("path-mode weight steps (P sampled paths, a batch each)", "train"),
    "path_parent": ("path-mode weight steps of the full-precision parent", "parent_train"),
    "mixed": ("mixed-mode weight steps (every remaining op, softmax(α)-weighted)", "train"),
    "alpha": ("α steps (mixed mode, architecture batch)", "alpha"),
    "eval": ("supernet evaluation calls (each path's validation accuracy)", "eval"),
    "eval_parent": ("evaluation calls of the parent", "parent_eval"),
    "features": ("path features of the verification pairs", "features"),
    "candidate": ("Evolution candidate training steps", "candidate"),
    "candidate_eval": ("Evolution candidate validation steps", "candidate_eval"),
    "uniform4x": ("uniform-4x network training steps", "uniform4x"),
    "uniform4x_eval": ("uniform-4x network validation steps", "uniform4x_eval"),
    "train": ("retraining steps of the evaluation network", "retrain"),
    "train_eval": ("retraining validation and test steps", "retrain_eval"),
}
SEARCH_KINDS = tuple(kind for kind in KINDS if not kind.startswith("train"))
#: kinds whose steps compute gradients, and of which network's parameters (the all-reduce of a replicated step)
GRADIENTS_OF = {
    "path": "supernet",
    "path_parent": "parent",
    "mixed": "supernet",
    "alpha": "alpha",
    "candidate": "candidate",
    "uniform4x": "uniform4x",
    "train": "evaluation",
}


# --- the data ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DatasetFacts:
    """What the counts need to know of a dataset, without loading it."""

    name: str
    input_shape: tuple
    num_classes: int
    train_examples: int  # the source's train split
    test_examples: int | None  # the source's test split; None: test is carved from train

    @property
    def pixels(self) -> int:
        return self.input_shape[0] * self.input_shape[1]


def dataset_facts(
    name: str,
    *,
    image_size: int | None = None,
    max_examples: int | None = None,
    input_shape: tuple | None = None,
    classes: int | None = None,
    examples: int | None = None,
) -> DatasetFacts:
    """The facts of dataset ``name`` (:data:`KNOWN_DATASETS`), the given ones replacing them; a dataset not in the
    table needs all three. ``image_size`` resizes (as ``bnas_tf.data.load``), ``max_examples`` caps each split."""
    known = KNOWN_DATASETS.get(str(name).lower())
    if known is None and (input_shape is None or classes is None or examples is None):
        raise ValueError(
            f"bnas-tf estimate does not know the sizes of dataset {name!r} (it knows {', '.join(KNOWN_DATASETS)}); "
            "give --input-shape H,W,C --classes N --examples N (its training examples)"
        )
    shape, num_classes, train, test = known or (None, None, None, None)
    shape = tuple(input_shape) if input_shape is not None else shape
    if image_size is not None:
        shape = (image_size, image_size, shape[2])
    if examples is not None:
        train, test = examples, (test if known else None)
    if max_examples is not None:
        train, test = min(train, max_examples), (None if test is None else min(test, max_examples))
    return DatasetFacts(
        name=str(name),
        input_shape=tuple(int(d) for d in shape),
        num_classes=int(classes if classes is not None else num_classes),
        train_examples=int(train),
        test_examples=test,
    )


def _fraction(fraction: float, total: int) -> int:
    return max(1, int(round(fraction * total)))


def split_sizes(facts: DatasetFacts) -> dict:
    """Examples of every part ``bnas_tf.data.load`` makes of the dataset (``split_indices``)."""
    total = facts.train_examples
    carved = _fraction(TEST_FRACTION, total) if facts.test_examples is None else 0
    validation = _fraction(VALIDATION_FRACTION, total)
    train = total - carved - validation
    if train < 2:
        raise ValueError(f"{total} examples are too few to split into train, validation and test; give --examples")
    return {
        "train": train,
        "validation": validation,
        "test": carved if facts.test_examples is None else facts.test_examples,
        "search_weights": train - train // 2,
        "search_architecture": train // 2,
        "search_validation": min(validation, SEARCH_VALIDATION_SIZE),
    }


def eval_calls(examples: int, batch: int, paths: int, pixels: int, limit: int = EVAL_PIXELS) -> int:
    """Evaluation calls over ``examples`` in batches of ``batch`` for ``paths`` paths of ``pixels``-pixel images:
    consecutive batches merge while ``rows x paths x pixels`` stays within ``limit`` (``merged_batches``)."""
    per_row, calls, rows = paths * pixels, 0, 0
    sizes = [batch] * (examples // batch) + ([examples % batch] if examples % batch else [])
    for size in sizes:
        if rows and (rows + size) * per_row > limit:
            calls, rows = calls + 1, 0
        rows += size
    return calls + (1 if rows else 0)


# --- step counts ------------------------------------------------------------------------
@dataclasses.dataclass
class Count:
    """The steps of one kind a full run takes: traced-function calls, images through the network, traces."""

    kind: str
    steps: int = 0
    images: int = 0
    traces: int = 0


class Counter:
    """Counts per kind, in the order they were first added."""

    def __init__(self):
        self.counts = {}

    def add(self, kind: str, steps: int, images: int, traces: int = 0):
        """``steps`` more steps of ``kind`` carrying ``images`` images in all, and ``traces`` more traces."""
        count = self.counts.setdefault(kind, Count(kind))
        count.steps, count.images, count.traces = count.steps + steps, count.images + images, count.traces + traces

    def result(self) -> list:
        return list(self.counts.values())


def sampling_counts(
    *,
    ops: int,
    repetitions: int,
    steps: int,
    batch: int,
    validation: int,
    pixels: int,
    warmup_epochs: int = 0,
    warmup_weights_only: int = 0,
    finetune_epochs: int = 0,
    halve_candidates: bool = False,
    half_paths: bool = False,
    parent: bool = False,
    feature_images: int | None = None,
) -> list:
    """The counts of a :class:`~bnas_tf.tuners.sampling.SamplingOracle` search (P1 with ``half_paths`` and, after
    a warm-up, ``halve_candidates``; P4 with ``parent``), following its rounds (module docstring).
    ``feature_images``: a face search scores paths on that many pair images instead of ``validation``."""
    counter, traced = Counter(), set()
    remaining, alpha_known, layout, layouts = ops, False, None, 0

    def use(needed):  # SamplingOracle._update_layout, by sizes: a new layout holds the ops remaining then
        nonlocal layout, layouts
        if layout is None or 2 * needed < layout:
            layout, layouts = remaining, layouts + 1
        return layouts

    def traces(function, at):  # 1 the first time ``function`` runs in layout ``at``
        new = (function, at) not in traced
        traced.add((function, at))
        return int(new)

    def mixed_epoch(at, train_alpha):
        counter.add("mixed", steps, steps * batch, traces("train", at))
        if train_alpha:
            counter.add("alpha", steps, steps * batch, traces("alpha", at))
        counter.add("eval", eval_calls(validation, batch, 1, pixels), validation, traces("eval", at))

    for epoch in range(warmup_epochs):
        mixed_epoch(use(remaining), train_alpha=epoch >= warmup_weights_only)
    alpha_known = warmup_epochs > 0
    for _ in range(ops - 1):
        candidates = math.ceil(remaining / 2) if halve_candidates and alpha_known else remaining
        at = use(candidates)
        paths = min(candidates, math.ceil(remaining / 2)) if half_paths else candidates
        for member in ("", "_parent") if parent else ("",):
            path_steps = repetitions * steps
            counter.add("path" + member, path_steps, path_steps * paths * batch, traces("train" + member, at))
            if feature_images is None:
                calls = repetitions * eval_calls(validation, batch, paths, pixels)
                counter.add("eval" + member, calls, repetitions * paths * validation, traces("eval" + member, at))
            else:
                calls = repetitions * math.ceil(feature_images / FEATURES_BATCH)
                counter.add("features", calls, repetitions * paths * feature_images, traces("features", at))
        remaining -= 1
        if remaining > 1 and finetune_epochs:
            for _ in range(finetune_epochs):
                mixed_epoch(use(remaining), train_alpha=True)
            alpha_known = True
    return counter.result()


def differentiable_counts(*, epochs: int, steps: int, batch: int, validation: int, pixels: int) -> list:
    """P2: ``epochs`` epochs of ``steps`` weight and α steps each, then the mixture's validation; one layout."""
    counter = Counter()
    counter.add("mixed", epochs * steps, epochs * steps * batch, traces=1)
    counter.add("alpha", epochs * steps, epochs * steps * batch, traces=1)
    counter.add("eval", epochs * eval_calls(validation, batch, 1, pixels), epochs * validation, traces=1)
    return counter.result()


def keras_counts(counter, kind, *, epochs, steps, batch, validation, networks=1):
    """``networks`` Keras networks of ``epochs`` epochs of ``steps`` steps, validated every epoch."""
    counter.add(kind, networks * epochs * steps, networks * epochs * steps * batch, traces=networks)
    counter.add(
        f"{kind}_eval", networks * epochs * math.ceil(validation / batch), networks * epochs * validation, networks
    )


def evolution_counts(
    *,
    population: int,
    generations: int,
    epochs: int,
    steps: int,
    batch: int,
    validation: int,
    initial_epochs: int | None = None,
) -> list:
    """P3: every candidate a new network of ``epochs`` epochs; ``initial_epochs`` (None: no uniform-4x start)
    epochs of the uniform-4x network first."""
    counter = Counter()
    keras_counts(
        counter,
        "candidate",
        epochs=epochs,
        steps=steps,
        batch=batch,
        validation=validation,
        networks=population * generations,
    )
    if initial_epochs is not None:
        keras_counts(counter, "uniform4x", epochs=initial_epochs, steps=steps, batch=batch, validation=validation)
    return counter.result()


def retraining_counts(*, epochs: int, steps: int, batch: int, validation: int, test: int) -> list:
    """The winner's retraining: ``epochs`` of ``steps`` steps, validation each epoch, validation and test once."""
    counter = Counter()
    counter.add("train", epochs * steps, epochs * steps * batch, traces=1)
    eval_steps = (epochs + 1) * math.ceil(validation / batch) + math.ceil(test / batch)
    counter.add("train_eval", eval_steps, (epochs + 1) * validation + test, traces=1)
    return counter.result()


# --- a recipe's counts --------------------------------------------------------------------
def group_paths(strategy: str, ops: int) -> int:
    """Paths of a first-round group: ⌈K/2⌉ in operation pruning (P1), every op in Child-Parent (P4), else 1."""
    if strategy in ("operation_pruning", "face_operation_pruning"):
        return math.ceil(ops / 2)
    return ops if strategy == "child_parent" else 1


def search_counts(recipe, facts: DatasetFacts, ops: int = 0) -> list:
    """The search's counts for a recipe (its ``strategy`` and settings); ``ops``: K, the size of a cell search's
    op set."""
    sizes = split_sizes(facts)
    batch = recipe.search_batch_size
    if recipe.strategy == "evolution":
        return evolution_counts(
            population=recipe.population_size,
            generations=recipe.generations,
            epochs=recipe.epochs_per_candidate,
            steps=recipe.search_steps_per_epoch or math.ceil(sizes["train"] / batch),
            batch=batch,
            validation=sizes["validation"],
            initial_epochs=(recipe.initial_epochs or recipe.epochs_per_candidate)
            if recipe.initial_weights == "uniform4x"
            else None,
        )
    steps = recipe.search_steps_per_epoch or math.ceil(sizes["search_weights"] / batch)
    common = dict(steps=steps, batch=batch, validation=sizes["search_validation"], pixels=facts.pixels)
    if recipe.strategy == "differentiable":
        return differentiable_counts(epochs=recipe.search_epochs, **common)
    if recipe.strategy == "child_parent":
        return sampling_counts(ops=ops, repetitions=recipe.repetitions, parent=True, **common)
    if recipe.strategy in ("operation_pruning", "face_operation_pruning"):
        warmup = 0 if recipe.ucb else recipe.warmup_epochs  # SPEC P1 step 2d: no warm-up in the 1-bit search
        return sampling_counts(
            ops=ops,
            repetitions=recipe.repetitions,
            warmup_epochs=warmup,
            warmup_weights_only=recipe.warmup_weights_only,
            finetune_epochs=recipe.finetune_epochs,
            halve_candidates=not recipe.ucb,
            half_paths=True,
            feature_images=2 * recipe.generated_pairs if recipe.strategy == "face_operation_pruning" else None,
            **common,
        )
    raise ValueError(f"bnas-tf estimate does not know strategy {recipe.strategy!r}")


def train_counts(recipe, facts: DatasetFacts) -> list:
    sizes = split_sizes(facts)
    batch = recipe.train_batch_size
    return retraining_counts(
        epochs=recipe.train_epochs,
        steps=recipe.train_steps_per_epoch or math.ceil(sizes["train"] / batch),
        batch=batch,
        validation=sizes["validation"],
        test=sizes["test"],
    )


# --- projections ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Measured:
    """Step times of one kind measured on this machine."""

    kind: str
    seconds: tuple  # every timed step (the first, traced, call left out)
    images_per_step: int
    trace_seconds: float | None = None  # what the traced first call took more than a step; None: not traced here

    @property
    def median(self) -> float:
        ordered = sorted(self.seconds)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def project(counts: list, measured: dict) -> dict:
    """``{kind: seconds or None}``: a count's images times its kind's measured seconds per image, plus its traces
    times the overhead measured for its function (by any kind that traced it). None: the kind was not measured."""
    overhead = {}
    for m in measured.values():
        if m.trace_seconds is not None:
            function = KINDS[m.kind][1]
            overhead[function] = max(overhead.get(function, 0.0), m.trace_seconds)
    out = {}
    for count in counts:
        m = measured.get(count.kind)
        if m is None or not m.seconds:
            out[count.kind] = None
            continue
        seconds = count.images * m.median / m.images_per_step
        out[count.kind] = seconds + count.traces * overhead.get(KINDS[count.kind][1], 0.0)
    return out


#: kind -> kinds that need more memory at the same batch (left out when it does not fit): training keeps the
#: activations an evaluation frees; mixed mode runs every op on each image where a path step runs one; an α step
#: differentiates the same mixed forward pass; the uniform-4x network is a 4x wider candidate.
HEAVIER = {
    "eval": ("path", "mixed", "alpha"),
    "features": ("path", "mixed", "alpha"),
    "path": ("mixed", "alpha"),
    "mixed": ("alpha",),
    "eval_parent": ("path_parent",),
    "candidate": ("uniform4x",),
    "candidate_eval": ("uniform4x_eval",),
}
#: share of the machine's memory (at least MEMORY_FLOOR bytes) a measurement leaves available
MEMORY_MARGIN = 0.1
MEMORY_FLOOR = 2**30


def probe_batches(batch: int) -> tuple:
    """Batch sizes of the two steps whose memory predicts a step of ``batch``: ``batch // 32`` (at least 2) and
    twice that; none when that reaches ``batch`` (then the step itself is small)."""
    small = max(2, batch // 32)
    return () if 2 * small >= batch else (small, 2 * small)


def predicted_memory(probes, batch: int) -> float:
    """The process's memory high-water mark at a step of ``batch`` images, extrapolated linearly from ``probes``
    ``((batch_1, high_water_1), (batch_2, high_water_2))`` measured at two smaller batches."""
    (small, low), (large, high) = probes
    return high + (high - low) / (large - small) * (batch - large)


def memory_margin(total: int) -> float:
    """Bytes of the machine's ``total`` memory a measurement must leave available."""
    return max(MEMORY_MARGIN * total, MEMORY_FLOOR)


def ring_allreduce_bytes(parameters: int, replicas: int) -> float:
    """Bytes each replica sends (and receives) to all-reduce the float gradients of ``parameters`` parameters
    over ``replicas`` replicas with a ring: 2 (R - 1) / R x 4 bytes a parameter (0 on one replica)."""
    return 2 * (replicas - 1) / replicas * FLOAT_BYTES * parameters


@dataclasses.dataclass(frozen=True)
class Replicated:
    """What ``replicas`` data-parallel replicas change, on paper."""

    replicas: int
    search_batch: float  # per replica (each path's batch in path mode)
    train_batch: float
    search_seconds: float | None
    train_seconds: float | None
    search_step_bytes: float  # all-reduced per replica per weight step of the search supernet
    train_step_bytes: float
    total_bytes: float  # over every gradient step of the search and the retraining


def data_parallel(
    counts: list, projected: dict, parameters: dict, *, search_batch: int, train_batch: int, replicas=REPLICAS
) -> list:
    """Per replica count: batch / R, compute time / R (no communication counted) and the ring all-reduce volume
    of the gradients, per step and over the run (``parameters[network]``, :data:`GRADIENTS_OF`)."""

    def total(kinds):
        values = [projected.get(c.kind) for c in counts if c.kind in kinds]
        return None if not values or any(v is None for v in values) else sum(values)

    search_total = total(SEARCH_KINDS)
    train_total = total(("train", "train_eval"))
    rows = []
    for r in replicas:
        volume = sum(
            c.steps * ring_allreduce_bytes(parameters.get(GRADIENTS_OF[c.kind], 0), r)
            for c in counts
            if c.kind in GRADIENTS_OF
        )
        rows.append(
            Replicated(
                replicas=r,
                search_batch=search_batch / r,
                train_batch=train_batch / r,
                search_seconds=None if search_total is None else search_total / r,
                train_seconds=None if train_total is None else train_total / r,
                search_step_bytes=ring_allreduce_bytes(parameters.get("supernet", parameters.get("candidate", 0)), r),
                train_step_bytes=ring_allreduce_bytes(parameters.get("evaluation", 0), r),
                total_bytes=volume,
            )
        )
    return rows
