"""ImageNet VGG-16 for EPVA's encoder (``imgnet_pretrain=true``, spec §4.6).

Two sources:

* ``slim`` (the original's): slim's ``vgg_16.ckpt`` from the authors' bucket over https (or, if
  that is gone, from slim's ``vgg_16_2016_08_28.tar.gz``), cached in the weights cache and loaded
  by name (``vgg_16/convK/convK_i/{weights,biases}``; fc6-fc8 skipped).  Exactly the original's
  initialisation: slim's VGG was trained on ``x * 255 - mean`` RGB, the original feeds
  ``x * 256 - mean``.
* ``torchvision`` (offline): the torchvision VGG-16 conv trunk that the LPIPS weights ship
  (``python -m video_prediction.metrics.fetch_weights`` puts it in the cache).  torchvision
  expects ``u = (x - mu) / sigma`` (x in [0, 1]); the encoder feeds ``z = 256 x - m``.  Since
  ``u_c = z_c / (256 sigma_c) + (m_c / 256 - mu_c) / sigma_c``, conv1_1's kernel is divided by
  ``256 sigma_c`` per input channel and its bias gets ``sum W * (m_c / 256 - mu_c) / sigma_c``.
  This is exact except at the one-pixel border of conv1_1, where SAME padding adds zeros in
  ``z`` (= ``u_c = (m_c / 256 - mu_c) / sigma_c``, about 0.0 - 0.1) instead of zeros in ``u``.
  The two ImageNet trainings differ (Caffe weights converted by slim vs torchvision's own), so
  results of a run started this way are close to, not equal to, the original's.
"""

import os

import numpy as np
import tensorflow as tf

from video_prediction.conversion.bookkeeping import Target, assign_by_name
from video_prediction.download import download_file, extract_archive
from video_prediction.metrics import weights_cache

SLIM_VGG16_URLS = (
    "https://storage.googleapis.com/unsupervised-hierarch-video/pretrained_models/vgg_16.ckpt",
    "http://download.tensorflow.org/models/vgg_16_2016_08_28.tar.gz",
)
TORCHVISION_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
TORCHVISION_STD = np.array([0.229, 0.224, 0.225], np.float32)


def slim_vgg16_checkpoint(cache_dir=None, urls=SLIM_VGG16_URLS):
    """Path of slim's ``vgg_16.ckpt`` in the cache, downloaded on first use (first URL that works)."""
    directory = os.path.join(cache_dir or weights_cache.cache_dir(), "slim_vgg_16")
    path = os.path.join(directory, "vgg_16.ckpt")
    if os.path.exists(path):
        return path
    os.makedirs(directory, exist_ok=True)
    errors = []
    for url in urls:
        try:
            if url.endswith(".tar.gz"):
                archive = download_file(url, os.path.join(directory, os.path.basename(url)))
                extract_archive(archive, directory)
                os.remove(archive)
            else:
                download_file(url, path)
            if os.path.exists(path):
                return path
        except Exception as e:  # noqa: BLE001 - try the next source, report all at the end
            errors.append(f"{url}: {e}")
    raise ValueError("could not get slim's vgg_16.ckpt: " + "; ".join(errors))


def load_slim_vgg16(vgg, checkpoint):
    """Assign slim's ImageNet conv weights to ``vgg`` (a :class:`VGG16Trunk`) by name; fc6-fc8 skipped."""
    reader = tf.train.load_checkpoint(checkpoint)
    shapes = reader.get_variable_to_shape_map()
    targets = {name: Target(variable) for name, variable in vgg.tf1_variables("vgg_16").items()}
    assign_by_name(targets, shapes, reader.get_tensor, what="VGG-16 variable",
                   ignore=lambda name: not name.startswith("vgg_16/conv"))
    return f"ImageNet VGG-16 (slim) from {checkpoint}"


def torchvision_to_slim_input(arrays):
    """Fold torchvision's input normalisation into conv1_1 so the kernels take EPVA's ``256 x - mean``."""
    from video_prediction.models.epva import VGG_MEANS

    arrays = dict(arrays)
    kernel, bias = arrays["conv1_1/kernel"].astype(np.float64), arrays["conv1_1/bias"].astype(np.float64)
    offset = (np.array(VGG_MEANS) / 256.0 - TORCHVISION_MEAN) / TORCHVISION_STD
    arrays["conv1_1/bias"] = (bias + np.einsum("hwco,c->o", kernel, offset)).astype(np.float32)
    arrays["conv1_1/kernel"] = (kernel / (256.0 * TORCHVISION_STD)[None, None, :, None]).astype(np.float32)
    return arrays


def load_torchvision_vgg16(vgg, path=None):
    """Assign the LPIPS package's torchvision VGG-16 trunk (normalisation folded into conv1_1)."""
    path = path or weights_cache.weights_path("lpips_vgg")
    if not os.path.exists(path):
        from video_prediction.metrics.fetch_weights import fetch_weights

        fetch_weights(["lpips_vgg"])
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files if k.startswith("conv")}
    arrays = torchvision_to_slim_input(arrays)
    for conv in vgg.convs:
        for weight, variable in (("kernel", conv.kernel), ("bias", conv.bias)):
            value = arrays.pop(f"{conv.name}/{weight}")
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"{path}: {conv.name}/{weight} has shape {value.shape}, expected {variable.shape}")
            variable.assign(value)
    if arrays:
        raise ValueError(f"{path}: unused VGG arrays {sorted(arrays)}")
    return f"ImageNet VGG-16 (torchvision, from the LPIPS weights {path}; input normalisation folded into conv1_1)"


def load_imagenet_vgg16(vgg, source="slim"):
    if source == "slim":
        return load_slim_vgg16(vgg, slim_vgg16_checkpoint())
    if source == "torchvision":
        return load_torchvision_vgg16(vgg)
    raise ValueError(f"unknown imgnet_pretrain_source {source!r}; valid: slim, torchvision")
