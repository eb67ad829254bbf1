"""The face model: a searched binary body, a float embedding head and the ArcFace margin (SPEC P1 §4.4).

The body is the evaluation network of a genotype (:func:`bnas_tf.build_network`: float stem, binary
cells) up to its global pooling; the **embedding** is a float ``Dense`` (no bias) + ``BatchNormalization``
(128-d at quick size, 512-d as in ArcFace), so only the body is binary. Training adds the **additive
angular margin** (ArcFace, Deng et al. 2019) on top: with x the embedding, W_j the class centres and
θ_j = arccos(x̂ · Ŵ_j), the logits are

    s · cos(θ_y + m) for the true class y,   s · cos θ_j for the others,

with scale s = 64 and margin m = 0.5 by default. Where θ_y + m would pass π (cos θ_y < cos(π − m)),
the target logit is s · (cos θ_y − m · sin(π − m)) instead, which keeps it decreasing in θ_y (ArcFace's
reference code). The margin layer and its maths are separate: :func:`arcface_logits` is the formula,
:class:`AdditiveAngularMargin` the registered, serialisable Keras layer holding W.
The exported model is the embedding model alone (no margin head, no labels input).
"""

from __future__ import annotations

import math

import tensorflow as tf

from bnas_tf.space import ops as ops_module
from bnas_tf.space.networks import build_network

DEFAULT_SCALE = 64.0
DEFAULT_MARGIN = 0.5
EMBEDDING = "embedding"
POOLED = "global_pool"  # bnas_tf.space.networks.classifier's pooling layer


def arcface_logits(cosine, labels, scale: float = DEFAULT_SCALE, margin: float = DEFAULT_MARGIN):
    """ArcFace logits from ``cosine`` (batch, classes) = cos θ and integer ``labels`` (batch,).

    s · cos(θ_y + m) on the true class (s · (cos θ_y − m sin(π − m)) past θ_y = π − m), s · cos θ elsewhere.
    Example: cos θ_y = 1 (θ_y = 0), m = 0.5, s = 64 -> 64 · cos 0.5 = 56.17.
    """
    cosine = tf.clip_by_value(cosine, -1.0, 1.0)
    sine = tf.sqrt(tf.maximum(1.0 - tf.square(cosine), 0.0))
    shifted = cosine * math.cos(margin) - sine * math.sin(margin)  # cos(θ + m)
    shifted = tf.where(cosine > math.cos(math.pi - margin), shifted, cosine - margin * math.sin(math.pi - margin))
    target = tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), tf.shape(cosine)[-1], dtype=cosine.dtype)
    return scale * (target * shifted + (1.0 - target) * cosine)


@tf.keras.utils.register_keras_serializable(package="bnas_tf")
class AdditiveAngularMargin(tf.keras.layers.Layer):
    """ArcFace head: ``[embeddings, labels]`` -> margin logits over ``num_classes`` identities.

    Holds the class centres W (embedding_dim, num_classes), normalised at every call. Defaults s = 64,
    m = 0.5 (ArcFace). The margin applies in training only; in inference (Keras ``evaluate``, validation)
    the logits are s · cos θ, so identity accuracy is that of the nearest class centre. Example::

        logits = AdditiveAngularMargin(num_identities)([embedding, label_input])

    In training the true class's logit is s · cos(θ_y + m), the others s · cos θ (:func:`arcface_logits`),
    θ the angle between the normalised embedding and a class centre.

    Args:
        num_classes: number of identities, an integer >= 2.
        scale: s, a positive number (default 64.0).
        margin: m in radians, in [0, π/2) (default 0.5).
        **kwargs: ``tf.keras.layers.Layer``'s (``name``, ...).

    Raises:
        ValueError: ``num_classes`` not an integer >= 2, ``scale`` not positive, or ``margin`` outside
            [0, π/2).
    """

    def __init__(self, num_classes: int, scale: float = DEFAULT_SCALE, margin: float = DEFAULT_MARGIN, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2 identities (got {num_classes!r})")
        if not scale > 0:
            raise ValueError(f"scale must be positive (got {scale!r}); ArcFace uses s = 64")
        if not 0 <= margin < math.pi / 2:
            raise ValueError(f"margin must be in [0, pi/2) radians (got {margin!r}); ArcFace uses m = 0.5")
        self.num_classes, self.scale, self.margin = int(num_classes), float(scale), float(margin)

    def build(self, input_shape):
        dim = int(input_shape[0][-1])
        self.centres = self.add_weight(
            name="centres", shape=(dim, self.num_classes), initializer="glorot_uniform", trainable=True
        )
        super().build(input_shape)

    def call(self, inputs, training=None):
        embeddings, labels = inputs
        cosine = tf.matmul(tf.math.l2_normalize(embeddings, axis=1), tf.math.l2_normalize(self.centres, axis=0))
        if not training:  # inference: the plain cosine classifier s * cos θ, so validation accuracy means something
            return self.scale * cosine
        return arcface_logits(cosine, labels, self.scale, self.margin)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "scale": self.scale, "margin": self.margin}


def embedding_head(features, embedding_dim: int):
    """Float Dense (no bias) + BatchNorm on the pooled features: the face embedding."""
    if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 2:
        raise ValueError(f"embedding_dim must be an integer >= 2 (got {embedding_dim!r}); ArcFace uses 512")
    x = tf.keras.layers.Dense(embedding_dim, use_bias=False, name=f"{EMBEDDING}_dense")(features)
    return ops_module.batch_norm(name=EMBEDDING)(x)


def build_face_models(
    genotype,
    *,
    num_classes: int,
    input_shape,
    embedding_dim: int = 512,
    scale: float = DEFAULT_SCALE,
    margin: float = DEFAULT_MARGIN,
    **network,
):
    """``(training_model, embedding_model)`` sharing one body and head.

    ``training_model``: ``[image, label]`` -> ArcFace logits (train with softmax cross-entropy on them);
    ``embedding_model``: ``image`` -> embedding (what is exported and verified). ``network``: the
    :func:`bnas_tf.build_network` settings of the body (cells, channels, binarization, stem, ...).
    """
    body = build_network(genotype, num_classes=num_classes, input_shape=tuple(input_shape), **network)
    embedding = embedding_head(body.get_layer(POOLED).output, embedding_dim)
    embedding_model = tf.keras.Model(body.inputs, embedding, name=f"{body.name}_embedding")
    labels = tf.keras.Input(shape=(), dtype=tf.int32, name="label")
    logits = AdditiveAngularMargin(num_classes, scale, margin, name="arcface")([embedding, labels])
    training_model = tf.keras.Model([body.inputs[0], labels], logits, name=f"{body.name}_arcface")
    return training_model, embedding_model
