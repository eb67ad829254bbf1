import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnas_tf.space.quantizers import Binarization, LearnableAmplitudeSign, amplitude_reconstruction_error, get


@pytest.mark.parametrize("scheme", ["xnor", "pcnn", "dorefa", "ste"])
def test_kernel_quantizer_outputs_scaled_signs(scheme):
    w = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 4, 5)).astype("float32"))
    q = Binarization(scheme).kernel_quantizer()
    out = q(w).numpy()
    # every output channel is +-one value, with the sign of the latent weight
    for c in range(5):
        magnitudes = np.unique(np.round(np.abs(out[..., c]), 6))
        assert len(magnitudes) == 1
    np.testing.assert_array_equal(np.sign(out), np.where(w.numpy() >= 0, 1.0, -1.0))
    if scheme in ("xnor", "dorefa"):  # mean |W| per output channel
        np.testing.assert_allclose(np.abs(out).max(axis=(0, 1, 2)), np.abs(w.numpy()).mean(axis=(0, 1, 2)), rtol=1e-5)
    if scheme == "ste":
        np.testing.assert_array_equal(np.abs(out), 1.0)


def test_activation_quantizers():
    x = tf.constant([-1.5, -0.2, 0.0, 0.4, 0.6, 2.0])
    np.testing.assert_array_equal(Binarization("xnor", activation_bits=1).input_quantizer()(x), [-1, -1, 1, 1, 1, 1])
    # DoReFa activations: round(clip(x, 0, 1))
    np.testing.assert_array_equal(Binarization("dorefa", activation_bits=1).input_quantizer()(x), [0, 0, 0, 0, 1, 1])
    assert Binarization("xnor", activation_bits=32).input_quantizer() is None
    assert Binarization("xnor", weight_bits=32).kernel_quantizer() is None


def test_amplitude_loss_matches_hand_computation():
    # x = [0.5, -2], amplitude 1: (0.5 - 1)^2 + (-2 + 1)^2 = 1.25
    assert float(amplitude_reconstruction_error(tf.constant([0.5, -2.0]), tf.constant([1.0]))) == pytest.approx(1.25)


def test_pcnn_amplitude_is_learned_and_adds_its_loss():
    layer = lq.layers.QuantConv2D(4, 3, kernel_quantizer=LearnableAmplitudeSign(theta=1.0), input_shape=(5, 5, 2))
    model = tf.keras.Sequential([layer])
    x = tf.random.normal((2, 5, 5, 2))
    with tf.GradientTape() as tape:
        y = model(x, training=True)
        loss = tf.reduce_sum(y) + tf.add_n(model.losses)
    amplitude = [w for w in model.trainable_weights if "amplitude" in w.name]
    assert len(amplitude) == 1 and len(model.losses) == 1
    grad = tape.gradient(loss, amplitude[0])
    assert grad is not None and np.abs(grad.numpy()).sum() > 0


def test_binarization_config_round_trip_and_errors():
    b = Binarization("pcnn", weight_bits=1, activation_bits=1, theta=0.01)
    assert Binarization.from_config(b.get_config()) == b
    assert get("W1/A1").binary_activations and get("W1/A32").tag == "W1/A32"
    assert b.full_precision().tag == "W32/A32"
    with pytest.raises(ValueError, match="unknown binarization scheme"):
        Binarization("xor")
    with pytest.raises(ValueError, match="weight_bits must be 1 or 32"):
        Binarization("xnor", weight_bits=2)
    with pytest.raises(ValueError, match="unknown Binarization fields"):
        Binarization.from_config({"scheme": "xnor", "bits": 1})
    with pytest.raises(ValueError, match="unknown binarization"):
        get("W2/A2")


def test_quantizer_serialisation_round_trip():
    q = LearnableAmplitudeSign(theta=0.5)
    restored = tf.keras.layers.deserialize(tf.keras.layers.serialize(q))
    assert isinstance(restored, LearnableAmplitudeSign) and restored.theta == 0.5
