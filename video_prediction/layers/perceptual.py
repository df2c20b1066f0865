"""Frozen perceptual networks of the visual-analogy generator (specs/hierarchical_lstm.md §3.4).

* :class:`AlexNetConv5`: the BVLC AlexNet (caffe-tensorflow port, ``bvlc_alexnet.npy``)
  up to conv5+ReLU: conv1 11x11/4 SAME, TF LRN (radius 2, alpha 2e-5, beta 0.75,
  bias 1), 3x3/2 VALID pools, 2-group conv2/conv4/conv5 (split + concat).
* :class:`HourglassFeatures`: the first stack of Newell et al.'s 2-stack hourglass
  (``hourglass_weights_{1..800}.npy``, the first 414 arrays used): legacy TF1
  bilinear resizes (align_corners False, half_pixel_centers False), SAME convs,
  batch-moment BN with offset ``params[idx]`` and ``params[idx+1]`` ignored
  (eps 1e-5); returns the hourglass's per-level outputs, innermost first
  (``[8^2, 16^2, 32^2, 64^2] x 512`` for a 128x128 input).

Both hold their arrays as non-trainable weights: frozen but differentiable, as
the original's ``tf.Variable``s outside the optimisers' name filters.

Readers: :func:`read_alexnet_file` reads the pickled ``.npy`` with the
restricted unpickler; :func:`read_hourglass_dir` reads the 800 plain ``.npy``
files and converts 4-D Torch ``[O, I, H, W]`` kernels to ``[H, W, I, O]``.
Every array is checked by position against :func:`hourglass_param_shapes` /
:data:`ALEXNET_SHAPES`; a missing file, a wrong count or shape is a
``ValueError`` naming it.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from video_prediction.conversion.formats.safe_unpickle import restricted_load

#: The original's download (perceptual_models/download.sh, spec §3.4): url, archive name, extracted path.
PERCEPTUAL_DOWNLOADS = {
    "hourglass": ("https://umich.box.com/shared/static/dhamhcgw57h9anotvhwfg940lcmgskpj.gz", "hourglass.tar.gz",
                  "hourglass/hourglass_weights_1.npy"),
    "alexnet": ("https://umich.box.com/shared/static/6dvzphk83f5pqu4hjug48olthqztkn7w.gz", "alexnet.tar.gz",
                "alexnet/bvlc_alexnet.npy"),
}
HOW_TO_GET = ("python pretrained_models/download_perceptual_models.py --output_dir DIR (the original's "
              "perceptual_models/download.sh archives), then perceptual_models_dir=DIR")

#: caffe-tensorflow BVLC AlexNet layers used (kernel HWIO with per-group input channels, bias).
ALEXNET_SHAPES = {
    "conv1": ((11, 11, 3, 96), (96,)),
    "conv2": ((5, 5, 48, 256), (256,)),
    "conv3": ((3, 3, 256, 384), (384,)),
    "conv4": ((3, 3, 192, 384), (384,)),
    "conv5": ((3, 3, 192, 256), (256,)),
}
ALEXNET_GROUPS = {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}
NUM_HOURGLASS_FILES = 800  # the 2-stack model; the first stack's hourglass ends at array 414
NUM_HOURGLASS_USED = 414


class PerceptualWeightsMissing(ValueError):
    """The original's perceptual model files are not where the hparams say."""


def download_perceptual_models(output_dir, which=("alexnet", "hourglass"), downloads=None, progress=True):
    """Download (resumable) the original's archives, verify and extract them; returns the checked files.

    ``output_dir`` receives ``alexnet/bvlc_alexnet.npy`` and ``hourglass/hourglass_weights_{1..800}.npy``
    as ``perceptual_models/download.sh`` leaves them; every file is then read and checked
    (:func:`read_alexnet_file`, :func:`read_hourglass_dir`).  The box.com archives publish no checksum:
    the tar is verified member by member before extracting.  ``downloads`` overrides
    :data:`PERCEPTUAL_DOWNLOADS` (tests).
    """
    from video_prediction.download import download_file, extract_archive, verify_archive

    downloads = downloads or PERCEPTUAL_DOWNLOADS
    checked = {}
    for name in which:
        url, archive_name, marker = downloads[name]
        if not os.path.exists(os.path.join(output_dir, marker)):
            archive = download_file(url, os.path.join(output_dir, archive_name), progress=progress)
            verify_archive(archive)
            extract_archive(archive, output_dir, skip_existing=True)
        if name == "alexnet":
            checked[name] = read_alexnet_file(os.path.join(output_dir, "alexnet", "bvlc_alexnet.npy"))
        else:
            checked[name] = read_hourglass_dir(os.path.join(output_dir, "hourglass"))
    return checked


# -- AlexNet ------------------------------------------------------------------------------------


def read_npy_pickle(path):
    """The object stored in a pickled ``.npy`` (e.g. a Python 2 ``np.save`` of a dict), restricted unpickler."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            _, _, dtype = np.lib.format.read_array_header_2_0(f)
        if not dtype.hasobject:
            raise ValueError(f"{path} holds a plain {dtype} array, not the pickled dict of bvlc_alexnet.npy")
        value = restricted_load(f, encoding="latin1")
    return value.item() if isinstance(value, np.ndarray) and value.shape == () else value


def read_alexnet_file(path):
    """``{layer: (kernel, bias)}`` of ``bvlc_alexnet.npy``, checked against :data:`ALEXNET_SHAPES`."""
    if not os.path.isfile(path):
        raise PerceptualWeightsMissing(f"AlexNet weights {path} not found; get them with: {HOW_TO_GET}")
    data = read_npy_pickle(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of layers, got {type(data).__name__}")
    weights = {}
    for layer, shapes in ALEXNET_SHAPES.items():
        if layer not in data:
            raise ValueError(f"{path} has no layer {layer!r} (has {sorted(data)})")
        arrays = tuple(np.asarray(a, np.float32) for a in data[layer])
        got = tuple(a.shape for a in arrays)
        if got != shapes:
            raise ValueError(f"{path}: layer {layer!r} has arrays of shapes {got}, expected {shapes}")
        weights[layer] = arrays
    return weights


def grouped_conv(x, kernel, stride, groups):
    """caffe-tensorflow's grouped SAME conv: split input and kernel (output axis) into groups, concat."""
    conv = lambda i, k: tf.nn.conv2d(i, k, [1, stride, stride, 1], padding="SAME")
    if groups == 1:
        return conv(x, kernel)
    inputs = tf.split(x, groups, axis=3)
    kernels = tf.split(kernel, groups, axis=3)
    return tf.concat([conv(i, k) for i, k in zip(inputs, kernels)], axis=3)


class AlexNetConv5(keras.layers.Layer):
    """Frozen BVLC AlexNet conv1..conv5 (+ReLU) of ``alexnet.py``; input already mean-subtracted 0-255 BGR."""

    def __init__(self, weights, **kwargs):
        super().__init__(trainable=False, **kwargs)
        for layer, (kernel, bias) in weights.items():  # named attributes, so tf.train.Checkpoint sees them
            for suffix, array in (("W", kernel), ("b", bias)):
                weight = self.add_weight(name=f"{layer}_{suffix}", shape=array.shape, initializer="zeros",
                                         trainable=False)
                weight.assign(array)
                setattr(self, f"{layer}_{suffix}", weight)

    @property
    def params(self):
        return {layer: (getattr(self, f"{layer}_W"), getattr(self, f"{layer}_b")) for layer in ALEXNET_SHAPES}

    def call(self, x):
        lrn = lambda h: tf.nn.local_response_normalization(h, depth_radius=2, alpha=2e-5, beta=0.75, bias=1.0)
        pool = lambda h: tf.nn.max_pool2d(h, 3, 2, "VALID")

        def conv(name, h, stride=1):
            kernel, bias = self.params[name]
            return tf.nn.relu(tf.nn.bias_add(grouped_conv(h, kernel, stride, ALEXNET_GROUPS[name]), bias))

        h = pool(lrn(conv("conv1", x, 4)))
        h = pool(lrn(conv("conv2", h)))
        return conv("conv5", conv("conv4", conv("conv3", h)))


def alexnet_input(x01):
    """The original's AlexNet input: ``x01*255 - mean(x01*255)`` with ONE scalar mean over the whole batch."""
    scaled = x01 * 255.0
    return scaled - tf.reduce_mean(scaled)


# -- Hourglass ----------------------------------------------------------------------------------


def _residual_shapes(num_in, num_out):
    half = num_out // 2
    shapes = [(num_in,), (num_in,), (1, 1, num_in, half), (half,),
              (half,), (half,), (3, 3, half, half), (half,),
              (half,), (half,), (1, 1, half, num_out), (num_out,)]
    if num_in != num_out:
        shapes += [(1, 1, num_in, num_out), (num_out,)]
    return shapes


def _hourglass_shapes(n, num_in, num_out):
    shapes = _residual_shapes(num_in, 256) + _residual_shapes(256, 256) + _residual_shapes(256, num_out)
    shapes += _residual_shapes(num_in, 256) + _residual_shapes(256, 256) + _residual_shapes(256, 256)
    shapes += _hourglass_shapes(n - 1, 256, num_out) if n > 1 else _residual_shapes(256, num_out)
    return shapes + _residual_shapes(num_out, num_out)


def hourglass_param_shapes():
    """Shapes (TF layout) of the first 414 arrays in the order ``hg_stacked.py`` consumes them.

    Stem: conv 7x7/2 3->64 (W, b), BN(64) (beta, gamma); Res(64,128), pool, Res(128,128) x2,
    Res(128,256); hourglass(4, 256, 512).  Residual: [beta, gamma, W, b] x 3 (1x1, 3x3, 1x1), then the
    1x1 skip conv (W, b) when the widths differ.  Kernel sizes follow Newell's model (spec §3.4).
    """
    shapes = [(7, 7, 3, 64), (64,), (64,), (64,)]
    shapes += _residual_shapes(64, 128) + _residual_shapes(128, 128) + _residual_shapes(128, 128)
    shapes += _residual_shapes(128, 256) + _hourglass_shapes(4, 256, 512)
    assert len(shapes) == NUM_HOURGLASS_USED
    return shapes


def torch_to_tf_kernel(array):
    """Torch ``[O, I, H, W]`` -> TF ``[H, W, I, O]`` (the original's ``swapaxes(0,1).swapaxes(0,2).swapaxes(1,3)``)."""
    return np.ascontiguousarray(array.swapaxes(0, 1).swapaxes(0, 2).swapaxes(1, 3))


def read_hourglass_dir(directory):
    """The first 414 arrays of ``hourglass_weights_{1..800}.npy`` in TF layout, each checked by position."""
    first = os.path.join(directory, "hourglass_weights_1.npy")
    if not os.path.isfile(first):
        raise PerceptualWeightsMissing(f"Hourglass weights {first} not found; get them with: {HOW_TO_GET}")
    missing = [i for i in range(1, NUM_HOURGLASS_FILES + 1)
               if not os.path.isfile(os.path.join(directory, f"hourglass_weights_{i}.npy"))]
    if missing:
        raise ValueError(f"{directory} lacks {len(missing)} of the {NUM_HOURGLASS_FILES} Hourglass files, "
                         f"first hourglass_weights_{missing[0]}.npy")
    extra = os.path.join(directory, f"hourglass_weights_{NUM_HOURGLASS_FILES + 1}.npy")
    if os.path.exists(extra):
        raise ValueError(f"{directory} has more than {NUM_HOURGLASS_FILES} Hourglass files ({extra})")
    params = []
    for i, expected in enumerate(hourglass_param_shapes(), 1):
        path = os.path.join(directory, f"hourglass_weights_{i}.npy")
        array = np.load(path, allow_pickle=False).astype(np.float32)
        if array.ndim == 4:
            array = torch_to_tf_kernel(array)
        if array.shape != tuple(expected):
            raise ValueError(f"{path} has shape {array.shape} (TF layout) but position {i} of the Hourglass "
                             f"needs {tuple(expected)}")
        params.append(array)
    return params


def legacy_resize_bilinear(x, size):
    """TF1 ``resize_images`` / ``resize_bilinear`` (align_corners False, half_pixel_centers False)."""
    return tf.compat.v1.image.resize_bilinear(x, size, align_corners=False, half_pixel_centers=False)


class HourglassFeatures(keras.layers.Layer):
    """Frozen first-stack Hourglass of ``hg_stacked.py``; input in [0, 1], any size (resized to 256x256)."""

    def __init__(self, params, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.num_params = len(params)
        for i, array in enumerate(params):
            weight = self.add_weight(name=f"param_{i + 1}", shape=array.shape, initializer="zeros", trainable=False)
            weight.assign(array)
            setattr(self, f"param_{i + 1}", weight)  # a named attribute, so tf.train.Checkpoint sees it

    @property
    def params(self):
        return [getattr(self, f"param_{i + 1}") for i in range(self.num_params)]

    def call(self, x):
        params = self.params
        idx = 0

        def bn(h, idx):  # batch_norm_with_global_normalization(scale_after_normalization=False): gamma ignored
            mean, var = tf.nn.moments(h, [0, 1, 2])
            return (h - mean) * tf.math.rsqrt(var + 1e-5) + params[idx], idx + 2

        def conv(h, idx, stride=1):
            out = tf.nn.conv2d(h, params[idx], [1, stride, stride, 1], padding="SAME")
            return tf.nn.bias_add(out, params[idx + 1]), idx + 2

        def residual(num_in, num_out, h, idx):
            out = h
            for _ in range(3):
                out, idx = bn(out, idx)
                out, idx = conv(tf.nn.relu(out), idx)
            if num_in != num_out:
                h, idx = conv(h, idx)
            return out + h, idx

        def hourglass(n, num_in, num_out, h, idx, layers):
            up1, idx = residual(num_in, 256, h, idx)
            up2, idx = residual(256, 256, up1, idx)
            up4, idx = residual(256, num_out, up2, idx)
            low = tf.nn.max_pool2d(h, 2, 2, "VALID")
            low1, idx = residual(num_in, 256, low, idx)
            low2, idx = residual(256, 256, low1, idx)
            low5, idx = residual(256, 256, low2, idx)
            if n > 1:
                low6, idx = hourglass(n - 1, 256, num_out, low5, idx, layers)
            else:
                low6, idx = residual(256, num_out, low5, idx)
            low7, idx = residual(num_out, num_out, low6, idx)
            up5 = legacy_resize_bilinear(low7, [low7.shape[1] * 2, low7.shape[2] * 2])
            layers.append(up4 + up5)
            return up4 + up5, idx

        h = legacy_resize_bilinear(x, [256, 256])
        h, idx = conv(h, idx, stride=2)
        h, idx = bn(h, idx)
        h = tf.nn.relu(h)
        h, idx = residual(64, 128, h, idx)
        h = tf.nn.max_pool2d(h, 2, 2, "VALID")
        h, idx = residual(128, 128, h, idx)
        h, idx = residual(128, 128, h, idx)
        h, idx = residual(128, 256, h, idx)
        layers = []
        hourglass(4, 256, 512, h, idx, layers)
        return layers
