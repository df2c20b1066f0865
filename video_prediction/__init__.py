"""video_prediction: SAVP, EPVA, hierarchical pose LSTM, MSPred and VQ-VAE in TF2 / Keras 3.

The notebook API (:mod:`video_prediction.api`): ``load_model``, ``write_gif``, ``published_models``;
they import TensorFlow when called, so ``import video_prediction`` stays light.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

_API = ("load_model", "write_gif", "published_models", "Predictor")
__all__ = list(_API)


def __getattr__(name):
    if name in _API:
        from video_prediction import api

        return getattr(api, name)
    raise AttributeError(f"module 'video_prediction' has no attribute {name!r}")
