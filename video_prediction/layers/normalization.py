"""Normalisation layers with the original SAVP semantics (specs/savp.md §3.4).

* :class:`InstanceNormalization` is the original's ``fused_instance_norm``:
  per-sample, per-channel mean and biased variance over every axis between
  batch and channels, ``epsilon=1e-6``, learned ``gamma`` (init 1) and ``beta``
  (init 0) per channel.
* :class:`LayerNormalization` is ``tf.contrib.layers.layer_norm`` as the
  original called it: statistics over every non-batch axis, parameters per
  channel, ``epsilon=1e-12``.

Both are small own layers rather than ``keras.layers.GroupNormalization``
(whose default epsilon is 1e-3 and which reshapes into groups) so that the
epsilon and the variable names (``gamma``/``beta``) are the original's.
"""

import keras
import tensorflow as tf


def normalize(x, axes, epsilon, gamma=None, beta=None):
    """``(x - mean) / sqrt(var + epsilon) * gamma + beta``, moments over ``axes``, with a hand-written gradient.

    ``gamma`` and ``beta`` (either may be ``None``) are per channel (the last axis).  The value is what
    ``tf.nn.moments`` and the same arithmetic give (biased variance); the gradient is the closed form

        dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + epsilon),   g = dy * gamma,

    with the means over ``axes``.  Autodiff through ``tf.nn.moments`` builds about three times as many
    element-wise ops (the squared difference, the broadcast means and their tiles): issue 18 measured
    20-25% off a normalisation's forward + backward time on one core.
    """
    channel_sums = list(range(len(x.shape) - 1))  # gamma/beta gradients: every axis but the channels
    params = [p for p in (gamma, beta) if p is not None]

    @tf.custom_gradient
    def forward(x, *affine):
        mean = tf.reduce_mean(x, axes, keepdims=True)
        centred = x - mean
        inv_std = tf.math.rsqrt(tf.reduce_mean(tf.square(centred), axes, keepdims=True) + epsilon)
        x_hat = centred * inv_std
        outputs = x_hat
        if gamma is not None:
            outputs = outputs * affine[0]
        if beta is not None:
            outputs = outputs + affine[-1]

        def gradient(dy):
            g = dy * affine[0] if gamma is not None else dy
            dx = (g - tf.reduce_mean(g, axes, keepdims=True)
                  - x_hat * tf.reduce_mean(g * x_hat, axes, keepdims=True)) * inv_std
            param_grads = []
            if gamma is not None:
                param_grads.append(tf.reduce_sum(dy * x_hat, channel_sums))
            if beta is not None:
                param_grads.append(tf.reduce_sum(dy, channel_sums))
            return (dx, *param_grads)

        return outputs, gradient

    return forward(x, *[tf.convert_to_tensor(p) for p in params])


class _ChannelAffineNormalization(keras.layers.Layer):
    """Normalise over ``_moment_axes`` then scale/shift per channel."""

    def __init__(self, epsilon, center=True, scale=True, beta_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.beta_initializer = beta_initializer
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{type(self).__name__} needs a known channel dimension, got shape {input_shape}")
        # autocast=False: gamma/beta are applied in float32 with the statistics (call).
        self.gamma = (self.add_weight(name="gamma", shape=(channels,), initializer="ones", autocast=False)
                      if self.scale else None)
        self.beta = None
        if self.center:
            self.beta = self.add_weight(name="beta", shape=(channels,), initializer=self.beta_initializer,
                                        autocast=False)

    def _moment_axes(self, rank):
        raise NotImplementedError

    def call(self, inputs):
        axes = self._moment_axes(len(inputs.shape))
        # Statistics in float32 under mixed precision (issue 18): a bfloat16 sum over a 64x64 map keeps 8
        # significant bits, and variance + 1e-12 (layer norm's epsilon) is 0 in float16.
        x = tf.cast(inputs, tf.float32)
        outputs = normalize(x, axes, self.epsilon, gamma=self.gamma, beta=self.beta)
        return tf.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon, center=self.center, scale=self.scale,
                      beta_initializer=self.beta_initializer)
        return config


class InstanceNormalization(_ChannelAffineNormalization):
    """Instance norm over the spatial (and temporal) axes; epsilon 1e-6 as ``fused_instance_norm``."""

    def __init__(self, epsilon=1e-6, center=True, scale=True, beta_initializer="zeros", **kwargs):
        super().__init__(epsilon=epsilon, center=center, scale=scale, beta_initializer=beta_initializer, **kwargs)

    def _moment_axes(self, rank):
        if rank < 3:
            raise ValueError("instance normalisation needs at least one axis between batch and channels")
        return list(range(1, rank - 1))


class LayerNormalization(_ChannelAffineNormalization):
    """Layer norm over every non-batch axis, per-channel gain/shift; epsilon 1e-12 as TF1 contrib ``layer_norm``."""

    def __init__(self, epsilon=1e-12, center=True, scale=True, beta_initializer="zeros", **kwargs):
        super().__init__(epsilon=epsilon, center=center, scale=scale, beta_initializer=beta_initializer, **kwargs)

    def _moment_axes(self, rank):
        return list(range(1, rank))


NORM_LAYERS = ("instance", "layer", "none")


def make_norm_layer(norm_type, name=None, beta_initializer="zeros"):
    """A normalisation layer by the original's ``norm_layer`` name; ``None`` for ``'none'``."""
    if norm_type == "instance":
        return InstanceNormalization(name=name, beta_initializer=beta_initializer)
    if norm_type == "layer":
        return LayerNormalization(name=name, beta_initializer=beta_initializer)
    if norm_type == "none":
        return None
    raise ValueError(f"unknown norm layer {norm_type!r}; valid: {', '.join(NORM_LAYERS)}")
