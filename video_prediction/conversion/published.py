"""The original SAVP pretrained models: URL table, download, safe extraction and conversion (specs/savp.md §5).

``download_model('bair_action_free', 'ours_savp')`` fetches
``<BASE_URL>/bair_action_free_ours_savp.tar.gz`` into
``pretrained_models/bair_action_free/ours_savp/`` (resumable), verifies and
extracts it into ``.../ours_savp/tf1/`` and deletes the tarball, then converts
the TF1 checkpoint so that ``.../ours_savp`` itself is a run directory for
``generate.py`` / ``evaluate.py --checkpoint`` (as in the original README).
A second call skips the steps already done.  The ``sv2p_*`` / ``sna_*``
baselines convert the same way (``convert_original_checkpoint`` picks the
converter from the run's ``options.json``).
"""

import json
import os
import shutil

from video_prediction.conversion.formats.tf1 import find_original_checkpoint
from video_prediction.download import download_file, extract_archive, verify_archive

BASE_URL = "http://rail.eecs.berkeley.edu/models/savp/pretrained_models"

# DATASET_NAME -> {MODEL_NAME: target}; the archive is <DATASET_NAME>_<target>.tar.gz (download_model.sh).
_OURS = {
    "ours_deterministic": "ours_deterministic_l1",  # alias
    "ours_deterministic_l1": "ours_deterministic_l1",
    "ours_deterministic_l2": "ours_deterministic_l2",
    "ours_gan": "ours_gan",
    "ours_savp": "ours_savp",
    "ours_vae": "ours_vae_l1",  # alias
    "ours_vae_l1": "ours_vae_l1",
}
PRETRAINED_MODELS = {
    "bair_action_free": dict(_OURS, ours_vae_l2="ours_vae_l2", sv2p_time_invariant="sv2p_time_invariant"),
    "kth": dict(_OURS, sv2p_time_invariant="sv2p_time_invariant", sv2p_time_variant="sv2p_time_variant"),
    "bair": dict(_OURS, ours_vae_l2="ours_vae_l2", sna_l1="sna_l1", sna_l2="sna_l2",
                 sv2p_time_variant="sv2p_time_variant"),
}
#: Subdirectory of a model directory that holds the original (TF1) files.
ORIGINAL_SUBDIR = "tf1"


def archive_name(dataset, model):
    """``<dataset>_<target>.tar.gz``; ValueError listing the valid names for an unknown dataset or model."""
    if dataset not in PRETRAINED_MODELS:
        raise ValueError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(PRETRAINED_MODELS)}")
    models = PRETRAINED_MODELS[dataset]
    if model not in models:
        raise ValueError(f"unknown model {model!r} for dataset {dataset!r}; valid models: {', '.join(sorted(models))}")
    return f"{dataset}_{models[model]}.tar.gz"


def convert_command(original_dir, output_dir):
    return (f"python pretrained_models/convert_savp_checkpoint.py --checkpoint {original_dir} "
            f"--output_dir {output_dir}")


def download_model(dataset, model, output_root="pretrained_models", base_url=BASE_URL, convert=True,
                   progress=True):
    """Download, extract and (for SAVP variants) convert a pretrained model; returns its directory."""
    if dataset == "human36m":  # the EPVA models (conversion/epva.py holds their table)
        from video_prediction.conversion import epva

        return epva.download_published_model(dataset, model, output_root,
                                             epva.BASE_URL if base_url == BASE_URL else base_url, convert, progress)
    fname = archive_name(dataset, model)
    model_dir = os.path.join(output_root, dataset, model)
    original_dir = os.path.join(model_dir, ORIGINAL_SUBDIR)
    try:
        find_original_checkpoint(original_dir)
        print(f"{original_dir} already holds the original checkpoint")
    except FileNotFoundError:
        if os.path.isdir(original_dir) and os.listdir(original_dir):
            raise ValueError(f"{original_dir} exists but holds no checkpoint; remove it to download again") from None
        archive = download_file(f"{base_url.rstrip('/')}/{fname}", os.path.join(model_dir, fname),
                                progress=progress)
        verify_archive(archive)
        # Extract next to the final place and rename once complete: an interrupted run leaves no
        # half-extracted checkpoint that a second run would take for a finished one.
        staging = original_dir + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        extract_archive(archive, staging)
        find_original_checkpoint(staging)  # the archive must hold a checkpoint
        if os.path.isdir(original_dir):
            os.rmdir(original_dir)  # empty (checked above)
        os.rename(staging, original_dir)
        os.remove(archive)
        print(f"extracted {fname} into {original_dir}")
    if not convert:
        print(f"to convert: {convert_command(original_dir, model_dir)}")
        return model_dir
    # TensorFlow is imported only now: bad names and failed downloads are reported at once.
    from video_prediction.training.run_directory import latest_checkpoint

    if latest_checkpoint(model_dir) is not None:
        print(f"{model_dir} already holds the converted checkpoint")
        return model_dir
    try:
        convert_original_checkpoint(original_dir, model_dir)
    except ValueError as e:
        raise ValueError(f"{e}\nthe original checkpoint is kept in {original_dir}; after fixing the cause run: "
                         f"{convert_command(original_dir, model_dir)}") from None
    print(f"converted into {model_dir}: use --checkpoint {model_dir}")
    return model_dir


#: ``options.json``'s model -> the converter of the original runs of that model ("module:function").
CONVERTERS = {
    "savp": "video_prediction.conversion.savp:convert_checkpoint",
    "sv2p": "video_prediction.conversion.conv_lstm_cdna:convert_checkpoint",
    "sna": "video_prediction.conversion.conv_lstm_cdna:convert_checkpoint",
    "epva": "video_prediction.conversion.epva:convert_checkpoint",
}


def convert_original_checkpoint(checkpoint, output_dir, image_shape=None):
    """Convert an original TF1 run (savp, sv2p or sna, as its ``options.json`` says; savp if absent)."""
    from video_prediction.registry import lookup

    prefix = find_original_checkpoint(checkpoint)
    options_path = os.path.join(os.path.dirname(prefix), "options.json")
    model_name = "savp"
    if os.path.exists(options_path):
        with open(options_path) as f:
            model_name = json.load(f).get("model") or "savp"
    if model_name not in CONVERTERS:
        raise ValueError(f"{options_path}: model {model_name!r} has no converter; valid: {', '.join(CONVERTERS)}")
    convert_checkpoint = lookup(CONVERTERS, model_name, "converter")
    return convert_checkpoint(prefix, output_dir, image_shape=image_shape)
