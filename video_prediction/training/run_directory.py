"""Run directories: the files that let a run be rebuilt exactly, and finding / restoring its checkpoints.

A *run directory* holds ``options.json`` (dataset and model names, image shape,
seed, ...), ``dataset_hparams.json``, ``model_hparams.json`` and TensorFlow
checkpoints (``ckpt-<n>.*``) of the model, its optimizers, the run state and the
input position.  :func:`~video_prediction.training.loop.train` writes one;
``generate.py`` and ``evaluate.py --checkpoint DIR`` read it back through
:mod:`video_prediction.training.building`.
"""

import json
import os

import tensorflow as tf

from video_prediction.hparams import resolve_hparams
from video_prediction.training.checkpointing import (STATE_FILE, DamagedCheckpointError, data_shards, read_state,
                                                     verify_checkpoint)


RUN_CONFIG_FILES = ("options.json", "dataset_hparams.json", "model_hparams.json")


class RunError(ValueError):
    """A problem with the user's input (flags, files, checkpoints) that the scripts report in one line."""


def write_json(path, values):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(values, f, sort_keys=True, indent=4, default=list)
    os.replace(tmp, path)


def write_run_config(directory, options, dataset_hparams, model_hparams):
    """Write the three JSON files that let a run be rebuilt exactly."""
    os.makedirs(directory, exist_ok=True)
    write_json(os.path.join(directory, "options.json"), options)
    write_json(os.path.join(directory, "dataset_hparams.json"), dataset_hparams)
    write_json(os.path.join(directory, "model_hparams.json"), model_hparams)


def read_run_config(directory):
    """``(options, dataset_hparams, model_hparams)`` of a run directory, with clear errors."""
    values = []
    for name in RUN_CONFIG_FILES:
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            raise RunError(f"{directory!r} is not a run directory: {name} is missing")
        with open(path) as f:
            try:
                values.append(json.load(f))
            except json.JSONDecodeError as e:
                raise RunError(f"{path} is not valid JSON: {e}") from None
    return tuple(values)


def checkpoint_directory(path):
    """The run directory of ``path`` (a directory, or a checkpoint prefix such as ``dir/ckpt-3``)."""
    return path if os.path.isdir(path) else os.path.dirname(path)


def latest_checkpoint(path):
    """The checkpoint prefix for ``path`` (a directory or a prefix), or None when there is none.

    The newest checkpoint the state file names must be there: when its index is
    gone, or the state file names none, this raises
    :class:`~video_prediction.training.checkpointing.DamagedCheckpointError`
    naming the file instead of silently taking an older one.
    """
    if path is None:
        return None
    if os.path.isdir(path):
        state = os.path.join(path, STATE_FILE)
        if not os.path.exists(state):
            return None
        listed = read_state(path)
        if not listed:
            raise DamagedCheckpointError(
                f"checkpoint state file {state} names no checkpoint (empty or not a checkpoint state file)", state)
        if not os.path.exists(listed[-1] + ".index"):
            raise DamagedCheckpointError(
                f"checkpoint state file {state} names {os.path.basename(listed[-1])}, whose index "
                f"{listed[-1]}.index is missing", listed[-1] + ".index")
        return listed[-1]
    if tf.io.gfile.exists(path + ".index"):
        return path
    if data_shards(path):
        raise DamagedCheckpointError(f"checkpoint index {path}.index is missing (its data file is there)",
                                     path + ".index")
    return None


def require_checkpoint(path):
    """Like :func:`latest_checkpoint` but raises naming ``path`` when it holds no checkpoint."""
    if not os.path.exists(path) and not tf.io.gfile.exists(path + ".index"):
        raise RunError(f"checkpoint {path!r} does not exist")
    prefix = latest_checkpoint(path)
    if prefix is None:
        raise RunError(f"no checkpoint found in {path!r} (expected ckpt-<n>.index and a 'checkpoint' file)")
    return prefix


def check_checkpoint_covers(checkpoint, model):
    """Raise naming every weight of ``model`` that ``checkpoint`` would not save.

    With Keras 3, ``tf.train.Checkpoint`` does not follow layers or weights kept
    only in Python lists or dicts, and says nothing: such weights would be
    silently lost on save and left at their initial values on restore.
    """
    tracked = {id(obj) for obj in tf.train.TrackableView(checkpoint).descendants()}
    missing = [w.path for w in model.weights if id(w) not in tracked]
    if missing:
        raise RuntimeError(
            f"{len(missing)} weights of {model.name} are not tracked by the checkpoint (keep sub-layers and "
            f"weights as named attributes, not only in lists/dicts): {', '.join(missing[:10])}"
        )


def restore_checkpoint(checkpoint, prefix, what, partial, verify=True):
    """Restore ``checkpoint`` from ``prefix``; one error line for a damaged checkpoint (naming the file) or one
    of another model.  ``verify`` reads and checks every tensor first (see
    :func:`~video_prediction.training.checkpointing.verify_checkpoint`): a partial restore would
    otherwise not notice damage in the values it does not read."""
    if verify:
        verify_checkpoint(prefix)
    try:
        status = checkpoint.restore(prefix)
        if partial:
            status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, IndexError, tf.errors.OpError) as e:
        if not verify:
            verify_checkpoint(prefix)  # a damaged file is named as such, not as another model
        detail = str(e).strip().splitlines()
        detail = " ".join(line.strip() for line in detail[:6])
        raise RunError(
            f"checkpoint {prefix!r} does not fit {what} (was it written by another model or hparams set?): {detail}"
        ) from None
    return status


def resumed_seed(output_dir, options, seed):
    recorded = options.get("seed")
    if seed is not None and recorded is not None and int(seed) != int(recorded):
        raise RunError(f"{output_dir!r} was started with --seed {recorded}; refusing to resume it with --seed {seed}")
    return recorded if recorded is not None else seed


def check_resume_hparams(output_dir, model_class, recorded, hparams_dict, hparams):
    """Refuse to resume with explicitly given model hparams that differ from the ``recorded`` ones."""
    if hparams_dict is None and hparams is None:
        return
    defaults = model_class.default_hparams()
    requested = resolve_hparams(defaults, hparams_dict, hparams).values()
    recorded = resolve_hparams(defaults, recorded).values()
    changed = [key for key, value in requested.items()
               if value != defaults[key] and key in recorded and value != recorded[key]
               and key not in ("context_frames", "sequence_length", "repeat")]
    if changed:
        details = ", ".join(f"{key}={recorded[key]!r} (given {requested[key]!r})" for key in sorted(changed))
        raise RunError(f"{output_dir!r} was trained with {details}; refusing to resume it with other hparams "
                       "(choose another --output_dir, or --checkpoint to start a new run from it)")


def check_resume_consistent(output_dir, options, dataset_name, model_name):
    for key, given in (("dataset", dataset_name), ("model", model_name)):
        if given and given != options.get(key):
            raise RunError(
                f"{output_dir!r} holds a {options.get(key)!r} {key} run; refusing to resume it as {given!r} "
                "(choose another --output_dir)"
            )
