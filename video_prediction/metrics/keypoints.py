"""Errors of predicted keypoint coordinates (the hierarchical pose models' landmarks).

``preds``, ``targets``: ``[..., K, 2]`` (x, y) pixels; ``visibility`` ``[..., K]`` (1 = the target joint
counts).  Values per leading index (e.g. ``[B, T]``), NaN where no joint is visible (masked by the
aggregation).  :mod:`video_prediction.metrics.pose` has the heatmap-peak versions MSPred uses.
"""

import numpy as np


def mpjpe(preds, targets, visibility=None):
    """Mean per-joint position error: mean Euclidean distance over the visible joints (pixels)."""
    preds, targets = np.asarray(preds, np.float64), np.asarray(targets, np.float64)
    dist = np.sqrt(np.sum((preds - targets) ** 2, axis=-1))
    vis = np.ones_like(dist) if visibility is None else (np.asarray(visibility) > 0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dist * vis).sum(-1) / vis.sum(-1)


def pck(preds, targets, visibility=None, factor=0.2):
    """Percentage of correct keypoints: distance <= ``factor`` x the larger side of the visible target
    joints' bounding box (PCK@0.2 of the person box), over the visible joints."""
    preds, targets = np.asarray(preds, np.float64), np.asarray(targets, np.float64)
    vis = np.ones(targets.shape[:-1], bool) if visibility is None else np.asarray(visibility) > 0
    dist = np.sqrt(np.sum((preds - targets) ** 2, axis=-1))
    big = np.where(vis[..., None], targets, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"), np.testing.suppress_warnings() as sup:
        sup.filter(RuntimeWarning)
        extent = np.nanmax(big, axis=-2) - np.nanmin(big, axis=-2)  # [..., 2]
        size = np.nanmax(extent, axis=-1)
        threshold = np.where(size > 0, factor * size, factor)
        correct = (dist <= threshold[..., None]) & vis
        return correct.sum(-1) / vis.sum(-1)
