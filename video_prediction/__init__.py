"""video_prediction: SAVP, EPVA, hierarchical pose LSTM, MSPred and VQ-VAE in TF2 / Keras 3."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
