"""Spectral-normalised conv2d / conv3d / dense with the original's semantics (specs/savp.md §3.4, §8.8).

``keras.layers.SpectralNormalization`` does not match the original: it writes
W/sigma back into the kernel, stops gradients through u and v, initialises u
with stddev 0.02 and uses the raw kernel at inference.  The original
(``spectral_normed_weight``) instead:

* keeps a persistent non-trainable ``u [1, out]`` (truncated normal, stddev 1);
* reshapes W to ``[-1, out]`` and runs one power iteration per forward pass:
  ``v = l2n(u W^T)``, ``u' = l2n(v W)``, ``sigma = v W u'^T``, uses ``W / sigma``
  in every mode, with gradients flowing through u' and v;
* assigns ``u <- u'`` once per training step (its UPDATE_OPS).

Here the assignment happens in a forward pass with ``training=True``; the SAVP
model makes exactly one such pass per step (real and fake clips batched
together) so u advances once per step as in the original.
"""

import keras
import tensorflow as tf

from video_prediction.layers.resampling import kernel_initializer


def _l2_normalize(v, eps=1e-12):
    # The original's l2normalize: v / (||v|| + eps) over the whole [1, n] vector.
    return v / (tf.norm(v) + eps)


class _SpectralNormBase(keras.layers.Layer):
    """Owns ``kernel``, ``u`` and ``bias``; subclasses define the kernel shape and the op."""

    def __init__(self, units, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.use_bias = use_bias

    def _kernel_shape(self, input_shape):
        raise NotImplementedError

    def build(self, input_shape):
        # autocast=False: the power iteration reads the float32 kernel (normalized_kernel).
        self.kernel = self.add_weight(name="kernel", shape=self._kernel_shape(input_shape),
                                      initializer=kernel_initializer(), autocast=False)
        # Every replica computes the same u' from the same W and u, so keeping
        # the first replica's value is exact.
        self.u = self.add_weight(
            name="u", shape=(1, self.units), initializer=keras.initializers.TruncatedNormal(stddev=1.0),
            trainable=False, aggregation="only_first_replica", autocast=False,
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros") if self.use_bias else None

    def normalized_kernel(self, training=False):
        """``W / sigma`` after one power iteration; assigns u' to ``u`` when ``training``.

        The iteration runs in float32 whatever the compute dtype (issue 18): u and v are unit vectors
        of thousands of entries whose norms bfloat16's 8-bit mantissa would round; only W / sigma is cast to
        the compute dtype for the convolution."""
        kernel = tf.convert_to_tensor(self.kernel)
        w = tf.reshape(kernel, [-1, self.units])
        v = _l2_normalize(tf.matmul(tf.convert_to_tensor(self.u), w, transpose_b=True))
        u = _l2_normalize(tf.matmul(v, w))
        sigma = tf.squeeze(tf.matmul(tf.matmul(v, w), u, transpose_b=True))
        if training:
            self.u.assign(u)
        return tf.cast(kernel / sigma, self.compute_dtype)

    def _add_bias(self, outputs):
        return tf.nn.bias_add(outputs, self.bias) if self.bias is not None else outputs

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, use_bias=self.use_bias)
        return config


class SNDense(_SpectralNormBase):
    """Spectral-normalised dense layer (``sn_fc4``), kernel ``[in, units]``."""

    def _kernel_shape(self, input_shape):
        return (input_shape[-1], self.units)

    def call(self, inputs, training=False):
        return self._add_bias(tf.matmul(inputs, self.normalized_kernel(training)))


class SNConv(_SpectralNormBase):
    """Spectral-normalised 2-D or 3-D convolution, zero-padded by ``padding`` then VALID (as the original's D)."""

    def __init__(self, filters, kernel_size, strides=1, rank=2, padding=1, use_bias=True, **kwargs):
        super().__init__(filters, use_bias=use_bias, **kwargs)
        self.rank = int(rank)
        self.kernel_size = self._tuple(kernel_size)
        self.strides = self._tuple(strides)
        self.padding = int(padding)

    def _tuple(self, value):
        return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * self.rank

    def _kernel_shape(self, input_shape):
        return self.kernel_size + (input_shape[-1], self.units)

    def call(self, inputs, training=False):
        kernel = self.normalized_kernel(training)
        if self.padding:
            inputs = tf.pad(inputs, [[0, 0]] + [[self.padding, self.padding]] * self.rank + [[0, 0]])
        strides = (1,) + self.strides + (1,)
        if self.rank == 2:
            outputs = tf.nn.conv2d(inputs, kernel, strides=strides, padding="VALID")
        else:
            outputs = tf.nn.conv3d(inputs, kernel, strides=strides, padding="VALID")
        return self._add_bias(outputs)

    def get_config(self):
        config = super().get_config()
        config.update(filters=config.pop("units"), kernel_size=self.kernel_size, strides=self.strides,
                      rank=self.rank, padding=self.padding)
        return config
