"""Convert the original TF1 checkpoints of rubenvillegas/icml2017hierchvid into run directories.

* ``DET_LSTM.model-<N>`` (pose LSTM, ``models/<prefix>/``): ``lm_enc/{Matrix,bias}``,
  ``GEN/G_LSTM/rnn/multi_rnn_cell/cell_0/basic_lstm_cell/{kernel,bias}`` (TF1 gate order
  i, j, f, o, the forget bias added at run time, as our cell: copied unchanged; the
  pre-TF-1.2 names ``weights``/``biases`` are accepted), ``GEN/G_LSTM/dec_fc2/{Matrix,bias}``
  and ``Variable`` (the global step: the number in the file name is about twice the step,
  spec §4.1, so the variable is used).  RMSProp slots (``<var>/optimizer``,
  ``<var>/optimizer_1``) are skipped.
* ``IMGGEN.model-<N>`` (analogy generator): every ``GEN/*`` and ``DIS/*`` variable
  (``w``/``biases``/``Matrix``/``bias``, ``bn*/{beta,gamma,moving_mean,moving_variance}``).
  Skipped: Adam slots and ``beta*_power*``, and the frozen AlexNet/Hourglass copies the
  training graph saved as ``Variable``, ``Variable_<n>`` (those come from the
  ``perceptual_models`` files, spec §3.4).

Kernels keep their layout (TF1 HWIO, ``[in, out]``, transposed-conv ``[h, w, out, in]`` =
Keras ``Conv2DTranspose``).  A checkpoint variable without a counterpart, a model weight
without a value, and a shape mismatch are errors naming the variable
(:func:`video_prediction.conversion.bookkeeping.assign_by_name`).

The checkpoints hold no hparams: ``dataset`` (``penn_action`` or ``human36m``) picks the
settings of the original's scripts (joints 13 / 32, hparams/<dataset>/<model>/).
"""

import glob
import os
import re

import numpy as np
import tensorflow as tf

from video_prediction.conversion.bookkeeping import ConversionError, Target, assign_by_name, write_run_directory
from video_prediction.conversion.formats.tf1 import open_checkpoint

LSTM_CELL_SCOPE = "GEN/G_LSTM/rnn/multi_rnn_cell/cell_0/basic_lstm_cell"
#: RMSProp ("optimizer") and Adam slots, the beta powers.
OPTIMIZER_VARIABLE = re.compile(r"(/optimizer(_\d+)?$)|(/RMSProp(_\d+)?$)|(/Adam(_\d+)?$)|(^beta[12]_power(_\d+)?$)")
#: The frozen perceptual-network copies of an IMGGEN training graph (tf.Variable without a scope).
FROZEN_VARIABLE = re.compile(r"^Variable(_\d+)?$")
#: dataset -> (joints of the landmark vector, heatmap channels of the image generator, frame size)
DATASETS = {"penn_action": (13, 48, 128), "human36m": (32, 32, 128)}


def find_checkpoint(path, kind):
    """The prefix of the newest ``<kind>.model-<N>`` at ``path`` (a directory or a prefix)."""
    path = os.fspath(path)
    if os.path.exists(path + ".index"):
        return path
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest and os.path.basename(latest).startswith(kind + ".model-"):
            return latest
        found = glob.glob(os.path.join(path, f"{kind}.model-*.index"))
        if found:
            return max(found, key=lambda p: int(re.search(r"-(\d+)\.index$", p).group(1)))[: -len(".index")]
    raise ConversionError(f"no {kind}.model-<N> checkpoint at {path!r}")


def lstm_targets(model):
    """``{TF1 name: Target}`` for a built :class:`PoseLSTMVideoPredictionModel`."""
    return {
        "lm_enc/Matrix": Target(model.lm_enc.kernel),
        "lm_enc/bias": Target(model.lm_enc.bias),
        f"{LSTM_CELL_SCOPE}/kernel": Target(model.cell.kernel, aliases=(f"{LSTM_CELL_SCOPE}/weights",)),
        f"{LSTM_CELL_SCOPE}/bias": Target(model.cell.bias, aliases=(f"{LSTM_CELL_SCOPE}/biases",)),
        "GEN/G_LSTM/dec_fc2/Matrix": Target(model.decoder.kernel),
        "GEN/G_LSTM/dec_fc2/bias": Target(model.decoder.bias),
        "Variable": Target(model.global_step, convert=lambda v: np.asarray(v, np.int64), required=False),
    }


def imggen_targets(model):
    """``{TF1 name: Target}`` for a built :class:`PoseAnalogyVideoPredictionModel`."""
    targets = {}
    for encoder in (model.img_encoder, model.pose_encoder):
        for layer in encoder.convs.values():
            targets[f"GEN/{layer.name}/w"] = Target(layer.kernel)
            targets[f"GEN/{layer.name}/biases"] = Target(layer.bias)
    for _, layer in model.decoder.deconvs:
        targets[f"GEN/{layer.name}/w"] = Target(layer.kernel)
        targets[f"GEN/{layer.name}/biases"] = Target(layer.bias)
    disc = model.discriminator
    for conv in disc.convs:
        targets[f"DIS/{conv.name}/w"] = Target(conv.kernel)
        targets[f"DIS/{conv.name}/biases"] = Target(conv.bias)
    for norm in disc.norms[1:]:
        for name in ("beta", "gamma", "moving_mean", "moving_variance"):
            targets[f"DIS/{norm.name}/{name}"] = Target(getattr(norm, name))
    targets["DIS/dis_h3_lin/Matrix"] = Target(disc.linear.kernel)
    targets["DIS/dis_h3_lin/bias"] = Target(disc.linear.bias)
    return targets


def load_lstm_checkpoint(model, prefix):
    """Assign ``DET_LSTM.model-<N>`` at ``prefix`` to a built pose LSTM; returns {source: target}."""
    reader, shapes = open_checkpoint(prefix)
    return assign_by_name(lstm_targets(model), shapes, reader.get_tensor,
                          ignore=lambda n: bool(OPTIMIZER_VARIABLE.search(n)), hint=f" ({prefix})")


def load_imggen_checkpoint(model, prefix):
    """Assign ``IMGGEN.model-<N>`` at ``prefix`` to a built analogy model; returns {source: target}."""
    reader, shapes = open_checkpoint(prefix)
    ignore = lambda n: bool(OPTIMIZER_VARIABLE.search(n) or FROZEN_VARIABLE.match(n))
    return assign_by_name(imggen_targets(model), shapes, reader.get_tensor,
                          ignore=ignore, hint=f" ({prefix})")


def _dataset_settings(dataset):
    if dataset not in DATASETS:
        raise ConversionError(f"unknown dataset {dataset!r} for an original checkpoint; valid: {sorted(DATASETS)}")
    return DATASETS[dataset]


def convert_lstm_checkpoint(checkpoint, output_dir, dataset="penn_action", context_frames=10, future_frames=32,
                            hparams=None, image_size=None):
    """``DET_LSTM.model-*`` -> a ``pose_lstm`` run directory; returns the model."""
    from video_prediction.models.pose_lstm import PoseLSTMVideoPredictionModel

    joints, _, size = _dataset_settings(dataset)
    size = image_size or size
    prefix = find_checkpoint(checkpoint, "DET_LSTM")
    values = dict(context_frames=context_frames, sequence_length=context_frames + future_frames,
                  num_landmarks=joints, swap_xy_normalization=dataset == "penn_action")
    values.update(hparams or {})
    model = PoseLSTMVideoPredictionModel(hparams=values)
    model({"images": tf.zeros([1, context_frames + 1, size, size, 3]),
           "poses": tf.zeros([1, context_frames + 1, joints, 2])})
    load_lstm_checkpoint(model, prefix)
    options = dict(dataset=dataset, model="pose_lstm", input_dir=None, image_shape=[size, size, 3],
                   converted_from=os.path.abspath(prefix))
    write_run_directory(output_dir, model, options, {}, checkpoint_number=max(int(model.global_step.numpy()), 1))
    return model


def convert_imggen_checkpoint(checkpoint, output_dir, dataset="penn_action", context_frames=10, future_frames=20,
                              hparams=None, image_size=None):
    """``IMGGEN.model-*`` -> a ``pose_analogy`` run directory; returns the model."""
    from video_prediction.models.pose_analogy import PoseAnalogyVideoPredictionModel

    _, channels, size = _dataset_settings(dataset)
    size = image_size or size  # the generator works at any multiple of 16 (the original's --image_size)
    prefix = find_checkpoint(checkpoint, "IMGGEN")
    values = dict(context_frames=context_frames, sequence_length=context_frames + future_frames,
                  num_joints=channels)
    values.update(hparams or {})
    model = PoseAnalogyVideoPredictionModel(hparams=values)
    model.build_from_batch({"images": tf.zeros([1, context_frames + 1, size, size, 3]),
                            "heatmaps": tf.zeros([1, context_frames + 1, size, size, channels])})
    load_imggen_checkpoint(model, prefix)
    number = int(re.search(r"-(\d+)$", prefix).group(1))
    model.global_step.assign(number)
    options = dict(dataset=dataset, model="pose_analogy", input_dir=None, image_shape=[size, size, 3],
                   converted_from=os.path.abspath(prefix))
    write_run_directory(output_dir, model, options, {}, checkpoint_number=max(number, 1))
    return model
