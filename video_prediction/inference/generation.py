"""Writing predictions: GIFs and PNG frames from a dataset or from a single video file.

File names follow the original's generate.py (specs/savp.md §4.2):
``gen_image_<video>_<sample>.gif`` and ``gen_image_<video>_<sample>_<t>.png``
(t indexes predicted frames from 0).  Each GIF shows, side by side, the
context, the ground truth (when there is one) and the prediction.
"""

import glob
import os

import numpy as np
import tensorflow as tf

from video_prediction.inference import visualization
from video_prediction.inference.extras import InferenceSettings, extras_for
from video_prediction.inference.video_batches import first_videos

VIDEO_SUFFIXES = (".gif", ".mp4", ".avi", ".mov", ".mkv", ".webm")
PAGE_METRICS = ("psnr", "ssim")  # what generate.py's index.html scores the shown samples by


def load_video(path):
    """Read a video as float32 ``[T, H, W, C]`` in [0, 1].

    Accepts a GIF or a video file (decoded with the ffmpeg that imageio-ffmpeg
    ships), a directory of PNG/JPEG frames (sorted by name), or a ``.npy``
    float array ``[T, H, W, C]`` already in [0, 1].
    """
    import imageio.v2 as imageio

    if not os.path.exists(path):
        raise ValueError(f"video {path!r} does not exist")
    if os.path.isdir(path):
        files = sorted(f for ext in ("*.png", "*.jpg", "*.jpeg") for f in glob.glob(os.path.join(path, ext)))
        if not files:
            raise ValueError(f"video directory {path!r} holds no .png/.jpg frames")
        frames = np.stack([_as_hwc(imageio.imread(f)) for f in files])
        return frames.astype(np.float32) / 255.0
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npy":
        video = np.load(path, allow_pickle=False)
        if video.ndim != 4:
            raise ValueError(f"{path}: expected a [T, H, W, C] array, got shape {video.shape}")
        if not np.issubdtype(video.dtype, np.floating) or video.min() < 0.0 or video.max() > 1.0:
            raise ValueError(f"{path}: expected float values in [0, 1]")
        return video.astype(np.float32)
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"unsupported video {path!r}; expected a directory of frames, .npy or one of {VIDEO_SUFFIXES}")
    if suffix == ".gif":
        frames = [_as_hwc(frame) for frame in imageio.mimread(path, memtest=False)]
    else:
        with imageio.get_reader(path, format="FFMPEG") as reader:
            frames = [_as_hwc(frame) for frame in reader]
    if not frames:
        raise ValueError(f"video {path!r} has no frames")
    return np.stack(frames).astype(np.float32) / 255.0


def _as_hwc(frame):
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.shape[-1] == 4:  # drop alpha
        frame = frame[..., :3]
    return frame


def fit_video_to_shape(video, image_shape):
    """Resize (area/bilinear) and convert channels so ``video`` has frames of ``image_shape`` (H, W, C)."""
    height, width, channels = (int(d) for d in image_shape)
    if video.shape[-1] != channels:
        if channels == 1:
            video = video.mean(axis=-1, keepdims=True)
        elif video.shape[-1] == 1:
            video = np.repeat(video, channels, axis=-1)
        else:
            raise ValueError(f"cannot convert {video.shape[-1]}-channel frames to {channels} channels")
    if video.shape[1:3] != (height, width):
        method = "area" if video.shape[1] > height else "bilinear"
        video = tf.image.resize(video, (height, width), method=method).numpy()
    return np.clip(video, 0.0, 1.0).astype(np.float32)


def write_prediction(results_dir, video_index, sample_index, context, prediction, ground_truth=None, fps=4,
                     gif_length=None):
    """Write the GIF and PNG frames of one predicted sample."""
    gif_frames = visualization.side_by_side(context, ground_truth, prediction)
    if gif_length:
        gif_frames = gif_frames[:gif_length]
    name = f"gen_image_{video_index:05d}_{sample_index:02d}"
    visualization.save_gif(os.path.join(results_dir, name + ".gif"), gif_frames, fps=fps)
    visualization.save_png_frames(results_dir, name, prediction)


def generate_from_dataset(model, dataset, results_dir, num_videos=None, num_stochastic_samples=5, batch_size=8,
                          gif_length=None, fps=4, save_arrays=False, log=print, html_videos=0, settings=None,
                          page_metrics=PAGE_METRICS):
    """Predict every (or the first ``num_videos``) video of ``dataset`` and write GIFs and PNGs.

    With ``html_videos`` > 0 it also writes ``index.html`` (:mod:`video_prediction.inference.html_report`):
    the first ``html_videos`` videos' best / average / worst samples by the first of ``page_metrics``, and
    those metrics' best/avg/worst curves and table over all generated videos (``settings``: the run's, from
    :func:`~video_prediction.inference.html_report.run_settings`).  The model family's extras
    (:mod:`video_prediction.inference.extras`) then write their own files.  Returns the number of videos written.
    """
    from video_prediction.inference import evaluation, html_report
    from video_prediction.metrics import get_metric
    from video_prediction.metrics.aggregation import MetricAccumulator

    os.makedirs(results_dir, exist_ok=True)
    context = model.context_frames
    horizon = dataset.sequence_length - context
    num_samples = num_stochastic_samples if model.stochastic else 1
    metrics = {name: get_metric(name) for name in page_metrics} if html_videos else {}
    accumulator, shown = MetricAccumulator(), html_report.ShownVideos(html_videos)
    written = 0
    for batch in first_videos(dataset, batch_size, num_videos, desc="generate"):
        samples = model.generate(batch, num_samples=num_samples, horizon=horizon)
        predictions = samples.numpy()
        images = batch["images"].numpy()
        if metrics:
            targets = batch["images"][:, context : context + horizon]
            values = {name: evaluation.per_sample_metric(metric, targets, samples) for name, metric in metrics.items()}
            for name, metric in metrics.items():
                accumulator.add(name, values[name], metric.higher_is_better)
            keep = min(shown.wanted, images.shape[0])
            shown.add(images[:keep, :context], images[:keep, context : context + horizon], predictions[:keep],
                      {name: v[:keep] for name, v in values.items()},
                      {name: metric.higher_is_better for name, metric in metrics.items()})
        for i in range(images.shape[0]):
            for s in range(num_samples):
                write_prediction(results_dir, written, s, images[i, :context], predictions[i, s],
                                 ground_truth=images[i, context:], fps=fps, gif_length=gif_length)
            if save_arrays:
                np.savez_compressed(os.path.join(results_dir, f"gen_image_{written:05d}.npz"),
                                    context=images[i, :context], ground_truth=images[i, context:],
                                    predictions=predictions[i])
            written += 1
    if metrics and written:
        _write_page(results_dir, accumulator, shown, settings or {}, context, dataset.sequence_length, fps)
    _report(log, extras_for(model), "write_dataset_outputs", dataset, results_dir,
            InferenceSettings(num_videos=num_videos, num_stochastic_samples=num_stochastic_samples,
                              batch_size=batch_size, fps=fps, save_arrays=save_arrays))
    return written


def generate_from_video(model, video, results_dir, num_stochastic_samples=5, horizon=None, fps=4,
                        save_arrays=False, log=print, html=False, settings=None):
    """Predict from the first ``context_frames`` frames of one video ``[T, H, W, C]`` in [0, 1].

    With ``html`` an ``index.html`` shows the context, the rest of the video (when it has more frames) and
    the first three samples, scored by the first of ``PAGE_METRICS`` when the video covers the horizon.
    The model family's extras then write their own files.  Returns the predictions ``[S, T, H, W, C]``.
    """
    context = model.context_frames
    if video.shape[0] < context:
        raise ValueError(f"the video has {video.shape[0]} frames; the model needs {context} context frames")
    horizon = horizon or (model.sequence_length - context)
    num_samples = num_stochastic_samples if model.stochastic else 1
    batch = {"images": tf.constant(video[None, :context])}
    predictions = model.generate(batch, num_samples=num_samples, horizon=horizon).numpy()[0]
    ground_truth = video[context : context + horizon] if video.shape[0] > context else None
    os.makedirs(results_dir, exist_ok=True)
    for s in range(num_samples):
        write_prediction(results_dir, 0, s, video[:context], predictions[s], ground_truth=ground_truth, fps=fps)
    if save_arrays:
        np.savez_compressed(os.path.join(results_dir, "gen_image_00000.npz"), context=video[:context],
                            predictions=predictions)
    if html:
        _write_video_page(results_dir, video[:context], ground_truth, predictions, settings or {}, fps)
    _report(log, extras_for(model), "write_video_outputs", video, results_dir,
            InferenceSettings(num_stochastic_samples=num_stochastic_samples, horizon=horizon, fps=fps,
                              save_arrays=save_arrays))
    return predictions


def _write_page(results_dir, accumulator, shown, settings, context_frames, training_length, fps):
    """index.html of a generate.py run: the shown videos, and the page metrics' curves and table."""
    from video_prediction.inference import evaluation, html_report

    results = accumulator.results()
    plots = []
    for name, by_subset in results.items():
        curves = {subset: (by_subset[subset]["mean"], by_subset[subset]["std"]) for subset in evaluation.SUBSETS}
        visualization.plot_metric_curves(os.path.join(results_dir, html_report.HTML_SUBDIRECTORY, f"{name}.png"),
                                         curves, name, context_frames, training_length=training_length)
        plots.append(f"{html_report.HTML_SUBDIRECTORY}/{name}.png")
    html_report.write_results_page(
        results_dir, f"Predictions: {settings.get('model', '')}", shown.write_gifs(results_dir, fps=fps), settings,
        evaluation.summary_rows(results), plots,
        note=f"Scores over the {accumulator.num_videos(next(iter(results)))} generated videos with their "
             f"{results[next(iter(results))]['best']['per_video'].shape[1]} predicted frames; evaluate.py "
             "gives the full evaluation (more samples, more metrics).")


def _write_video_page(results_dir, context, ground_truth, predictions, settings, fps):
    """index.html of ``generate.py --video``: the context, the rest of the video and three samples."""
    from video_prediction.inference import evaluation, html_report
    from video_prediction.metrics import get_metric

    scores, higher_is_better = {}, {}
    if ground_truth is not None and len(ground_truth) == predictions.shape[1]:
        name = PAGE_METRICS[0]
        metric = get_metric(name)
        scores[name] = evaluation.per_sample_metric(metric, tf.constant(ground_truth[None]),
                                                    tf.constant(predictions[None]))
        higher_is_better[name] = metric.higher_is_better
    shown = html_report.ShownVideos(1)
    shown.add(context[None], None if ground_truth is None else ground_truth[None], predictions[None], scores,
              higher_is_better)
    html_report.write_results_page(results_dir, f"Predictions: {settings.get('model', '')}",
                                   shown.write_gifs(results_dir, fps=fps), settings)


def _report(log, extras, hook, *args):
    """Call ``extras.<hook>(*args)`` (when the family has extras) and log what it says it wrote."""
    if extras is None:
        return
    message = getattr(extras, hook)(*args)
    if message and log:
        log(message)
