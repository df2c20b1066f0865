import numpy as np
import pytest
from PIL import Image

from video_prediction.inference.generation import fit_video_to_shape, load_video


def frames_uint8(t=6, h=16, w=20, c=3):
    rng = np.random.default_rng(0)
    return (rng.random((t, h, w, c)) * 255).astype(np.uint8)


def test_load_png_directory_sorted(tmp_path):
    frames = frames_uint8()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"frame_{i:03d}.png")
    video = load_video(str(tmp_path))
    assert video.dtype == np.float32 and video.shape == (6, 16, 20, 3)
    np.testing.assert_allclose(video, frames / 255.0, atol=1e-6)


def test_load_npy_and_validation(tmp_path):
    video = np.random.default_rng(1).random((5, 8, 8, 1)).astype(np.float32)
    np.save(tmp_path / "v.npy", video)
    np.testing.assert_array_equal(load_video(str(tmp_path / "v.npy")), video)
    np.save(tmp_path / "bad.npy", video * 3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_video(str(tmp_path / "bad.npy"))
    np.save(tmp_path / "rank.npy", video[0])
    with pytest.raises(ValueError, match=r"\[T, H, W, C\]"):
        load_video(str(tmp_path / "rank.npy"))


def test_load_gif_and_mp4(tmp_path):
    import imageio.v2 as imageio

    frames = frames_uint8(t=5, h=32, w=32)
    Image.fromarray(frames[0]).save(tmp_path / "v.gif", save_all=True,
                                    append_images=[Image.fromarray(f) for f in frames[1:]], duration=100, loop=0)
    gif = load_video(str(tmp_path / "v.gif"))
    assert gif.shape == (5, 32, 32, 3)
    with imageio.get_writer(tmp_path / "v.mp4", format="FFMPEG", fps=5, macro_block_size=16) as writer:
        for frame in frames:
            writer.append_data(frame)
    mp4 = load_video(str(tmp_path / "v.mp4"))
    assert mp4.shape[1:] == (32, 32, 3) and mp4.shape[0] >= 5


def test_missing_and_unsupported(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_video(str(tmp_path / "missing.gif"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported video"):
        load_video(str(tmp_path / "notes.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no .png"):
        load_video(str(tmp_path / "empty"))


def test_fit_video_to_shape_resizes_and_converts_channels():
    video = np.random.default_rng(2).random((3, 32, 48, 3)).astype(np.float32)
    fitted = fit_video_to_shape(video, (16, 16, 1))
    assert fitted.shape == (3, 16, 16, 1) and fitted.min() >= 0 and fitted.max() <= 1
    np.testing.assert_allclose(fit_video_to_shape(video[..., :1], (32, 48, 3))[..., 2], video[..., 0], atol=1e-6)
