"""MSPred's per-level evaluation (specs/mspred.md §5): metrics, best-of-S, NaN-masked aggregation.

Level 0 (frames): mse, mae, psnr (piqa: 10 log10(1 / (mse + 1e-8))), ssim (the registry's) or
``ssim_valid`` (piqa / the original: Gaussian 11 / 1.5 window, valid filtering = tf.image.ssim),
and lpips (LPIPS-Alex; the original's unnormalized [0, 1] inputs by default).  Levels 1 / 2 depend on the target structure: centre/blob maps
(mse, mae), keypoints (mpjpe, pdj@k, pck@k) or segmentation (segmentation_accuracy, iou).
For each metric and video, the sample whose frame-summed value is best is kept (NaN frames
ignored in the sum; the original's torch sum would propagate them); results are NaN-masked
means overall (``mean_<m>``) and per frame position (``framewise_<m>``), as its MetricTracker.
"""

import functools
import json
import os

import numpy as np
import tensorflow as tf

from video_prediction.metrics import pose, segmentation
from video_prediction.inference.video_batches import first_videos

PDJ_FACTORS = (0.1, 0.2, 0.3, 0.4, 0.5)
#: metrics of levels 1 and 2 per target structure (the original's METRIC_SETS)
LEVEL_METRICS = {
    "blobs": (("mse", "mae"), ("mse", "mae")),  # Moving MNIST
    "keypoints": (("mpjpe",) + tuple(f"pdj@{f}" for f in PDJ_FACTORS) + tuple(f"pck@{f}" for f in PDJ_FACTORS),
                  ("mpjpe",)),  # KTH
    "segmentation": (("segmentation_accuracy", "iou"), ("mpjpe",)),  # SynpickVP
}
FRAME_METRICS = ("mse", "mae", "psnr", "ssim_valid", "lpips")
#: the original feeds [0, 1] frames to LPIPS-Alex without rescaling to [-1, 1] (specs/mspred.md §5.2)
ORIGINAL_LPIPS_NORMALIZE_INPUTS = False
LOWER_IS_BETTER = {"mse", "mae", "mpjpe", "lpips"}


@functools.lru_cache(maxsize=None)
def _lpips_metric(normalize_inputs):
    from video_prediction.metrics.lpips import LPIPSMetric

    return LPIPSMetric(net="alex", normalize_inputs=normalize_inputs)


def compute(name, preds, targets, lpips_normalize_inputs=ORIGINAL_LPIPS_NORMALIZE_INPUTS):
    """Per (video, frame) values ``[B, F]`` of metric ``name`` on ``[B, F, H, W, K]`` arrays.

    ``lpips`` is LPIPS-Alex (v0.1), created once per ``lpips_normalize_inputs`` setting.
    """
    preds, targets = np.asarray(preds, np.float64), np.asarray(targets, np.float64)
    if name == "mse":
        return np.mean((preds - targets) ** 2, axis=(2, 3, 4))
    if name == "mae":
        return np.mean(np.abs(preds - targets), axis=(2, 3, 4))
    if name == "psnr":
        return 10.0 * np.log10(1.0 / (np.mean((preds - targets) ** 2, axis=(2, 3, 4)) + 1e-8))
    if name == "ssim_valid":
        b, f = preds.shape[:2]
        flat = lambda x: tf.constant(x.reshape((b * f,) + x.shape[2:]), tf.float32)
        return tf.image.ssim(flat(preds), flat(targets), max_val=1.0, filter_size=11, filter_sigma=1.5,
                             k1=0.01, k2=0.03).numpy().reshape(b, f).astype(np.float64)
    if name == "mpjpe":
        return pose.mpjpe(preds, targets)
    if name.startswith("pdj@"):
        return pose.pdj(preds, targets, float(name[4:]))
    if name.startswith("pck@"):
        return pose.pck(preds, targets, float(name[4:]))
    if name == "segmentation_accuracy":
        return segmentation.segmentation_accuracy(preds, targets)[0]
    if name == "iou":
        return segmentation.iou(preds, targets)[0]
    if name == "lpips":
        metric = _lpips_metric(bool(lpips_normalize_inputs))
    else:
        from video_prediction.metrics import get_metric  # other registry metrics (ssim)

        metric = get_metric(name)
    return np.asarray(metric(tf.constant(targets, tf.float32), tf.constant(preds, tf.float32)), np.float64)


def select_best(values, lower_is_better):
    """``[B, S, F]`` -> ``[B, F]``: per video the sample with the best frame-summed value (NaN ignored)."""
    totals = np.nansum(values, axis=-1)
    index = np.argmin(totals, axis=1) if lower_is_better else np.argmax(totals, axis=1)
    return values[np.arange(values.shape[0]), index]


def aggregate(per_video):
    """NaN-masked mean overall and per frame of ``[N, F]`` values."""
    with np.errstate(invalid="ignore"):
        return dict(mean=float(np.nanmean(per_video)) if np.isfinite(per_video).any() else float("nan"),
                    framewise=[float(v) if np.isfinite(per_video[:, i]).any() else float("nan")
                               for i, v in enumerate(np.nanmean(np.where(np.isfinite(per_video), per_video, np.nan),
                                                                axis=0))])


def evaluate_levels(model, dataset, structure="blobs", frame_metrics=FRAME_METRICS, num_stochastic_samples=1,
                    batch_size=8, num_videos=None, lpips_normalize_inputs=ORIGINAL_LPIPS_NORMALIZE_INPUTS):
    """``{level: {metric: [N, F] best-of-S values}}`` of an MSPred model on ``dataset``.

    LPIPS follows the original (unnormalized [0, 1] inputs) unless ``lpips_normalize_inputs``.
    """
    names = [tuple(frame_metrics)] + [tuple(m) for m in LEVEL_METRICS[structure]]
    keys = ["gen_level0", "gen_heatmaps_level1", "gen_heatmaps_level2"]
    results = [{name: [] for name in level} for level in names]
    length = dataset.sequence_length
    for batch in first_videos(dataset, batch_size, num_videos, desc="evaluate levels"):
        samples = {level: {name: [] for name in level_names} for level, level_names in enumerate(names)}
        for _ in range(num_stochastic_samples):
            outputs = model(batch, training=False)
            for level, key in enumerate(keys):
                targets = model.level_targets(batch, level, length)
                if key not in outputs or targets is None:
                    continue
                preds = outputs[key].numpy()[:, : targets.shape[1]]
                for name in names[level]:
                    samples[level][name].append(compute(name, preds, targets.numpy(), lpips_normalize_inputs))
        for level, level_names in enumerate(names):
            for name in level_names:
                if samples[level][name]:
                    stacked = np.stack(samples[level][name], axis=1)  # [B, S, F]
                    results[level][name].append(select_best(stacked, name in LOWER_IS_BETTER))
    return {level: {name: np.concatenate(v) for name, v in level_results.items() if v}
            for level, level_results in enumerate(results)}


def write_level_results(results, output_dir, target_frames):
    """``metrics_level<h>.json`` (mean_<m>, framewise_<m>, frame numbers), ``metrics_level<h>.csv`` and plots."""
    os.makedirs(output_dir, exist_ok=True)
    for level, by_metric in results.items():
        payload = {"target_frames": list(target_frames[level])}
        rows = ["metric,mean," + ",".join(f"frame_{f}" for f in target_frames[level])]
        for name, values in by_metric.items():
            stats = aggregate(values)
            payload[f"mean_{name}"], payload[f"framewise_{name}"] = stats["mean"], stats["framewise"]
            rows.append(",".join([name, repr(stats["mean"])] + [repr(v) for v in stats["framewise"]]))
            _plot(os.path.join(output_dir, f"results_{name}_level_{level}.png"), target_frames[level],
                  stats["framewise"], name, level)
        with open(os.path.join(output_dir, f"metrics_level{level}.json"), "w") as f:
            json.dump(payload, f, indent=2)
        with open(os.path.join(output_dir, f"metrics_level{level}.csv"), "w") as f:
            f.write("\n".join(rows) + "\n")


def _plot(path, frames, values, name, level):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(frames[: len(values)], values, marker="o")
    axes.set_xlabel("frame")
    axes.set_ylabel(name)
    axes.set_title(f"level {level}")
    figure.tight_layout()
    figure.savefig(path)
