"""Retraining a searched face network with the ArcFace margin (SPEC P1 §4.4; bnas_tf.face.head).

The recipe's schedule as for classification (:mod:`bnas_tf.pipeline.train`: SGD + momentum, cosine or step
learning rate, gradient clipping, weight decay, augmentation), but the model is
``[image, label] -> ArcFace logits`` trained with softmax cross-entropy on them, and what it returns
is the embedding model (no margin head), the one that is verified and exported.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import tensorflow as tf

from bnas_tf.face.head import build_face_models
from bnas_tf.pipeline import train as train_lib


@dataclasses.dataclass
class FaceTrainResult:
    model: tf.keras.Model  # embedding model: image -> embedding
    training_model: tf.keras.Model  # [image, label] -> margin logits
    history: dict
    seconds: float
    epochs: int


def face_models(genotype, recipe, *, num_classes: int, input_shape):
    """``(training_model, embedding_model)`` of ``genotype`` sized and binarized as the recipe says."""
    return build_face_models(
        genotype,
        num_classes=num_classes,
        input_shape=tuple(input_shape),
        embedding_dim=recipe.embedding_dim,
        scale=recipe.margin_scale,
        margin=recipe.margin,
        cells=recipe.cells,
        channels=recipe.channels,
        binarization=recipe.binarization_config(),
        inter_cell_skip=recipe.inter_cell_skip,
        reduction_cells=recipe.reduction_cells,
        stem=recipe.stem,
        lce_friendly=recipe.lce_friendly,
    )


def _with_labels(dataset, num_classes: int):
    """(image, label) -> ((image, label), one-hot): the margin needs the label as an input."""
    return dataset.map(
        lambda x, y: ((x, tf.cast(y, tf.int32)), tf.one_hot(tf.cast(y, tf.int32), num_classes)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def train_face(
    genotype, recipe, bundle, *, epochs: int | None = None, log_dir: str | None = None, verbose: int = 1
) -> FaceTrainResult:
    """Train ``genotype``'s face model from scratch on ``bundle``'s identities with the margin loss."""
    epochs = recipe.train_epochs if epochs is None else int(epochs)
    if epochs <= 0:
        raise ValueError(f"epochs must be positive (got {epochs})")
    tf.keras.utils.set_random_seed(recipe.seed)
    training_model, embedding_model = face_models(
        genotype, recipe, num_classes=bundle.num_classes, input_shape=bundle.input_shape
    )
    steps = recipe.train_steps_per_epoch or int(bundle.train.cardinality())
    if steps <= 0:
        raise ValueError("cannot tell the number of training batches; set train_steps_per_epoch")
    train_lib.compile_model(training_model, recipe, steps, epochs)
    train_data = _with_labels(bundle.train, bundle.num_classes)
    if recipe.train_steps_per_epoch:
        train_data = train_data.repeat()
    callbacks = [train_lib._LearningRateLogger()]
    if log_dir:
        callbacks.append(tf.keras.callbacks.TensorBoard(log_dir, write_graph=False, profile_batch=0))
    start = time.perf_counter()
    history = training_model.fit(
        train_data,
        validation_data=_with_labels(bundle.validation, bundle.num_classes),
        epochs=epochs,
        steps_per_epoch=steps if recipe.train_steps_per_epoch else None,
        callbacks=callbacks,
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    return FaceTrainResult(
        model=embedding_model,
        training_model=training_model,
        history={k: [float(v) for v in values] for k, values in history.history.items()},
        seconds=seconds,
        epochs=epochs,
    )


def embeddings(model, images, batch_size: int = 256) -> np.ndarray:
    """``model``'s embeddings (inference mode) of an image array."""
    return np.concatenate(
        [
            np.asarray(model(images[start : start + batch_size], training=False))
            for start in range(0, len(images), batch_size)
        ]
    )
