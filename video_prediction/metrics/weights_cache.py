"""Where the converted LPIPS and I3D weights live, and how they are read.

``python -m video_prediction.metrics.fetch_weights`` writes one ``.npz`` file
per network into the cache directory (``$VIDEO_PREDICTION_CACHE``, default
``~/.cache/video_prediction``) plus a ``manifest.json`` with their sha256.
The ``.npz`` files hold plain float32 arrays under our own names (e.g.
``conv1/kernel`` or ``Mixed_3b/Branch_1/Conv3d_0b_3x3/bn/moving_mean``) and
are read with ``allow_pickle=False``.  Zip members carry a CRC-32, so a
damaged file fails to read instead of giving wrong numbers.

This module imports neither TensorFlow nor Keras, so the fetch command
starts quickly.
"""

import os
import zipfile
from pathlib import Path

import numpy as np

CACHE_ENV_VAR = "VIDEO_PREDICTION_CACHE"
FETCH_COMMAND = "python -m video_prediction.metrics.fetch_weights"
MANIFEST_NAME = "manifest.json"

# Converted file per network.  Bump the version in a name when the
# conversion changes, so an old cache is never read with new code.
WEIGHT_FILES = {
    "lpips_alex": "lpips_v0.1_alex.npz",
    "lpips_vgg": "lpips_v0.1_vgg.npz",
    "i3d": "i3d_kinetics400.npz",
}


class WeightFileError(RuntimeError):
    """A converted weight file is missing, unreadable or does not fit the network."""


def cache_dir():
    """The weight cache directory: ``$VIDEO_PREDICTION_CACHE`` or ``~/.cache/video_prediction``."""
    configured = os.environ.get(CACHE_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "video_prediction"


def weights_path(key):
    """Path of the converted weights for ``key`` (one of ``WEIGHT_FILES``) in the cache."""
    if key not in WEIGHT_FILES:
        raise ValueError(f"unknown weights {key!r}; valid: {', '.join(sorted(WEIGHT_FILES))}")
    return cache_dir() / WEIGHT_FILES[key]


def _error(path, problem):
    return WeightFileError(f"{problem}: {path}. Create or repair it with `{FETCH_COMMAND}` "
                           f"(set ${CACHE_ENV_VAR} to choose the cache directory).")


def load_weight_arrays(path, expected_shapes):
    """Read the arrays of a converted ``.npz`` and check them against ``expected_shapes``.

    ``expected_shapes`` maps array name to shape; the file must hold exactly
    those names with those shapes.  Any problem raises ``WeightFileError``
    naming the file and the fetch command.
    """
    path = Path(path)
    if not path.is_file():
        raise _error(path, "weight file not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise _error(path, f"weight file is corrupt or unreadable ({type(exc).__name__}: {exc})") from exc
    missing = sorted(set(expected_shapes) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected_shapes))
    if missing or unexpected:
        raise _error(path, f"weight file does not match the network (missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]})")
    for name, shape in expected_shapes.items():
        if tuple(arrays[name].shape) != tuple(shape):
            raise _error(path, f"weight {name!r} has shape {arrays[name].shape}, expected {tuple(shape)}")
        if not np.all(np.isfinite(arrays[name])):
            raise _error(path, f"weight {name!r} holds non-finite values")
    return arrays


def assign_weights(variables, path):
    """Load ``path`` into ``variables`` (a dict name -> Keras/TF variable)."""
    arrays = load_weight_arrays(path, {name: tuple(var.shape) for name, var in variables.items()})
    for name, var in variables.items():
        var.assign(arrays[name].astype(np.float32))
