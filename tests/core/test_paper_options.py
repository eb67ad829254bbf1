"""The papers' own settings offered beside our defaults: P1's per-layer amplitude, P2's BN -> sign -> conv
block and one-cycle retraining, P1/P4's reduction positions and P3's warm-start epochs."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnas_tf import recipes
from bnas_tf.space.learning_rates import OneCycle
from bnas_tf.space.ops import conv_block
from bnas_tf.space.quantizers import Binarization, LearnableAmplitudeSign
from bnas_tf.space.schedules import one_cycle_rate


def get_recipe(name, profile="paper", **overrides):
    return recipes.get(name, profile, overrides)


def test_layer_amplitude_is_the_mean_of_one_matrix_shared_by_every_output_kernel():
    quantizer = LearnableAmplitudeSign(theta=0.0, granularity="layer")
    w = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 2, 4)).astype("float32"))
    quantizer.build(w.shape)
    assert tuple(quantizer.amplitude.shape) == (3, 3, 2)  # P1: A^l, the size of one kernel D_i
    quantizer.amplitude.assign(np.arange(18, dtype="float32").reshape(3, 3, 2) / 10.0)  # mean 0.85
    out = quantizer(w).numpy()
    np.testing.assert_allclose(np.abs(out), 0.85, rtol=1e-6)  # one scalar for the whole layer
    np.testing.assert_array_equal(np.sign(out), np.where(w.numpy() >= 0, 1.0, -1.0))
    channel = LearnableAmplitudeSign(theta=0.0)
    channel.build(w.shape)
    assert tuple(channel.amplitude.shape) == (4,)


def test_layer_amplitude_loss_and_gradient_by_hand():
    # kernel [0.5, -2] (shape 1x1x1x2), A = [[[1.0]]] -> Â = 1; L = θ/2 ((0.5-1)^2 + (-2+1)^2) = θ/2 * 1.25
    quantizer = LearnableAmplitudeSign(theta=2.0, granularity="layer")
    w = tf.constant([[[[0.5, -2.0]]]])
    quantizer.build(w.shape)
    quantizer.amplitude.assign([[[1.0]]])
    with tf.GradientTape() as tape:
        quantizer(w)
        loss = tf.add_n(quantizer.losses)
    assert float(loss) == pytest.approx(1.25)
    # dL/dÂ = -θ Σ (W - Â D) D = -2 ((0.5 - 1) * 1 + (-2 + 1) * -1) = -2 * 0.5 = -1
    assert float(tape.gradient(loss, quantizer.amplitude).numpy().sum()) == pytest.approx(-1.0)


def test_pcnn_recipe_uses_p1s_layer_amplitude_and_serialises():
    binarization = get_recipe("bnas_pcnn").binarization_config()
    assert binarization.amplitude == "layer" and binarization.kernel_quantizer().granularity == "layer"
    restored = tf.keras.layers.deserialize(tf.keras.layers.serialize(binarization.kernel_quantizer()))
    assert restored.granularity == "layer"
    assert Binarization.from_config(binarization.get_config()) == binarization
    with pytest.raises(ValueError, match="amplitude must be one of channel, layer"):
        Binarization("pcnn", amplitude="row")
    with pytest.raises(ValueError, match="pcnn_amplitude must be one of"):
        get_recipe("bnas_pcnn", pcnn_amplitude="row")


@pytest.mark.parametrize(
    "tag,block,kinds",
    [
        ("W1/A1", "sign_conv_bn", ["QuantConv2D", "BatchNormalization", "PReLU"]),
        ("W1/A1", "bn_sign_conv", ["BatchNormalization", "QuantConv2D", "PReLU"]),
        ("W1/A32", "sign_conv_bn", ["ReLU", "QuantConv2D", "BatchNormalization"]),
        ("W1/A32", "bn_sign_conv", ["BatchNormalization", "ReLU", "QuantConv2D"]),
    ],
)
def test_block_order(tag, block, kinds):
    weight_bits, activation_bits = (1, 1) if tag == "W1/A1" else (1, 32)
    binarization = Binarization("xnor", weight_bits, activation_bits, block=block)
    layers = conv_block(8, 3, 1, binarization, "op")
    assert [type(layer).__name__ for layer in layers] == kinds
    x = tf.random.normal((2, 6, 6, 4))
    for layer in layers:
        x = layer(x)
    assert x.shape == (2, 6, 6, 8)
    if block == "bn_sign_conv":  # the BN normalises the conv's input (4 channels), before the sign
        assert layers[0].gamma.shape == (4,)


def test_block_order_reaches_the_network_from_the_recipe():
    import bnas_tf

    recipe = get_recipe("binary_darts", profile="quick", binary_block="bn_sign_conv")
    model = bnas_tf.build_network(
        bnas_tf.Genotype.random("BINARY_OPS", seed=0, nodes=2),
        cells=2,
        channels=8,
        input_shape=(8, 8, 1),
        binarization=recipe.binarization_config(),
    )
    order = [type(layer).__name__ for layer in model.layers if layer.name.startswith("cell0_pre0")]
    assert order[:2] == ["BatchNormalization", "QuantConv2D"], order


def test_one_cycle_rate_by_hand():
    # 100 steps, 10% annihilation: cycle of 90 steps, peak at 45, back to min at 90, min/100 at 100
    rate = [one_cycle_rate(t, 100, 0.05, 4e-4) for t in (0, 15, 45, 60, 90, 95, 100, 130)]
    expected = [4e-4, 4e-4 + 0.0496 / 3, 0.05, 0.05 - 0.0496 / 3, 4e-4, (4e-4 + 4e-6) / 2, 4e-6, 4e-6]
    np.testing.assert_allclose(rate, expected, rtol=1e-9)
    with pytest.raises(ValueError, match="min_rate must be <= max_rate"):
        one_cycle_rate(0, 10, 0.01, 0.1)
    with pytest.raises(ValueError, match="annihilation must be < 1"):
        one_cycle_rate(0, 10, 0.1, 0.01, annihilation=1.0)


def test_one_cycle_keras_schedule_equals_the_pure_rate_and_serialises():
    schedule = OneCycle(total_steps=37, max_rate=0.05, min_rate=4e-4)
    steps = np.arange(0, 45)
    keras_rates = [float(schedule(int(t))) for t in steps]
    np.testing.assert_allclose(keras_rates, [one_cycle_rate(t, 37, 0.05, 4e-4) for t in steps], rtol=1e-5)
    restored = tf.keras.optimizers.schedules.deserialize(tf.keras.optimizers.schedules.serialize(schedule))
    assert restored.get_config() == schedule.get_config()


def test_p2_retraining_numbers_in_binary_darts_paper_profile():
    from bnas_tf.pipeline.train import learning_rate_schedule

    recipe = get_recipe("binary_darts")
    assert (recipe.train_epochs, recipe.train_batch_size, recipe.train_weight_decay) == (600, 256, 3e-6)
    assert (recipe.lr_schedule, recipe.train_learning_rate, recipe.lr_min) == ("one_cycle", 5e-2, 4e-4)
    schedule = learning_rate_schedule(recipe, steps_per_epoch=196, epochs=600)
    total = 196 * 600
    assert isinstance(schedule, OneCycle) and schedule.total_steps == total
    assert float(schedule(int(total * 0.9) // 2)) == pytest.approx(5e-2)
    assert float(schedule(0)) == pytest.approx(4e-4)
    with pytest.raises(ValueError, match="one_cycle' needs lr_min > 0"):
        get_recipe("binary_darts", lr_min=0.0)
    # cosine ends at lr_min
    cosine = learning_rate_schedule(get_recipe("cpnas", lr_min=1e-3), steps_per_epoch=10, epochs=2)
    assert float(cosine(20)) == pytest.approx(1e-3)


@pytest.mark.parametrize("name", ["bnas_xnor", "bnas_pcnn", "bnas_1bit_ucb", "cpnas"])
def test_p1_p4_search_nets_reduce_at_the_second_and_fourth_cell(name):
    from bnas_tf.pipeline.search import cell_space

    space = cell_space(get_recipe(name))
    assert space.cells == 6 and space.reduction_cells == (1, 3)


def test_p3_paper_profile_trains_the_uniform_4x_net_150_epochs():
    recipe = get_recipe("evolution_vgg_small")
    assert (recipe.initial_weights, recipe.initial_epochs) == ("uniform4x", 150)


def test_quantizer_of_a_layer_amplitude_converts_to_binary_kernels():
    pytest.importorskip("larq_compute_engine")
    from bnas_tf import convert
    from bnas_tf.convert import flatbuffer

    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((8, 8, 32))
    x = lq.layers.QuantConv2D(
        32,
        3,
        padding="same",
        pad_values=1.0,
        use_bias=False,
        input_quantizer="ste_sign",
        kernel_quantizer=LearnableAmplitudeSign(theta=0.0, granularity="layer"),
        kernel_constraint="weight_clip",
    )(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.GlobalAveragePooling2D()(x))
    histogram = flatbuffer.op_histogram(convert.to_tflite(model))
    assert histogram.get("LceBconv2d", 0) == 1, histogram
