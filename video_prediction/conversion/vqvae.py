"""Convert an original FEVD VQ-VAE checkpoint (``torch.save`` ``.ckpt`` + OmegaConf YAML) into a run directory.

The original's checkpoints (``fevd_vqvae/utils/checkpoint.py``) hold ``{'step',
'model_state_dict', 'opt_state_dict', 'checkpoint_log'}``; the state dict also
holds the frozen loss networks under ``loss.`` (LPIPS VGG16 and heads, the
TorchScript I3D's tensors), which are skipped (specs/vqvae.md §3.11).  Every
other parameter is mapped by its original name (``VQVAEVideoPredictionModel.
torch_layers``): conv kernels OIHW -> HWIO, Conv3d OIDHW -> DHWIO, GroupNorm
weight/bias -> gamma/beta, the codebook as is.  An unknown or misshaped parameter,
or a model weight the checkpoint lacks, is an error naming it.  Adam's state is
keyed by parameter position in the original and is not converted.

The YAML is read with PyYAML plus OmegaConf's float rule (``7e4``, ``5e-4`` are
floats, YAML 1.1 would read strings).
"""

import os
import re

import keras
import numpy as np
import tensorflow as tf
import yaml

from video_prediction.conversion.bookkeeping import ConversionError, Target, assign_by_name, write_run_directory
from video_prediction.layers.vector_quantizer import VectorQuantizer
from video_prediction.models.vqvae import VQVAEVideoPredictionModel
from video_prediction.conversion.formats.torch_pth import load_state_dict

# The original's clip length: RobonetVideoDataset windows of total_frames=12 (specs/vqvae.md §2.5).
CLIP_LENGTH = 12


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader that also reads ``7e4`` / ``1E-3`` (exponent without a dot) as floats, like OmegaConf."""


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_config(path):
    """The original's YAML config as a dict (numbers such as ``7e4`` as floats)."""
    with open(path) as f:
        try:
            config = yaml.load(f, Loader=_ConfigLoader)
        except yaml.YAMLError as e:
            raise ConversionError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(config, dict) or "model" not in config:
        raise ConversionError(f"{path} is not an FEVD VQ-VAE config (no 'model' section)")
    return config


def _get(section, key, where):
    if key not in section:
        raise ConversionError(f"the config lacks {where}.{key}")
    return section[key]


def hparams_from_config(config):
    """Our model hparams and dataset hparams from an original config (§3.10)."""
    model = config["model"]
    dd = _get(model, "ddconfig", "model")
    loss = _get(model, "lossconfig", "model")
    setup = config.get("setup", {})
    if dd.get("double_z", False):
        raise ConversionError("model.ddconfig.double_z must be False (the FEVD VQ-VAE never doubles z)")
    if dd.get("in_channels", 3) != dd.get("out_ch", 3):
        raise ConversionError(f"in_channels ({dd.get('in_channels')}) and out_ch ({dd.get('out_ch')}) must be equal")
    key = _get(model, "key", "model")
    if key not in ("2d", "3d"):
        raise ConversionError(f"model.key must be '2d' or '3d', got {key!r}")
    train = setup.get("train_dataloader", {})
    module = train.get("dataset_module", "RobonetVideoDataset" if key == "3d" else "RobonetImgDataset")
    if module not in ("RobonetImgDataset", "RobonetVideoDataset"):
        raise ConversionError(f"unknown setup.train_dataloader.dataset_module {module!r}")
    grad_updates = int(setup.get("grad_updates_per_step", 1))
    hparams = dict(
        context_frames=1,
        sequence_length=CLIP_LENGTH,
        decoder=key,
        embed_dim=int(_get(model, "embed_dim", "model")),
        n_embed=int(_get(model, "n_embed", "model")),
        z_channels=int(dd["z_channels"]),
        resolution=int(dd["resolution"]),
        ch=int(dd["ch"]),
        ch_mult=[int(m) for m in dd["ch_mult"]],
        num_res_blocks=int(dd["num_res_blocks"]),
        attn_resolutions=[int(r) for r in dd["attn_resolutions"]],
        dropout=float(dd.get("dropout", 0.0)),
        codebook_weight=float(loss.get("codebook_weight", 1.0)),
        pixelloss_weight=float(loss.get("pixelloss_weight", 1.0)),
        perceptual_weight_2d=float(loss.get("perceptual_weight_2d", 1.0)),
        fvd_mu_weight=float(loss.get("fvd_mu_weight", 1.0)),
        fvd_cov_weight=float(loss.get("fvd_cov_weight", 1.0)),
        lr=float(setup.get("learning_rate", 5e-4)),
        grad_updates_per_step=grad_updates,
        batch_size=int(train.get("batch_size", 1)) * grad_updates,
        max_steps=int(float(setup.get("total_steps", 70000))),
        train_on="frames" if module == "RobonetImgDataset" else "clips",
    )
    dataset_hparams = dict(context_frames=1, sequence_length=CLIP_LENGTH)
    image_shape = [hparams["resolution"], hparams["resolution"], int(dd.get("in_channels", 3))]
    return hparams, dataset_hparams, image_shape


def _layer_weights(layer):
    """{torch parameter suffix: (keras variable, converter)} for one layer."""
    if isinstance(layer, VectorQuantizer):
        return {"weight": (layer.embedding, None)}
    if isinstance(layer, keras.layers.Conv3D):
        return {"weight": (layer.kernel, lambda w: w.transpose(2, 3, 4, 1, 0)), "bias": (layer.bias, None)}
    if isinstance(layer, keras.layers.Conv2D):
        return {"weight": (layer.kernel, lambda w: w.transpose(2, 3, 1, 0)), "bias": (layer.bias, None)}
    if isinstance(layer, keras.layers.GroupNormalization):
        return {"weight": (layer.gamma, None), "bias": (layer.beta, None)}
    raise ConversionError(f"no parameter mapping for layer {layer.name} ({type(layer).__name__})")


def assign_state_dict(model, state_dict):
    """Copy every original parameter (except the ``loss.`` networks) into the built ``model``."""
    targets = {}
    for prefix, layer in model.torch_layers().items():
        for suffix, (variable, convert) in _layer_weights(layer).items():
            targets[f"{prefix}.{suffix}"] = Target(variable, convert)
    chosen = assign_by_name(
        targets, {name: np.shape(value) for name, value in state_dict.items()},
        lambda name: np.asarray(state_dict[name], dtype=np.float32),
        ignore=lambda name: name.startswith("loss."),
        what="parameter", hint=" (is the YAML the config it was trained with?)")
    return set(chosen)


def build_model(hparams, image_shape):
    model = VQVAEVideoPredictionModel(hparams=hparams)
    model.build_from_batch({"images": tf.zeros([1, 2] + list(image_shape))})
    return model


def convert_checkpoint(checkpoint_path, config_path, output_dir):
    """Write a run directory for ``output_dir`` (dataset ``robonet``); returns the converted model."""
    hparams, dataset_hparams, image_shape = hparams_from_config(load_config(config_path))
    state_dict = load_state_dict(checkpoint_path)
    model = build_model(hparams, image_shape)
    assign_state_dict(model, state_dict)
    options = dict(dataset="robonet", model="vqvae", input_dir=None, image_shape=image_shape,
                   converted_from=os.path.abspath(checkpoint_path))
    write_run_directory(output_dir, model, options, dataset_hparams)
    return model
