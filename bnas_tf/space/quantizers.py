"""Binarization schemes of SPEC "Binarization" (P1 §3.2, P2 §4.1.1, P3 §2) on Larq.

A :class:`Binarization` says how a network is binarized (scheme, weight bits,
activation bits) and hands out the Larq quantizers its layers use:

=========  ==========================================  ==========================
scheme     kernel (weights, 1 bit)                      activations (1 bit)
=========  ==========================================  ==========================
``xnor``   ``MagnitudeAwareSign``: mean|W| per output   ``SteSign``
           channel times sign(W) (XNOR "sign + scale")
``pcnn``   :class:`LearnableAmplitudeSign`: learnable   ``SteSign``
           non-negative amplitude per output channel
           (PCNN) or per layer (P1), with the
           amplitude loss of SPEC P1 Eq. 2
``dorefa`` ``MagnitudeAwareSign`` (P3 Eq. 1,           ``DoReFa(k_bit=1)``:
           sign(w)·E(|w|), E taken per output channel)  round(clip(x, 0, 1))
``ste``    ``SteSign`` (plain sign)                     ``SteSign``
=========  ==========================================  ==========================

Every sign is Larq's (straight-through estimator, clipped identity gradient).
32-bit weights or activations mean "no quantizer" for that side.
"""

from __future__ import annotations

import dataclasses
import math

import larq as lq
import tensorflow as tf

from bnas_tf.space.binarization_names import AMPLITUDE_GRANULARITIES, BINARIZATION_TAGS, BLOCK_ORDERS, SCHEMES
from bnas_tf.space.losses import amplitude_loss, amplitude_reconstruction_error  # noqa: F401  (public here too)


@tf.keras.utils.register_keras_serializable(package="bnas_tf")
class LearnableAmplitudeSign(lq.quantizers.Quantizer):
    r"""PCNN-style kernel binarization with a learnable amplitude (SPEC P1 Eq. 2).

    \[ \hat{W} = \hat{A} \odot \mathrm{sign}(W), \quad
       L_{\hat A} = \frac{\theta}{2} \sum (W - \hat{A} \odot \mathrm{sign}(W))^2 \]

    With ``granularity="channel"`` (PCNN's projection) ``\hat A`` is one non-negative scalar per output
    channel. With ``granularity="layer"`` (P1 §3.2) the layer learns one amplitude matrix ``A`` shared by
    all its output kernels (the shape of one kernel, ``kh x kw x c_in``) and the forward pass uses
    ``\hat A = mean(A)``, a scalar: P1's "simplified PCNN". Either is initialised to the expected
    mean |W| of Keras' default Glorot-uniform kernel, trained by the task loss and by ``L_Â``
    (:func:`bnas_tf.space.losses.amplitude_loss`, added with ``add_loss`` when ``theta > 0``).
    Gradients through the sign are Larq's straight-through estimator. Both convert to LCE binary
    convs (a scalar is a per-channel scale with equal channels).

    Example: ``QuantConv2D(16, 3, kernel_quantizer=LearnableAmplitudeSign(theta=1e-4))``.

    Args:
        theta: θ, the weight of the amplitude loss, >= 0; 0 adds no loss (default 1e-4).
        clip_value: the straight-through estimator passes gradients where |W| <= ``clip_value``
            (default 1.0).
        granularity: ``"channel"`` (default) or ``"layer"``, as above.
        **kwargs: ``larq.quantizers.Quantizer``'s (``metrics``, ...).

    Raises:
        ValueError: a negative ``theta`` or an unknown ``granularity``.
    """

    precision = 1

    def __init__(self, theta: float = 1e-4, clip_value: float = 1.0, granularity: str = "channel", **kwargs):
        if theta < 0:
            raise ValueError(f"theta must be >= 0 (got {theta}); it weighs the amplitude loss")
        if granularity not in AMPLITUDE_GRANULARITIES:
            raise ValueError(f"granularity must be one of {', '.join(AMPLITUDE_GRANULARITIES)} (got {granularity!r})")
        self.theta = float(theta)
        self.clip_value = clip_value
        self.granularity = granularity
        super().__init__(**kwargs)

    def build(self, input_shape):
        fan_out = int(input_shape[-1])
        fan_in = int(math.prod(int(d) for d in input_shape[:-1])) if len(input_shape) > 1 else 1
        receptive = int(math.prod(int(d) for d in input_shape[:-2])) if len(input_shape) > 2 else 1
        glorot_limit = math.sqrt(6.0 / (fan_in + fan_out * receptive))
        self.amplitude = self.add_weight(
            name="amplitude",
            shape=(fan_out,) if self.granularity == "channel" else tuple(int(d) for d in input_shape[:-1]),
            initializer=tf.keras.initializers.Constant(glorot_limit / 2.0),
            constraint=tf.keras.constraints.NonNeg(),
            trainable=True,
        )
        super().build(input_shape)

    def forward_amplitude(self):
        """Â of the forward pass: the per-channel vector, or the mean of the layer's amplitude matrix."""
        if self.granularity == "channel":
            return self.amplitude
        return tf.reduce_mean(self.amplitude)

    def call(self, inputs):
        amplitude = self.forward_amplitude()
        if self.theta > 0:
            self.add_loss(amplitude_loss(inputs, amplitude, self.theta))
        return amplitude * lq.quantizers.ste_sign(inputs, clip_value=self.clip_value)

    def get_config(self):
        return {
            **super().get_config(),
            "theta": self.theta,
            "clip_value": self.clip_value,
            "granularity": self.granularity,
        }


@dataclasses.dataclass(frozen=True)
class Binarization:
    """How a network is binarized: scheme, weight bits and activation bits.

    ``Binarization("xnor", weight_bits=1, activation_bits=32)`` is P1's W1/A32
    ("BNN", kernels only); ``activation_bits=1`` makes a fully 1-bit ("1-bit
    CNN", W1/A1) network, whose blocks use PReLU instead of ReLU (SPEC P1 §3.4).
    ``weight_bits=32, activation_bits=32`` is the full-precision twin (the
    Child-Parent *parent*).

    The instance hands out new Larq quantizers for each layer (:meth:`kernel_quantizer`,
    :meth:`input_quantizer`; the table in the module docstring, SPEC "Binarization"), and ``tag`` gives
    its short name (``"W1/A32"``). Most of the API also takes a tag or a config dict (:func:`get`).

    Args:
        scheme: ``"xnor"`` (default; mean|W| per output channel times sign), ``"pcnn"`` (learnable
            amplitude, SPEC P1 Eq. 2), ``"dorefa"`` (P3 Eq. 1 kernels, DoReFa activations) or ``"ste"``
            (plain sign).
        weight_bits: 1 (binary kernels, default) or 32.
        activation_bits: 1 (binary activations) or 32 (default).
        theta: weight ``theta`` >= 0 of the PCNN amplitude loss (SPEC P1 Eq. 2), used by ``"pcnn"``
            (default 1e-4).
        amplitude: ``"channel"`` (default, PCNN's per-channel amplitude) or ``"layer"`` (P1's one
            amplitude per layer), used by ``"pcnn"``; see :class:`LearnableAmplitudeSign`.
        block: the order of a binary conv unit (:func:`bnas_tf.space.ops.conv_block`):
            ``"sign_conv_bn"`` (default: [ReLU] -> conv with binary input -> BN [-> PReLU]) or
            ``"bn_sign_conv"`` (P2's code: BN [-> ReLU] -> conv with binary input [-> PReLU]).

    Raises:
        ValueError: an unknown scheme or amplitude, bits other than 1 or 32, or a negative ``theta``.
    """

    scheme: str = "xnor"
    weight_bits: int = 1
    activation_bits: int = 32
    theta: float = 1e-4
    amplitude: str = "channel"
    block: str = "sign_conv_bn"

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown binarization scheme {self.scheme!r}; choose one of {', '.join(SCHEMES)}")
        for side in ("weight_bits", "activation_bits"):
            bits = getattr(self, side)
            if bits not in (1, 32):
                raise ValueError(f"{side} must be 1 or 32 (got {bits!r})")
        if self.theta < 0:
            raise ValueError(f"theta must be >= 0 (got {self.theta})")
        if self.amplitude not in AMPLITUDE_GRANULARITIES:
            raise ValueError(
                f"amplitude must be one of {', '.join(AMPLITUDE_GRANULARITIES)} (got {self.amplitude!r}): "
                "PCNN's per output channel or P1's per layer"
            )
        if self.block not in BLOCK_ORDERS:
            raise ValueError(f"block must be one of {', '.join(BLOCK_ORDERS)} (got {self.block!r})")

    @property
    def binary_weights(self) -> bool:
        return self.weight_bits == 1

    @property
    def binary_activations(self) -> bool:
        return self.activation_bits == 1

    @property
    def tag(self) -> str:
        """Short name such as ``W1/A32``."""
        return f"W{self.weight_bits}/A{self.activation_bits}"

    def kernel_quantizer(self):
        """A new kernel quantizer for one layer, or None for 32-bit weights."""
        if not self.binary_weights:
            return None
        if self.scheme == "pcnn":
            return LearnableAmplitudeSign(theta=self.theta, granularity=self.amplitude)
        if self.scheme == "ste":
            return lq.quantizers.SteSign()
        return lq.quantizers.MagnitudeAwareSign()

    def input_quantizer(self):
        """A new activation quantizer for one layer, or None for 32-bit activations."""
        if not self.binary_activations:
            return None
        if self.scheme == "dorefa":
            return lq.quantizers.DoReFa(k_bit=1, mode="activations")
        return lq.quantizers.SteSign()

    def kernel_constraint(self):
        """Larq's ``weight_clip`` for binary kernels (latent weights stay in [-1, 1])."""
        return lq.constraints.WeightClip() if self.binary_weights else None

    def full_precision(self) -> Binarization:
        """The same scheme at 32/32 bits: the parent network of SPEC P4."""
        return dataclasses.replace(self, weight_bits=32, activation_bits=32)

    def get_config(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> Binarization:
        unknown = set(config) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(
                f"unknown Binarization fields {sorted(unknown)}; known: "
                f"{', '.join(field.name for field in dataclasses.fields(cls))}"
            )
        return cls(**config)


#: The XNOR binarization of every tag of ``BINARIZATION_TAGS``, what :func:`get` returns for a tag.
_BY_TAG = {tag: Binarization("xnor", weight_bits=w, activation_bits=a) for tag, (w, a) in BINARIZATION_TAGS.items()}
W1A32 = _BY_TAG["W1/A32"]
W1A1 = _BY_TAG["W1/A1"]
FULL_PRECISION = _BY_TAG["W32/A32"]


def get(spec) -> Binarization:
    """A Binarization from an instance, a config dict, or a tag like ``"W1/A1"``."""
    if isinstance(spec, Binarization):
        return spec
    if isinstance(spec, dict):
        return Binarization.from_config(spec)
    if isinstance(spec, str):
        if spec in _BY_TAG:
            return _BY_TAG[spec]
        raise ValueError(f"unknown binarization {spec!r}; use one of {sorted(_BY_TAG)} or Binarization(...)")
    raise TypeError(f"binarization must be a Binarization, dict or tag string, not {type(spec).__name__}")
