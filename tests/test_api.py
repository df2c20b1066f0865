"""The notebook API (issue 19): video_prediction.load_model / Predictor.predict / write_gif, published names."""

import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

import video_prediction
from local_http_server import FileServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "inference"))
import results_fixtures  # noqa: E402


def test_import_is_light():
    code = "import sys, video_prediction; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    run_dir = results_fixtures.write_tiny_run(str(tmp_path_factory.mktemp("api") / "run"))
    return video_prediction.load_model(run_dir)


def test_predict_arrays_paths_and_latent_mode(predictor, tmp_path):
    assert predictor.hparams["ngf"] == 4 and predictor.image_shape == (32, 32, 1) and predictor.context_frames == 2
    assert predictor.stochastic and predictor.sequence_length == 5  # the Keras model's attributes
    rng = np.random.default_rng(0)
    video = rng.random((4, 48, 40, 3)).astype(np.float32)  # other size and channels: resized, made grey
    samples = predictor.predict(video, horizon=3, num_samples=2)
    assert samples.shape == (2, 3, 32, 32, 1) and samples.dtype == np.float32
    assert 0.0 <= samples.min() and samples.max() <= 1.0
    batch = predictor.predict(np.stack([video, video[::-1]]), horizon=3, num_samples=1)
    assert batch.shape == (2, 1, 3, 32, 32, 1)
    # a GIF, a PNG folder and a .npy give the same prediction as the array they hold (mean latents: no noise)
    frames = np.repeat((video[:2, :, :, :1] * 255).astype(np.uint8), 3, axis=-1)  # grey RGB: a GIF keeps it exactly
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(frames_dir / f"{i:03d}.png")
    video_prediction.write_gif(tmp_path / "clip.gif", frames)
    np.save(tmp_path / "clip.npy", frames / np.float32(255.0))
    reference = predictor.predict(frames / np.float32(255.0), num_samples=2, latent_mode="mean")
    assert predictor.latent_mode == "mean"
    assert np.abs(reference[0] - reference[1]).max() < 1e-6  # mean latents: one future
    assert reference.shape == (2, 3, 32, 32, 1)  # default horizon: the training length after the context
    for path in (frames_dir, tmp_path / "clip.npy", tmp_path / "clip.gif"):
        np.testing.assert_allclose(predictor.predict(path, num_samples=2)[0], reference[0], atol=1e-5)
    predictor.latent_mode = "sample"
    again = predictor.predict(frames / np.float32(255.0), num_samples=2)
    assert np.abs(again[0] - again[1]).max() > 1e-4  # sampling again
    out = video_prediction.write_gif(tmp_path / "samples.gif", again)  # [S, T, H, W, C]: side by side
    assert Image.open(out).size == (64, 32)


@pytest.mark.parametrize("frames, message", [
    (np.zeros((2, 32, 32)), r"\[T, H, W, C\] or \[B, T, H, W, C\]"),
    (np.zeros((2, 32, 32, 1), np.uint8), "divide uint8 frames by 255"),
    (np.full((2, 32, 32, 1), 2.0), r"must be in \[0, 1\]"),
    (np.zeros((1, 32, 32, 1)), "needs 2 context frames"),
    ("missing.gif", "does not exist"),
])
def test_bad_input_one_line(predictor, frames, message):
    with pytest.raises(ValueError, match=message):
        predictor.predict(frames)


def test_unknown_names_are_refused_with_the_list():
    with pytest.raises(ValueError, match="published models: .*bair_action_free/ours_savp"):
        video_prediction.load_model("bair_action_free/ours_best")


def test_published_model_downloads_converts_and_is_cached(tmp_path, monkeypatch):
    from conversion.test_savp_checkpoint import variant_run

    variant_run(tmp_path / "original", "ours_deterministic")
    archive = tmp_path / "archive.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in sorted(os.listdir(tmp_path / "original")):
            tar.add(tmp_path / "original" / name, arcname=name)
    monkeypatch.setenv("VIDEO_PREDICTION_CACHE", str(tmp_path / "cache"))
    path = "/kth_ours_deterministic_l2.tar.gz"
    with FileServer({path: archive.read_bytes()}) as server:
        model = video_prediction.load_model("kth/ours_deterministic_l2", base_url=server.url)
        requests = len(server.requests)
        assert model.run_dir == str(tmp_path / "cache" / "pretrained_models" / "kth" / "ours_deterministic_l2")
        assert model.image_shape == (32, 32, 3) and not model.model.stochastic
        samples = model.predict(np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32), horizon=2,
                                num_samples=2, latent_mode="mean")  # deterministic: mean is a no-op
        assert samples.shape == (2, 2, 32, 32, 3)
        np.testing.assert_array_equal(samples[0], samples[1])
        video_prediction.load_model("kth/ours_deterministic_l2", base_url=server.url)  # from the cache
        assert len(server.requests) == requests


def test_readme_example_runs(predictor, tmp_path, monkeypatch):
    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")).read()
    code = readme.split("### Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    assert "video_prediction.load_model(" in code and "model.predict(" in code
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(code.replace("logs/moving_mnist/ours_savp", predictor.run_dir), namespace)
    assert namespace["samples"].shape == (3, 10, 32, 32, 1) and namespace["mean"].shape == (1, 10, 32, 32, 1)
    assert os.path.getsize(tmp_path / "samples.gif") > 0
