"""MPJPE and PCK on keypoint coordinates (metrics/pose.py), by hand."""

import numpy as np
import pytest

from video_prediction.metrics.pose import keypoint_mpjpe, keypoint_pck


def test_mpjpe_and_pck_by_hand():
    targets = np.array([[[[0.0, 0.0], [0.0, 10.0], [4.0, 20.0]]]])  # body height 20 -> PCK threshold 2 px
    preds = targets + np.array([[[[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]]]])  # errors 5, 1, 0
    np.testing.assert_allclose(keypoint_mpjpe(preds, targets), [[2.0]])
    np.testing.assert_allclose(keypoint_pck(preds, targets), [[2 / 3]])
    visibility = np.array([[[0, 1, 1]]])  # the 5 px error is not counted; height 10 -> threshold 1
    np.testing.assert_allclose(keypoint_mpjpe(preds, targets, visibility), [[0.5]])
    np.testing.assert_allclose(keypoint_pck(preds, targets, visibility), [[1.0]])
    np.testing.assert_allclose(keypoint_pck(preds, targets, visibility, factor=0.05), [[0.5]])
    nothing = np.zeros((1, 1, 3))
    assert np.isnan(keypoint_mpjpe(preds, targets, nothing)).all() and np.isnan(keypoint_pck(preds, targets,
                                                                                               nothing)).all()
    with pytest.raises(ValueError, match=r"\[B, F, K, 2\]"):
        keypoint_mpjpe(preds[..., :1], targets[..., :1])
