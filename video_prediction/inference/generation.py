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
                          gif_length=None, fps=4, save_arrays=False, log=print):
    """Predict every (or the first ``num_videos``) video of ``dataset`` and write GIFs and PNGs.

    The model family's extras (:mod:`video_prediction.inference.extras`) then write their own files.
    Returns the number of videos written.
    """
    os.makedirs(results_dir, exist_ok=True)
    context = model.context_frames
    horizon = dataset.sequence_length - context
    num_samples = num_stochastic_samples if model.stochastic else 1
    written = 0
    for batch in first_videos(dataset, batch_size, num_videos, desc="generate"):
        predictions = model.generate(batch, num_samples=num_samples, horizon=horizon).numpy()
        images = batch["images"].numpy()
        for i in range(images.shape[0]):
            for s in range(num_samples):
                write_prediction(results_dir, written, s, images[i, :context], predictions[i, s],
                                 ground_truth=images[i, context:], fps=fps, gif_length=gif_length)
            if save_arrays:
                np.savez_compressed(os.path.join(results_dir, f"gen_image_{written:05d}.npz"),
                                    context=images[i, :context], ground_truth=images[i, context:],
                                    predictions=predictions[i])
            written += 1
    _report(log, extras_for(model), "write_dataset_outputs", dataset, results_dir,
            InferenceSettings(num_videos=num_videos, num_stochastic_samples=num_stochastic_samples,
                              batch_size=batch_size, fps=fps, save_arrays=save_arrays))
    return written


def generate_from_video(model, video, results_dir, num_stochastic_samples=5, horizon=None, fps=4,
                        save_arrays=False, log=print):
    """Predict from the first ``context_frames`` frames of one video ``[T, H, W, C]`` in [0, 1].

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
    _report(log, extras_for(model), "write_video_outputs", video, results_dir,
            InferenceSettings(num_stochastic_samples=num_stochastic_samples, horizon=horizon, fps=fps,
                              save_arrays=save_arrays))
    return predictions


def _report(log, extras, hook, *args):
    """Call ``extras.<hook>(*args)`` (when the family has extras) and log what it says it wrote."""
    if extras is None:
        return
    message = getattr(extras, hook)(*args)
    if message and log:
        log(message)
