"""lce_profile against real LCE conversions: kernel op counts exact, size within 10%.

Random untrained W1/A1 networks of both cell op sets and of the width
space (VGG-small / ResNet-18 width genes, alternating), 16x16x1 inputs,
2-3 cells and 8-16 channels. Seeds 0-1 of each kind run in the default
suite; ``-m slow`` adds seeds 2-11, 12 per kind in all (about 5 minutes on
two cores; seeds 12-19 agree as well, README's 60 networks).
"""

import pytest
import tensorflow as tf

import bnas_tf
from bnas_tf import convert
from bnas_tf.convert import flatbuffer
from bnas_tf.deploy.lce_profile import KERNEL_OPS, lce_profile
from bnas_tf.space import published

KINDS = ("BINARY_OPS", "DARTS_BINARY_OPS", "width")
DEFAULT_SEEDS = range(2)
SLOW_SEEDS = range(2, 12)
SIZE_TOLERANCE = 0.10
INPUT_SHAPE = (16, 16, 1)


def random_network(kind, seed):
    tf.keras.utils.set_random_seed(seed)
    if kind == "width":
        backbone = ("vgg_small", "resnet18")[seed % 2]
        return bnas_tf.build_width_network(
            bnas_tf.WidthGenotype.random(backbone, seed=seed), input_shape=INPUT_SHAPE, binarization="W1/A1"
        )
    cells, channels = 2 + seed % 2, (8, 16)[(seed // 2) % 2]
    return bnas_tf.build_network(
        bnas_tf.Genotype.random(kind, seed=seed),
        cells=cells,
        channels=channels,
        input_shape=INPUT_SHAPE,
        binarization="W1/A1",
    )


def assert_agrees(model):
    report = lce_profile(model)
    data = convert.to_tflite(model)
    histogram = flatbuffer.op_histogram(data)
    assert report["ops"] == {op: histogram.get(op, 0) for op in KERNEL_OPS}, histogram
    error = report["size_bytes"] / len(data) - 1
    print(f"{model.name}: {report['ops']}, size {len(data)} bytes, estimate {report['size_bytes']} ({error:+.2%})")
    assert abs(error) <= SIZE_TOLERANCE
    return report, histogram


# DARTS seed 1 (3 cells, ~25 s) runs with -m slow: the default suite converts DARTS seed 0
CASES = [
    (kind, seed) if (kind, seed) != ("DARTS_BINARY_OPS", 1) else pytest.param(kind, seed, marks=pytest.mark.slow)
    for kind in KINDS
    for seed in DEFAULT_SEEDS
]
CASES += [pytest.param(kind, seed, marks=pytest.mark.slow) for kind in KINDS for seed in SLOW_SEEDS]


@pytest.mark.parametrize("kind,seed", CASES)
def test_random_network_agrees_with_its_flatbuffer(kind, seed):
    assert_agrees(random_network(kind, seed))


def test_w1a32_convs_are_float_and_counted_as_fallback():
    tf.keras.utils.set_random_seed(0)
    model = bnas_tf.build_network(
        bnas_tf.Genotype.random("BINARY_OPS", seed=0),
        cells=2,
        channels=8,
        input_shape=INPUT_SHAPE,
        binarization="W1/A32",
    )
    report, histogram = assert_agrees(model)
    assert histogram.get("LceBconv2d", 0) == 0
    assert report["binary_macs"] == 0 and report["fallback_macs"] > 0


def test_published_imagenet_cell_leaves_shared_dilated_convs_float():
    """P2's ImageNet cell reads node 1 with two dilated 3x3 convs: LCE runs both as float CONV_2D."""
    model = bnas_tf.build_network(
        published.P2_BNAS_IMAGENET, cells=3, channels=8, input_shape=INPUT_SHAPE, binarization="W1/A1"
    )
    report, histogram = assert_agrees(model)
    shared = [r for r in report["layers"] if "SPACE_TO_BATCH_ND" in r["reason"]]
    assert shared and histogram["CONV_2D"] == 1 + len(shared)  # the float stem, then the shared dilated convs


@pytest.mark.slow
@pytest.mark.parametrize("output_channels,binary", [(1820, True), (1821, False)])
def test_magnitude_aware_kernels_fold_up_to_2_to_the_25_weights(output_channels, binary):
    """Pins the converter's folding limit (3x3x2048x1820 weights fold, one more output channel does not)."""
    import larq as lq

    inputs = tf.keras.Input((4, 4, 2048))
    conv = lq.layers.QuantConv2D(
        output_channels,
        3,
        padding="same",
        pad_values=1.0,
        use_bias=False,
        input_quantizer="ste_sign",
        kernel_quantizer="magnitude_aware_sign",
    )
    model = tf.keras.Model(inputs, tf.keras.layers.BatchNormalization()(conv(inputs)))
    report, histogram = assert_agrees(model)
    assert (histogram.get("LceBconv2d", 0) == 1) is binary
