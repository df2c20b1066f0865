"""Pose helpers of the hierarchical-prediction family (specs/hierarchical_lstm.md §2.3, §2.4).

* Landmark vectors in the original's layout ``[x_0..x_{L-1}, y_0..y_{L-1}]`` scaled
  to [-1, 1] (``2v - 1``), to and from the pose-record contract ``poses``
  ``[..., K, 2]`` (x, y pixels) + ``pose_visibility`` ``[..., K]``.
* Per-joint Gaussian heatmaps drawn in TF (``gauss2D_mask``: sum- then
  max-normalised, so each channel peaks at exactly 1) for poses that exist only
  as tensors (the LSTM's predictions at test time, the quickstart data).
* A max-over-joints grey rendering of poses (the original's visualisation).
"""

import tensorflow as tf


def poses_to_landmarks(poses, frame_size, swap_xy_normalization=False):
    """``[..., K, 2]`` pixel (x, y) -> ``[..., 2K]`` in [-1, 1], layout [x..., y...].

    ``frame_size`` is (height, width) of the pixel frame the poses live in (a pair
    or a ``[..., 2]`` tensor broadcastable to the leading axes).  With
    ``swap_xy_normalization`` x is divided by the HEIGHT and y by the WIDTH, as the
    original Penn Action LSTM training did (§2.3: ``x /= bbox[3]-bbox[1]``,
    ``y /= bbox[2]-bbox[0]``); identical for square frames.
    """
    poses = tf.convert_to_tensor(poses, tf.float32)
    size = tf.cast(tf.convert_to_tensor(frame_size), tf.float32)
    height, width = size[..., 0], size[..., 1]
    if swap_xy_normalization:
        height, width = width, height
    if len(height.shape) > 0:  # per-example sizes [B] -> broadcast over [B, T, K]
        extra = len(poses.shape) - 1 - len(height.shape)
        height = tf.reshape(height, tf.concat([tf.shape(height), tf.ones([extra], tf.int32)], 0))
        width = tf.reshape(width, tf.concat([tf.shape(width), tf.ones([extra], tf.int32)], 0))
    x = poses[..., 0] / width
    y = poses[..., 1] / height
    return tf.concat([x, y], axis=-1) * 2.0 - 1.0


def landmarks_to_poses(landmarks, frame_size, swap_xy_normalization=False):
    """Inverse of :func:`poses_to_landmarks`: ``[..., 2K]`` in [-1, 1] -> ``[..., K, 2]`` pixels."""
    landmarks = tf.convert_to_tensor(landmarks, tf.float32)
    size = tf.cast(tf.convert_to_tensor(frame_size), tf.float32)
    height, width = size[..., 0], size[..., 1]
    if swap_xy_normalization:
        height, width = width, height
    if len(height.shape) > 0:
        extra = len(landmarks.shape) - 1 - len(height.shape)
        height = tf.reshape(height, tf.concat([tf.shape(height), tf.ones([extra], tf.int32)], 0))
        width = tf.reshape(width, tf.concat([tf.shape(width), tf.ones([extra], tf.int32)], 0))
    unit = (landmarks + 1.0) / 2.0
    x, y = tf.split(unit, 2, axis=-1)
    return tf.stack([x * width, y * height], axis=-1)


def visibility_mask(visibility):
    """``[..., K]`` -> ``[..., 2K]``: the original's ``mask2 = concat(mask, mask)``."""
    visibility = tf.cast(visibility, tf.float32)
    return tf.concat([visibility, visibility], axis=-1)


def joint_heatmaps(poses, height, width, sigma, visibility=None):
    """Per-joint Gaussians ``[..., H, W, K]`` for ``poses`` ``[..., K, 2]`` (x, y pixels).

    The original's ``gauss2D_mask`` (§2.4): ``exp(-((x-cx)^2+(y-cy)^2)/(2 sigma^2))``
    on the integer pixel grid, normalised so that each channel's maximum is 1
    (0 where the Gaussian underflows everywhere, instead of the original's NaN).
    Invisible joints (``visibility`` 0) give all-zero channels.
    """
    poses = tf.convert_to_tensor(poses, tf.float32)
    ys = tf.range(height, dtype=tf.float32)
    xs = tf.range(width, dtype=tf.float32)
    cx = poses[..., 0][..., None, None, :]  # [..., 1, 1, K]
    cy = poses[..., 1][..., None, None, :]
    dx2 = tf.square(xs[:, None] - cx)  # [..., 1, W, K]
    dy2 = tf.square(ys[:, None, None] - cy)  # [..., H, 1, K]
    maps = tf.exp(-(dx2 + dy2) / (2.0 * sigma * sigma))
    peak = tf.reduce_max(maps, axis=(-3, -2), keepdims=True)
    maps = tf.math.divide_no_nan(maps, peak)
    if visibility is not None:
        maps *= tf.cast(visibility, tf.float32)[..., None, None, :]
    return maps


def render_poses(poses, height, width, channels, sigma, visibility=None):
    """Grey images ``[..., H, W, channels]`` in [0, 1]: the max over joints of :func:`joint_heatmaps`."""
    maps = joint_heatmaps(poses, height, width, sigma, visibility)
    image = tf.reduce_max(maps, axis=-1, keepdims=True)
    return tf.repeat(image, channels, axis=-1)
