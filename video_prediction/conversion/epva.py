"""Convert the original EPVA TF1 checkpoints (``epva_human``, ``epva_wgan_human``, ``e2e_human``) by name.

The original (``brain-research/long-term-video-prediction-without-supervision``) saves slim
checkpoints whose variable names follow its variable scopes (specs/epva.md §3):
``timestep/encoder/vgg_16/conv1/conv1_1/weights``, ``timestep/predict/LSTMCell_7/W_0``,
``timestep/van/van_dec/conv2d_transpose_3/kernel``, ``Discriminator/timestep/LayerNorm_2/gamma``...
:meth:`EPVAVideoPredictionModel.tf1_variables` gives that name for every weight of our model (the
map was checked against the variable list of the original graph built under ``tf.compat.v1``,
``tests/data/epva/epva_reference.json``).  TF1 kernels are laid out as ours (HWIO, ``[in, out]``,
``conv2d_transpose`` ``[h, w, out, in]``; LSTM gates ``i, j, f, o`` with the forget bias added at
run time), so values are copied unchanged.

Skipped: Adam slots (``.../Adam``, ``.../Adam_1``), ``beta1_power*`` / ``beta2_power*``, and the
original's unnamed counters (``Variable``, ``Variable_1``: its ``fake_step`` / ``both_step``, scalars).
``global_step`` sets our step.  With ``use_legacy_vars`` (the published ``e2e_human``) the
predictor's back-connection vector is an unnamed ``tf.Variable``: it is found by its scope
(``timestep*/predict/Variable*``) and shape ``[2 * (E + 5)]``.  Any other checkpoint variable
without a counterpart, and any weight of ours without a value, is an error naming it.

The settings a checkpoint cannot tell (model mode, L2 norm, predictor noise std, clip lengths) come
from :data:`PUBLISHED_MODELS` (the original notebook's presets, spec §6.2) or the caller.
"""

import logging
import os
import re

import numpy as np
import tensorflow as tf

from video_prediction.conversion.bookkeeping import ConversionError, Target, assign_by_name, write_run_directory
from video_prediction.models.epva import EPVAVideoPredictionModel
from video_prediction.conversion.formats.tf1 import find_original_checkpoint, open_checkpoint

logger = logging.getLogger(__name__)

BASE_URL = "https://storage.googleapis.com/unsupervised-hierarch-video/pretrained_models"
#: Human3.6M in the original's setting: 64x64 RGB, every 2nd frame, 5 context frames, 32 frames in training.
HUMAN_DATASET_HPARAMS = dict(context_frames=5, sequence_length=32)
#: model name -> (the authors' directory, model hparams); from the generation notebook's presets (spec §6.2).
PUBLISHED_MODELS = {
    "human36m": {
        "epva": ("epva_human", dict(model_mode="epva", enc_size=64)),
        "epva_gan": ("epva_wgan_human", dict(model_mode="epva_gan", enc_size=64, enc_pred_use_l2norm=True,
                                             pred_noise_std=1.0)),
        "e2e": ("e2e_human", dict(model_mode="e2e", enc_size=32, use_legacy_vars=True)),
    },
}

SKIPPED = re.compile(r"(/Adam(_\d+)?$)|(^beta[12]_power(_\d+)?$)|(^Variable(_\d+)?$)")
LEGACY_BACK_CONNECT = re.compile(r"^timestep(_\d+)?/predict/Variable(_\d+)?$")


def published_model_hparams(dataset, model):
    """``(directory name, model hparams)`` of a published model; ValueError listing the valid names."""
    if dataset not in PUBLISHED_MODELS:
        raise ValueError(f"unknown dataset {dataset!r} for EPVA; valid: {', '.join(PUBLISHED_MODELS)}")
    if model not in PUBLISHED_MODELS[dataset]:
        raise ValueError(f"unknown EPVA model {model!r}; valid: {', '.join(sorted(PUBLISHED_MODELS[dataset]))}")
    return PUBLISHED_MODELS[dataset][model]


def infer_hparams(shapes, model_hparams):
    """Complete ``model_hparams`` with what the checkpoint shows (enc_size, legacy back-connection, noise)."""
    hparams = dict(model_hparams)
    kernel = shapes.get("timestep/encoder/dense/kernel")
    if kernel is None:
        raise ConversionError("the checkpoint has no timestep/encoder/dense/kernel: not an EPVA checkpoint")
    enc_size = int(kernel[-1])
    if hparams.get("enc_size", enc_size) != enc_size:
        raise ConversionError(f"the checkpoint's encodings have size {enc_size}, the hparams say "
                              f"enc_size={hparams['enc_size']}")
    hparams["enc_size"] = enc_size
    legacy = [name for name in shapes if LEGACY_BACK_CONNECT.match(name)]
    if legacy and "timestep/predict/back_connect_init" not in shapes:
        hparams["use_legacy_vars"] = True
    if "timestep/predict/noise_dense/kernel" in shapes and not hparams.get("pred_noise_std"):
        raise ConversionError("the checkpoint has timestep/predict/noise_dense (trained with pred_noise_std > 0): "
                              "give pred_noise_std")
    return hparams


def targets_for(model, shapes):
    """``{checkpoint name: Target}`` for every weight of ``model`` (legacy back-connection found by pattern)."""
    targets = {name: Target(variable) for name, variable in model.tf1_variables().items()}
    if model.hparams.use_legacy_vars:
        size = 2 * (model.hparams.enc_size + model.hparams.action_dim)
        candidates = sorted(n for n in shapes if LEGACY_BACK_CONNECT.match(n) and tuple(shapes[n]) == (size,))
        if len(candidates) != 1:
            raise ConversionError(f"use_legacy_vars: expected one unnamed predictor variable of shape ({size},) "
                                  f"(timestep*/predict/Variable*), found {candidates}")
        target = targets.pop("timestep/predict/Variable")
        targets[candidates[0]] = target
    return targets


def convert_checkpoint(checkpoint, output_dir, model_hparams=None, dataset_hparams=None, image_shape=(64, 64, 3),
                       dataset_name="human36m"):
    """Convert an original EPVA TF1 checkpoint (directory or prefix) into a run directory ``output_dir``.

    ``model_hparams``: what the checkpoint cannot tell (mode, L2 norm, noise std); ``dataset_hparams``
    the clip lengths (Human3.6M's by default).  Returns the converted model.
    """
    prefix = find_original_checkpoint(checkpoint)
    reader, shapes = open_checkpoint(prefix)
    dataset_hparams = dict(HUMAN_DATASET_HPARAMS, **(dataset_hparams or {}))
    hparams = infer_hparams(shapes, model_hparams or {})
    hparams.update({k: v for k, v in dataset_hparams.items() if k in ("context_frames", "sequence_length")})
    if any(name.startswith("Discriminator/") for name in shapes) and hparams.get("model_mode") != "epva_gan":
        raise ConversionError("the checkpoint has a Discriminator (an EPVA-GAN run): convert it with "
                              "model_mode='epva_gan'")
    try:
        model = EPVAVideoPredictionModel(hparams=hparams)
    except ValueError as e:
        raise ConversionError(f"{prefix}: {e}") from None
    frames = hparams.get("sequence_length", 4)
    model.build_from_batch({"images": np.zeros((1, frames) + tuple(image_shape), np.float32)})
    hint = f" (converting {prefix} into an EPVA {hparams.get('model_mode', 'e2e')} model, enc_size={hparams['enc_size']})"
    assign_by_name(targets_for(model, shapes), shapes, reader.get_tensor, hint=hint,
                   ignore=lambda name: bool(SKIPPED.search(name)) or name == "global_step")
    if "global_step" in shapes:
        model.global_step.assign(int(reader.get_tensor("global_step")))
    step = int(model.global_step.numpy())
    options = dict(dataset=dataset_name, model="epva", input_dir=None, image_shape=list(image_shape),
                   converted_from=os.path.abspath(prefix))
    write_run_directory(output_dir, model, options, dataset_hparams, checkpoint_number=max(step, 1))
    return model


def load_warm_start(model, checkpoint, exclude=("back_connect_init", "noise_dense", "Variable")):
    """``epv_pretrain_ckpt``: copy the encoder, predictor and VAN weights of an EPVA run by name (spec §4.6).

    ``checkpoint`` is an original TF1 checkpoint or one of our run directories; names containing
    any of ``exclude`` keep their initial values (as the original's ``_get_init_fn``), the critic
    starts fresh.  Returns the list of names copied.
    """
    ours = _our_checkpoint(checkpoint)
    if ours is not None:
        return _warm_start_from_run(model, ours, exclude)
    prefix = find_original_checkpoint(checkpoint)
    reader, shapes = open_checkpoint(prefix)
    copied = []
    for name, variable in model.tf1_variables().items():
        if name.startswith("Discriminator/") or any(part in name for part in exclude):
            continue
        if name not in shapes:
            raise ConversionError(f"warm start: {prefix} lacks {name!r}")
        value = reader.get_tensor(name)
        if tuple(value.shape) != tuple(variable.shape):
            raise ConversionError(f"warm start: {name!r} has shape {tuple(value.shape)} in {prefix}, the model "
                                  f"needs {tuple(variable.shape)}")
        variable.assign(value)
        copied.append(name)
    return copied


def _our_checkpoint(path):
    """The latest checkpoint of one of our run directories (they hold ``options.json``), else None."""
    from video_prediction.training.run_directory import latest_checkpoint

    if not (os.path.isdir(path) and os.path.exists(os.path.join(path, "options.json"))):
        return None
    return latest_checkpoint(path)


def _warm_start_from_run(model, prefix, exclude):
    """Warm start from one of our EPVA run directories: same networks, restored then filtered by name."""
    from video_prediction.training.run_directory import read_run_config

    _, _, saved = read_run_config(os.path.dirname(prefix))
    donor = EPVAVideoPredictionModel(hparams=dict(saved, model_mode="epva", pred_noise_std=0.0))
    donor.build_from_batch({"images": np.zeros((1, model.hparams.sequence_length) + model.image_shape, np.float32)})
    tf.train.Checkpoint(model=donor).read(prefix).expect_partial()
    theirs = donor.tf1_variables()
    copied = []
    for name, variable in model.tf1_variables().items():
        if name.startswith("Discriminator/") or any(part in name for part in exclude) or name not in theirs:
            continue
        variable.assign(theirs[name])
        copied.append(name)
    return copied


GCS_LISTING_URL = "https://storage.googleapis.com/storage/v1/b/unsupervised-hierarch-video/o?prefix=pretrained_models/{name}/"
GCS_OBJECT_URL = "https://storage.googleapis.com/unsupervised-hierarch-video/{object}"


def _download_directory_listing(name, target_dir, progress):
    """Fetch every object under ``pretrained_models/<name>/`` of the authors' bucket (GCS JSON listing)."""
    import json
    import urllib.parse
    import urllib.request

    from video_prediction.download import download_file

    with urllib.request.urlopen(GCS_LISTING_URL.format(name=name), timeout=60) as response:
        items = json.load(response).get("items", [])
    if not items:
        raise ValueError(f"the bucket lists no files under pretrained_models/{name}/")
    for item in items:
        relative = item["name"].split(f"pretrained_models/{name}/", 1)[1]
        if not relative or relative.endswith("/"):
            continue
        download_file(GCS_OBJECT_URL.format(object=urllib.parse.quote(item["name"])),
                      os.path.join(target_dir, relative), progress=progress)


def download_published_model(dataset, model, output_root="pretrained_models", base_url=BASE_URL, convert=True,
                             progress=True):
    """Download ``<base_url>/<name>.zip`` (else the bucket's ``<name>/`` listing) and convert it.

    ``pretrained_models/<dataset>/<model>/tf1/`` receives the original files and
    ``pretrained_models/<dataset>/<model>`` becomes a run directory for ``--checkpoint``.
    """
    import shutil

    from video_prediction.download import download_file, extract_archive, verify_archive
    from video_prediction.training.run_directory import latest_checkpoint

    name, hparams = published_model_hparams(dataset, model)
    model_dir = os.path.join(output_root, dataset, model)
    original_dir = os.path.join(model_dir, "tf1")
    try:
        find_original_checkpoint(original_dir)
        print(f"{original_dir} already holds the original checkpoint")
    except FileNotFoundError:
        staging = original_dir + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            archive = download_file(f"{base_url.rstrip('/')}/{name}.zip", os.path.join(model_dir, f"{name}.zip"),
                                    progress=progress)
            verify_archive(archive)
            extract_archive(archive, staging)
            os.remove(archive)
        except Exception as zip_error:  # noqa: BLE001 - only epva_human.zip is known to exist; try the listing
            if base_url != BASE_URL:
                raise
            try:
                _download_directory_listing(name, staging, progress)
            except Exception as listing_error:  # noqa: BLE001
                raise ValueError(f"could not download {name}: {zip_error}; listing: {listing_error}") from None
        find_original_checkpoint(staging)
        shutil.rmtree(original_dir, ignore_errors=True)
        os.rename(staging, original_dir)
        print(f"downloaded {name} into {original_dir}")
    if not convert:
        return model_dir
    if latest_checkpoint(model_dir) is not None:
        print(f"{model_dir} already holds the converted checkpoint")
        return model_dir
    convert_checkpoint(original_dir, model_dir, model_hparams=hparams)
    print(f"converted into {model_dir}: use --checkpoint {model_dir}")
    return model_dir
