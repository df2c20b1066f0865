"""Gaussian keypoint heatmaps as MSPred rasterises them (specs/mspred.md §2.1).

A keypoint is normalised (x, y) in [0, 1); its pixel is ``(int(x*W), int(y*H))`` and
an integer x or y of 0 marks it missing.  Each keypoint gets its own channel: an
unnormalised Gaussian ``exp(-d^2 / (2 sigma^2))`` (peak 1 at the pixel) on a square
patch of side ``6 sigma + 3``, clipped at the canvas.  On a wide canvas (H < W) the
patch is also clipped to the HxH window the original positions around x.
"""

import numpy as np
import tensorflow as tf


def _window_start(x, height, width):
    """Left edge of the original's HxH square window around pixel column x (H < W canvases)."""
    if x <= height // 2:
        return 0
    if x >= width - height // 2:
        return width - height
    return x - height // 2


def gaussian_heatmaps(keypoints, height, width, sigma):
    """float32 ``[H, W, K]`` heatmaps of ``keypoints`` ``[K, 2]`` (numpy, exact to the original)."""
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, 2)
    radius = int(3 * sigma + 1)
    offsets = np.arange(-radius, radius + 1)
    patch = np.exp(-(offsets[None, :] ** 2 + offsets[:, None] ** 2) / (2.0 * sigma ** 2)).astype(np.float32)
    maps = np.zeros((height, width, len(keypoints)), np.float32)
    for k, (kx, ky) in enumerate(keypoints):
        x, y = int(kx * width), int(ky * height)
        if x == 0 or y == 0:
            continue  # missing keypoint
        lo_x, hi_x = 0, width
        if height < width:
            lo_x = _window_start(x, height, width)
            hi_x = lo_x + height
        for dy in range(-radius, radius + 1):
            row = y + dy
            if not 0 <= row < height:
                continue
            for dx in range(-radius, radius + 1):
                col = x + dx
                if lo_x <= col < hi_x:
                    maps[row, col, k] = max(maps[row, col, k], patch[dy + radius, dx + radius])
    return maps


def tf_gaussian_heatmaps(keypoints, height, width, sigma):
    """TF version for square canvases: ``keypoints`` ``[..., K, 2]`` -> ``[..., H, W, K]``."""
    if height != width:
        raise ValueError("tf_gaussian_heatmaps handles square canvases; use gaussian_heatmaps for H < W")
    # float64 like the original's Python floats, so int() truncates the same way
    keypoints = tf.cast(tf.convert_to_tensor(keypoints), tf.float64)
    x = tf.cast(keypoints[..., 0] * width, tf.int32)  # int() truncation; coordinates are >= 0
    y = tf.cast(keypoints[..., 1] * height, tf.int32)
    radius = int(3 * sigma + 1)
    cols = tf.range(width)
    rows = tf.range(height)
    dx = cols[None, :] - x[..., None]  # [..., K, W]
    dy = rows[None, :] - y[..., None]  # [..., K, H]
    gx = tf.where(tf.abs(dx) <= radius, tf.exp(-tf.cast(dx * dx, tf.float32) / (2.0 * sigma ** 2)), 0.0)
    gy = tf.where(tf.abs(dy) <= radius, tf.exp(-tf.cast(dy * dy, tf.float32) / (2.0 * sigma ** 2)), 0.0)
    present = tf.cast((x != 0) & (y != 0), tf.float32)[..., None, None]
    maps = gy[..., :, None] * gx[..., None, :] * present  # [..., K, H, W]
    rank = len(maps.shape)
    return tf.transpose(maps, list(range(rank - 3)) + [rank - 2, rank - 1, rank - 3])
