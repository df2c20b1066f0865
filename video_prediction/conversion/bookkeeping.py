"""What the converters of original checkpoints share (MSPred ``.pth``, SAVP TF1).

* :func:`assign_by_name` copies named source values into Keras variables with
  full bookkeeping: every source value must find a variable (an unknown name is
  an error naming it), every required variable must receive a value (a missing
  one is an error naming it and the Keras weight), and shapes must agree after
  conversion.  A target may list alias names (older checkpoints of the same
  model used other scope names).
* :func:`write_run_directory` writes what ``generate.py`` / ``evaluate.py
  --checkpoint DIR`` load: ``options.json``, ``dataset_hparams.json``,
  ``model_hparams.json`` and a ``ckpt-<n>`` TensorFlow checkpoint.
"""

from typing import Callable, NamedTuple, Optional

import numpy as np
import tensorflow as tf

from video_prediction.training.run_directory import check_checkpoint_covers, write_run_config


class ConversionError(ValueError):
    """An original checkpoint (or its settings) does not fit the model it is converted into."""


class Target(NamedTuple):
    """Where one source value goes: ``variable``, after ``convert`` (a numpy function) if given."""

    variable: object
    convert: Optional[Callable] = None
    aliases: tuple = ()
    required: bool = True


def assign_by_name(targets, source_shapes, load, ignore=None, what="variable", hint=""):
    """Assign every source value to its target; return ``{source name: target name}``.

    ``targets``: ``{name: Target}``; ``source_shapes``: ``{source name: shape}``
    of everything in the checkpoint; ``load(name)`` returns one value; names for
    which ``ignore(name)`` is true (optimizer slots, counters) are skipped.
    Raises :class:`ConversionError` naming the first unknown or misshaped source
    value, or the required targets the checkpoint lacks.
    """
    names = {name for name in source_shapes if not (ignore and ignore(name))}
    chosen = {}  # source name -> target name
    for target_name, target in targets.items():
        for candidate in (target_name,) + tuple(target.aliases):
            if candidate in names:
                chosen[candidate] = target_name
                break
    unknown = sorted(names - set(chosen))
    if unknown:
        more = f" (and {len(unknown) - 1} more: {unknown[1:6]})" if len(unknown) > 1 else ""
        raise ConversionError(
            f"{what} {unknown[0]!r} {tuple(source_shapes[unknown[0]])} of the checkpoint has no counterpart in the "
            f"model{more}{hint}"
        )
    for source_name, target_name in sorted(chosen.items()):
        target = targets[target_name]
        value = np.asarray(load(source_name))
        value = target.convert(value) if target.convert is not None else value
        expected = tuple(target.variable.shape)
        if tuple(value.shape) != expected:
            raise ConversionError(
                f"{what} {source_name!r} has shape {tuple(value.shape)}{' after conversion' if target.convert else ''}"
                f" but the model's {target.variable.path} has {expected}{hint}"
            )
        target.variable.assign(value.astype(target.variable.dtype))
    assigned = set(chosen.values())
    missing = [name for name, target in targets.items() if target.required and name not in assigned]
    if missing:
        listed = ", ".join(
            f"{name!r} (for {targets[name].variable.path}"
            + (f"; also looked for {list(targets[name].aliases)}" if targets[name].aliases else "") + ")"
            for name in missing[:10])
        raise ConversionError(f"the checkpoint lacks {len(missing)} {what}(s) the model needs: {listed}{hint}")
    return chosen


def write_run_directory(output_dir, model, options, dataset_hparams, checkpoint_number=1):
    """Write the JSON files and a ``ckpt-<checkpoint_number>`` checkpoint of ``model``; returns its prefix."""
    write_run_config(output_dir, options, dataset_hparams, model.hparams.values())
    checkpoint = tf.train.Checkpoint(model=model)
    check_checkpoint_covers(checkpoint, model)
    manager = tf.train.CheckpointManager(checkpoint, output_dir, max_to_keep=1)
    return manager.save(checkpoint_number=checkpoint_number)
