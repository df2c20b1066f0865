"""evaluate(): FVD per sample selection and LPIPS options; evaluate.py --metrics ...,lpips,fvd end to end."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.inference import evaluation
from video_prediction.datasets.moving_mnist import write_moving_mnist
from video_prediction.metrics.fvd import FeatureStatistics, SampleSelectionFVD, frechet_distance
from video_prediction.training.building import build_dataset, build_model

from test_scripts import run


class FrameMeanEmbedder:
    """A cheap stand-in for I3D: per-frame means through a fixed random projection to 400 features."""

    def __init__(self, num_frames):
        self.projection = np.random.default_rng(0).normal(size=(num_frames, 400))
        self.calls = []

    def __call__(self, videos):
        videos = np.asarray(videos, np.float64)
        self.calls.append(videos.shape)
        return videos.mean(axis=(2, 3, 4)) @ self.projection


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("fvd") / "mm")
    write_moving_mnist(root, {"train": 4, "val": 4, "test": 6}, sequence_length=10, canvas_size=32, progress=False)
    return root


def test_sample_selection_fvd_uses_the_chosen_samples():
    rng = np.random.default_rng(1)
    embedder = FrameMeanEmbedder(num_frames=10)
    fvd = SampleSelectionFVD(selection_metric="psnr", embedder=embedder)
    real = rng.uniform(size=(5, 10, 8, 8, 1)).astype(np.float32)
    fake = rng.uniform(size=(5, 3, 10, 8, 8, 1)).astype(np.float32)
    best, worst = np.array([2, 0, 1, 1, 0]), np.array([0, 1, 2, 0, 2])
    fvd.update(real, fake, best, worst)
    results = fvd.results()
    assert set(results) == {"first_sample", "best_psnr", "worst_psnr", "all_samples"}
    features = embedder(fake.reshape(15, 10, 8, 8, 1)).reshape(5, 3, 400)
    real_stats, best_stats = FeatureStatistics(), FeatureStatistics()
    real_stats.update(embedder(real))
    best_stats.update(features[np.arange(5), best])
    expected = frechet_distance(real_stats.mean(), real_stats.covariance(), best_stats.mean(), best_stats.covariance())
    assert results["best_psnr"]["fvd"] == pytest.approx(expected, rel=1e-9)
    assert results["all_samples"]["num_fake"] == 15 and results["first_sample"]["num_fake"] == 5
    assert results["best_psnr"]["fvd"] != pytest.approx(results["worst_psnr"]["fvd"])
    with pytest.raises(ValueError, match="best and worst sample indices"):
        fvd.update(real, fake)
    with pytest.raises(ValueError, match=r"\[B, S, T, H, W, C\]"):
        fvd.update(real, fake[:, 0])


def test_evaluate_feeds_whole_clips_and_selects_by_psnr(records):
    dataset = build_dataset("moving_mnist", records, "test", hparams="context_frames=2,sequence_length=10",
                            num_epochs=1, seed=1)
    model = build_model("savp", dataset, hparams="ngf=4,nef=8,nz=2,batch_size=2")
    embedder = FrameMeanEmbedder(num_frames=10)
    fvd = SampleSelectionFVD(selection_metric="psnr", embedder=embedder)
    accumulator = evaluation.evaluate(model, dataset, ["psnr", "fvd"], num_stochastic_samples=3, batch_size=4,
                                      fvd=fvd)
    assert accumulator.num_videos("psnr") == 6 and "fvd" not in accumulator.metric_names
    # Real clips [B, 10, ...]; predicted clips: 3 samples per video, also the whole 10 frames (2 context + 8).
    assert embedder.calls[0] == (4, 10, 32, 32, 1) and embedder.calls[1] == (12, 10, 32, 32, 1)
    results = fvd.results()
    assert results["first_sample"]["num_real"] == 6 and results["all_samples"]["num_fake"] == 18
    assert all(np.isfinite(entry["fvd"]) and entry["fvd"] >= 0 for entry in results.values())
    # The psnr-best samples are at least as good as sample 0 on every video.
    best = accumulator.results()["psnr"]["best"]["mean"]
    assert np.mean(best) >= np.mean(accumulator.results()["psnr"]["avg"]["mean"]) - 1e-9
    with pytest.raises(ValueError, match="needs that metric"):
        evaluation.evaluate(model, dataset, ["ssim"], num_stochastic_samples=2, fvd=fvd)


def test_evaluate_script_reports_lpips_and_fvd(records, tmp_path, lpips_weights, i3d_weights):
    out = str(tmp_path / "repeat")
    result = run("evaluate.py", "--model", "repeat", "--dataset", "moving_mnist", "--input_dir", records,
                 "--dataset_hparams", "context_frames=2,sequence_length=10", "--output_dir", out,
                 "--metrics", "psnr,lpips,fvd", "--lpips_net", "alex", "--num_samples", "4", "--batch_size", "4")
    payload = json.load(open(os.path.join(out, "metrics.json")))
    assert set(payload["results"]["metrics"]) == {"psnr", "lpips"} and payload["lpips_net"] == "alex"
    fvd = payload["set_metrics"]["fvd"]
    assert set(fvd) == {"first_sample", "best_psnr", "worst_psnr", "all_samples"}
    assert fvd["first_sample"]["num_real"] == 4 and fvd["first_sample"]["fvd"] > 0
    # repeat is deterministic: one sample per video, so every selection is the same set.
    assert fvd["best_psnr"]["fvd"] == pytest.approx(fvd["all_samples"]["fvd"])
    assert "lpips" in result.stdout and "first_sample" in result.stdout
    assert os.path.exists(os.path.join(out, "lpips.png"))
    summary = run("summarize_results.py", out)
    assert "all_samples" in summary.stdout and "lpips" in summary.stdout


def test_fvd_needs_nine_frames(records, tmp_path, i3d_weights):
    result = run("evaluate.py", "--model", "repeat", "--dataset", "moving_mnist", "--input_dir", records,
                 "--dataset_hparams", "context_frames=2,sequence_length=6", "--output_dir", str(tmp_path / "r"),
                 "--metrics", "psnr,fvd", "--num_samples", "2", expect_ok=False)
    assert result.returncode == 1 and "at least 9 frames" in result.stderr
