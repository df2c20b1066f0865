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
        mean, variance = tf.nn.moments(x, axes=axes, keepdims=True)
        outputs = (x - mean) * tf.math.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            outputs = outputs * self.gamma
        if self.beta is not None:
            outputs = outputs + self.beta
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
