"""MSPred's keypoint and segmentation metrics on hand-made heatmaps."""

import numpy as np

from video_prediction.datasets.heatmaps import gaussian_heatmaps
from video_prediction.metrics.pose import mpjpe, pck, pdj
from video_prediction.metrics.segmentation import iou, segmentation_accuracy


def maps(points, size=32):
    return gaussian_heatmaps(points, size, size, 1.0)[None, None]


def test_pose_metrics():
    targets = maps([(0.5, 0.25), (0.5, 0.75), (0.0, 0.0)])  # third keypoint missing
    preds = maps([(0.5, 0.25), (0.625, 0.75), (0.25, 0.25)])  # second off by 4 px
    np.testing.assert_allclose(mpjpe(preds, targets), [[2.0]])  # (0 + 4) / 2 valid keypoints
    # body height 16 px: threshold 0.1 -> 1.6 px (1 correct), 0.3 -> 4.8 px (2 correct)
    np.testing.assert_allclose(pdj(preds, targets, 0.1), [[0.5]])
    np.testing.assert_allclose(pdj(preds, targets, 0.3), [[1.0]])
    np.testing.assert_allclose(pck(preds, targets, 0.3), [[2 / 3]])  # 3 confident predictions
    empty = np.zeros_like(targets)
    assert np.isnan(mpjpe(preds, empty)).all() and np.isnan(pdj(preds, empty)).all()


def test_segmentation_metrics():
    target = np.zeros((1, 1, 2, 2, 3), np.float32)
    target[0, 0, :, :, 0] = 1
    target[0, 0, 0, 0] = [0, 1, 0]
    pred = target.copy()
    pred[0, 0, 1, 1] = [0, 1, 0]  # one background pixel predicted as class 1
    acc, _ = segmentation_accuracy(pred, target)
    np.testing.assert_allclose(acc, [[0.75]])
    mean, per_class = iou(pred, target)
    np.testing.assert_allclose(per_class[0, 0, :2], [2 / 3, 1 / 2])
    assert np.isnan(per_class[0, 0, 2]) and np.isnan(mean).all()  # class 2 absent: the original's NaN
    np.testing.assert_allclose(iou(pred, target, ignore_absent=True)[0], [[(2 / 3 + 1 / 2) / 2]])
