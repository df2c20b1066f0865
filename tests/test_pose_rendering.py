"""The shared pose heatmap renderer (hierarchical-LSTM spec §2.4) against hand computations, and skeleton drawing."""

import os

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.layers.pose_rendering import (PENN_ACTION_LIMBS, draw_skeletons, gauss2d_mask_reference,
                                                    heatmap_points, num_heatmap_channels, render_heatmaps,
                                                    render_heatmaps_reference)


def test_gaussian_matches_a_hand_computation():
    # 3 x 4 grid, centre (x=1, y=2), sigma 1: exp(-d^2 / 2), peak 1 at (row 2, col 1)
    maps = render_heatmaps(np.array([[[1.0, 2.0]]]), np.ones((1, 1)), (3, 4), sigma=1.0).numpy()[0, ..., 0]
    assert maps.shape == (3, 4)
    assert maps[2, 1] == pytest.approx(1.0)
    assert maps[0, 0] == pytest.approx(np.exp(-2.5), abs=1e-7)  # d^2 = 1 + 4
    assert maps[1, 3] == pytest.approx(np.exp(-2.5), abs=1e-7)  # d^2 = 4 + 1
    assert maps[2, 3] == pytest.approx(np.exp(-2.0), abs=1e-7)
    # off-grid centre x = 0.25 on a 1 x 3 grid: sum- then max-normalised -> 1 at the nearest pixel
    row = render_heatmaps(np.array([[0.25, 0.0]]), np.ones(1), (1, 3), sigma=1.0).numpy()[0, :, 0]
    np.testing.assert_allclose(row, [1.0, np.exp(-(0.5625 - 0.0625) / 2), np.exp(-(3.0625 - 0.0625) / 2)],
                               rtol=1e-6)
    np.testing.assert_allclose(gauss2d_mask_reference((0.0, 0.25), (1, 3), 1.0)[0], row, rtol=1e-6)


def test_far_point_keeps_a_peak_of_one_at_the_border():
    # 40 px left of a 16-px grid at sigma 8: exp underflows nowhere in float64, but float32 would without the
    # stable form; both give 1 at column 0
    maps = render_heatmaps(np.array([[-40.0, 5.0]]), np.ones(1), (16, 16)).numpy()[..., 0]
    ref = gauss2d_mask_reference((5.0, -40.0), (16, 16), 8.0)
    np.testing.assert_allclose(maps, ref, rtol=1e-5)
    assert maps[5, 0] == pytest.approx(1.0)


def penn_pose():
    rng = np.random.default_rng(0)
    return rng.uniform(2, 30, size=(13, 2))


def test_penn_limb_points_all_visible_are_four_evenly_spaced_points():
    pose = penn_pose()
    points, present = heatmap_points(pose, np.ones(13), "limbs", PENN_ACTION_LIMBS)
    points, present = points.numpy(), present.numpy()
    assert points.shape == (48, 2) and present.all()
    head, neck = pose[0], (pose[1] + pose[2]) / 2
    np.testing.assert_allclose(points[0:4], [head, head + (neck - head) / 3, head + 2 * (neck - head) / 3, neck])
    mid_hips = (pose[7] + pose[8]) / 2
    np.testing.assert_allclose(points[24], neck)  # limb 6: neck -> mid-hips
    np.testing.assert_allclose(points[27], mid_hips)


def test_penn_partial_visibility_rule():
    visibility = np.ones(13)
    visibility[1] = 0  # left shoulder
    _, present = heatmap_points(penn_pose(), visibility, "limbs", PENN_ACTION_LIMBS)
    present = present.numpy().reshape(12, 4)
    np.testing.assert_array_equal(present[0], [1, 0, 0, 0])  # head visible, neck (needs 1 and 2) not
    np.testing.assert_array_equal(present[1], [0, 0, 0, 1])  # l_shoulder -> r_shoulder: only the end
    np.testing.assert_array_equal(present[2], [0, 0, 0, 1])  # l_shoulder -> l_elbow
    np.testing.assert_array_equal(present[6], [0, 0, 0, 1])  # neck -> mid-hips: only the end
    np.testing.assert_array_equal(present[3], [1, 1, 1, 1])  # l_elbow -> l_wrist untouched
    assert num_heatmap_channels("limbs", 13, PENN_ACTION_LIMBS) == 48


def test_tf_renderer_equals_the_original_loops_for_penn_and_h36m():
    pose = penn_pose()
    visibility = np.ones(13)
    visibility[[1, 9]] = 0
    grid = (34, 29)  # a crop that is not square
    ours = render_heatmaps(pose, visibility, grid, scheme="limbs", limbs=PENN_ACTION_LIMBS, sigma=3.0,
                           dtype=tf.float64).numpy()
    ref = render_heatmaps_reference(pose, visibility, grid, scheme="limbs", limbs=PENN_ACTION_LIMBS, sigma=3.0)
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    joints = np.random.default_rng(1).uniform(0, 20, size=(32, 2))
    ours = render_heatmaps(joints, np.ones(32), (20, 20), scheme="joints", sigma=2.0, rounding="truncate").numpy()
    ref = render_heatmaps_reference(joints.astype(np.int32), np.ones(32), (20, 20), scheme="joints", sigma=2.0)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    # changing a joint changes its map by far more than the tolerance
    moved = joints.copy()
    moved[3] += 2.0
    other = render_heatmaps(moved, np.ones(32), (20, 20), sigma=2.0, rounding="truncate").numpy()
    assert np.abs(other[..., 3] - ours[..., 3]).max() > 0.5


def test_drawn_at_crop_resolution_then_resized_linearly():
    # 4x4 -> 2x2: half-pixel-centre bilinear without antialiasing averages each 2x2 block (cv2 INTER_LINEAR)
    pose = np.array([[[1.3, 2.2]]])
    small = render_heatmaps(pose, np.ones((1, 1)), (4, 4), sigma=1.0, output_size=(2, 2)).numpy()[0, ..., 0]
    full = gauss2d_mask_reference((2.2, 1.3), (4, 4), 1.0)
    hand = full.reshape(2, 2, 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(small, hand, rtol=1e-5)
    # the separable resize equals resizing the full maps (non-square crop, up- and down-sampling)
    pose = np.random.default_rng(2).uniform(0, 30, size=(3, 13, 2))
    vis = np.ones((3, 13))
    for grid, out in (((37, 29), (16, 16)), ((9, 11), (16, 20))):
        full = render_heatmaps(pose, vis, grid, scheme="limbs", limbs=PENN_ACTION_LIMBS)
        fast = render_heatmaps(pose, vis, grid, scheme="limbs", limbs=PENN_ACTION_LIMBS, output_size=out)
        slow = tf.image.resize(full, out, method="bilinear", antialias=False)
        np.testing.assert_allclose(fast.numpy(), slow.numpy(), atol=1e-6)


def test_batched_shapes_and_dynamic_grid_in_tf_function():
    @tf.function
    def render(poses, vis, rows, cols):
        return render_heatmaps(poses, vis, (rows, cols), scheme="limbs", limbs=PENN_ACTION_LIMBS,
                               output_size=(16, 16))

    poses = tf.random.uniform((2, 3, 13, 2), 0, 40)
    maps = render(poses, tf.ones((2, 3, 13)), tf.constant(40), tf.constant(50))
    assert maps.shape == (2, 3, 16, 16, 48)
    maps2 = render(poses, tf.ones((2, 3, 13)), tf.constant(60), tf.constant(60))
    assert render.experimental_get_tracing_count() == 1 and maps2.shape == maps.shape


def test_draw_skeletons_marks_joints_and_limbs_only():
    frames = np.zeros((2, 16, 16, 1), np.float32)
    poses = np.array([[[3.0, 3.0], [12.0, 3.0]], [[3.0, 12.0], [12.0, 12.0]]])
    drawn = draw_skeletons(frames, poses, limbs=((0, 0, 1, 1),), visibility=[[1, 1], [1, 0]], color=(255, 0, 0))
    assert drawn.shape == (2, 16, 16, 3) and drawn.dtype == np.float32
    assert drawn[0, 3, 3, 0] == 1.0 and drawn[0, 3, 8, 0] == 1.0  # joint and the line between the joints
    assert drawn[1, 12, 3, 0] == 1.0 and drawn[1, 12, 8, 0] == 0.0  # invisible joint: no line
    assert drawn[..., 1:].max() == 0.0 and drawn[0, 10, 10].max() == 0.0
    with pytest.raises(ValueError, match="same T"):
        draw_skeletons(frames, poses[:1], limbs=())


def test_resizing_matches_opencv_as_the_original_uses_it():
    """Frames and heatmaps against cv2.resize INTER_LINEAR outputs stored in tests/data/pose_rendering."""
    from video_prediction.datasets.pose import resize_frames

    ref = np.load(os.path.join(os.path.dirname(__file__), "data", "pose_rendering", "cv2_reference.npz"))
    for key, size in (("frame_down", 16), ("frame_up", 64)):
        ours = resize_frames(ref["frame"][None], size)[0].astype(int)
        diff = np.abs(ours - ref[key].astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.2, key  # cv2's fixed-point weights round differently
    limbs = dict(scheme="limbs", limbs=PENN_ACTION_LIMBS, sigma=3.0)
    down = render_heatmaps(ref["pose"], ref["visibility"], (37, 29), output_size=(16, 16), **limbs).numpy()
    np.testing.assert_allclose(down, ref["maps_down"], atol=2e-6)
    up = render_heatmaps(ref["pose"], ref["visibility"], (37, 29), output_size=(48, 64), **limbs).numpy()
    np.testing.assert_allclose(up[..., :4], ref["maps_up"], atol=2e-6)
    assert np.abs(ref["maps_down"]).max() > 0.5  # the maps are not empty
