"""Tiny run directories and evaluation outputs for the results-page, comparison and API tests."""

import tensorflow as tf

from video_prediction.datasets.moving_mnist import write_moving_mnist
from video_prediction.models import get_model_class
from video_prediction.training.run_directory import write_run_config

# A 32x32 SAVP-VAE of a few thousand weights: 2 context frames, 3 predicted.
TINY_SAVP = dict(context_frames=2, sequence_length=5, ngf=4, nef=8, nz=2, batch_size=2, kl_anneal="none",
                 clip_length=4)


def write_records(root, canvas_size=32):
    """Moving MNIST records (4 test videos of 6 frames) under ``root``; returns ``root``."""
    write_moving_mnist(root, {"train": 2, "val": 2, "test": 4}, sequence_length=6, canvas_size=canvas_size,
                       progress=False)
    return root


def write_tiny_run(run_dir, input_dir=None, seed=0, step=3):
    """A run directory of a randomly initialised tiny SAVP model, as train.py writes one (checkpoint ``ckpt-<step>``)."""
    tf.keras.utils.set_random_seed(seed)
    model = get_model_class("savp")(hparams_dict=TINY_SAVP)
    model.build_from_batch({"images": tf.zeros([1, 5, 32, 32, 1])})
    options = dict(model="savp", dataset="moving_mnist", input_dir=input_dir, image_shape=[32, 32, 1], seed=seed)
    write_run_config(run_dir, options, dict(context_frames=2, sequence_length=5), model.hparams.values())
    checkpoint = tf.train.Checkpoint(model=model)
    tf.train.CheckpointManager(checkpoint, run_dir, max_to_keep=1).save(checkpoint_number=step)
    return run_dir
