"""GIFs, PNG frames, side-by-side strips, metric plots and animated-GIF TensorBoard summaries.

Frames are float in [0, 1] (the package contract) or uint8; tensors are
accepted wherever arrays are.  GIF encoding uses Pillow in memory, plots use
matplotlib's Agg canvas without touching pyplot's global state, and the GIF
summary is written with ``tf.summary.write`` so it needs no TensorBoard
package at write time.
"""

import io
import os

import numpy as np

# Border colours of side_by_side tiles (RGB in [0, 1]).
REAL_FRAME_COLOR = (0.0, 0.8, 0.0)  # context and ground-truth frames
PREDICTED_FRAME_COLOR = (1.0, 0.0, 0.0)  # model outputs
HELD_FRAME_COLOR = (0.5, 0.5, 0.5)  # the last context frame held after the context; missing ground truth


def to_uint8(video):
    """Float frames in [0, 1] (or uint8) -> uint8, as the original: ``(clip(x) * 255)`` truncated, not rounded."""
    video = np.asarray(video)
    if video.dtype == np.uint8:
        return video
    if not np.issubdtype(video.dtype, np.floating):
        raise ValueError(f"expected float frames in [0, 1] or uint8, got dtype {video.dtype}")
    return (np.clip(video, 0.0, 1.0) * 255.0).astype(np.uint8)


def _as_frames(frames, label="frames"):
    frames = np.asarray(frames)
    if frames.ndim == 3:  # [T, H, W] grayscale
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{label} must have shape [T, H, W, C] with C in (1, 3, 4), got {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError(f"{label} has no frames")
    return frames


def _pil_images(frames):
    from PIL import Image

    frames = to_uint8(_as_frames(frames))
    if frames.shape[-1] == 1:
        return [Image.fromarray(frame[..., 0]) for frame in frames]
    if frames.shape[-1] == 4:
        frames = frames[..., :3]  # GIF has no alpha channel worth keeping here
    return [Image.fromarray(frame) for frame in frames]


def gif_frame_duration_ms(fps):
    """Per-frame duration for ``fps`` (GIF stores centiseconds, so it is rounded to 10 ms)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return int(round(100.0 / fps)) * 10


def encode_gif_bytes(frames, fps=4):
    """Animated, forever-looping GIF bytes of ``frames [T, H, W, C]`` (float in [0, 1] or uint8; C 1, 3 or 4).

    RGB frames get their own adaptive 256-colour palette; grayscale is exact.
    Pillow merges consecutive identical frames into one frame of the summed
    duration, so playback time is exact but such a GIF has fewer frames.
    """
    images = _pil_images(frames)
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                   duration=gif_frame_duration_ms(fps), loop=0)
    return buffer.getvalue()


def save_gif(path, frames, fps=4):
    """Write ``frames [T, H, W, C]`` as an animated GIF that loops forever; returns ``path``."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "wb") as f:
        f.write(encode_gif_bytes(frames, fps=fps))
    return path


def save_png_frames(directory, prefix, frames):
    """Write one PNG per frame as ``<prefix>_<t>.png``; returns the paths.

    ``t`` counts from 0 and is zero-padded to max(2, digits of T-1) as the
    original's ``gen_image_%05d_%02d_%0Nd.png``; grayscale is tiled to RGB.
    """
    from PIL import Image

    frames = to_uint8(_as_frames(frames))
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    width = max(2, len(str(len(frames) - 1)))
    os.makedirs(directory, exist_ok=True)
    paths = []
    for t, frame in enumerate(frames):
        path = os.path.join(directory, f"{prefix}_{t:0{width}d}.png")
        Image.fromarray(frame).save(path)
        paths.append(path)
    return paths


def _to_float_rgb(frames, label):
    frames = _as_frames(frames, label)
    if frames.dtype == np.uint8:
        frames = frames.astype(np.float32) / 255.0
    frames = np.asarray(frames, dtype=np.float32)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    return frames[..., :3]


def _tile(frame, color, border):
    height, width = frame.shape[:2]
    tile = np.empty((height + 2 * border, width + 2 * border, 3), np.float32)
    tile[...] = color
    tile[border : border + height, border : border + width] = frame
    return tile


def side_by_side(context, ground_truth, prediction, border=1):
    """The frame strip used for GIFs: columns context | ground truth | prediction per time step.

    ``context [C, H, W, ch]``, ``ground_truth [T_gt, H, W, ch]`` (or None to
    drop its column), ``prediction [T, H, W, ch]``; returns float32
    ``[C + T, H + 2*border, columns * (W + 2*border), 3]`` in [0, 1].

    * During the context all columns show the context frame (green border).
    * Afterwards the context column holds the last context frame (grey
      border), the ground-truth column shows the true future (green border;
      black with a grey border once the ground truth runs out), and the
      prediction column shows the predicted frames (red border).

    So the prediction column alone is the original's GIF content: context
    frames followed by predictions.  Grayscale is tiled to RGB so the borders
    can be coloured.
    """
    context = _to_float_rgb(context, "context")
    prediction = _to_float_rgb(prediction, "prediction")
    if ground_truth is not None:
        ground_truth = _to_float_rgb(ground_truth, "ground_truth")
    frame_shape = context.shape[1:3]
    for label, frames in (("prediction", prediction), ("ground_truth", ground_truth)):
        if frames is not None and frames.shape[1:3] != frame_shape:
            raise ValueError(f"side_by_side: {label} frames are {frames.shape[1:3]}, context frames {frame_shape}")
    border = int(border)
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")

    blank = np.zeros_like(context[0])
    rows = []
    for t in range(len(context)):
        real = _tile(context[t], REAL_FRAME_COLOR, border)
        rows.append([real] * (3 if ground_truth is not None else 2))
    held = _tile(context[-1], HELD_FRAME_COLOR, border)
    for t in range(len(prediction)):
        row = [held]
        if ground_truth is not None:
            if t < len(ground_truth):
                row.append(_tile(ground_truth[t], REAL_FRAME_COLOR, border))
            else:
                row.append(_tile(blank, HELD_FRAME_COLOR, border))
        row.append(_tile(prediction[t], PREDICTED_FRAME_COLOR, border))
        rows.append(row)
    return np.stack([np.concatenate(row, axis=1) for row in rows])


def plot_metric_curves(path, curves, metric_name, context_frames, training_length=None, title=None):
    """Plot metric-vs-time curves into ``path`` (PNG, PDF, ... by extension); returns ``path``.

    ``curves`` is ``{label: (mean [T], std [T] or None)}``; the std is drawn
    as a shaded band.  As the original's plot_results.py, the x-axis is the
    frame number starting at ``context_frames + 1`` (the first predicted
    frame) and a vertical line marks ``training_length``.
    """
    figure = metric_curves_figure(curves, metric_name, context_frames, training_length, title)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def metric_curves_figure(curves, metric_name, context_frames, training_length=None, title=None):
    """The matplotlib ``Figure`` of :func:`plot_metric_curves`: integer frame ticks, half a frame of
    margin on both sides so that a ``training_length`` at the last frame is drawn inside the axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(6, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    num_t = 0
    for label, (mean, std) in curves.items():
        mean = np.asarray(mean, dtype=np.float64)
        steps = np.arange(len(mean)) + context_frames + 1
        num_t = max(num_t, len(mean))
        line, = axes.plot(steps, mean, linewidth=2, marker="o" if len(mean) <= 20 else None, markersize=3,
                          label=str(label))
        if std is not None:
            std = np.asarray(std, dtype=np.float64)
            axes.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    last = context_frames + max(num_t, 1)
    if training_length is not None:
        axes.axvline(x=training_length, linewidth=1, color="k", linestyle="--", label="training length")
        last = max(last, training_length)
    axes.set_xlim(context_frames + 0.5, last + 0.5)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(f"frame number (frames 1-{context_frames} are the context)")
    axes.set_ylabel(metric_name)
    axes.grid(axis="y")
    if title:
        axes.set_title(title)
    if curves:
        axes.legend()
    figure.tight_layout()
    return figure


def write_gif_summary(tag, videos, step=None, fps=4, max_outputs=3, description=None):
    """Write animated GIFs of ``videos [B, T, H, W, C]`` as one TensorBoard image summary.

    The summary has the image plugin's layout (a string tensor ``[width,
    height, gif_0, gif_1, ...]`` with plugin name ``images``), so TensorBoard
    shows the GIFs animated.  Encoding happens in Python, so call it eagerly
    under a default writer (``with writer.as_default():``).  Returns the
    result of ``tf.summary.write`` (False when no writer is active).
    """
    import tensorflow as tf

    videos = np.asarray(videos)
    if videos.ndim != 5:
        raise ValueError(f"videos must have shape [B, T, H, W, C], got {videos.shape}")
    videos = videos[: max(int(max_outputs), 0)]
    height, width = videos.shape[2], videos.shape[3]
    encoded = [encode_gif_bytes(video, fps=fps) for video in videos]
    tensor = tf.constant([str(width).encode(), str(height).encode(), *encoded], dtype=tf.string)
    metadata = tf.compat.v1.SummaryMetadata(display_name=tag, summary_description=description or "")
    # Image plugin data version 0 serialises to empty content (what TensorBoard itself writes).
    metadata.plugin_data.plugin_name = "images"
    metadata.plugin_data.content = b""
    return tf.summary.write(tag, tensor, step=step, metadata=metadata)
