"""Hand-computed checks of bnas_tf.space.losses (SPEC P1 Eq. 2, P2 Eq. 5, P4 Eq. 3)."""

import math

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnas_tf.space import losses
from bnas_tf.tuners import scores

# ----------------------------------------------------------- P1 Eq. 2


def test_amplitude_loss_by_hand():
    # theta/2 * ((0.5 - 1*1)^2 + (-2 - 1*(-1))^2) = 1 * (0.25 + 1) = 1.25
    assert float(losses.amplitude_loss([0.5, -2.0], 1.0, 2.0)) == pytest.approx(1.25)


def test_amplitude_loss_per_channel_amplitude():
    # channels last, A = [1, 0.5]:
    #   row 0: 0.5 - 1 = -0.5,  -2 + 0.5 = -1.5
    #   row 1: 1.0 - 1 =  0,    -0.5 + 0.5 = 0
    # sum of squares 0.25 + 2.25 = 2.5; theta 0.5 -> 0.25 * 2.5 = 0.625
    x = tf.constant([[0.5, -2.0], [1.0, -0.5]])
    got = losses.amplitude_loss(x, tf.constant([1.0, 0.5]), 0.5)
    assert float(got) == pytest.approx(0.625)


def test_amplitude_loss_uses_larq_sign_at_zero():
    # larq: sign(0) = +1, so (0 - 0.5 * 1)^2 = 0.25 (tf.sign would give 0).
    assert float(losses.amplitude_loss([0.0], 0.5, 2.0)) == pytest.approx(0.25)


def test_amplitude_loss_gradients_treat_sign_as_constant():
    # x = [0.5, -2], A = 1, theta = 2, D = [1, -1], x - A D = [-0.5, -1]
    # dL/dx = theta (x - A D) = [-1, -2]
    # dL/dA = -theta sum((x - A D) D) = -2 * (-0.5 + 1) = -1
    x = tf.Variable([0.5, -2.0])
    amplitude = tf.Variable(1.0)
    with tf.GradientTape() as tape:
        loss = losses.amplitude_loss(x, amplitude, 2.0)
    grad_x, grad_amplitude = tape.gradient(loss, [x, amplitude])
    np.testing.assert_allclose(grad_x.numpy(), [-1.0, -2.0])
    assert float(grad_amplitude) == pytest.approx(-1.0)


def test_amplitude_loss_object_round_trips():
    loss = losses.AmplitudeLoss(theta=2.0)
    restored = tf.keras.utils.deserialize_keras_object(tf.keras.utils.serialize_keras_object(loss))
    assert isinstance(restored, losses.AmplitudeLoss)
    assert restored.get_config() == {"theta": 2.0}
    assert float(restored([0.5, -2.0], 1.0)) == pytest.approx(1.25)


@pytest.mark.parametrize(
    "x, amplitude, theta, error, message",
    [
        ([0.5, -2.0], 1.0, -1.0, ValueError, "theta must be finite and >= 0"),
        ([0.5, -2.0], 1.0, float("nan"), ValueError, "theta"),
        ([[0.5, -2.0]], [1.0, 1.0, 1.0], 1.0, ValueError, "does not broadcast"),
        ([1, -2], 1.0, 1.0, TypeError, "floating-point"),
    ],
)
def test_amplitude_loss_rejects(x, amplitude, theta, error, message):
    with pytest.raises(error, match=message):
        losses.amplitude_loss(x, amplitude, theta)


# ----------------------------------------------------------- P2 Eq. 5


def test_diversity_uniform_alpha_has_entropy_ln_k():
    # 14 edges x 8 ops of zero logits: every edge has H = ln 8
    alphas = [tf.zeros([14, 8]), tf.zeros([14, 8])]
    regularizer = losses.DiversityRegularizer()
    entropy = regularizer.mean_entropy(alphas)
    assert float(entropy) == pytest.approx(math.log(8), rel=1e-6)
    # epoch 0: -1 * ln 8;  epoch 7.7: -e^-1 ln 8 = -0.367879 * 2.079442 = -0.764984
    assert float(regularizer(alphas, 0)) == pytest.approx(-math.log(8), rel=1e-6)
    assert float(regularizer(alphas, 7.7)) == pytest.approx(-0.764984, abs=1e-6)


def test_diversity_mean_over_edges_by_hand():
    # edge 0: logits (0, 0) -> H = ln 2 = 0.693147
    # edge 1: logits (ln 3, 0) -> p = (0.75, 0.25),
    #   H = 0.75 ln(4/3) + 0.25 ln 4 = 0.215762 + 0.346574 = 0.562335
    # mean = (0.693147 + 0.562335) / 2 = 0.627741
    alpha = tf.constant([[0.0, 0.0], [math.log(3.0), 0.0]])
    got = losses.DiversityRegularizer.mean_entropy(alpha)
    assert float(got) == pytest.approx(0.627741, abs=1e-6)
    # agrees with the numpy entropy of the same softmax
    numpy_entropy = scores.entropy(scores.softmax_likelihood(alpha.numpy()))
    assert float(got) == pytest.approx(float(np.mean(numpy_entropy)), abs=1e-6)


def test_diversity_pools_tensors_with_different_op_counts():
    # one edge on 2 ops (ln 2) and three edges on 4 ops (ln 4 each):
    # (ln 2 + 3 ln 4) / 4 = 7 ln 2 / 4 = 1.213008
    got = losses.DiversityRegularizer.mean_entropy([tf.zeros([1, 2]), tf.zeros([3, 4])])
    assert float(got) == pytest.approx(7 * math.log(2) / 4, rel=1e-6)


def test_diversity_stays_finite_for_saturated_logits():
    got = losses.DiversityRegularizer.mean_entropy(tf.constant([[200.0, 0.0, -200.0]]))
    assert np.isfinite(float(got)) and float(got) == pytest.approx(0.0, abs=1e-6)


def test_diversity_penalty_with_variable_weight_in_tf_function():
    regularizer = losses.DiversityRegularizer(lam=0.5)
    weight = tf.Variable(regularizer.weight(0))  # 0.5
    alpha = tf.zeros([3, 4])

    @tf.function
    def step():
        return regularizer.penalty(alpha, weight)

    # -0.5 ln 4 = -0.693147
    assert float(step()) == pytest.approx(-0.5 * math.log(4), rel=1e-6)
    weight.assign(regularizer.weight(7.7))  # 0.5 e^-1 = 0.183940
    assert float(step()) == pytest.approx(-0.183940 * math.log(4), abs=1e-6)


def test_diversity_gradient_pushes_towards_uniform():
    # Minimising -H raises the smaller logit and lowers the larger one.
    alpha = tf.Variable([[1.0, 0.0]])
    with tf.GradientTape() as tape:
        penalty = losses.DiversityRegularizer()(alpha, 0)
    gradient = tape.gradient(penalty, alpha).numpy()
    assert gradient[0, 0] > 0 > gradient[0, 1]


def test_diversity_round_trips():
    regularizer = losses.DiversityRegularizer(lam=0.5, tau=3.0)
    restored = tf.keras.utils.deserialize_keras_object(tf.keras.utils.serialize_keras_object(regularizer))
    assert isinstance(restored, losses.DiversityRegularizer)
    assert restored.get_config() == {"lam": 0.5, "tau": 3.0}
    # 0.5 e^(-3/3) = 0.183940
    assert restored.weight(3) == pytest.approx(0.183940, abs=1e-6)


def test_diversity_rejects():
    with pytest.raises(ValueError, match="tau must be > 0"):
        losses.DiversityRegularizer(tau=0.0)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        losses.DiversityRegularizer(lam=-1.0)
    regularizer = losses.DiversityRegularizer()
    with pytest.raises(TypeError, match="penalty"):
        regularizer(tf.zeros([2, 2]), tf.constant(1.0))
    with pytest.raises(ValueError, match=r"\[edges, ops\]"):
        regularizer(tf.zeros([2, 2, 2]), 0)
    with pytest.raises(ValueError, match="at least one"):
        regularizer([], 0)


# ----------------------------------------------------------- P4 Eq. 3

KERNEL = [[0.5, -1.0], [1.5, 2.0]]  # [inputs, outputs]
# magnitude-aware sign: channel 0 = (0.5, 1.5), scale 1.0 -> (1, 1)
#                       channel 1 = (-1, 2),   scale 1.5 -> (-1.5, 1.5)
RECONSTRUCTION = [[1.0, -1.5], [1.0, 1.5]]
# channel MSEs: ((0.5-1)^2 + (1.5-1)^2) / 2 = 0.25
#           and ((-1+1.5)^2 + (2-1.5)^2) / 2 = 0.25
KERNEL_TERM = 0.5
FEATURES = [[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]]
# labels (0, 0, 1): centre of class 0 = (2, 0), offsets (-1, 0), (1, 0);
# class 1 alone, offset 0. Sum of squares = 2.
CENTRE_SUM = 2.0


def test_child_parent_kernel_loss_by_hand():
    # 0.5 + 0.5 / 2 * 2 = 1.0
    got = losses.child_parent_kernel_loss(
        [tf.constant(KERNEL)], [tf.constant(RECONSTRUCTION)], FEATURES, [0, 0, 1], 0.5
    )
    assert float(got) == pytest.approx(KERNEL_TERM + 0.25 * CENTRE_SUM)


def test_child_parent_sums_layers_and_ignores_label_values():
    # a second 1x1x1x1 conv kernel 0.3 against sign 1: (0.3 - 1)^2 = 0.49
    kernels = [tf.constant(KERNEL), tf.fill([1, 1, 1, 1], 0.3)]
    reconstructions = [tf.constant(RECONSTRUCTION), tf.ones([1, 1, 1, 1])]
    # sparse class ids 7, 7, 1000 group like 0, 0, 1; lam 1 -> 1/2 * 2 = 1
    got = losses.child_parent_kernel_loss(kernels, reconstructions, FEATURES, [7, 7, 1000], 1.0)
    assert float(got) == pytest.approx(KERNEL_TERM + 0.49 + 1.0)


def test_child_parent_one_hot_labels_and_image_features():
    one_hot = tf.one_hot([0, 0, 1], 3)
    # [batch, 1, 1, 2] features flatten to the same rows
    features = tf.reshape(tf.constant(FEATURES), [3, 1, 1, 2])
    got = losses.child_parent_kernel_loss([], [], features, one_hot, 2.0)
    assert float(got) == pytest.approx(CENTRE_SUM)  # 2 / 2 * 2


def test_child_parent_centre_gradient_by_hand():
    # d/df_s of lam/2 sum ||f - f̄||^2 = lam (f_s - f̄): (-1, 0), (1, 0), (0, 0)
    features = tf.Variable(FEATURES)
    with tf.GradientTape() as tape:
        loss = losses.child_parent_kernel_loss([], [], features, [0, 0, 1], 1.0)
    np.testing.assert_allclose(tape.gradient(loss, features).numpy(), [[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])


def test_quantized_kernel_pairs_reads_larq_layers():
    model = tf.keras.Sequential(
        [
            tf.keras.Input((2,)),
            lq.layers.QuantDense(2, kernel_quantizer="magnitude_aware_sign", use_bias=False),
            tf.keras.layers.Dense(1),  # full precision: skipped
        ]
    )
    model.layers[0].set_weights([np.array(KERNEL)])
    kernels, reconstructions = losses.quantized_kernel_pairs(model)
    assert len(kernels) == len(reconstructions) == 1
    np.testing.assert_allclose(kernels[0].numpy(), KERNEL)
    np.testing.assert_allclose(reconstructions[0].numpy(), RECONSTRUCTION)
    loss = losses.ChildParentKernelLoss(lam=0.5).from_model(model, FEATURES, [0, 0, 1])
    assert float(loss) == pytest.approx(KERNEL_TERM + 0.25 * CENTRE_SUM)


def test_child_parent_loss_object_round_trips():
    loss = losses.ChildParentKernelLoss(lam=0.5)
    restored = tf.keras.utils.deserialize_keras_object(tf.keras.utils.serialize_keras_object(loss))
    assert isinstance(restored, losses.ChildParentKernelLoss)
    assert restored.get_config() == {"lam": 0.5}
    got = restored([tf.constant(KERNEL)], [tf.constant(RECONSTRUCTION)], FEATURES, [0, 0, 1])
    assert float(got) == pytest.approx(1.0)  # 0.5 + 0.5 / 2 * 2


@pytest.mark.parametrize(
    "kernels, reconstructions, features, labels, lam, message",
    [
        ([KERNEL], [], FEATURES, [0, 0, 1], 1.0, "1 kernels but 0"),
        ([KERNEL], [[1.0, 1.0]], FEATURES, [0, 0, 1], 1.0, "shape"),
        ([], [], FEATURES, [0, 1], 1.0, "3 samples but labels 2"),
        ([], [], FEATURES, [[[0]], [[0]], [[1]]], 1.0, "class ids"),
        ([], [], FEATURES, [0, 0, 1], -0.5, "lam must be finite and >= 0"),
    ],
)
def test_child_parent_rejects(kernels, reconstructions, features, labels, lam, message):
    with pytest.raises(ValueError, match=message):
        losses.child_parent_kernel_loss(kernels, reconstructions, features, labels, lam)
