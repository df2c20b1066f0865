"""The SAVP generator's resampling convolutions (specs/savp.md §3.4, §8.1).

* :class:`ConvPool2D` (``conv_pool2d``): a stride-1 SAME convolution followed
  by 2x2 average pooling.  Like the original it is computed as one stride-2
  convolution with the kernel average-pooled (FULL padding) into a
  (k+1)x(k+1) kernel, which is the same function at about a third of the cost.
* :class:`UpsampleConv2D` (``upsample_conv2d``): bilinear x2 upsampling as a
  transposed convolution with the fixed taps [0.25, 0.75, 0.75, 0.25] and VALID
  padding (size 2H+2, i.e. *zero-padded* bilinear at the borders), then a kxk
  convolution cropped to 2H x 2W exactly as the original's fused
  ``deconv2d(SAME)`` crops (for k=3 this is a VALID convolution).

Both keep the variables of the original: ``kernel [k, k, in, out]`` and ``bias``.
"""

import keras
import numpy as np
import tensorflow as tf

# The original's initializer for every conv/dense kernel (specs/savp.md §3.4).
KERNEL_INITIALIZER_STDDEV = 0.02


def kernel_initializer():
    return keras.initializers.TruncatedNormal(stddev=KERNEL_INITIALIZER_STDDEV)


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value), int(value))


class _Conv2DBase(keras.layers.Layer):
    """Holds ``kernel [kh, kw, in, out]`` and optional ``bias [out]``."""

    def __init__(self, filters, kernel_size, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size)
        self.use_bias = use_bias

    def build(self, input_shape):
        in_channels = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel", shape=self.kernel_size + (in_channels, self.filters), initializer=kernel_initializer()
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None

    def _add_bias(self, outputs):
        return tf.nn.bias_add(outputs, self.bias) if self.bias is not None else outputs

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, use_bias=self.use_bias)
        return config


class Conv2D(_Conv2DBase):
    """SAME convolution with the original's init (``conv2d`` of ops.py); ``strides`` 1 or 2."""

    def __init__(self, filters, kernel_size, strides=1, use_bias=True, **kwargs):
        super().__init__(filters, kernel_size, use_bias=use_bias, **kwargs)
        self.strides = int(strides)

    def call(self, inputs):
        return self._add_bias(tf.nn.conv2d(inputs, self.kernel, strides=self.strides, padding="SAME"))

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        s = self.strides
        return (b, None if h is None else -(-h // s), None if w is None else -(-w // s), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(strides=self.strides)
        return config


class Deconv2D(_Conv2DBase):
    """``deconv2d`` of ops.py: stride-2 SAME transposed conv, kernel ``[k, k, out, in]``."""

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=self.kernel_size + (self.filters, input_shape[-1]), initializer=kernel_initializer()
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None

    def call(self, inputs):
        shape = tf.shape(inputs)
        output_shape = tf.stack([shape[0], 2 * shape[1], 2 * shape[2], self.filters])
        outputs = tf.nn.conv2d_transpose(inputs, self.kernel, output_shape, strides=2, padding="SAME")
        b, h, w, _ = inputs.shape
        outputs.set_shape((b, None if h is None else 2 * h, None if w is None else 2 * w, self.filters))
        return self._add_bias(outputs)


def average_pooled_kernel(kernel):
    """[k, k, in, out] -> [k+1, k+1, in, out]: the kernel of ``conv(SAME) + avgpool(2)`` as one stride-2 conv.

    The zero-padded kernel's 2x2 means, computed as one ``avg_pool2d`` over the kernel seen as a
    [1, k+2, k+2, in*out] image: its gradient is one AvgPoolGrad, where four shifted slices of the
    padded kernel cost four full-size StridedSliceGrads per call (40x slower for a 5x5x128x128 kernel,
    and the layer runs at every time step).
    """
    kh, kw, cin, cout = kernel.shape
    flat = tf.pad(tf.reshape(kernel, [1, kh, kw, cin * cout]), [[0, 0], [1, 1], [1, 1], [0, 0]])
    return tf.reshape(tf.nn.avg_pool2d(flat, 2, 1, "VALID"), [kh + 1, kw + 1, cin, cout])


class ConvPool2D(_Conv2DBase):
    """``conv_pool2d``: SAME stride-1 conv then 2x2/2 average pooling (H, W must be even)."""

    def call(self, inputs):
        # For an even input size, SAME padding of the (k+1)-kernel with stride 2
        # pads (k-1)//2 before, the same offset as the stride-1 SAME conv, so this
        # is exactly conv + pool (checked in tests/test_layers.py).
        kernel = average_pooled_kernel(self.kernel)
        return self._add_bias(tf.nn.conv2d(inputs, kernel, strides=2, padding="SAME"))

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else h // 2, None if w is None else w // 2, self.filters)


def _bilinear_upsample_axis(x, axis):
    """Transposed conv with taps [0.25, 0.75, 0.75, 0.25], stride 2, VALID, along ``axis`` (n -> 2n+2)."""
    # With x_p = x zero-padded by one on both sides: lower[j] = x_p[j] = x[j-1], upper[j] = x_p[j+1] = x[j]
    # (j = 0..n), each one pad of x, whose gradient is a slice (gathers or slices of x_p cost a
    # full-size scatter or StridedSliceGrad in the backward pass).
    before, after = [[0, 0]] * len(x.shape), [[0, 0]] * len(x.shape)
    before[axis], after[axis] = [1, 0], [0, 1]
    lower, upper = tf.pad(x, before), tf.pad(x, after)
    even = 0.75 * lower + 0.25 * upper  # out[2m]   = 0.25 x[m] + 0.75 x[m-1]
    odd = 0.25 * lower + 0.75 * upper  # out[2m+1] = 0.75 x[m] + 0.25 x[m-1]
    stacked = tf.stack([even, odd], axis=axis + 1)
    shape = tf.shape(stacked)
    new_shape = tf.concat([shape[:axis], [shape[axis] * 2], shape[axis + 2 :]], axis=0)
    out = tf.reshape(stacked, new_shape)
    static = x.shape.as_list()
    if static[axis] is not None:
        static[axis] = 2 * static[axis] + 2
    out.set_shape(static)
    return out


def bilinear_upsample_zero_padded(inputs):
    """[B, H, W, C] -> [B, 2H+2, 2W+2, C]: the original's bilinear transposed conv with VALID padding.

    The interior [1:-1] equals half-pixel bilinear x2 upsampling with edge
    replication except at the outermost rows/columns, which blend with zeros.
    """
    return _bilinear_upsample_axis(_bilinear_upsample_axis(inputs, 1), 2)


class UpsampleConv2D(_Conv2DBase):
    """``upsample_conv2d``: zero-padded bilinear x2 upsampling fused with a kxk conv, output 2H x 2W.

    Computed as the original did (:func:`fused_upsample_conv2d`): one transposed convolution of the input
    with the bilinear kernel convolved into the weights.  Issue 18 measured it against upsampling first and
    convolving the 2H+2 map (:func:`upsample_conv2d_reference`, the same function): 20-26% faster forward +
    backward on one core, and the backward pass keeps the H x W input instead of the 2H+2 map (a
    ``tf.while_loop`` stores it per time step: 3.7 MiB per step for SAVP's ``h5`` at B=4).
    """

    def call(self, inputs):
        return self._add_bias(fused_upsample_conv2d(inputs, self.kernel))

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, self.filters)


def fused_upsample_conv2d(inputs, kernel):
    """The original's ``upsample_conv2d``: the 4x4 bilinear kernel convolved into ``kernel``, then a stride-2
    ``SAME`` transposed convolution; [B, H, W, Cin] -> [B, 2H, 2W, Cout]."""
    bilinear = np.array([0.25, 0.75, 0.75, 0.25], np.float32)
    bilinear_2d = tf.constant(np.outer(bilinear, bilinear)[None, :, :, None], kernel.dtype)
    kh, kw, cin, cout = kernel.shape
    # FULL convolution of the 4x4 bilinear kernel with each kxk kernel slice.
    kernel_flat = tf.reshape(tf.transpose(kernel, [0, 1, 3, 2]), [kh, kw, 1, cin * cout])
    padded = tf.pad(bilinear_2d, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]])
    fused = tf.nn.conv2d(padded, kernel_flat, strides=1, padding="VALID")[0]  # [kh+3, kw+3, cin*cout]
    fused = tf.reshape(fused, [kh + 3, kw + 3, cout, cin])
    shape = tf.shape(inputs)
    output_shape = tf.stack([shape[0], 2 * shape[1], 2 * shape[2], cout])
    outputs = tf.nn.conv2d_transpose(inputs, fused, output_shape, strides=2, padding="SAME")
    b, h, w, _ = inputs.shape
    outputs.set_shape([b, None if h is None else 2 * h, None if w is None else 2 * w, cout])
    return outputs


def upsample_conv2d_reference(inputs, kernel):
    """:func:`fused_upsample_conv2d` as upsampling then a VALID convolution (an independent formulation, kept
    for tests; not used by the models): the kxk conv of the 2H+2 bilinear map, cropped to 2H x 2W."""
    upsampled = bilinear_upsample_zero_padded(inputs)  # 2H+2
    # The fused deconv2d(SAME) keeps rows [(k+1)//2, (k+1)//2 + 2H) of the FULL convolution of the
    # upsampled map; in VALID-conv coordinates that is an offset of (k+1)//2 - (k-1), i.e. 0 for k = 3.
    paddings = [[0, 0]]
    crops = []
    for k in kernel.shape[:2]:
        before = (k - 1) - (k + 1) // 2  # zero rows to add before (negative: crop)
        after = k - 3 - before
        paddings.append([max(before, 0), max(after, 0)])
        crops.append((max(-before, 0), max(-after, 0)))
    paddings.append([0, 0])
    if any(p for pair in paddings for p in pair):
        upsampled = tf.pad(upsampled, paddings)
    if any(c for pair in crops for c in pair):
        (top, bottom), (left, right) = crops
        upsampled = upsampled[:, top : tf.shape(upsampled)[1] - bottom, left : tf.shape(upsampled)[2] - right]
    return tf.nn.conv2d(upsampled, kernel, strides=1, padding="VALID")


DOWNSAMPLE_LAYERS = ("conv_pool2d", "conv2d")
UPSAMPLE_LAYERS = ("upsample_conv2d", "deconv2d")


def make_downsample_layer(layer_type, filters, kernel_size, name=None):
    """The generator's x1/2 layer by the original's ``downsample_layer`` name."""
    if layer_type == "conv_pool2d":
        return ConvPool2D(filters, kernel_size, name=name)
    if layer_type == "conv2d":
        return Conv2D(filters, kernel_size, strides=2, name=name)
    raise ValueError(f"unknown downsample_layer {layer_type!r}; valid: {', '.join(DOWNSAMPLE_LAYERS)}")


def make_upsample_layer(layer_type, filters, kernel_size, name=None):
    """The generator's x2 layer by the original's ``upsample_layer`` name."""
    if layer_type == "upsample_conv2d":
        return UpsampleConv2D(filters, kernel_size, name=name)
    if layer_type == "deconv2d":
        return Deconv2D(filters, kernel_size, name=name)
    raise ValueError(f"unknown upsample_layer {layer_type!r}; valid: {', '.join(UPSAMPLE_LAYERS)}")
