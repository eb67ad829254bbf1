"""Auxiliary training losses of the papers, as serialisable Keras pieces.

- :func:`amplitude_loss` / :class:`AmplitudeLoss`: PCNN amplitude loss,
  SPEC P1 Eq. 2 (``L = L_S + L_A``, P1 Eq. 4), the one definition
  ``bnas_tf.space.quantizers.LearnableAmplitudeSign`` adds with ``add_loss``.
- :class:`DiversityRegularizer`: entropy bonus on the architecture
  parameters, SPEC P2 Eq. 5.
- :func:`child_parent_kernel_loss` / :class:`ChildParentKernelLoss`:
  kernel-level Child-Parent loss with a class-centre term, SPEC P4 Eq. 3
  (``L = L_CE + L_H``, P4 Eq. 4), and :func:`quantized_kernel_pairs`, which
  collects (latent kernel, quantized kernel) pairs from a Larq model.

None of these fits Keras' ``loss(y_true, y_pred)`` or one-tensor
regularizer signatures (each reads several tensors), so they are small
callables with ``get_config``/``from_config``, registered under the
``bnas_tf`` package like Larq's quantizers, and meant to be added in a
training step or with ``model.add_loss``. Signs come from Larq
(``larq.math.sign``, sign(0) = +1), never a home-made sign.
"""

import math

import larq as lq
import tensorflow as tf
from larq.quantized_variable import QuantizedVariable

from bnas_tf.space.schedules import diversity_weight

__all__ = [
    "amplitude_reconstruction_error",
    "amplitude_loss",
    "AmplitudeLoss",
    "DiversityRegularizer",
    "child_parent_kernel_loss",
    "ChildParentKernelLoss",
    "ClassCentreLoss",
    "class_centre_term",
    "kernel_reconstruction_loss",
    "quantized_kernel_pairs",
]


def _non_negative(name, value):
    """``value`` as a finite float >= 0, else ValueError."""
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a number, got {value!r}") from error
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return number


def _float_tensor(name, value):
    tensor = tf.convert_to_tensor(value)
    if not tensor.dtype.is_floating:
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {tensor.dtype.name}")
    return tensor


class _ConfigMixin:
    """``from_config`` for objects whose config is their constructor kwargs."""

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# --------------------------------------------------------------------------
# SPEC P1 Eq. 2: amplitude loss
# --------------------------------------------------------------------------


def amplitude_reconstruction_error(weights, amplitude):
    """Squared error of the PCNN reconstruction, the sum in SPEC P1 Eq. 2.

    ``sum((W - A * sign(W))**2)`` with ``A`` broadcast over the last (output
    channel) axis and ``sign`` from Larq. Inner code: takes tensors as they
    are; :func:`amplitude_loss` checks its inputs.
    """
    return tf.reduce_sum(tf.square(weights - amplitude * lq.math.sign(weights)))


def amplitude_loss(x, amplitude, theta: float) -> tf.Tensor:
    """PCNN amplitude loss, SPEC P1 Eq. 2.

    ``L_A = theta / 2 * sum((x - A * sign(x))**2)`` with ``sign`` from
    ``larq.math.sign`` (sign(0) = +1). ``sign`` has zero gradient, so
    ``D = sign(x)`` acts as a constant: ``dL/dx = theta (x - A D)`` and
    ``dL/dA = -theta sum((x - A D) D)``, the PCNN update.

    Args:
        x: floating tensor (a kernel or an activation).
        amplitude: non-negative amplitude A broadcastable to ``x``: a scalar
            (per layer) or one value per channel (last axis).
        theta: finite float >= 0.

    Returns:
        Scalar tensor of ``x``'s dtype.

    Raises:
        ValueError: ``theta`` is not a finite number >= 0, or ``amplitude`` does not broadcast to ``x``.
        TypeError: ``x`` or ``amplitude`` is not floating-point.

    Example:
        ``amplitude_loss([0.5, -2.0], 1.0, 2.0)`` is
        ``(0.5 - 1)**2 + (-2 + 1)**2 = 1.25``.
    """
    weight = _non_negative("theta", theta)
    x = _float_tensor("x", x)
    amplitude = tf.cast(_float_tensor("amplitude", amplitude), x.dtype)
    try:
        tf.broadcast_static_shape(x.shape, amplitude.shape)
    except ValueError as error:
        raise ValueError(
            f"amplitude of shape {amplitude.shape} does not broadcast to x of "
            f"shape {x.shape}: use a scalar or one value per channel "
            "(last axis)"
        ) from error
    return 0.5 * weight * amplitude_reconstruction_error(x, amplitude)


@tf.keras.utils.register_keras_serializable(package="bnas_tf")
class AmplitudeLoss(_ConfigMixin):
    """:func:`amplitude_loss` with its ``theta`` kept as configuration.

    Example:
        >>> loss = AmplitudeLoss(theta=2.0)
        >>> float(loss([0.5, -2.0], 1.0))
        1.25
    """

    def __init__(self, theta):
        self.theta = _non_negative("theta", theta)

    def __call__(self, x, amplitude):
        return amplitude_loss(x, amplitude, self.theta)

    def get_config(self):
        return {"theta": self.theta}


# --------------------------------------------------------------------------
# SPEC P2 Eq. 5: diversity regulariser
# --------------------------------------------------------------------------


def _alpha_list(alphas):
    tensors = [alphas] if tf.is_tensor(alphas) else list(alphas)
    if not tensors:
        raise ValueError("alphas must hold at least one [edges, ops] tensor")
    checked = []
    for index, alpha in enumerate(tensors):
        alpha = _float_tensor(f"alphas[{index}]", alpha)
        if alpha.shape.rank != 2:
            raise ValueError(f"alphas[{index}] must have shape [edges, ops], got {alpha.shape}")
        checked.append(alpha)
    return checked


@tf.keras.utils.register_keras_serializable(package="bnas_tf")
class DiversityRegularizer(_ConfigMixin):
    """Entropy bonus on the architecture logits, SPEC P2 Eq. 5.

    ``penalty = -lam * exp(-t / tau) * H(softmax(alpha))``, added to the
    search loss ``L_S`` so early epochs keep every op in play. ``H`` is the
    entropy (nats) of each edge's softmax, averaged over all edges of all
    given tensors (normal and reduction cells pooled). ``t`` is the epoch,
    as in SPEC (P2's defaults ``lam = 1.0``, ``tau = 7.7``).

    The weight ``lam * exp(-t / tau)`` is ``bnas_tf.space.schedules
    .diversity_weight`` (one copy of the formula); it is a host-side number
    that changes once per epoch. So ``__call__`` takes a Python epoch; in a
    compiled train step, compute ``weight(epoch)`` at epoch start (e.g. in
    ``on_epoch_begin``), keep it in a ``tf.Variable`` and call
    ``penalty(alphas, variable)``.

    Example:
        For uniform logits on K ops ``H = ln K``, so at epoch 0 the penalty
        is ``-ln K``.
    """

    def __init__(self, lam=1.0, tau=7.7):
        self.lam, self.tau = lam, tau
        self.weight(0)  # validates lam and tau where the formula lives
        self.lam, self.tau = float(lam), float(tau)

    def weight(self, epoch):
        """``lam * exp(-epoch / tau)`` as a Python float."""
        return diversity_weight(epoch, self.lam, self.tau)

    @staticmethod
    def mean_entropy(alphas):
        """Mean over edges of ``H(softmax(alpha_edge))``, a scalar tensor.

        Args:
            alphas: one ``[edges, ops]`` logits tensor or a list of them
                (op counts may differ between tensors).
        """
        entropies = []
        for alpha in _alpha_list(alphas):
            # log_softmax keeps p * log p finite when a softmax weight
            # underflows to 0.
            log_p = tf.nn.log_softmax(alpha, axis=-1)
            entropies.append(-tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1))
        return tf.reduce_mean(tf.concat(entropies, axis=0))

    def penalty(self, alphas, weight):
        """``-weight * mean_entropy(alphas)``; ``weight`` may be a tensor."""
        entropy = self.mean_entropy(alphas)
        return -tf.cast(weight, entropy.dtype) * entropy

    def __call__(self, alphas, epoch):
        if tf.is_tensor(epoch):
            raise TypeError(
                "epoch must be a Python number, got a tensor; inside a "
                "compiled step use penalty(alphas, weight) with "
                "weight = regularizer.weight(epoch) stored in a tf.Variable"
            )
        return self.penalty(alphas, self.weight(epoch))

    def get_config(self):
        return {"lam": self.lam, "tau": self.tau}


# --------------------------------------------------------------------------
# SPEC P4 Eq. 3: kernel-level Child-Parent loss
# --------------------------------------------------------------------------


def _class_ids(labels):
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == 2:
        # One-hot (or [batch, 1] sparse) labels from Keras pipelines.
        labels = tf.squeeze(labels, axis=-1) if labels.shape[-1] == 1 else tf.argmax(labels, axis=-1)
    if labels.shape.rank != 1:
        raise ValueError(
            f"labels must be class ids of shape [batch] (or one-hot [batch, classes]), got shape {labels.shape}"
        )
    return labels


def _kernel_term(kernels, reconstructions):
    kernels, reconstructions = list(kernels), list(reconstructions)
    if len(kernels) != len(reconstructions):
        raise ValueError(
            f"got {len(kernels)} kernels but {len(reconstructions)} reconstructions: pass one reconstruction per kernel"
        )
    total = tf.constant(0.0, tf.float32)
    for index, (kernel, reconstruction) in enumerate(zip(kernels, reconstructions)):
        kernel = tf.cast(_float_tensor(f"kernels[{index}]", kernel), tf.float32)
        reconstruction = tf.cast(_float_tensor(f"reconstructions[{index}]", reconstruction), tf.float32)
        if not kernel.shape.is_compatible_with(reconstruction.shape):
            raise ValueError(
                f"kernels[{index}] has shape {kernel.shape} but its reconstruction has shape {reconstruction.shape}"
            )
        if kernel.shape.rank == 0:
            raise ValueError(f"kernels[{index}] must have a channel axis, got a scalar")
        squared = tf.square(kernel - reconstruction)
        # One MSE per output channel (Keras keeps it last), summed: Eq. 3's
        # sum over c.
        per_channel = tf.reduce_mean(squared, axis=list(range(kernel.shape.rank - 1)))
        total += tf.reduce_sum(per_channel)
    return total


def _centre_distances(features, labels, groups=None):
    """Per sample, ``||f_s - f̄_{y_s}||^2`` with the batch's class centres (one set per group when given)."""
    features = tf.cast(_float_tensor("features", features), tf.float32)
    if features.shape.rank is None or features.shape.rank < 1:
        raise ValueError(f"features must have a batch axis, got shape {features.shape}")
    labels = _class_ids(labels)
    if not features.shape[:1].is_compatible_with(labels.shape):
        raise ValueError(f"features hold {features.shape[0]} samples but labels {labels.shape[0]}")
    flat = tf.reshape(features, [tf.shape(features)[0], -1])
    if groups is not None:  # one centre per (group, class): e.g. the paths a supernet batch trains at once
        labels = tf.cast(groups, labels.dtype) * (tf.reduce_max(labels) + 1) + labels
    # Compact ids: only the classes present in the batch get a centre.
    classes, class_index = tf.unique(labels)
    centres = tf.math.unsorted_segment_mean(flat, class_index, num_segments=tf.size(classes))
    return _distances_to(flat, centres, class_index)


def _distances_to(flat, centres, index):
    """Per sample, ``||f_s - centres[index_s]||^2`` of flattened features."""
    return tf.reduce_sum(tf.square(flat - tf.gather(centres, index)), axis=-1)


def _class_centre_term(features, labels, groups=None):
    return tf.reduce_sum(_centre_distances(features, labels, groups))


def class_centre_term(features, index, centres, lam):
    """SPEC P4 Eq. 3's class-centre term ``lam / 2 · Σ_s ||f_s − centres[index_s]||²`` of these rows, with centres
    given (e.g. a larger batch's, when the rows are one replica's share of it; inner code: no input checks)."""
    flat = tf.reshape(features, [tf.shape(features)[0], -1])
    return 0.5 * lam * tf.reduce_sum(_distances_to(flat, centres, index))


def child_parent_kernel_loss(kernels, reconstructions, features, labels, lam, groups=None):
    """Kernel-level Child-Parent loss, SPEC P4 Eq. 3.

    ``L_Ĥ = sum_{c,l} MSE(H_c^l, Ĥ_c^l) + lam / 2 * sum_s ||f_s - f̄_{y_s}||^2``

    - ``H^l`` a full-precision (latent) kernel, ``Ĥ^l`` its 1-bit
      reconstruction (``scale * sign(H)``, e.g. what Larq's
      ``magnitude_aware_sign`` returns; :func:`quantized_kernel_pairs`
      collects both from a model). SPEC does not say what ``c`` indexes; we
      read it as the kernels (output channels, the last
      axis in Keras) of layer l, so a layer contributes ``C_out`` times its
      plain MSE.
    - ``f_s`` the last conv features of sample s (flattened),
      ``f̄_y`` the mean feature of class y over the batch: a
      centre-loss term that tightens each class. The gradient is the same
      whether or not the batch centres are treated as constants, because
      offsets from a mean sum to zero. The term is a sum over samples, so
      it grows with the batch size; scale ``lam`` with it. The centres are
      the batch's (P4 does not say how f̄ is kept; batch means need no
      state and follow the weights as they move).

    Args:
        kernels: list of floating tensors ``H^l``.
        reconstructions: list of the same length and shapes, ``Ĥ^l``.
        features: floating tensor ``[batch, ...]``.
        labels: class ids ``[batch]`` (any integers) or one-hot
            ``[batch, classes]``.
        lam: finite float >= 0.
        groups: optional integer ``[batch]``: samples of different groups
            get separate class centres (a supernet batch holds one chunk per
            sampled path, and each path is its own network).

    Returns:
        Scalar float32 tensor.

    Example:
        Kernel ``[[0.5, -1.0], [1.5, 2.0]]`` against its magnitude-aware
        sign ``[[1, -1.5], [1, 1.5]]``: each channel's MSE is 0.25, so 0.5.
        Features ``[[1, 0], [3, 0], [0, 2]]`` with labels ``[0, 0, 1]``:
        centre of class 0 is ``[2, 0]``, squared offsets 1 + 1 + 0 = 2, and
        with ``lam = 0.5`` the term is ``0.5 / 2 * 2 = 0.5``; total 1.0.
    """
    weight = _non_negative("lam", lam)
    kernel_term = _kernel_term(kernels, reconstructions)
    return kernel_term + 0.5 * weight * _class_centre_term(features, labels, groups)


def quantized_kernel_pairs(model_or_weights):
    """``(kernels, reconstructions)`` of every Larq-quantized kernel.

    Larq stores a quantized layer's kernel as a ``QuantizedVariable``: its
    ``latent_variable`` is the full-precision ``H`` and its ``quantizer``
    maps ``H`` to what the 1-bit forward pass uses, ``Ĥ``. Full-precision
    layers (first conv, classifier) are skipped. Call it inside the training
    step (under ``tf.GradientTape``) so the loss sees the current weights.

    Args:
        model_or_weights: a Keras model or layer (its ``weights`` are read)
            or an iterable of variables.

    Returns:
        Two lists of tensors of equal length, for
        :func:`child_parent_kernel_loss`.
    """
    weights = getattr(model_or_weights, "weights", model_or_weights)
    kernels, reconstructions = [], []
    for variable in weights:
        if isinstance(variable, QuantizedVariable) and variable.quantizer:
            latent = variable.latent_variable
            kernels.append(tf.convert_to_tensor(latent))
            reconstructions.append(variable.quantizer(latent))
    return kernels, reconstructions


@tf.keras.utils.register_keras_serializable(package="bnas_tf")
class ChildParentKernelLoss(_ConfigMixin):
    """:func:`child_parent_kernel_loss` with ``lam`` kept as configuration.

    Needs no callback: call it in a training step with a model's pairs,

        kernels, reconstructions = quantized_kernel_pairs(model)
        loss = cross_entropy + ChildParentKernelLoss(lam)(
            kernels, reconstructions, features, labels)

    (SPEC P4 Eq. 4), or :meth:`from_model` to collect the pairs itself.

    The loss is SPEC P4 Eq. 3, ``sum_{c,l} MSE(H_c^l, Ĥ_c^l) + lam / 2 * sum_s ||f_s - f̄_{y_s}||^2``
    (:func:`child_parent_kernel_loss`: latent kernels against their 1-bit reconstructions, plus a
    centre-loss term on the last features with the batch's class centres). It is registered as a Keras
    serializable (``get_config`` / ``from_config``).

    Args:
        lam: λ of the class-centre term, a finite number >= 0 (P4 gives no value; the ``cpnas`` recipe
            uses 1e-3).

    Raises:
        ValueError: ``lam`` is not a finite number >= 0.
    """

    def __init__(self, lam: float):
        self.lam = _non_negative("lam", lam)

    def __call__(self, kernels, reconstructions, features, labels, groups=None) -> tf.Tensor:
        """The loss of one batch (:func:`child_parent_kernel_loss` with this ``lam``).

        Args:
            kernels: list of floating tensors ``H^l`` (:func:`quantized_kernel_pairs`).
            reconstructions: list of the same length and shapes, ``Ĥ^l``.
            features: floating tensor ``[batch, ...]``.
            labels: class ids ``[batch]`` or one-hot ``[batch, classes]``.
            groups: optional integer ``[batch]``: samples of different groups (sampled paths) get
                separate class centres; None (default) is one group.

        Returns:
            Scalar float32 tensor.
        """
        return child_parent_kernel_loss(kernels, reconstructions, features, labels, self.lam, groups)

    def from_model(self, model, features, labels):
        """The loss over every Larq-quantized kernel of ``model``."""
        kernels, reconstructions = quantized_kernel_pairs(model)
        return self(kernels, reconstructions, features, labels)

    def get_config(self):
        return {"lam": self.lam}


def kernel_reconstruction_loss(model):
    """The first term of SPEC P4 Eq. 3 over every Larq-quantized kernel of ``model``:
    ``sum_{c,l} MSE(H_c^l, Ĥ_c^l)``. A callable for ``model.add_loss(lambda: kernel_reconstruction_loss(model))``,
    which needs no labels."""
    return _kernel_term(*quantized_kernel_pairs(model))


@tf.keras.utils.register_keras_serializable(package="bnas_tf")
class ClassCentreLoss(tf.keras.losses.Loss):
    """The second term of SPEC P4 Eq. 3 as a Keras loss on a features output: ``lam / 2 * sum_s ||f_s - f̄_y||^2``.

    ``y_true`` holds the labels (class ids or one-hot), ``y_pred`` the features; the class centres are the
    batch's. Summed over the batch, as Eq. 3 writes it (Keras' default would average).

    Example:
        Features ``[[1, 0], [3, 0], [0, 2]]`` with labels ``[0, 0, 1]`` and ``lam = 0.5``: 0.5.
    """

    def __init__(self, lam, name="class_centre_loss", **kwargs):
        kwargs.setdefault("reduction", tf.keras.losses.Reduction.SUM)
        super().__init__(name=name, **kwargs)
        self.lam = _non_negative("lam", lam)

    def call(self, y_true, y_pred):
        return 0.5 * self.lam * _centre_distances(y_pred, y_true)

    def get_config(self):
        return {**super().get_config(), "lam": self.lam}
