"""PSNR / MSE / SSIM against scikit-image and tf.image, and input validation."""

import numpy as np
import pytest
import tensorflow as tf
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from video_prediction.metrics import get_metric
from video_prediction.metrics.image_quality import MSE, PSNR, SSIM

# Observed max |ours - skimage| on these inputs: PSNR ~2e-6 dB, SSIM ~1e-7 (float32 vs float64).
PSNR_TOLERANCE_DB = 1e-4
SSIM_TOLERANCE = 1e-5


def video_pairs():
    """(name, targets, predictions) of shape [2, 3, 24, 20, C]: random noise and structured images."""
    rng = np.random.default_rng(0)
    noise = rng.random((2, 3, 24, 20, 3)).astype(np.float32)
    noisy = np.clip(noise + 0.1 * rng.standard_normal(noise.shape), 0, 1).astype(np.float32)
    # Structured: gradients, a moving bright square and a checkerboard, in grayscale.
    yy, xx = np.meshgrid(np.linspace(0, 1, 24), np.linspace(0, 1, 20), indexing="ij")
    frames = []
    for b in range(2):
        for t in range(3):
            image = 0.5 * xx + 0.3 * yy
            image[4 + 2 * t : 10 + 2 * t, 3 + b : 9 + b] = 1.0
            image[::4, ::4] = 0.0
            frames.append(np.clip(image, 0, 1))
    structured = np.asarray(frames, np.float32).reshape(2, 3, 24, 20, 1)
    shifted = np.roll(structured, 1, axis=3)
    blurred = tf.nn.avg_pool2d(structured.reshape(6, 24, 20, 1), 3, 1, "SAME").numpy().reshape(structured.shape)
    return [("noise", noise, noisy), ("structured_shift", structured, shifted),
            ("structured_blur", structured, blurred)]


def per_frame_reference(function, targets, predictions):
    return np.array([[function(targets[b, t], predictions[b, t]) for t in range(targets.shape[1])]
                     for b in range(targets.shape[0])])


@pytest.mark.parametrize("name, targets, predictions", video_pairs())
def test_psnr_and_mse_match_skimage_and_tf(name, targets, predictions):
    psnr = PSNR()(targets, predictions).numpy()
    assert psnr.shape == (2, 3)
    reference = per_frame_reference(lambda x, y: peak_signal_noise_ratio(x, y, data_range=1), targets, predictions)
    assert np.abs(psnr - reference).max() < PSNR_TOLERANCE_DB
    np.testing.assert_allclose(psnr, tf.image.psnr(targets, predictions, max_val=1.0).numpy(), atol=PSNR_TOLERANCE_DB)
    mse = MSE()(targets, predictions).numpy()
    expected_mse = ((targets.astype(np.float64) - predictions) ** 2).mean(axis=(2, 3, 4))
    np.testing.assert_allclose(mse, expected_mse, rtol=1e-5)


@pytest.mark.parametrize("name, targets, predictions", video_pairs())
def test_ssim_matches_skimage_valid_region_and_tf(name, targets, predictions):
    ssim = SSIM()(targets, predictions).numpy()
    assert ssim.shape == (2, 3)
    # skimage filters with reflect padding and then crops (win_size - 1) // 2 = 5 px per side before averaging,
    # which leaves exactly the VALID positions of tf.image.ssim: the two agree up to float32 round-off.
    reference = per_frame_reference(
        lambda x, y: structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                           data_range=1, channel_axis=-1), targets, predictions)
    assert np.abs(ssim - reference).max() < SSIM_TOLERANCE
    np.testing.assert_allclose(ssim, tf.image.ssim(targets, predictions, max_val=1.0).numpy(), atol=SSIM_TOLERANCE)


def test_ssim_uniform_window_with_sample_covariance_is_skimage_default():
    _, targets, predictions = video_pairs()[0]
    ssim = SSIM(window="uniform", filter_size=7, use_sample_covariance=True)(targets, predictions).numpy()
    reference = per_frame_reference(lambda x, y: structural_similarity(x, y, data_range=1, channel_axis=-1),
                                    targets, predictions)
    assert np.abs(ssim - reference).max() < SSIM_TOLERANCE


def test_ssim_reflect_padding_covers_every_pixel():
    _, targets, predictions = video_pairs()[1]
    full_map_mean = SSIM(padding="reflect")(targets, predictions).numpy()
    reference = []
    for b in range(2):
        for t in range(3):
            _, ssim_map = structural_similarity(targets[b, t, ..., 0], predictions[b, t, ..., 0], gaussian_weights=True,
                                                sigma=1.5, use_sample_covariance=False, data_range=1, full=True)
            reference.append(ssim_map.mean())
    np.testing.assert_allclose(full_map_mean.ravel(), reference, atol=SSIM_TOLERANCE)


def test_identical_frames():
    video = np.random.default_rng(1).random((1, 2, 16, 16, 1)).astype(np.float32)
    assert np.all(MSE()(video, video).numpy() == 0)
    np.testing.assert_allclose(PSNR()(video, video).numpy(), 100.0, atol=1e-4)  # MSE floored at 1e-10
    assert PSNR().max_db == pytest.approx(100.0)
    assert np.all(np.isinf(PSNR(mse_floor=0)(video, video).numpy()))
    np.testing.assert_allclose(SSIM()(video, video).numpy(), 1.0, atol=1e-5)


def test_registry_and_metadata():
    for name, higher in (("mse", False), ("psnr", True), ("ssim", True)):
        metric = get_metric(name)
        assert metric.name == name and metric.higher_is_better is higher
    assert get_metric("ssim", filter_size=7).filter_size == 7


def test_works_inside_tf_function():
    _, targets, predictions = video_pairs()[0]
    ssim = SSIM()
    compiled = tf.function(lambda x, y: ssim(x, y))
    np.testing.assert_allclose(compiled(targets, predictions).numpy(), ssim(targets, predictions).numpy(), atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="above 1"):
        compiled(targets, predictions + 2.0)


def test_bad_inputs_raise_value_error():
    video = np.zeros((1, 2, 16, 16, 3), np.float32)
    for metric in (MSE(), PSNR(), SSIM()):
        with pytest.raises(ValueError, match="rank 5"):
            metric(video[0], video[0])
        with pytest.raises(ValueError, match="shapes differ"):
            metric(video, video[:, :1])
        with pytest.raises(ValueError, match=r"in \[0, 1\]"):
            metric(video, video + 1.5)
        with pytest.raises(ValueError, match=r"in \[0, 1\]"):
            metric(video - 0.01, video)
        with pytest.raises(ValueError, match="dtype uint8"):
            metric(video.astype(np.uint8), video.astype(np.uint8))
        metric(video, video + 1e-6)  # within the tolerance
    with pytest.raises(ValueError, match="smaller than the 11x11 window"):
        SSIM()(np.zeros((1, 1, 10, 16, 1), np.float32), np.zeros((1, 1, 10, 16, 1), np.float32))
    with pytest.raises(ValueError, match="window must be"):
        SSIM(window="box")
    with pytest.raises(ValueError, match="padding must be"):
        SSIM(padding="same")
