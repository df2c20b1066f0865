"""Shared layers: exact semantics of the original's ops (specs/savp.md §3.4, §8.1-8.3)."""

import numpy as np
import pytest
import keras
import tensorflow as tf

from video_prediction.layers.conv_rnn import BasicConv2DLSTMCell, BasicLSTMCell, Conv2DGRUCell
from video_prediction.layers.normalization import InstanceNormalization, LayerNormalization, normalize
from video_prediction.layers.resampling import (
    ConvPool2D,
    UpsampleConv2D,
    bilinear_upsample_zero_padded,
    upsample_conv2d_reference,
)
from video_prediction.layers.spectral_norm import SNConv, SNDense
from video_prediction.layers.transformations import (
    apply_cdna_kernels,
    apply_dna_kernels,
    dense_image_warp,
    identity_kernel,
    image_warp,
    normalize_kernels,
)


def rand(*shape, seed=0):
    return tf.constant(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


# -- resampling ---------------------------------------------------------------------------------


def test_bilinear_upsample_interior_and_zero_border():
    x = rand(1, 5, 6, 2)
    up = bilinear_upsample_zero_padded(x).numpy()
    assert up.shape == (1, 12, 14, 2)
    # Shifted by one pixel, the interior equals half-pixel bilinear upsampling; the two
    # outermost rows/columns blend with zeros instead of replicating the edge.
    ref = tf.image.resize(x, (10, 12), method="bilinear").numpy()
    np.testing.assert_allclose(up[:, 2:-2, 2:-2], ref[:, 1:-1, 1:-1], atol=1e-6)
    np.testing.assert_allclose(up[:, 0, 2:-2], 0.25 * ref[:, 0, 1:-1], atol=1e-6)
    np.testing.assert_allclose(up[:, 1, 2:-2], 0.75 * ref[:, 0, 1:-1], atol=1e-6)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_upsample_conv2d_equals_upsampling_then_conv(kernel_size):
    """The layer (the original's fused deconv) against bilinear upsampling then a VALID conv, cropped."""
    x = rand(2, 4, 4, 3)
    layer = UpsampleConv2D(5, kernel_size)
    y = layer(x)
    assert y.shape == (2, 8, 8, 5)
    ref = upsample_conv2d_reference(x, layer.kernel) + layer.bias
    np.testing.assert_allclose(y.numpy(), ref.numpy(), atol=1e-5)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_upsample_conv2d_gradients_equal_upsampling_then_conv(kernel_size):
    """Input and kernel gradients of the fused deconv equal those of upsampling then convolving."""
    x = rand(2, 5, 4, 3)
    weights = rand(2, 10, 8, 5) - 0.5  # a loss whose output gradient varies over the map
    layer = UpsampleConv2D(5, kernel_size)
    layer.build(x.shape)
    grads = []
    for fn in (layer, lambda v: upsample_conv2d_reference(v, layer.kernel) + layer.bias):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(fn(x) * weights)
        grads.append(tape.gradient(loss, [x, layer.kernel]))
    for ours, want in zip(*grads):
        scale = float(tf.reduce_max(tf.abs(want)))
        assert scale > 1e-2
        np.testing.assert_allclose(ours.numpy(), want.numpy(), rtol=0, atol=1e-6 * scale)


def test_upsample_conv2d_3x3_interior_is_bilinear_then_conv_and_border_differs():
    x = rand(1, 6, 6, 2, seed=1)
    layer = UpsampleConv2D(3, 3)
    y = layer(x).numpy()
    naive = tf.nn.conv2d(tf.image.resize(x, (12, 12), method="bilinear"), layer.kernel, 1, "SAME").numpy()
    np.testing.assert_allclose(y[:, 2:-2, 2:-2], naive[:, 2:-2, 2:-2], atol=1e-5)
    assert np.abs(y[:, 0] - naive[:, 0]).max() > 1e-3  # zero-padded bilinear border (not edge replication)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_conv_pool2d_equals_conv_then_avgpool(kernel_size):
    x = rand(2, 8, 8, 3)
    layer = ConvPool2D(4, kernel_size)
    y = layer(x)
    ref = tf.nn.avg_pool2d(tf.nn.conv2d(x, layer.kernel, 1, "SAME"), 2, 2, "VALID") + layer.bias
    assert y.shape == (2, 4, 4, 4)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), atol=1e-5)


# -- normalisation ------------------------------------------------------------------------------


def test_instance_norm_epsilon_and_axes():
    x = rand(2, 4, 5, 3) * 0.001  # small variance: epsilon 1e-6 vs 1e-3 matters
    layer = InstanceNormalization()
    y = layer(x).numpy()
    xn = x.numpy()
    mean = xn.mean(axis=(1, 2), keepdims=True)
    var = xn.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y, (xn - mean) / np.sqrt(var + 1e-6), atol=1e-4)
    assert layer.epsilon == 1e-6
    assert {w.name for w in layer.weights} == {"gamma", "beta"}


def test_layer_norm_over_all_non_batch_axes():
    x = rand(2, 3, 4, 5).numpy()
    y = LayerNormalization()(x).numpy()
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    var = x.var(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-12), atol=1e-5)


@pytest.mark.parametrize("axes", [[1, 2], [1, 2, 3], [1, 2, 3, 4]], ids=["instance", "layer", "instance-5d"])
@pytest.mark.parametrize("affine", [True, False])
def test_normalize_gradient_equals_autodiff_through_moments(axes, affine):
    """The hand-written gradient of ``normalize`` is autodiff's through ``tf.nn.moments``, for x, gamma, beta."""
    rank = 5 if len(axes) == 4 else 4
    shape = [3, 6, 5, 4, 7][:rank - 1] + [8]
    rng = np.random.default_rng(len(axes) + 10 * affine)
    x = tf.constant(rng.normal(size=shape).astype(np.float32) * 3.0 + 1.0)
    gamma = tf.constant(rng.normal(size=[8]).astype(np.float32)) if affine else None
    beta = tf.constant(rng.normal(size=[8]).astype(np.float32)) if affine else None
    weights = tf.constant(rng.normal(size=shape).astype(np.float32))  # a loss whose dy is not constant
    params = [p for p in (gamma, beta) if p is not None]

    def reference(x, *params):
        mean, variance = tf.nn.moments(x, axes=axes, keepdims=True)
        y = (x - mean) * tf.math.rsqrt(variance + 1e-6)
        return y * params[0] + params[1] if params else y

    results = []
    for fn in (reference, lambda x, *p: normalize(x, axes, 1e-6, gamma=gamma, beta=beta)):
        with tf.GradientTape() as tape:
            tape.watch([x] + params)
            y = fn(x, *params)
            loss = tf.reduce_sum(y * weights)
        results.append([y] + tape.gradient(loss, [x] + params))
    for ours, want in zip(results[1], results[0]):
        scale = float(np.max(np.abs(want)))
        np.testing.assert_allclose(ours.numpy(), want.numpy(), rtol=0, atol=1e-5 * scale)
        assert scale > 1e-2  # a gradient that vanished would compare equal to anything small


# -- recurrent cells ----------------------------------------------------------------------------


def test_conv_lstm_gate_semantics():
    cell = BasicConv2DLSTMCell(4, (3, 3), norm_layer="instance")
    x = rand(2, 6, 6, 3)
    c, h = rand(2, 6, 6, 4, seed=1), rand(2, 6, 6, 4, seed=2)
    new_h, (new_c, new_h2) = cell(x, (c, h))
    assert cell.bias is None  # no conv bias with a normaliser
    assert cell.kernel.shape == (3, 3, 7, 16)
    gates = tf.nn.conv2d(tf.concat([x, h], -1), cell.kernel, 1, "SAME")

    def inorm(v):
        mean, var = tf.nn.moments(v, [1, 2], keepdims=True)
        return (v - mean) / tf.sqrt(var + 1e-6)

    i, j, f, o = tf.split(inorm(gates), 4, axis=-1)
    ref_c = inorm(c * tf.sigmoid(f + 1.0) + tf.sigmoid(i) * tf.tanh(j))
    ref_h = tf.tanh(ref_c) * tf.sigmoid(o)
    np.testing.assert_allclose(new_c.numpy(), ref_c.numpy(), atol=1e-5)
    np.testing.assert_allclose(new_h.numpy(), ref_h.numpy(), atol=1e-5)
    np.testing.assert_array_equal(new_h.numpy(), new_h2.numpy())


def test_conv_gru_and_lstm_cells_shapes():
    gru = Conv2DGRUCell(4, (3, 3), norm_layer="none", non_spatial_units=2)
    h, state = gru(rand(2, 6, 6, 3), gru.zero_state(2, 6, 6), inputs_non_spatial=rand(2, 2))
    assert h.shape == (2, 6, 6, 4)
    np.testing.assert_allclose(gru.gates_bias.numpy(), 1.0)
    lstm = BasicLSTMCell(8)
    out, (c, h) = lstm(rand(3, 8), lstm.zero_state(3))
    assert lstm.kernel.shape == (16, 32) and out.shape == (3, 8)


# -- transformations ----------------------------------------------------------------------------


def test_identity_kernels():
    np.testing.assert_array_equal(identity_kernel((3, 3)), [[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    even = identity_kernel((4, 4))
    assert even.sum() == pytest.approx(1.0) and even[1:3, 1:3].tolist() == [[0.25, 0.25], [0.25, 0.25]]


def test_cdna_normalisation_and_identity_behaviour():
    kernels = normalize_kernels(rand(2, 5, 5, 4) - 10.0 + identity_kernel((5, 5))[None, :, :, None], [1, 2])
    np.testing.assert_allclose(tf.reduce_sum(kernels, [1, 2]).numpy(), 1.0, rtol=1e-6)
    assert float(tf.reduce_min(kernels)) > 0
    image = tf.random.uniform([2, 7, 8, 3])
    # Zero predicted kernels + identity -> the transformed image is the input image.
    identity = normalize_kernels(tf.zeros([2, 5, 5, 4]) + identity_kernel((5, 5))[None, :, :, None], [1, 2])
    for out in apply_cdna_kernels(image, identity):
        np.testing.assert_allclose(out.numpy(), image.numpy(), atol=1e-6)


def test_cdna_symmetric_padding_per_sample_kernel():
    image = tf.random.uniform([2, 5, 5, 2])
    kernel = np.zeros((2, 3, 3, 1), np.float32)
    kernel[0, 1, 0, 0] = 1.0  # sample 0: take the left neighbour
    kernel[1, 1, 1, 0] = 1.0  # sample 1: identity
    (out,) = apply_cdna_kernels(image, tf.constant(kernel))
    img = image.numpy()
    # Left neighbour with SYMMETRIC padding: column -1 mirrors column 0.
    expected0 = np.concatenate([img[0, :, :1], img[0, :, :-1]], axis=1)
    np.testing.assert_allclose(out[0].numpy(), expected0, atol=1e-6)
    np.testing.assert_allclose(out[1].numpy(), img[1], atol=1e-6)


def test_dna_per_pixel_kernels_match_cdna_when_constant():
    image = tf.random.uniform([2, 6, 6, 3])
    kernels = normalize_kernels(rand(2, 3, 3, 2), [1, 2])
    per_pixel = tf.tile(kernels[:, None, None], [1, 6, 6, 1, 1, 1])
    for a, b in zip(apply_cdna_kernels(image, kernels), apply_dna_kernels(image, per_pixel)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_dense_image_warp_hand_computed_bilinear():
    image = tf.reshape(tf.range(2 * 4 * 5 * 1, dtype=tf.float32), [2, 4, 5, 1])
    flow = np.zeros((2, 4, 5, 2), np.float32)
    flow[0, 1, 2] = [0.25, -0.5]  # sample at (y, x) = (0.75, 2.5)
    flow[1, 0, 0] = [2.0, 3.0]  # sample at (-2, -3) -> clamped to (0, 0)
    flow[1, 3, 4] = [-0.5, 0.0]  # sample at (3.5, 4) -> clamped row 3
    warped = dense_image_warp(image, tf.constant(flow)).numpy()
    img = image.numpy()[..., 0]

    expected = ((1 - 0.75) * ((1 - 0.5) * img[0, 0, 2] + 0.5 * img[0, 0, 3])
                + 0.75 * ((1 - 0.5) * img[0, 1, 2] + 0.5 * img[0, 1, 3]))
    assert warped[0, 1, 2, 0] == pytest.approx(expected, abs=1e-5)
    assert warped[1, 0, 0, 0] == pytest.approx(img[1, 0, 0], abs=1e-5)
    assert warped[1, 3, 4, 0] == pytest.approx(img[1, 3, 4], abs=1e-5)
    assert warped[0, 2, 2, 0] == pytest.approx(img[0, 2, 2])  # zero flow = identity
    # The original's convention: + flow, channels [dx, dy].
    original = image_warp(image, tf.constant(np.stack([-flow[..., 1], -flow[..., 0]], -1))).numpy()
    np.testing.assert_allclose(original, warped, atol=1e-5)


# -- spectral norm ------------------------------------------------------------------------------


def test_spectral_norm_power_iteration_and_u_update():
    layer = SNDense(3)
    x = rand(4, 6)
    layer(x)
    u0 = layer.u.numpy().copy()
    w = layer.kernel.numpy()
    v = u0 @ w.T
    v /= np.linalg.norm(v) + 1e-12
    u1 = v @ w
    u1 /= np.linalg.norm(u1) + 1e-12
    sigma = float((v @ w @ u1.T)[0, 0])
    y = layer(x, training=False).numpy()
    np.testing.assert_allclose(y, x.numpy() @ (w / sigma), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(layer.u.numpy(), u0)  # no update outside training
    layer(x, training=True)
    np.testing.assert_allclose(layer.u.numpy(), u1, rtol=1e-5)
    assert not layer.u.trainable


def test_spectral_norm_conv3d_shape_and_sigma_one():
    keras.utils.set_random_seed(0)  # convergence speed depends on the singular-value gap of the draw
    conv = SNConv(8, 4, strides=(1, 2, 2), rank=3, padding=1)
    y = conv(rand(2, 10, 16, 16, 3))
    assert y.shape == (2, 9, 8, 8, 8)
    for _ in range(200):  # power iteration converges to the largest singular value
        kernel = conv.normalized_kernel(training=True)
    top = np.linalg.svd(tf.reshape(kernel, [-1, 8]).numpy(), compute_uv=False)[0]
    assert top == pytest.approx(1.0, rel=1e-2)
