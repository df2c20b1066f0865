"""Pixel transformations of the SAVP generator: CDNA, DNA and flow (specs/savp.md §3.5 step 5, §8.3).

* CDNA: one kxk kernel per (sample, transformation), shared by every colour
  channel, applied with SYMMETRIC padding (mirror including the edge pixel) as
  SAVP does, or with zeros (``padding="CONSTANT"``) as Finn et al.'s model that
  SV2P and SNA use.
* DNA: one kxk kernel per (sample, pixel, transformation), same padding.
* Kernels get the identity kernel added and are normalised with
  ``relu(k - 1e-12) + 1e-12`` then divided by their sum (:func:`normalize_kernels`).
* Flow: backward bilinear warp, sample positions clamped to the border.
  :func:`dense_image_warp` has tfa's convention (query = grid - flow,
  flow channels ``[dy, dx]``) and is ``keras.ops.image.map_coordinates(order=1,
  fill_mode="nearest")`` as DESIGN.md prescribes; :func:`image_warp` is the
  original's UnFlow convention (query = grid + flow, channels ``[dx, dy]``).
"""

import keras
import numpy as np
import tensorflow as tf

# The original's RELU_SHIFT: lower bound of the kernel weights before normalisation.
RELU_SHIFT = 1e-12


def identity_kernel(kernel_size):
    """[kh, kw] float32 with 1 at the centre (the centre 2x2/2x1 block averaged for even sizes)."""
    kh, kw = kernel_size
    kernel = np.zeros((kh, kw), np.float32)

    def center(k):
        return slice(k // 2 - 1, k // 2 + 1) if k % 2 == 0 else slice(k // 2, k // 2 + 1)

    kernel[center(kh), center(kw)] = 1.0
    return kernel / kernel.sum()


def normalize_kernels(kernels, spatial_axes):
    """``relu(k - 1e-12) + 1e-12``, then divide by the sum over ``spatial_axes`` (non-negative, sums to 1)."""
    kernels = tf.nn.relu(kernels - RELU_SHIFT) + RELU_SHIFT
    return kernels / tf.reduce_sum(kernels, axis=spatial_axes, keepdims=True)


PADDINGS = ("SYMMETRIC", "CONSTANT")


def symmetric_same_pad(image, kernel_size, dilation_rate=(1, 1), mode="SYMMETRIC"):
    """Pad ``[B, H, W, C]`` for a SAME kxk (dilated) window: SYMMETRIC (edge-including mirror) or zeros."""
    if mode not in PADDINGS:
        raise ValueError(f"unknown padding {mode!r}; valid: {', '.join(PADDINGS)}")
    paddings = [[0, 0]]
    for k, rate in zip(kernel_size, dilation_rate):
        total = (k - 1) * rate
        paddings.append([total // 2, total - total // 2])
    paddings.append([0, 0])
    return tf.pad(image, paddings, mode=mode)


def apply_cdna_kernels(image, kernels, dilation_rate=(1, 1), padding="SYMMETRIC"):
    """Per-sample convolution of every channel of ``image`` [B, H, W, C] with ``kernels`` [B, kh, kw, N].

    Returns a list of N images [B, H, W, C].
    """
    kh, kw, num = kernels.shape[1], kernels.shape[2], kernels.shape[3]
    batch = tf.shape(image)[0]
    height, width, channels = image.shape[1], image.shape[2], image.shape[3]
    padded = symmetric_same_pad(image, (kh, kw), dilation_rate, padding)
    # Colour channels become the batch and samples become depthwise channels, so
    # one depthwise conv applies a different kernel to every sample.
    depthwise_kernels = tf.reshape(tf.transpose(kernels, [1, 2, 0, 3]), [kh, kw, batch, num])
    transposed = tf.transpose(padded, [3, 1, 2, 0])  # [C, H', W', B]
    outputs = tf.nn.depthwise_conv2d(
        transposed, depthwise_kernels, strides=[1, 1, 1, 1], padding="VALID", dilations=list(dilation_rate)
    )  # [C, H, W, B*N]
    outputs = tf.reshape(outputs, [channels, height, width, batch, num])
    outputs = tf.transpose(outputs, [4, 3, 1, 2, 0])  # [N, B, H, W, C]
    return tf.unstack(outputs, num=num, axis=0)


def apply_dna_kernels(image, kernels, dilation_rate=(1, 1), padding="SYMMETRIC"):
    """Per-pixel convolution: ``image`` [B, H, W, C], ``kernels`` [B, H, W, kh, kw, N] -> N images."""
    kh, kw, num = kernels.shape[3], kernels.shape[4], kernels.shape[5]
    shape = tf.shape(image)
    channels = image.shape[3]
    padded = symmetric_same_pad(image, (kh, kw), dilation_rate, padding)
    patches = tf.image.extract_patches(
        padded, sizes=[1, kh, kw, 1], strides=[1, 1, 1, 1], rates=[1, *dilation_rate, 1], padding="VALID"
    )  # [B, H, W, kh*kw*C], ordered (kh, kw, C)
    patches = tf.reshape(patches, tf.stack([shape[0], shape[1], shape[2], kh * kw, channels]))
    kernels = tf.reshape(kernels, tf.stack([shape[0], shape[1], shape[2], kh * kw, num]))
    outputs = tf.einsum("bhwkc,bhwkn->nbhwc", patches, kernels)
    return tf.unstack(outputs, num=num, axis=0)


def dense_image_warp(image, flow):
    """tfa ``dense_image_warp``: ``out[b, y, x] = bilinear(image[b], y - flow[..., 0], x - flow[..., 1])``.

    Sample positions outside the image take the nearest border value.
    """
    shape = tf.shape(image)
    height, width = shape[1], shape[2]
    grid_y, grid_x = tf.meshgrid(tf.range(height, dtype=flow.dtype), tf.range(width, dtype=flow.dtype),
                                 indexing="ij")
    query_y = grid_y[None] - flow[..., 0]
    query_x = grid_x[None] - flow[..., 1]

    def warp_one(args):
        one_image, qy, qx = args  # [H, W, C], [H, W], [H, W]
        channels = tf.shape(one_image)[-1]
        c_idx = tf.broadcast_to(tf.range(channels, dtype=qy.dtype), tf.concat([tf.shape(qy), [channels]], 0))
        qy_c = tf.broadcast_to(qy[..., None], tf.shape(c_idx))
        qx_c = tf.broadcast_to(qx[..., None], tf.shape(c_idx))
        return keras.ops.image.map_coordinates(one_image, [qy_c, qx_c, c_idx], order=1, fill_mode="nearest")

    return tf.map_fn(warp_one, (image, query_y, query_x), fn_output_signature=image.dtype)


def image_warp(image, flow):
    """The original's ``flow_ops.image_warp``: ``out(p) = bilinear(image, p + flow(p))``, flow ``[dx, dy]``."""
    return dense_image_warp(image, -tf.reverse(flow, axis=[-1]))


def apply_flows(image, flows):
    """``image`` [B, H, W, C] warped by each of ``flows`` [B, H, W, 2, N] (original convention) -> N images."""
    return [image_warp(image, flow) for flow in tf.unstack(flows, axis=-1)]


def apply_kernels(image, kernels, dilation_rate=(1, 1), padding="SYMMETRIC"):
    """CDNA (4-D kernels) or DNA (6-D kernels) transformation of ``image`` -> list of images."""
    if len(kernels.shape) == 4:
        return apply_cdna_kernels(image, kernels, dilation_rate, padding)
    if len(kernels.shape) == 6:
        return apply_dna_kernels(image, kernels, dilation_rate, padding)
    raise ValueError(f"kernels must be 4-D (CDNA) or 6-D (DNA), got shape {kernels.shape}")
