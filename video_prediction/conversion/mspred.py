"""Convert an original MSPred checkpoint (PyTorch ``.pth`` + ``experiment_params.json``) into a run directory.

The run directory (``options.json``, ``dataset_hparams.json``, ``model_hparams.json``
and a ``ckpt-1`` TensorFlow checkpoint) is what ``generate.py`` / ``evaluate.py
--checkpoint DIR`` load.  Parameters are mapped by their original names
(``MSPredVideoPredictionModel.torch_layers``): conv kernels OIHW -> HWIO,
transposed-conv kernels (in, out, h, w) -> (h, w, out, in), BatchNorm weight/bias
(and running statistics if the checkpoint has them).  The ConvLSTM gate order
(i, f, o, g along the output channels) is the same in both, so gate kernels only
change layout.  Every parameter must be used and every Keras weight assigned.
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from video_prediction.conversion.bookkeeping import ConversionError, Target, assign_by_name, write_run_directory
from video_prediction.conversion.formats.torch_pth import load_state_dict
from video_prediction.models.mspred import MSPredVideoPredictionModel

# Parameters of the original with nothing to map: the empty device_param (used to find the device).
IGNORED_PARAMETERS = ("device_param",)

# dataset_name of the original -> (our dataset name, heatmap channels of levels 1 and 2)
DATASETS = {
    "custom_moving_mnist": ("mspred_moving_mnist", [1, 1]),
    "moving_mnist": ("mspred_moving_mnist", [1, 1]),
    "kth": ("kth_mspred", [9, 1]),
    "synpick": ("synpick", [23, 1]),
}


def hparams_from_experiment_params(params):
    """Model hparams, dataset name/hparams and image shape from an original params file (§4.3)."""
    dataset, model, loss, training, evaluation = (params[k] for k in ("dataset", "model", "loss", "training", "eval"))
    name = dataset["dataset_name"]
    if name not in DATASETS:
        raise ConversionError(f"unknown dataset_name {name!r}; known: {', '.join(DATASETS)}")
    dataset_name, heatmap_channels = DATASETS[name]
    hier = model["HierarchLSTM"]
    num_layers = hier["num_layers"]
    num_layers = list(num_layers) if isinstance(num_layers, list) else [num_layers] * hier["num_hierarch"]
    context = evaluation.get("context", training["context"])
    num_preds = evaluation.get("num_preds", training["num_preds"])
    sequence_length = context + num_preds * max(hier["periods"])
    img_size = dataset["img_size"]
    img_size = [img_size, img_size] if isinstance(img_size, int) else list(img_size)
    model_type = model.get("model_type", model.get("model_name"))
    if model_type != "SpatioTempHierarchConvLSTM":
        raise ConversionError(f"only SpatioTempHierarchConvLSTM (MSPred) is supported, got {model_type!r}")
    hparams = dict(
        context_frames=context,
        sequence_length=sequence_length,
        enc_dec_type=model["enc_dec_type"].lower(),
        dim=model["enc_dec"]["dim"],
        num_filters=model["enc_dec"]["num_filters"],
        extra_deep=model["enc_dec"].get("extra_deep", False),
        periods=hier["periods"],
        hidden_dim=hier["hidden_dim"],
        num_layers=num_layers,
        stochastic_latents=hier["stochastic"],
        ancestral_sampling=hier["ancestral_sampling"],
        aux_outputs=hier["aux_outputs"],
        heatmap_channels=hier.get("n_hmap_channels", heatmap_channels),
        latent_dim=model["LSTM_Prior"]["latent_dim"],
        prior_hidden_dim=model["LSTM_Prior"]["hidden_dim"],
        prior_num_layers=model["LSTM_Prior"]["num_layers"],
        posterior_hidden_dim=model["LSTM_Posterior"]["hidden_dim"],
        posterior_num_layers=model["LSTM_Posterior"]["num_layers"],
        autoreg_mode=model["autoreg_mode"],
        last_context_residuals=model["last_context_residuals"],
        num_preds=num_preds,
        num_channels=dataset["num_channels"],
        reconst_losses=loss["reconst_losses"],
        alphas=loss["alphas"],
        beta=loss["beta"],
        beta0=loss["beta0"],
        beta_warmup_steps=loss["beta_warmup_steps"],
        w_easy_kpts=loss.get("w_easy_kpts", 1.0),
        optimizer=training["optimizer"],
        momentum=training.get("momentum", 0.0),
        nesterov=training.get("nesterov", False),
        lr=training["lr"],
        lr_factor=training["lr_factor"],
        lr_decay_steps=training["lr_decay_steps"],
        lr_warmup_steps=training["lr_warmup_steps"],
        num_epochs=training["num_epochs"],
        batch_size=evaluation.get("batch_size", training["batch_size"]),
    )
    dataset_hparams = dict(context_frames=context, sequence_length=sequence_length)
    image_shape = img_size + [dataset["num_channels"]]
    return hparams, dataset_name, dataset_hparams, image_shape


def _layer_weights(layer):
    """{torch parameter suffix: (keras variable, converter)} for one layer."""
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return {"weight": (layer.kernel, lambda w: w.transpose(2, 3, 1, 0)), "bias": (layer.bias, None)}
    if isinstance(layer, keras.layers.Conv2D):
        return {"weight": (layer.kernel, lambda w: w.transpose(2, 3, 1, 0)), "bias": (layer.bias, None)}
    if isinstance(layer, keras.layers.BatchNormalization):
        return {"weight": (layer.gamma, None), "bias": (layer.beta, None),
                "running_mean": (layer.moving_mean, None), "running_var": (layer.moving_variance, None)}
    raise ConversionError(f"no parameter mapping for layer {layer.name} ({type(layer).__name__})")


def assign_state_dict(model, state_dict):
    """Copy every original parameter into the built ``model``; errors name what does not fit."""
    targets = {}
    for prefix, layer in model.torch_layers().items():
        for suffix, (variable, convert) in _layer_weights(layer).items():
            if variable is not None:
                # BatchNorm running statistics are optional (the original's checkpoints have none)
                targets[f"{prefix}.{suffix}"] = Target(variable, convert,
                                                       required=suffix not in ("running_mean", "running_var"))
    chosen = assign_by_name(
        targets, {name: np.shape(value) for name, value in state_dict.items()},
        lambda name: np.asarray(state_dict[name], dtype=np.float32),
        ignore=lambda name: name in IGNORED_PARAMETERS or name.endswith("num_batches_tracked"),
        what="parameter", hint=" (is experiment_params.json the one it was trained with?)")
    return set(chosen)


def build_model(hparams, image_shape):
    model = MSPredVideoPredictionModel(hparams=hparams)
    # context + 1 frames run every module once (heads first tick at step C-1)
    model.build_from_batch({"images": tf.zeros([1, hparams["context_frames"] + 1] + list(image_shape))})
    return model


def convert_checkpoint(checkpoint_path, experiment_params_path, output_dir):
    """Write a run directory for ``output_dir``; returns the converted model."""
    with open(experiment_params_path) as f:
        params = json.load(f)
    hparams, dataset_name, dataset_hparams, image_shape = hparams_from_experiment_params(params)
    model = build_model(hparams, image_shape)
    assign_state_dict(model, load_state_dict(checkpoint_path))
    options = dict(dataset=dataset_name, model="mspred", input_dir=None, image_shape=image_shape,
                   converted_from=os.path.abspath(checkpoint_path))
    write_run_directory(output_dir, model, options, dataset_hparams)
    return model
