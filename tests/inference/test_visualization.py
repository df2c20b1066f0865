"""GIF/PNG writers, side-by-side strips, metric plots and the animated-GIF summary."""

import glob
import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from video_prediction.inference import visualization


def distinct_frames(t=5, h=12, w=16, c=3):
    """Float frames in [0, 1] that all differ (Pillow merges identical consecutive GIF frames)."""
    rng = np.random.default_rng(0)
    frames = rng.random((t, h, w, c)).astype(np.float32)
    frames[:, 0, 0, :] = (np.arange(t) / t)[:, None]
    return frames


def test_to_uint8_truncates_and_clips():
    values = np.array([0.0, 0.5, 0.999, 1.0, 1.2, -0.1], np.float32)
    np.testing.assert_array_equal(visualization.to_uint8(values), [0, 127, 254, 255, 255, 0])
    as_uint8 = np.array([3, 200], np.uint8)
    assert visualization.to_uint8(as_uint8) is as_uint8
    with pytest.raises(ValueError, match="dtype"):
        visualization.to_uint8(np.array([1, 2], np.int32))


@pytest.mark.parametrize("channels, fps, duration", [(3, 4, 250), (1, 5, 200)])
def test_save_gif_round_trip(tmp_path, channels, fps, duration):
    frames = distinct_frames(c=channels)
    path = visualization.save_gif(str(tmp_path / "sub" / "video.gif"), frames, fps=fps)
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size == (16, 12)
        assert gif.info["loop"] == 0  # loops forever
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
        assert durations == [duration] * 5
        if channels == 1:  # grayscale is stored exactly
            gif.seek(2)
            np.testing.assert_array_equal(np.asarray(gif.convert("L")), visualization.to_uint8(frames[2, ..., 0]))


def test_encode_gif_bytes_accepts_uint8_and_merges_identical_frames():
    data = visualization.encode_gif_bytes(visualization.to_uint8(distinct_frames()), fps=4)
    assert data.startswith(b"GIF8")
    still = np.zeros((3, 8, 8, 1), np.float32)
    with Image.open(io.BytesIO(visualization.encode_gif_bytes(still, fps=4))) as gif:
        assert gif.n_frames == 1 and gif.info["duration"] == 750  # same playback time
    with pytest.raises(ValueError, match="fps"):
        visualization.encode_gif_bytes(still, fps=0)


def test_save_png_frames_naming_and_grayscale(tmp_path):
    frames = distinct_frames(t=12, c=1)
    paths = visualization.save_png_frames(str(tmp_path), "gen_image_00003_01", frames)
    names = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "*.png")))
    assert names == [f"gen_image_00003_01_{t:02d}.png" for t in range(12)]
    image = np.asarray(Image.open(paths[4]))
    assert image.shape == (12, 16, 3)
    np.testing.assert_array_equal(image[..., 1], visualization.to_uint8(frames[4, ..., 0]))
    long_paths = visualization.save_png_frames(str(tmp_path / "long"), "p", distinct_frames(t=101, h=2, w=2))
    assert os.path.basename(long_paths[7]) == "p_007.png"


def test_side_by_side_layout():
    context, future, prediction = distinct_frames(2), distinct_frames(4), distinct_frames(4)[::-1].copy()
    strip = visualization.side_by_side(context, future, prediction, border=1)
    assert strip.shape == (6, 14, 3 * 18, 3) and strip.dtype == np.float32
    assert strip.min() >= 0 and strip.max() <= 1

    def tile(t, column):
        return strip[t, 1:13, column * 18 + 1 : column * 18 + 17]

    for column in range(3):  # context in every column during the context
        np.testing.assert_allclose(tile(1, column), context[1])
        np.testing.assert_allclose(strip[1, 0, column * 18], visualization.REAL_FRAME_COLOR)
    np.testing.assert_allclose(tile(3, 0), context[-1])  # held last context frame
    np.testing.assert_allclose(tile(3, 1), future[1])
    np.testing.assert_allclose(tile(3, 2), prediction[1])
    np.testing.assert_allclose(strip[3, 0, 2 * 18], visualization.PREDICTED_FRAME_COLOR)
    np.testing.assert_allclose(strip[3, 0, 0], visualization.HELD_FRAME_COLOR)


def test_side_by_side_without_ground_truth_grayscale_and_short_ground_truth():
    context, prediction = distinct_frames(2, c=1), distinct_frames(5, c=1)
    strip = visualization.side_by_side(context, None, prediction, border=0)
    assert strip.shape == (7, 12, 32, 3)
    np.testing.assert_allclose(strip[4, :, 16:, 0], prediction[2, ..., 0])
    short = visualization.side_by_side(context, distinct_frames(2, c=1), prediction, border=2)
    assert short.shape == (7, 16, 60, 3)
    assert np.all(short[-1, 2:-2, 20 + 2 : 40 - 2] == 0)  # ground truth ran out: black tile
    with pytest.raises(ValueError, match="prediction frames"):
        visualization.side_by_side(context, None, distinct_frames(3, h=8, c=1))


def test_plot_metric_curves_writes_png(tmp_path):
    path = str(tmp_path / "plots" / "psnr.png")
    curves = {"best": (np.linspace(30, 20, 8), np.full(8, 1.0)), "avg": (np.linspace(28, 18, 8), None)}
    visualization.plot_metric_curves(path, curves, "psnr", context_frames=2, training_length=6, title="test")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(path) > 1000


@pytest.mark.parametrize("context,num_t,training_length", [(2, 8, 10), (5, 5, 10), (10, 90, 20), (10, 3, None)])
def test_metric_plot_has_integer_frame_ticks_and_marker_inside(context, num_t, training_length):
    curves = {"avg": (np.linspace(28, 18, num_t), np.full(num_t, 1.0))}
    figure = visualization.metric_curves_figure(curves, "psnr", context, training_length)
    axes = figure.axes[0]
    figure.canvas.draw()
    low, high = axes.get_xlim()
    ticks = [t for t in axes.get_xticks() if low <= t <= high]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
    assert all("." not in label.get_text() for label in axes.get_xticklabels() if label.get_text())
    # every plotted frame and the training-length line lie strictly inside the axes (not on the frame)
    assert low < context + 1 and context + num_t < high
    marker = [line for line in axes.get_lines() if line.get_label() == "training length"]
    if training_length is None:
        assert not marker
    else:
        assert low < marker[0].get_xdata()[0] == training_length < high


def test_write_gif_summary_round_trip(tmp_path):
    videos = np.stack([distinct_frames(t=3, h=8, w=10) for _ in range(3)])
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        assert bool(visualization.write_gif_summary("predictions", videos, step=7, fps=4, max_outputs=2))
    writer.flush()
    found = []
    for path in glob.glob(str(tmp_path / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "predictions":
                    found.append((event.step, value))
    assert len(found) == 1
    step, value = found[0]
    assert step == 7 and value.metadata.plugin_data.plugin_name == "images"
    strings = tf.make_ndarray(value.tensor)
    assert strings[0] == b"10" and strings[1] == b"8" and len(strings) == 4  # width, height, 2 GIFs
    for data in strings[2:]:
        assert data.startswith(b"GIF8")
        with Image.open(io.BytesIO(data)) as gif:
            assert gif.n_frames == 3 and gif.size == (10, 8)
