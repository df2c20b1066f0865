"""TF1 name-based checkpoints (``model-<step>.index`` / ``.data-*`` + a ``checkpoint`` file).

:func:`find_original_checkpoint` locates the prefix without TensorFlow (so that a
wrong path is reported before TF loads); :func:`open_checkpoint` reads it by name.
The per-family name maps (``conversion/savp.py``, ...) decide where each value goes.
"""

import glob
import os
import re


def find_original_checkpoint(path):
    """The TF1 checkpoint prefix for ``path``: a prefix, or a directory (searched one level down too)."""
    path = os.fspath(path)
    if os.path.exists(path + ".index"):
        return path
    if glob.glob(glob.escape(path) + ".data-*"):
        raise FileNotFoundError(f"checkpoint index {path}.index is missing (its data file is there)")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no TF1 checkpoint at {path!r} (neither a directory nor a prefix with .index)")
    for directory in [path] + sorted(d for d in glob.glob(os.path.join(path, "*")) if os.path.isdir(d)):
        prefix = _checkpoint_in_directory(directory)
        if prefix is not None:
            return prefix
    raise FileNotFoundError(f"no TF1 checkpoint (model-<step>.index) in {path!r}")


def _checkpoint_in_directory(directory):
    # The 'checkpoint' file may hold the author's absolute paths: only its base name is trusted.
    state_file = os.path.join(directory, "checkpoint")
    if os.path.exists(state_file):
        with open(state_file) as f:
            match = re.search(r'^model_checkpoint_path:\s*"(.*)"', f.read(), re.MULTILINE)
        if match:
            prefix = os.path.join(directory, os.path.basename(match.group(1)))
            if os.path.exists(prefix + ".index"):
                return prefix
            # Never silently an older step: the one the state file names is damaged or gone.
            raise FileNotFoundError(f"checkpoint state file {state_file} names {os.path.basename(prefix)}, but "
                                    f"{prefix}.index is missing")
    indexes = glob.glob(os.path.join(directory, "*.index"))
    if not indexes:
        orphans = glob.glob(os.path.join(glob.escape(directory), "*.data-[0-9]*-of-[0-9]*"))
        if orphans:
            prefix = sorted(orphans)[-1].rsplit(".data-", 1)[0]
            raise FileNotFoundError(f"checkpoint index {prefix}.index is missing (its data file is there)")
        return None

    def step(index):
        found = re.search(r"-(\d+)\.index$", index)
        return int(found.group(1)) if found else -1

    return max(indexes, key=step)[: -len(".index")]


def open_checkpoint(prefix):
    """``(reader, {variable name: shape})`` of the TF1 checkpoint at ``prefix`` (``reader.get_tensor(name)``).

    Every tensor is read and checked against its CRC-32C first, so that a truncated or damaged download
    is one error naming the file, not a failure half-way through a conversion.
    """
    import tensorflow as tf

    from video_prediction.training.checkpointing import verify_checkpoint

    verify_checkpoint(prefix)
    reader = tf.train.load_checkpoint(prefix)
    return reader, reader.get_variable_to_shape_map()
