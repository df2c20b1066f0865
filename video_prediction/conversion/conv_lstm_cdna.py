"""Convert the original's ``sv2p`` / ``sna`` TF1 checkpoints (specs/savp.md §5) into run directories.

The pretrained ``sv2p_time_invariant``, ``sv2p_time_variant``, ``sna_l1`` and
``sna_l2`` runs hold name-based TF1 checkpoints of ``sv2p_model.py`` /
``sna_model.py``, whose variables come from slim layers under ``generator/``:

* ``slim.conv2d`` / ``conv2d_transpose`` / ``fully_connected``:
  ``<scope>/weights`` (HWIO, transposed convs HW-out-in, dense ``[in, out]``
  like Keras) and ``<scope>/biases``; a slim layer with a layer-norm
  normalizer has no bias and its norm sits INSIDE its scope
  (``scale1_conv1/layer_norm1/{beta,gamma}``, ``convt3/layer_norm9``,
  ``latent_conv1/latent_norm1``, ...);
* Finn's conv-LSTM: ``state<k>/Gates/{weights,biases}``, gates ``[i, j, f, o]``
  over ``[inputs, h]`` with the forget bias added at run time, as
  :class:`BasicConv2DLSTMCell` (no reordering);
* the stand-alone layer norms: ``layer_norm<k>/{beta,gamma}``.

The names follow the originals' scopes and slim's naming; no real checkpoint
could be downloaded here to verify them.  The run's own ``model_hparams.json``
is applied; the frame channels come from ``scale1_conv1``'s kernel and the
action/state sizes from ``state_pred``'s.  A checkpoint variable without a
counterpart, a model weight without a value and a shape mismatch are errors
naming the variable (:func:`assign_by_name`).
"""

import os

import tensorflow as tf

from video_prediction.conversion.bookkeeping import ConversionError, Target
from video_prediction.conversion.savp import (match_record_channels, open_original_run, original_image_shape,
                                                     write_converted_run)
from video_prediction.models.sna import SNAVideoPredictionModel
from video_prediction.models.sv2p import SV2PVideoPredictionModel

MODEL_CLASSES = {"sv2p": SV2PVideoPredictionModel, "sna": SNAVideoPredictionModel}
GENERATOR_SCOPE = "generator"


class _Names:
    """``{original name: Target}`` built from slim's naming rules."""

    def __init__(self):
        self.targets = {}

    def add(self, name, variable, required=True):
        if variable is None:
            return
        name = f"{GENERATOR_SCOPE}/{name}"
        if name in self.targets:
            raise AssertionError(f"two weights map to {name}")
        self.targets[name] = Target(variable, required=required)

    def layer_norm(self, scope, norm):
        self.add(f"{scope}/beta", norm.beta)
        self.add(f"{scope}/gamma", norm.gamma)

    def slim_layer(self, scope, layer, norm=None, norm_scope=None):
        """A slim conv / transposed conv / fully connected layer, with its normalizer inside its scope."""
        self.add(f"{scope}/weights", layer.kernel)
        self.add(f"{scope}/biases", layer.bias)
        if norm is not None:
            self.layer_norm(f"{scope}/{norm_scope}", norm)


def original_variable_names(model):
    """``{original TF1 variable name: Target}`` for every weight of a built sv2p / sna model."""
    cell = model.cell
    if cell is None:
        raise ValueError("build the model (build_from_batch) before mapping its variables")
    names = _Names()
    names.slim_layer("scale1_conv1", cell.scale1_conv1, cell.layer_norm1, "layer_norm1")
    for lstm_name in cell.lstm_names():
        lstm = getattr(cell, lstm_name)
        names.add(f"{lstm_name}/Gates/weights", lstm.kernel)
        names.add(f"{lstm_name}/Gates/biases", lstm.bias)
        norm_name = f"layer_norm{int(lstm_name[len('state'):]) + 1}"
        names.layer_norm(norm_name, getattr(cell, norm_name))
    for _, conv_name in cell.encoder_levels:
        names.slim_layer(conv_name, getattr(cell, conv_name))
    for layer_name in ("conv4", "convt1", "convt2"):
        names.slim_layer(layer_name, getattr(cell, layer_name))
    names.slim_layer("convt3", cell.convt3, cell.layer_norm9, "layer_norm9")
    for layer_name in dict.fromkeys(("cdna_params", "convt4", cell.spec.dna_kernels_name, cell.spec.masks_name,
                                     "state_pred")):
        if hasattr(cell, layer_name):
            names.slim_layer(layer_name, getattr(cell, layer_name))
    tower = getattr(model, "latent_tower", None)
    if tower is not None:
        for conv_name, norm_name, _, _ in tower.layer_specs:
            names.slim_layer(conv_name, getattr(tower, conv_name), getattr(tower, norm_name), norm_name)
        names.slim_layer("latent_mean", tower.latent_mean, tower.latent_norm_mean, "latent_norm_mean")
        names.slim_layer("latent_std", tower.latent_std, tower.latent_std_norm, "latent_std_norm")
    targets = dict(names.targets, global_step=Target(model.global_step, required=False))
    mapped = {id(target.variable) for target in targets.values()}
    unmapped = [weight.path for weight in model.weights if id(weight) not in mapped]
    if unmapped:
        raise ConversionError(f"no original variable name known for {len(unmapped)} model weight(s): {unmapped[:10]}")
    return targets


def _example_batch(model, image_shape, shapes, use_state):
    """Zeros shaped like the original's inputs: frames, and with use_state actions/states sized by state_pred."""
    length = model.sequence_length
    batch = {"images": tf.zeros([1, length] + list(image_shape))}
    if use_state:
        kernel = shapes.get(f"{GENERATOR_SCOPE}/state_pred/weights")
        if kernel is None:
            raise ConversionError(f"use_state=True but the checkpoint has no {GENERATOR_SCOPE}/state_pred/weights "
                                  "to size the actions and states")
        action_dim, state_dim = int(kernel[0] - kernel[1]), int(kernel[1])
        batch.update(actions=tf.zeros([1, length - 1, action_dim]), states=tf.zeros([1, length, state_dim]))
    return batch


def convert_checkpoint(checkpoint, output_dir, image_shape=None):
    """Convert the original sv2p / sna run at ``checkpoint`` (directory or prefix) into ``output_dir``.

    ``image_shape`` (H, W, C) overrides the frame size derived from the
    dataset's name and crop/scale hparams.  Returns the converted model.
    """
    run = open_original_run(checkpoint)
    model_name = run.options.get("model")
    if model_name not in MODEL_CLASSES:
        raise ConversionError(f"{run.prefix} is a {model_name!r} run (options.json); this converts "
                              f"{' and '.join(MODEL_CLASSES)} (savp: pretrained_models/convert_savp_checkpoint.py)")
    if image_shape is None:
        first_kernel = run.shapes.get(f"{GENERATOR_SCOPE}/scale1_conv1/weights")
        if first_kernel is None:
            raise ConversionError(f"{run.prefix} has no {GENERATOR_SCOPE}/scale1_conv1/weights: not an sv2p/sna "
                                  "checkpoint")
        height, width, _ = original_image_shape(run.dataset_name, run.dataset_hparams)
        image_shape = (height, width, int(first_kernel[2]))  # channels as trained (KTH runs may be RGB)
    image_shape = tuple(int(d) for d in image_shape)
    notes = []
    run = match_record_channels(run, image_shape, notes)
    try:
        model = MODEL_CLASSES[model_name](hparams=run.model_hparams)
        model.build_from_batch(_example_batch(model, image_shape, run.shapes,
                                              bool(run.dataset_hparams.get("use_state"))))
    except ValueError as e:
        raise ConversionError(f"{os.path.join(os.path.dirname(run.prefix), 'model_hparams.json')}: {e}") from None
    write_converted_run(run, model, model_name, original_variable_names(model), image_shape, output_dir, notes)
    return model
