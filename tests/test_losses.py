"""Losses against hand computations (specs/savp.md §3.7)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from video_prediction import losses

LOGITS = np.array([[-1.5], [0.0], [0.5], [2.0]], np.float32)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.log1p(np.exp(x))


def test_lsgan_on_raw_logits():
    assert float(losses.gan_loss(LOGITS, 1.0, "LSGAN")) == pytest.approx(np.mean((LOGITS - 1) ** 2))
    assert float(losses.gan_loss(LOGITS, 0.0, "LSGAN")) == pytest.approx(np.mean(LOGITS**2))
    assert float(losses.gan_loss(LOGITS, 1.0)) == pytest.approx(np.mean((LOGITS - 1) ** 2))  # default type


def test_gan_sigmoid_cross_entropy():
    real = -np.mean(np.log(sigmoid(LOGITS)))
    fake = -np.mean(np.log(1 - sigmoid(LOGITS)))
    assert float(losses.gan_loss(LOGITS, 1.0, "GAN")) == pytest.approx(real, rel=1e-5)
    assert float(losses.gan_loss(LOGITS, 0.0, "GAN")) == pytest.approx(fake, rel=1e-5)
    # A soft label subtracts its entropy (the original's sigmoid_kl_with_logits).
    p = 0.9
    ce = -np.mean(p * np.log(sigmoid(LOGITS)) + (1 - p) * np.log(1 - sigmoid(LOGITS)))
    entropy = -p * math.log(p) - (1 - p) * math.log(1 - p)
    assert float(losses.gan_loss(LOGITS, p, "GAN")) == pytest.approx(ce - entropy, rel=1e-4)


def test_sngan_softplus_wgan_hinge():
    assert float(losses.gan_loss(LOGITS, 1.0, "SNGAN")) == pytest.approx(np.mean(softplus(-LOGITS)), rel=1e-5)
    assert float(losses.gan_loss(LOGITS, 0.0, "SNGAN")) == pytest.approx(np.mean(softplus(LOGITS)), rel=1e-5)
    assert float(losses.gan_loss(LOGITS, 1.0, "WGAN-GP")) == pytest.approx(-np.mean(LOGITS))
    assert float(losses.gan_loss(LOGITS, 0.0, "WGAN-GP")) == pytest.approx(np.mean(LOGITS))
    assert float(losses.gan_loss(LOGITS, 1.0, "HINGE")) == pytest.approx(np.mean(np.maximum(0, 1 - LOGITS)))
    assert float(losses.gan_loss(LOGITS, 0.0, "HINGE")) == pytest.approx(np.mean(np.maximum(0, 1 + LOGITS)))
    assert float(losses.generator_gan_loss(LOGITS, "HINGE")) == pytest.approx(-np.mean(LOGITS))
    d = losses.discriminator_gan_loss(LOGITS, -LOGITS, "LSGAN")
    assert float(d) == pytest.approx(np.mean((LOGITS - 1) ** 2) + np.mean(LOGITS**2))


def test_unknown_gan_loss_type_lists_valid_types():
    with pytest.raises(ValueError, match="LSGAN.*GAN.*SNGAN"):
        losses.gan_loss(LOGITS, 1.0, "WHATEVER")


def test_gradient_penalty_of_linear_critic():
    w = tf.constant([[3.0], [4.0]])  # ||grad|| = 5 everywhere
    penalty = losses.gradient_penalty(lambda x: tf.matmul(x, w), tf.zeros([3, 2]), tf.ones([3, 2]), weight=10.0)
    assert float(penalty) == pytest.approx(10.0 * 16.0, rel=1e-5)


def test_kl_to_standard_normal_and_between_gaussians():
    rng = np.random.default_rng(0)
    mu, log_var = rng.normal(size=(3, 4, 5)).astype(np.float32), rng.normal(size=(3, 4, 5)).astype(np.float32)
    expected = np.mean(np.sum(0.5 * (np.exp(log_var) + mu**2 - 1 - log_var), axis=-1))
    assert float(losses.kl_loss(mu, log_var)) == pytest.approx(expected, rel=1e-5)
    mu2, log_var2 = rng.normal(size=mu.shape).astype(np.float32), rng.normal(size=mu.shape).astype(np.float32)
    var1, var2 = np.exp(log_var), np.exp(log_var2)
    kl = 0.5 * (np.log(var2 / var1) + (var1 + (mu - mu2) ** 2) / var2 - 1)
    assert float(losses.kl_loss(mu, log_var, mu2, log_var2)) == pytest.approx(np.mean(kl.sum(-1)), rel=1e-5)
    # KL vs N(0, I) given explicitly equals the closed form.
    zeros = np.zeros_like(mu)
    assert float(losses.kl_loss(mu, log_var, zeros, zeros)) == pytest.approx(expected, rel=1e-5)


def test_reconstruction_and_feature_losses():
    a = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    b = np.array([[0.0, 2.0], [5.0, 4.0]], np.float32)
    assert float(losses.l1_loss(a, b)) == pytest.approx(0.75)
    assert float(losses.l2_loss(a, b)) == pytest.approx(1.25)
    assert float(losses.charbonnier_loss(a - b)) == pytest.approx(np.mean(np.sqrt((a - b) ** 2 + 1e-6)))
    na = a / np.linalg.norm(a, axis=-1, keepdims=True)
    nb = b / np.linalg.norm(b, axis=-1, keepdims=True)
    assert float(losses.cosine_distance(a, b)) == pytest.approx(np.mean(0.5 * np.sum((na - nb) ** 2, -1)), rel=1e-5)
    assert float(losses.cdist(a, a)) == pytest.approx(0.0, abs=1e-7)
