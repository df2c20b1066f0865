"""Losses of the SAVP family (specs/savp.md §3.7) plus WGAN-GP and hinge (DESIGN.md).

Every function returns the mean over all its elements (a per-replica mean:
callers in a distributed ``train_step`` divide by the number of replicas).
GAN losses take raw discriminator logits.
"""

import math

import tensorflow as tf


def l1_loss(pred, target):
    return tf.reduce_mean(tf.abs(target - pred))


def l2_loss(pred, target):
    return tf.reduce_mean(tf.square(target - pred))


def normalize_tensor(tensor, eps=1e-10):
    """Divide by the L2 norm over the last axis (the original's ``normalize_tensor``)."""
    return tensor / (tf.norm(tensor, axis=-1, keepdims=True) + eps)


def cosine_distance(tensor0, tensor1):
    """``cdist``: mean over positions of ``0.5 * ||n(a) - n(b)||^2`` over the last (channel) axis."""
    tensor0, tensor1 = normalize_tensor(tensor0), normalize_tensor(tensor1)
    return tf.reduce_mean(tf.reduce_sum(tf.square(tensor0 - tensor1), axis=-1)) / 2.0


cdist = cosine_distance


def charbonnier_loss(x, epsilon=0.001):
    return tf.reduce_mean(tf.sqrt(tf.square(x) + epsilon**2))


def kl_loss(mu, log_sigma_sq, mu2=None, log_sigma2_sq=None):
    """KL(N(mu, sigma^2) || N(0, I)) -- or || N(mu2, sigma2^2) when given.

    Summed over the last (latent) axis, averaged over the others.
    """
    if mu2 is None and log_sigma2_sq is None:
        kl = -0.5 * tf.reduce_sum(1 + log_sigma_sq - tf.square(mu) - tf.exp(log_sigma_sq), axis=-1)
    else:
        kl = tf.reduce_sum(
            (log_sigma2_sq - log_sigma_sq) / 2
            + (tf.exp(log_sigma_sq) + tf.square(mu - mu2)) / (2 * tf.exp(log_sigma2_sq))
            - 0.5,
            axis=-1,
        )
    return tf.reduce_mean(kl)


def _sigmoid_kl_with_logits(logits, target):
    """Sigmoid cross-entropy minus the target's entropy (the original's label-smoothing path)."""
    entropy = 0.0 if target in (0.0, 1.0) else -target * math.log(target) - (1 - target) * math.log(1 - target)
    return tf.nn.sigmoid_cross_entropy_with_logits(logits=logits, labels=tf.fill(tf.shape(logits), target)) - entropy


GAN_LOSS_TYPES = ("LSGAN", "GAN", "SNGAN", "WGAN", "WGAN-GP", "HINGE")


def gan_loss(logits, label, loss_type="LSGAN"):
    """Adversarial loss of ``logits`` for target ``label`` (1.0 real / generator, 0.0 fake).

    * ``LSGAN`` (the original's default): ``mean((logits - label)^2)`` on raw logits.
    * ``GAN``: sigmoid cross-entropy (a soft label subtracts its entropy, as the original).
    * ``SNGAN``: ``softplus(-logits)`` for label 1, ``softplus(logits)`` for label 0.
    * ``WGAN`` / ``WGAN-GP``: ``-mean(logits)`` for label 1, ``mean(logits)`` for 0 (add
      :func:`gradient_penalty` to the critic loss for WGAN-GP).
    * ``HINGE``: critic ``mean(relu(1 - logits))`` / ``mean(relu(1 + logits))``; the
      generator uses ``-mean(logits)`` (:func:`generator_gan_loss`).
    """
    label = float(label)
    if loss_type == "LSGAN":
        return tf.reduce_mean(tf.square(logits - label))
    if loss_type == "GAN":
        return tf.reduce_mean(_sigmoid_kl_with_logits(logits, label))
    if loss_type in ("SNGAN", "WGAN", "WGAN-GP", "HINGE"):
        if label not in (0.0, 1.0):
            raise ValueError(f"{loss_type} loss needs label 0.0 or 1.0, got {label}")
        if loss_type == "SNGAN":
            return tf.reduce_mean(tf.nn.softplus(-logits if label == 1.0 else logits))
        if loss_type == "HINGE":
            return tf.reduce_mean(tf.nn.relu(1.0 - logits if label == 1.0 else 1.0 + logits))
        return -tf.reduce_mean(logits) if label == 1.0 else tf.reduce_mean(logits)
    raise ValueError(f"unknown GAN loss type {loss_type!r}; valid: {', '.join(GAN_LOSS_TYPES)}")


def generator_gan_loss(fake_logits, loss_type="LSGAN"):
    """The generator's adversarial loss (hinge uses ``-mean(logits)``; the others ``gan_loss(fake, 1)``)."""
    if loss_type == "HINGE":
        return -tf.reduce_mean(fake_logits)
    return gan_loss(fake_logits, 1.0, loss_type)


def discriminator_gan_loss(real_logits, fake_logits, loss_type="LSGAN"):
    """``gan_loss(real, 1) + gan_loss(fake, 0)``."""
    return gan_loss(real_logits, 1.0, loss_type) + gan_loss(fake_logits, 0.0, loss_type)


def gradient_penalty(critic_fn, real, fake, weight=10.0):
    """WGAN-GP penalty ``weight * mean((||grad critic(x_hat)|| - 1)^2)`` on random interpolates."""
    alpha_shape = tf.concat([tf.shape(real)[:1], tf.ones([tf.rank(real) - 1], tf.int32)], axis=0)
    alpha = tf.random.uniform(alpha_shape)
    interpolates = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        logits = critic_fn(interpolates)
    grads = tape.gradient(logits, interpolates)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=tf.range(1, tf.rank(grads))) + 1e-12)
    return weight * tf.reduce_mean(tf.square(norms - 1.0))
