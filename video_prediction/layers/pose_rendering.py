"""Pose keypoints -> Gaussian heatmaps as the hierarchical-LSTM original draws them, and skeleton overlays.

Semantics (specs/hierarchical_lstm.md §2.4, the original's ``gauss2D_mask``):
on a grid of ``R x C`` pixels whose coordinates are the integer row / column
indices, a point ``(cx, cy)`` gives ``h = exp(-((x - cx)^2 + (y - cy)^2) / (2 sigma^2))``,
divided by its sum and then by its maximum, so the largest value on the grid is
exactly 1 (at the grid pixel nearest to the point, also when the point lies
outside the grid).  Maps are drawn at the resolution the pose coordinates refer
to (the original: the person crop, sigma 8) and then resized linearly to the
network's size (``cv2.resize`` INTER_LINEAR = ``tf.image.resize`` bilinear
without antialiasing), so the effective sigma there is ``8 * 128 / crop_size``.

Channels (``heatmap_points``):

* ``"joints"`` (Human3.6M): one map per joint; an invisible joint's map is 0.
* ``"limbs"`` (Penn Action): every limb ``(a, b, c, d)`` runs from the midpoint
  of joints a, b to the midpoint of c, d and owns 4 channels; with all four
  joints visible they hold 4 points evenly spaced along it (end points
  included), otherwise channel 0 holds the start if a and b are visible,
  channel 3 the end if c and d are visible, and the others stay 0.

Why here (``layers/``): the same op runs in the input pipeline (datasets with
``heatmaps=True``) and inside models that turn *predicted* poses into maps
(the visual-analogy generator), so it is a shared TF op, not a dataset detail.
MSPred's different rasteriser (integer pixels, unnormalised truncated patches)
stays in ``datasets/heatmaps.py``.

Differences from the original, both only where it fails: where its Gaussian
underflows to all zeros (a point > ~300 px outside the grid at sigma 8) it
divides 0 by 0 and gives NaN maps; here the normalised Gaussian is computed in
the stable form ``exp(-(d^2 - min d^2) / (2 sigma^2))`` and keeps its peak of 1.
"""

import numpy as np
import tensorflow as tf

#: Penn Action's 12 limbs as (a, b, c, d): from mid(a, b) to mid(c, d) (spec §2.4 ``lines``).
PENN_ACTION_LIMBS = (
    (0, 0, 1, 2),  # head -> neck (mid-shoulders)
    (1, 1, 2, 2),  # l_shoulder -> r_shoulder
    (1, 1, 3, 3),  # l_shoulder -> l_elbow
    (3, 3, 5, 5),  # l_elbow -> l_wrist
    (2, 2, 4, 4),  # r_shoulder -> r_elbow
    (4, 4, 6, 6),  # r_elbow -> r_wrist
    (1, 2, 7, 8),  # neck -> mid-hips
    (7, 7, 8, 8),  # l_hip -> r_hip
    (7, 7, 9, 9),  # l_hip -> l_knee
    (9, 9, 11, 11),  # l_knee -> l_ankle
    (8, 8, 10, 10),  # r_hip -> r_knee
    (10, 10, 12, 12),  # r_knee -> r_ankle
)
POINTS_PER_LIMB = 4
SIGMA = 8.0  # the original's sigma, in pixels of the grid the maps are drawn on
SCHEMES = ("joints", "limbs")


def num_heatmap_channels(scheme, num_joints, limbs=()):
    """Channels a scheme gives: K for ``"joints"``, 4 per limb for ``"limbs"``."""
    if scheme == "joints":
        return num_joints
    if scheme == "limbs":
        return POINTS_PER_LIMB * len(limbs)
    raise ValueError(f"unknown heatmap scheme {scheme!r}; valid schemes: {', '.join(SCHEMES)}")


# -- numpy reference: the original's loops, float64 ------------------------------------------------


def gauss2d_mask_reference(center, shape, sigma):
    """The original's ``gauss2D_mask`` followed by its callers' ``/ max``: float64 ``[R, C]``.

    ``center`` is (cy, cx).  Returns NaNs where the original does (all-zero Gaussian).
    """
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    h = np.exp(-((x - center[1]) ** 2 + (y - center[0]) ** 2) / (2.0 * sigma * sigma))
    total = h.sum()
    if total != 0:
        h = h / total
    with np.errstate(invalid="ignore"):
        return h / h.max()


def heatmap_points_reference(pose, visibility, scheme, limbs=()):
    """(points ``[C, 2]`` (x, y), present ``[C]`` bool) of one frame, by the original's rules (numpy)."""
    pose = np.asarray(pose, np.float64)
    visible = np.asarray(visibility) > 0
    if scheme == "joints":
        return pose, visible
    points = np.zeros((POINTS_PER_LIMB * len(limbs), 2))
    present = np.zeros(POINTS_PER_LIMB * len(limbs), bool)
    for j, (a, b, c, d) in enumerate(limbs):
        start, end = (pose[a] + pose[b]) / 2.0, (pose[c] + pose[d]) / 2.0
        if visible[[a, b, c, d]].all():
            points[4 * j:4 * j + 4] = np.linspace(start, end, POINTS_PER_LIMB)
            present[4 * j:4 * j + 4] = True
        else:
            if visible[a] and visible[b]:
                points[4 * j], present[4 * j] = start, True
            if visible[c] and visible[d]:
                points[4 * j + 3], present[4 * j + 3] = end, True
    return points, present


# -- TensorFlow ------------------------------------------------------------------------------------


def heatmap_points(poses, visibility, scheme, limbs=()):
    """Points ``[..., C, 2]`` (x, y) and float presence ``[..., C]`` of poses ``[..., K, 2]`` (TF)."""
    poses = tf.convert_to_tensor(poses)
    visible = tf.cast(tf.convert_to_tensor(visibility) > 0, poses.dtype)
    if scheme == "joints":
        return poses, visible
    if scheme != "limbs":
        raise ValueError(f"unknown heatmap scheme {scheme!r}; valid schemes: {', '.join(SCHEMES)}")
    index = np.asarray(limbs, np.int32)  # [L, 4]
    joints = tf.gather(poses, index, axis=-2)  # [..., L, 4, 2]
    vis = tf.gather(visible, index, axis=-1)  # [..., L, 4]
    start = (joints[..., 0, :] + joints[..., 1, :]) / 2.0
    end = (joints[..., 2, :] + joints[..., 3, :]) / 2.0
    fractions = tf.constant(np.linspace(0.0, 1.0, POINTS_PER_LIMB), poses.dtype)[:, None]  # [4, 1]
    points = start[..., None, :] + fractions * (end - start)[..., None, :]  # [..., L, 4, 2]
    start_ok = vis[..., 0] * vis[..., 1]
    end_ok = vis[..., 2] * vis[..., 3]
    all_ok = start_ok * end_ok
    # a partially visible limb keeps its start / end in channels 0 / 3 (linspace's end points)
    present = tf.stack([start_ok, all_ok, all_ok, end_ok], axis=-1)  # [..., L, 4]
    shape = tf.concat([tf.shape(points)[:-3], [POINTS_PER_LIMB * len(limbs), 2]], 0)
    points = tf.reshape(points, shape)
    present = tf.reshape(present, shape[:-1])
    return points, present


def _axis_gaussian(coordinate, size, sigma, dtype):
    """``exp(-((i - c)^2 - min_i (i - c)^2) / (2 sigma^2))`` over ``i = 0..size-1``: ``[..., C, size]``."""
    grid = tf.cast(tf.range(size), dtype)
    d2 = tf.square(grid - coordinate[..., None])
    d2 = d2 - tf.reduce_min(d2, axis=-1, keepdims=True)
    return tf.exp(-d2 / (2.0 * sigma * sigma))


def render_heatmaps(poses, visibility, grid_size, *, scheme="joints", limbs=(), sigma=SIGMA, output_size=None,
                    rounding="none", dtype=tf.float32):
    """Heatmaps ``[..., H, W, C]`` of poses ``[..., K, 2]`` (x, y in pixels of a ``grid_size`` = (rows, cols) grid).

    ``output_size`` (rows, cols) resizes the maps bilinearly after drawing (the
    original: crop resolution -> 128).  ``rounding`` is applied to the points
    before drawing: ``"truncate"`` (the original's int32 Human3.6M training
    joints), ``"round"`` (its Human3.6M test script) or ``"none"`` (Penn).
    ``grid_size`` may be tensors (per-example crop sizes in ``tf.data``).
    """
    poses = tf.cast(poses, dtype)
    points, present = heatmap_points(poses, tf.convert_to_tensor(visibility), scheme, limbs)
    if rounding == "truncate":
        points = tf.cast(tf.cast(points, tf.int32), dtype)
    elif rounding == "round":
        points = tf.round(points)
    elif rounding != "none":
        raise ValueError(f"rounding must be 'none', 'truncate' or 'round', got {rounding!r}")
    rows, cols = grid_size[0], grid_size[1]
    # The Gaussian is separable, and so is its maximum: h / max h = gy / max gy * gx / max gx.
    gx = _axis_gaussian(points[..., 0], cols, sigma, dtype)  # [..., C, W]
    gy = _axis_gaussian(points[..., 1], rows, sigma, dtype)  # [..., C, H]
    if output_size is not None:
        # Bilinear resizing is separable too (linear interpolation along each axis), so resizing the
        # two factors equals resizing the full maps, without ever building them at crop resolution.
        gx = _resize_1d(gx, output_size[1])
        gy = _resize_1d(gy, output_size[0])
    # channels-last outer product: only the small factors are transposed
    rank = len(gx.shape)
    order = list(range(rank - 2)) + [rank - 1, rank - 2]
    gx = tf.transpose(gx, order)  # [..., W, C]
    gy = tf.transpose(gy * present[..., None], order)  # [..., H, C]
    return gy[..., :, None, :] * gx[..., None, :, :]  # [..., H, W, C]


def _resize_1d(values, size):
    """``tf.image.resize`` bilinear (half-pixel centres, no antialiasing) along the last axis."""
    shape = tf.shape(values)
    flat = tf.reshape(values, [-1, 1, shape[-1], 1])
    flat = tf.image.resize(flat, (1, size), method="bilinear", antialias=False)
    return tf.cast(tf.reshape(flat, tf.concat([shape[:-1], [size]], 0)), values.dtype)


def render_heatmaps_reference(pose, visibility, grid_size, *, scheme="joints", limbs=(), sigma=SIGMA):
    """One frame's maps ``[R, C, channels]`` the original's way (numpy float64 loops, no resize)."""
    points, present = heatmap_points_reference(pose, visibility, scheme, limbs)
    maps = np.zeros((grid_size[0], grid_size[1], len(points)))
    for c, ((x, y), ok) in enumerate(zip(points, present)):
        if ok:
            maps[..., c] = gauss2d_mask_reference((y, x), grid_size, sigma)
    return maps


# -- drawing skeletons over frames -------------------------------------------------------------------

#: Colours of drawn skeletons: ground truth green, predictions red (as the frame borders of visualization.py).
TRUE_POSE_COLOR = (0, 204, 0)
PREDICTED_POSE_COLOR = (255, 0, 0)


def _limb_segments(pose, visible, limbs):
    for a, b, c, d in limbs:
        if visible[a] and visible[b] and visible[c] and visible[d]:
            start = (pose[a] + pose[b]) / 2.0
            end = (pose[c] + pose[d]) / 2.0
            yield tuple(start), tuple(end)


def draw_skeletons(frames, poses, limbs, visibility=None, color=PREDICTED_POSE_COLOR, joint_radius=1.5,
                   line_width=1):
    """Frames ``[T, H, W, C]`` (float in [0, 1] or uint8) with each pose ``[T, K, 2]`` drawn over it.

    ``limbs`` are the dataset's ``(a, b, c, d)`` segments (mid(a, b) -> mid(c, d));
    invisible joints and limbs touching them are not drawn.  Returns float32 RGB in
    [0, 1] (grey frames become RGB), for generation's GIFs.
    """
    from PIL import Image, ImageDraw

    frames = np.asarray(frames)
    poses = np.asarray(poses, np.float64)
    if frames.ndim != 4 or poses.ndim != 3 or poses.shape[-1] != 2 or len(poses) != len(frames):
        raise ValueError(f"draw_skeletons needs frames [T, H, W, C] and poses [T, K, 2] with the same T; got "
                         f"{frames.shape} and {poses.shape}")
    visibility = np.ones(poses.shape[:2]) if visibility is None else np.asarray(visibility)
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    out = []
    for frame, pose, visible in zip(frames, poses, visibility > 0):
        image = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
        draw = ImageDraw.Draw(image)
        for start, end in _limb_segments(pose, visible, limbs):
            draw.line([start, end], fill=tuple(color), width=line_width)
        for (x, y), ok in zip(pose, visible):
            if ok:
                r = joint_radius
                draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(color))
        out.append(np.asarray(image))
    return np.stack(out).astype(np.float32) / 255.0
