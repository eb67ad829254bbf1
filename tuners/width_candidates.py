"""Training and scoring one width candidate of SPEC P3, and reading the data it trains on.

A candidate is a :class:`~bnas_tf.space.genotype.WidthGenotype`: the backbone
at the gene's width ratios. :class:`WidthCandidates` is the part of the
:class:`~bnas_tf.tuners.Evolution` tuner that builds the candidate's network
(``build_width_network``), seeds its weights and keys its data passes
(:func:`~bnas_tf.data.passes.start_passes`) by (seed, gene), optionally
starts it from the first channels of the uniform-4x network (SPEC P3
"Initialisation trick", :mod:`bnas_tf.tuners.width_init`), trains it with SGD
and cosine decay, fails it on a non-finite loss, and measures its FLOPs
(``bnas_tf.deploy.costs``, float + binary / 64). When ``num_classes`` or
``input_shape`` are not given, they are read from the training data
(:func:`check_training_data`, :func:`image_shape`, :func:`class_count`).
"""

from __future__ import annotations

import gc
import json
import math
import os
import zlib

import keras_tuner
import numpy as np
import tensorflow as tf

from bnas_tf.data import without_autotune
from bnas_tf.data.passes import start_passes
from bnas_tf.deploy import costs
from bnas_tf.space.genotype import WidthGenotype
from bnas_tf.space.networks import build_width_network
from bnas_tf.tuners import width_init
from bnas_tf.tuners.keras_tuner_internals import maybe_distribute

__all__ = [
    "DivergenceMonitor",
    "WidthCandidates",
    "check_training_data",
    "class_count",
    "image_shape",
    "steps_per_epoch",
]


class DivergenceMonitor(tf.keras.callbacks.Callback):
    """Stops training at the first NaN/inf batch loss and remembers it (keras-tuner#356, #509, #1032)."""

    def __init__(self):
        super().__init__()
        self.diverged_at = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = (batch, float(loss))
            self.model.stop_training = True


# --- the training data --------------------------------------------------------------
def check_training_data(fit_args, fit_kwargs):
    """The training inputs ``x`` of ``search``'s ``model.fit`` arguments: a dataset of (images, labels) batches with
    images of rank 4, or an image array (N, H, W, C) given with its labels."""
    x = fit_args[0] if fit_args else fit_kwargs["x"]
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        if not isinstance(spec, tuple) or len(spec) < 2 or len(spec[0].shape) != 4:
            raise ValueError(
                f"training data must yield (images, labels) batches with images of rank 4 "
                f"(batch, H, W, C); got element_spec {spec}"
            )
    else:
        if np.ndim(x) != 4 or not np.issubdtype(np.asarray(x).dtype, np.number):
            raise TypeError(
                f"training data must be a tf.data.Dataset or an image array (N, H, W, C), got "
                f"{type(x).__name__} of shape {np.shape(x)}; bnas_tf.data.load(...) makes a dataset"
            )
        if len(fit_args) < 2 and fit_kwargs.get("y") is None:
            raise ValueError("image arrays need their labels: search(x, y, validation_data=...)")
    return x


def image_shape(x) -> tuple:
    """(H, W, C) of the images of ``x`` (checked by :func:`check_training_data`)."""
    spec = x.element_spec[0] if isinstance(x, tf.data.Dataset) else None
    return tuple(spec.shape[1:]) if spec is not None else tuple(np.shape(x)[1:])


def class_count(x, fit_args, fit_kwargs) -> int:
    """One more than the largest training label, at least 2 (a dataset is read once to find it)."""
    if isinstance(x, tf.data.Dataset):
        top = max(int(tf.reduce_max(y)) for _, y in x)
    else:
        top = int(np.max(fit_args[1] if len(fit_args) > 1 else fit_kwargs["y"]))
    return max(2, top + 1)


def steps_per_epoch(fit_args, kwargs) -> int:
    """Training batches per epoch: ``steps_per_epoch=``, else the dataset's length, else ceil(N / batch_size)."""
    if kwargs.get("steps_per_epoch"):
        return int(kwargs["steps_per_epoch"])
    x = fit_args[0] if fit_args else kwargs.get("x")
    if isinstance(x, tf.data.Dataset):
        cardinality = int(x.cardinality())
        return cardinality if cardinality > 0 else sum(1 for _ in x)
    return math.ceil(len(x) / (kwargs.get("batch_size") or 32))


class WidthCandidates:
    """Tuner mixin: one width candidate built, trained and costed per trial (module docstring).

    Reads the tuner's settings ``backbone``, ``seed``, ``num_classes``, ``input_shape``,
    ``binarization``, ``lce_friendly``, ``width_multiplier``, ``epochs_per_candidate``,
    ``learning_rate``, ``momentum``, ``initial_weights``, ``initial_epochs``, and
    ``keras_tuner.Tuner``'s ``optimizer``, ``loss``, ``metrics``, ``distribution_strategy``
    and ``project_dir``. Override :meth:`evaluate_candidate` and :meth:`measure_flops` for a
    cheaper proxy.
    """

    _base_flops = None  # cached FLOPs of the uniform-1x network
    _uniform4x = None  # cached weights of the uniform-4x network

    def evaluate_candidate(self, genotype, *fit_args, **fit_kwargs) -> dict:
        """Train ``genotype``'s network; ``{"val_accuracy": last epoch's, "flops": its FLOPs}``."""
        tf.keras.backend.clear_session()  # keras-tuner#873: memory grows trial after trial otherwise
        gc.collect()
        teacher = self._uniform4x_weights(fit_args, fit_kwargs) if self.initial_weights == "uniform4x" else None
        self._seed(genotype)
        with maybe_distribute(self.distribution_strategy):  # data-parallel training of the candidate
            model = self.build_candidate(genotype)
            if teacher is not None:
                width_init.inherit_first_channels(model, teacher)
        history = self._train(model, fit_args, fit_kwargs, label=f"candidate {list(genotype.ratios)}")
        if "val_accuracy" not in history.history:
            raise keras_tuner.errors.FatalValueError(
                f"training reported {sorted(history.history)}, no 'val_accuracy': keep 'accuracy' in metrics= "
                "and pass validation data to search()"
            )
        return {"val_accuracy": history.history["val_accuracy"][-1], "flops": costs.profile(model)["flops"]}

    def measure_flops(self, genotype) -> float:
        """FLOPs (float + binary / 64) of ``genotype``'s network as this tuner builds it."""
        return float(costs.profile(self.build_candidate(genotype))["flops"])

    def base_flops(self) -> float:
        """FLOPs of the uniform-1x network, the denominator of Eq. 4."""
        if self._base_flops is None:
            self._base_flops = self.measure_flops(WidthGenotype.uniform(self.backbone, 1.0))
        return self._base_flops

    def build_candidate(self, genotype, **overrides):
        """The candidate's network as trials train it; ``overrides`` replace ``build_width_network`` arguments."""
        if self.num_classes is None or self.input_shape is None:
            raise keras_tuner.errors.FatalValueError(
                "num_classes and input_shape are unknown: pass them to Evolution(...) or data to search()"
            )
        settings = dict(
            num_classes=self.num_classes,
            input_shape=self.input_shape,
            binarization=self.binarization,
            lce_friendly=self.lce_friendly,
            width_multiplier=self.width_multiplier,
        )
        return build_width_network(genotype, **dict(settings, **overrides))

    def _seed(self, genotype):
        """Seed the weights of ``genotype``'s network and key its training data's passes by (seed, gene): a
        candidate trains the same whatever ran before it, in this process or before a resume (the shuffled
        training parts of :mod:`bnas_tf.data`; a dataset that reshuffles by itself does not follow)."""
        key = zlib.crc32(json.dumps([self.seed, list(genotype.ratios)]).encode()) % 2**31
        tf.keras.utils.set_random_seed(key)
        start_passes(key)

    def _train(self, model, fit_args, fit_kwargs, label, epochs=None):
        kwargs = dict(fit_kwargs)
        epochs = epochs or kwargs.pop("epochs", self.epochs_per_candidate)
        kwargs.pop("epochs", None)
        monitor = DivergenceMonitor()
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [monitor]
        with maybe_distribute(self.distribution_strategy):  # the optimizer's variables next to the model's
            self._compile(model, epochs * steps_per_epoch(fit_args, kwargs))
        # every candidate's fit deletes its iterators: without the autotuning thread to wait for (as the supernets)
        fit_args = tuple(_untuned(arg) for arg in fit_args)
        for key in ("x", "validation_data"):
            if key in kwargs:
                kwargs[key] = _untuned(kwargs[key])
        history = model.fit(*fit_args, epochs=epochs, **kwargs)
        losses = history.history.get("loss", [])
        if monitor.diverged_at is not None or not all(math.isfinite(v) for v in losses):
            where = f"batch {monitor.diverged_at[0]}" if monitor.diverged_at else "an epoch"
            raise keras_tuner.errors.FailedTrialError(f"{label}: the loss became non-finite at {where}")
        return history

    def _compile(self, model, total_steps):
        if self.optimizer is None:
            schedule = tf.keras.optimizers.schedules.CosineDecay(self.learning_rate, decay_steps=max(1, total_steps))
            optimizer = tf.keras.optimizers.SGD(schedule, momentum=self.momentum)
        elif isinstance(self.optimizer, str):
            optimizer = self.optimizer
        else:
            optimizer = tf.keras.optimizers.deserialize(tf.keras.optimizers.serialize(self.optimizer))
        model.compile(
            optimizer=optimizer,
            loss=self.loss or tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=self.metrics or ["accuracy"],
        )

    def _uniform4x_weights(self, fit_args, fit_kwargs):
        if self._uniform4x is None:
            path = os.path.join(self.project_dir, width_init.UNIFORM4X_FILE)
            if not os.path.exists(path):
                genotype = WidthGenotype.uniform(self.backbone, 4.0)
                self._seed(genotype)
                with maybe_distribute(self.distribution_strategy):
                    model = self.build_candidate(genotype)
                kwargs = {k: v for k, v in fit_kwargs.items() if k != "callbacks"}
                self._train(model, fit_args, kwargs, "uniform-4x network", epochs=self.initial_epochs)
                width_init.save_weights(path, model)
                del model
            self._uniform4x = width_init.load_weights(path)
        return self._uniform4x

    def _read_data_shapes(self, fit_args, fit_kwargs):
        x = check_training_data(fit_args, fit_kwargs)
        if self.input_shape is None:
            self.input_shape = image_shape(x)
        if self.num_classes is None:
            self.num_classes = class_count(x, fit_args, fit_kwargs)


def _untuned(data):
    """``data`` without tf.data's autotuning if it is a dataset (:func:`bnas_tf.data.without_autotune`)."""
    return without_autotune(data) if isinstance(data, tf.data.Dataset) else data
