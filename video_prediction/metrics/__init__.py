"""Metric registry.

Per-frame metrics compare ``targets`` and ``predictions`` (float32 videos
``[B, T, H, W, C]`` in [0, 1]) and return ``[B, T]``; each is an object with
``name``, ``higher_is_better`` and ``__call__(targets, predictions)``.
Set-level metrics (FVD) live in their own modules and are not in this registry.
"""

from video_prediction.registry import lookup

# name -> "module:attribute" of a per-frame metric object, imported on first use.
_PER_FRAME_METRICS = {
    "mse": "video_prediction.metrics.image_quality:MSE",
    "psnr": "video_prediction.metrics.image_quality:PSNR",
    "ssim": "video_prediction.metrics.image_quality:SSIM",
    "lpips": "video_prediction.metrics.lpips:LPIPSMetric",
}


def available_metrics():
    return sorted(_PER_FRAME_METRICS) + ["fvd"]


def get_metric(name, **kwargs):
    """An instance of the per-frame metric ``name``; ``ValueError`` listing valid names otherwise."""
    return lookup(_PER_FRAME_METRICS, name, "per-frame metric")(**kwargs)
