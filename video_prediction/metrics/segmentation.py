"""Segmentation metrics of MSPred (specs/mspred.md §5.2) on class maps ``[B, F, H, W, K]``.

Classes are the channel argmax of prediction and target.  Values are per (video, frame)
``[B, F]``, plus per-class values ``[B, F, K]`` (NaN for classes absent from both).
The original builds its confusion matrix with the arguments swapped (rows = predicted
classes), so its per-class "accuracy" is per-class precision; overall accuracy and IoU
do not depend on that.  Its per-frame IoU is the plain mean over all K classes, so a
frame where any class is absent from both maps is NaN (then masked by the aggregation);
``iou(..., ignore_absent=True)`` averages over the classes present instead.
"""

import numpy as np


def _confusion(preds, targets):
    """``[B, F, K, K]`` counts, rows = predicted class (the original's order), cols = target class."""
    preds, targets = np.asarray(preds), np.asarray(targets)
    num_classes = preds.shape[-1]
    pred_cls = np.argmax(preds, -1).reshape(preds.shape[0], preds.shape[1], -1)
    target_cls = np.argmax(targets, -1).reshape(preds.shape[0], preds.shape[1], -1)
    pairs = pred_cls * num_classes + target_cls
    counts = np.apply_along_axis(np.bincount, -1, pairs, minlength=num_classes * num_classes)
    return counts.reshape(preds.shape[0], preds.shape[1], num_classes, num_classes)


def segmentation_accuracy(preds, targets):
    """Pixel accuracy per frame ``[B, F]`` and the original's per-class values ``[B, F, K]``."""
    cm = _confusion(preds, targets)
    diag = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = diag / cm.sum(-1)
    return diag.sum(-1) / cm.sum((-2, -1)), per_class


def iou(preds, targets, ignore_absent=False):
    """Mean IoU per frame ``[B, F]`` and per-class IoU ``[B, F, K]``."""
    cm = _confusion(preds, targets)
    diag = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64)
    union = cm.sum(-1) + cm.sum(-2) - diag
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = diag / union
        mean = np.nanmean(per_class, -1) if ignore_absent else per_class.mean(-1)
    return mean, per_class
