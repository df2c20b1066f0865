"""Keypoint metrics on heatmaps as MSPred computes them (specs/mspred.md §5.2).

Inputs are heatmaps ``[B, F, H, W, K]`` (channels-last; :func:`keypoint_mpjpe` and :func:`keypoint_pck`
take keypoint coordinates ``[B, F, K, 2]`` instead).  Each keypoint's location is
its channel's argmax (row-major first maximum, as torch.max); a prediction counts if
its peak is >= 0.03, a target if its peak is > 1e-6.  Values are per (video, frame):
``[B, F]`` float64 with NaN where nothing is valid (masked by the aggregation).
"""

import numpy as np

MIN_CONFIDENCE = 0.03  # MPJPE/PDJ/PCK.MIN_CONF
MIN_TARGET = 1e-6


def heatmap_peaks(heatmaps):
    """(peak values, rows, cols), each ``[B, F, K]``."""
    heatmaps = np.asarray(heatmaps)
    b, f, h, w, k = heatmaps.shape
    flat = np.moveaxis(heatmaps, -1, 2).reshape(b, f, k, h * w)
    index = np.argmax(flat, axis=-1)
    values = np.take_along_axis(flat, index[..., None], axis=-1)[..., 0]
    return values, index // w, index % w


def _distances(preds, targets):
    pred_val, pred_y, pred_x = heatmap_peaks(preds)
    target_val, target_y, target_x = heatmap_peaks(targets)
    dist = np.sqrt((pred_y - target_y) ** 2.0 + (pred_x - target_x) ** 2.0)
    return dist, pred_val >= MIN_CONFIDENCE, target_val > MIN_TARGET, target_val, target_y


def mpjpe(preds, targets):
    """Mean per-joint position error in pixels over keypoints valid in both."""
    dist, pred_ok, target_ok, _, _ = _distances(preds, targets)
    valid = pred_ok & target_ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, dist, 0.0).sum(-1) / valid.sum(-1)


def _correct_within_height(preds, targets, factor):
    dist, pred_ok, target_ok, target_val, target_y = _distances(preds, targets)
    height = np.asarray(preds).shape[2]
    # body height = vertical extent of the target peaks with value > 0; the original starts
    # from (min, max) = (H, 0), so a frame without any target gets height H
    present = target_val > 0
    max_y = np.where(present, target_y, 0).max(-1, initial=0)
    min_y = np.where(present, target_y, height).min(-1, initial=height)
    body_height = np.abs(max_y - min_y).astype(np.float64)
    threshold = np.where(body_height > 0, factor * body_height, factor)
    correct = (pred_ok & target_ok & (dist <= threshold[..., None])).sum(-1)
    return correct, pred_ok.sum(-1), target_ok.sum(-1)


def pdj(preds, targets, factor=0.1):
    """Percentage of detected joints: correct / valid targets (threshold ``factor`` x body height)."""
    correct, _, num_targets = _correct_within_height(preds, targets, factor)
    with np.errstate(invalid="ignore", divide="ignore"):
        return correct / num_targets


def pck(preds, targets, factor=0.1):
    """Percentage of correct keypoints: correct / confident predictions."""
    correct, num_preds, _ = _correct_within_height(preds, targets, factor)
    with np.errstate(invalid="ignore", divide="ignore"):
        return correct / num_preds


# -- the same errors on keypoint coordinates (pose records, pose-LSTM predictions) ------------------------


def _keypoint_inputs(preds, targets, visibility):
    preds = np.asarray(preds, np.float64)
    targets = np.asarray(targets, np.float64)
    if preds.shape != targets.shape or preds.ndim != 4 or preds.shape[-1] != 2:
        raise ValueError(f"keypoints must be [B, F, K, 2] (x, y) of the same shape; got {preds.shape} and "
                         f"{targets.shape}")
    valid = np.ones(targets.shape[:-1], bool) if visibility is None else np.asarray(visibility) > 0
    if valid.shape != targets.shape[:-1]:
        raise ValueError(f"visibility must be [B, F, K] = {targets.shape[:-1]}, got {valid.shape}")
    return np.linalg.norm(preds - targets, axis=-1), valid, targets


def keypoint_mpjpe(preds, targets, visibility=None):
    """Mean per-joint position error ``[B, F]`` (pixels) of keypoints ``[B, F, K, 2]`` over the visible targets.

    The coordinate counterpart of :func:`mpjpe` (which reads heatmap peaks); NaN where no joint is visible.
    """
    dist, valid, _ = _keypoint_inputs(preds, targets, visibility)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, dist, 0.0).sum(-1) / valid.sum(-1)


def keypoint_pck(preds, targets, visibility=None, factor=0.1):
    """Fraction ``[B, F]`` of visible target joints predicted within ``factor`` x body height.

    Body height = vertical extent of the visible target joints (as :func:`pdj` measures it on heatmaps;
    a zero extent gives a threshold of ``factor`` pixels); NaN where no joint is visible.
    """
    dist, valid, targets = _keypoint_inputs(preds, targets, visibility)
    y = targets[..., 1]
    top = np.where(valid, y, np.inf).min(-1)
    bottom = np.where(valid, y, -np.inf).max(-1)
    height = np.where(valid.any(-1), bottom - top, 0.0)
    threshold = np.where(height > 0, factor * height, factor)
    correct = (valid & (dist <= threshold[..., None])).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return correct / valid.sum(-1)
