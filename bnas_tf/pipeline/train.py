"""Retraining a searched architecture from scratch with a recipe's schedule (``bnas-tf train``).

Keras ``model.fit`` with SGD + momentum, a cosine (or step) learning-rate
schedule over all steps, global gradient-norm clipping, weight decay,
cutout through :func:`bnas_tf.data.load`'s augmentation, optional label
smoothing and, for cell networks, the DARTS auxiliary head (its loss weighted
by ``auxiliary_weight``; the head is dropped from the returned model, so it
never reaches the .tflite). With a recipe's ``kernel_loss`` (``cpnas``' paper profile), SPEC P4's
kernel-level Child-Parent loss joins the cross-entropy (:func:`with_kernel_loss`). Keras progress bars,
and a TensorBoard callback writing ``<run>/logs/train``. A loss or output that is not finite stops training
with a one-line error naming the setting to lower (:class:`StopOnNonFinite`), and nothing of the run is saved
as trained.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import numpy as np
import tensorflow as tf

from bnas_tf import data as data_lib
from bnas_tf.files import atomic_write_json
from bnas_tf.pipeline import distribution, run_folder
from bnas_tf.space import published
from bnas_tf.space.genotype import Genotype, WidthGenotype, load_any
from bnas_tf.space.learning_rates import OneCycle
from bnas_tf.space.losses import ClassCentreLoss, kernel_reconstruction_loss
from bnas_tf.space.networks import build_network, build_width_network


@dataclasses.dataclass
class TrainResult:
    model: tf.keras.Model  # inference model: logits only
    history: dict  # per-epoch lists: loss, accuracy, val_loss, val_accuracy, lr
    seconds: float
    epochs: int


def load_training_data(recipe, *, cache=True) -> data_lib.DataBundle:
    """The recipe's dataset at its training batch size, train part augmented (crop, flip where sensible, cutout)."""
    return data_lib.load(
        recipe.dataset,
        batch_size=recipe.train_batch_size,
        image_size=recipe.image_size,
        augment=recipe.augment,
        cutout=recipe.cutout if recipe.augment else 0,
        seed=recipe.seed,
        max_examples=recipe.max_examples,
        cache=cache,
    )


def build_model(genotype, recipe, *, num_classes: int, input_shape) -> tf.keras.Model:
    """The evaluation network of ``genotype`` as the recipe sizes it (cells/channels, or width multiplier)."""
    binarization = recipe.binarization_config()
    if isinstance(genotype, WidthGenotype):
        # the search trained candidates at the recipe's scaled widths; the winner is retrained the same size
        return build_width_network(
            genotype,
            num_classes=num_classes,
            input_shape=tuple(input_shape),
            binarization=binarization,
            lce_friendly=recipe.lce_friendly,
            width_multiplier=getattr(recipe, "width_multiplier", 1.0),
        )
    if not isinstance(genotype, Genotype):
        raise TypeError(f"genotype must be a Genotype or WidthGenotype, got {type(genotype).__name__}")
    if not hasattr(recipe, "cells"):
        raise ValueError(
            f"recipe {recipe.name!r} trains width genotypes; pass a cell recipe (e.g. --recipe cpnas) "
            "to train a cell genotype"
        )
    return build_network(
        genotype,
        cells=recipe.cells,
        channels=recipe.channels,
        num_classes=num_classes,
        input_shape=tuple(input_shape),
        binarization=binarization,
        inter_cell_skip=recipe.inter_cell_skip,
        auxiliary=recipe.auxiliary,
        reduction_cells=recipe.reduction_cells,
        lce_friendly=recipe.lce_friendly,
    )


FEATURES = "global_pool"  # the pooled last features of an evaluation network (SPEC P4's f)


def with_kernel_loss(model: tf.keras.Model, recipe) -> tf.keras.Model:
    """``model`` with SPEC P4's kernel-level CP loss when the recipe asks for it (``kernel_loss``): the kernel term
    as a model loss and the pooled features as an extra output that :func:`compile_model` gives the class-centre
    loss. The same layers and weights; :func:`inference_model` drops the extra output."""
    if not getattr(recipe, "kernel_loss", False):
        return model
    features = model.get_layer(FEATURES).output
    trained = tf.keras.Model(model.inputs, [*model.outputs, features], name=model.name)
    trained.add_loss(lambda: kernel_reconstruction_loss(trained))
    return trained


def inference_model(model: tf.keras.Model) -> tf.keras.Model:
    """``model`` without its auxiliary head or features output (same layers and weights)."""
    if len(model.outputs) == 1:
        return model
    return tf.keras.Model(model.inputs, model.outputs[0], name=model.name)


def off_strategy(model: tf.keras.Model) -> tf.keras.Model:
    """A copy of ``model`` (trained under a ``tf.distribute`` strategy) whose variables belong to no strategy,
    for evaluation, saving and conversion on this process alone. Every process of a multi-worker strategy must
    call it: reading the replicas' BatchNorm statistics is a collective."""
    weights = model.get_weights()  # the replicas' values, aggregated
    copy = tf.keras.models.clone_model(model)
    copy.set_weights(weights)
    return copy


def learning_rate_schedule(recipe, steps_per_epoch: int, epochs: int):
    """The retraining's learning rate over every step, by ``recipe.lr_schedule``.

    ``"cosine"``: from ``train_learning_rate`` to ``lr_min``; ``"one_cycle"``: P2's one cycle between ``lr_min``
    and ``train_learning_rate`` (:class:`~bnas_tf.space.learning_rates.OneCycle`); ``"step"``: x``lr_decay`` at
    each of ``lr_milestones``.
    """
    total = max(1, steps_per_epoch * epochs)
    if recipe.lr_schedule == "cosine":
        alpha = recipe.lr_min / recipe.train_learning_rate
        return tf.keras.optimizers.schedules.CosineDecay(recipe.train_learning_rate, decay_steps=total, alpha=alpha)
    if recipe.lr_schedule == "one_cycle":
        return OneCycle(total, max_rate=recipe.train_learning_rate, min_rate=recipe.lr_min)
    boundaries = [int(m) * steps_per_epoch for m in sorted(recipe.lr_milestones)]
    values = [recipe.train_learning_rate * recipe.lr_decay**i for i in range(len(boundaries) + 1)]
    return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def compile_model(model, recipe, steps_per_epoch: int, epochs: int):
    optimizer = tf.keras.optimizers.SGD(
        learning_rate_schedule(recipe, steps_per_epoch, epochs),
        momentum=recipe.train_momentum,
        weight_decay=recipe.train_weight_decay or None,
        global_clipnorm=recipe.gradient_clip or None,
    )
    loss = tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=recipe.label_smoothing)
    names = model.output_names
    if len(names) == 1:
        model.compile(optimizer, loss=loss, metrics=[tf.keras.metrics.CategoricalAccuracy(name="accuracy")])
    else:
        losses, weights = {}, {}
        for name in names[1:]:
            if name == FEATURES:  # with_kernel_loss's class-centre term (SPEC P4 Eq. 3)
                losses[name], weights[name] = ClassCentreLoss(recipe.kernel_loss_lambda), 1.0
            else:  # the auxiliary head
                losses[name], weights[name] = loss, getattr(recipe, "auxiliary_weight", 0.4)
        model.compile(
            optimizer,
            loss={names[0]: loss, **losses},
            loss_weights={names[0]: 1.0, **weights},
            metrics={names[0]: [tf.keras.metrics.CategoricalAccuracy(name="accuracy")]},
        )


def _targets(dataset, num_classes: int, output_names):
    """(image, label) -> (image, one-hot) for every output (label smoothing needs one-hot targets)."""

    def to_targets(x, y):
        onehot = tf.one_hot(tf.cast(y, tf.int32), num_classes)
        if len(output_names) == 1:
            return x, onehot
        return x, {name: onehot for name in output_names}

    return dataset.map(to_targets, num_parallel_calls=tf.data.AUTOTUNE)


def _history(keras_history, output_names) -> dict:
    """Keras history with the main output's keys renamed to loss/accuracy/val_accuracy."""
    rename = {}
    if len(output_names) > 1:
        main = output_names[0]
        rename = {
            f"{main}_accuracy": "accuracy",
            f"val_{main}_accuracy": "val_accuracy",
            f"{main}_loss": "main_loss",
            f"val_{main}_loss": "val_main_loss",
        }
    return {rename.get(key, key): [float(v) for v in values] for key, values in keras_history.history.items()}


def diverged(what: str, value, recipe) -> ValueError:
    """The error of a training whose ``what`` became ``value`` (not finite), naming the setting to lower."""
    return ValueError(
        f"training diverged: {what} became {value}; lower train_learning_rate (now {recipe.train_learning_rate:g}) "
        "and train again (the network was not saved)"
    )


class StopOnNonFinite(tf.keras.callbacks.Callback):
    """Keras's ``TerminateOnNaN``, raising: a training or validation loss that is not finite stops ``fit`` with
    :func:`diverged`'s one-line error instead of finishing a NaN network as trained."""

    def __init__(self, recipe):
        super().__init__()
        self.recipe, self.epoch = recipe, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise diverged(f"the loss at epoch {self.epoch + 1}, batch {batch + 1}", float(loss), self.recipe)

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            if name.endswith("loss") and not math.isfinite(float(value)):
                raise diverged(f"{name} after epoch {epoch + 1}", float(value), self.recipe)


class _LearningRateLogger(tf.keras.callbacks.Callback):
    """Records the learning rate at each epoch's end into the logs (history and TensorBoard)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            optimizer = self.model.optimizer
            logs["lr"] = float(
                tf.keras.backend.get_value(
                    optimizer.learning_rate(optimizer.iterations)
                    if callable(optimizer.learning_rate)
                    else optimizer.learning_rate
                )
            )


def train(
    genotype,
    recipe,
    bundle=None,
    *,
    epochs: int | None = None,
    log_dir: str | None = None,
    verbose: int = 1,
    build=None,
    distribution_strategy=None,
) -> TrainResult:
    """Train ``genotype``'s network from scratch with ``recipe``'s schedule on ``bundle`` (default: the recipe's data).

    ``build`` (optional): a function returning another network to train with the same schedule (a baseline); it
    runs after the recipe's seed is set, and ``genotype`` is then unused. ``distribution_strategy`` (a
    ``tf.distribute.Strategy``, default none): the network is built, compiled and trained under it, data-parallel
    over its replicas (the recipe's batch size is the global batch).

    Returns the inference model (no auxiliary head), the per-epoch history and the wall time.
    """
    epochs = recipe.train_epochs if epochs is None else int(epochs)
    if epochs <= 0:
        raise ValueError(f"epochs must be positive (got {epochs})")
    bundle = bundle or load_training_data(recipe)
    tf.keras.utils.set_random_seed(recipe.seed)
    steps = recipe.train_steps_per_epoch or int(bundle.train.cardinality())
    if steps <= 0:
        raise ValueError("cannot tell the number of training batches; set train_steps_per_epoch")
    with distribution.scope(distribution_strategy):
        if build is None:
            model = build_model(genotype, recipe, num_classes=bundle.num_classes, input_shape=bundle.input_shape)
        else:
            model = build()
        model = with_kernel_loss(model, recipe)
        compile_model(model, recipe, steps, epochs)
    train_data = _targets(bundle.train, bundle.num_classes, model.output_names)
    if recipe.train_steps_per_epoch:
        train_data = train_data.repeat()  # fixed-length epochs shorter or longer than one pass
    callbacks = [StopOnNonFinite(recipe), _LearningRateLogger()]
    if log_dir:
        callbacks.append(tf.keras.callbacks.TensorBoard(log_dir, write_graph=False, profile_batch=0))
    start = time.perf_counter()
    history = model.fit(
        train_data,
        validation_data=_targets(bundle.validation, bundle.num_classes, model.output_names),
        epochs=epochs,
        steps_per_epoch=steps if recipe.train_steps_per_epoch else None,
        callbacks=callbacks,
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    trained = inference_model(model)
    if distribution_strategy is not None:
        trained = off_strategy(trained)
    return TrainResult(model=trained, history=_history(history, model.output_names), seconds=seconds, epochs=epochs)


def accuracy(model, dataset) -> float:
    """Top-1 accuracy of ``model``'s logits (inference mode) on a dataset of (image, label) batches.

    Raises:
        ValueError: logits that are not finite (a diverged network has no accuracy), or an empty dataset.
    """
    correct = seen = 0
    for x, y in dataset:
        logits = np.asarray(model(x, training=False))
        if not np.all(np.isfinite(logits)):
            raise ValueError(
                f"{int(np.sum(~np.isfinite(logits)))} of {logits.size} logits of {model.name} are not finite: the "
                "network diverged; retrain it with a lower learning rate (train_learning_rate)"
            )
        correct += int(np.sum(np.argmax(logits, axis=-1) == np.asarray(y).reshape(-1)))
        seen += int(x.shape[0])
    if not seen:
        raise ValueError("the dataset is empty: cannot measure accuracy")
    return correct / seen


def train_and_save(
    genotype, recipe, run_dir: str, *, bundle=None, epochs=None, verbose=1, distribution_strategy=None
) -> TrainResult:
    """:func:`train`, then write model.keras, history.json and the ``train``/``keras`` parts of metrics.json
    (nothing when training diverged: a loss or logits that are not finite raise a ``ValueError`` first)."""
    bundle = bundle or load_training_data(recipe)
    result = train(
        genotype,
        recipe,
        bundle,
        epochs=epochs,
        log_dir=os.path.join(run_dir, run_folder.LOGS, "train"),
        verbose=verbose,
        distribution_strategy=distribution_strategy,
    )
    keras = {  # measured before anything is written: non-finite logits stop here
        "val_accuracy": accuracy(result.model, bundle.validation),
        "test_accuracy": accuracy(result.model, bundle.test),
    }
    result.model.save(os.path.join(run_dir, run_folder.MODEL))
    atomic_write_json(os.path.join(run_dir, run_folder.HISTORY), result.history)
    run_folder.update_metrics(
        run_dir,
        train={
            "seconds": result.seconds,
            "epochs": result.epochs,
            "dataset": bundle.describe(),
            "final": {key: values[-1] for key, values in result.history.items() if values},
        },
        keras=keras,
    )
    return result


# --- bnas-tf train (arguments: bnas_tf.pipeline.commands) ---------------------------
def resolve_genotype(positional: str | None, option: str | None):
    """The genotype ``bnas-tf train`` was given: a file, or (``--genotype``) a published name or a file."""
    if (positional is None) == (option is None):
        raise ValueError(
            "give one genotype: a file (`bnas-tf train genotype.json`) or `--genotype NAME_OR_FILE` "
            f"(published: {', '.join(published.names())})"
        )
    target = positional or option
    if option is not None and option.strip().lower() in published.names():
        return published.info(option).genotype
    if option is not None and not os.path.exists(option):
        raise ValueError(
            f"--genotype {option!r} is neither a published genotype ({', '.join(published.names())}) "
            "nor an existing genotype file"
        )
    return load_any(target)


def run(args) -> int:
    recipe = run_folder.recipe_from_args(args)
    if recipe.task != "classification":
        raise ValueError(
            f"bnas-tf train retrains classifiers; recipe {recipe.name!r} is a {recipe.task} recipe: run "
            f"`bnas-tf run --recipe {recipe.name}`, or bnas_tf.pipeline.face_train.train_face in Python"
        )
    genotype = resolve_genotype(args.genotype, args.genotype_option)
    bundle = load_training_data(recipe)  # a missing dataset fails before the run folder exists
    run_dir = run_folder.prepare_output(args.output, f"train-{recipe.name}")
    # genotype.json and metrics.json only once training worked: a genotype the recipe cannot build leaves no run
    result = train_and_save(
        genotype, recipe, run_dir, bundle=bundle, epochs=args.epochs, verbose=0 if args.quiet else 1
    )
    genotype.save(os.path.join(run_dir, run_folder.GENOTYPE))
    run_folder.update_metrics(run_dir, recipe=recipe.name, profile=args.profile, settings=recipe.settings())
    keras = run_folder.read_metrics(run_dir)["keras"]
    print(
        f"trained {result.epochs} epochs in {result.seconds:.0f} s: val accuracy {keras['val_accuracy']:.2%}, "
        f"test accuracy {keras['test_accuracy']:.2%}"
    )
    print(
        f"model: {os.path.join(run_dir, run_folder.MODEL)} "
        f"(convert it with `bnas-tf convert {run_dir} -o model.tflite`)"
    )
    return 0
