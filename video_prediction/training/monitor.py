"""TensorBoard summaries and progress lines during training."""

import os
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm


class TrainingMonitor(keras.callbacks.Callback):
    """Writes scalars, images and GIFs at their frequencies and prints progress; driven by :func:`train`.

    Scalars: every tracked loss (the mean since the last summary), the learning
    rate and, where the model has one, the KL weight; the same losses on a
    validation batch.  Images/GIFs: context | ground truth | prediction of a
    fixed validation batch.  One summary period is one "epoch" of the hooks.
    """

    def __init__(self, initial_step, max_steps, summary_freq, image_summary_freq, output_dir, val_batch=None,
                 num_summary_videos=4, fps=4, verbose=1):
        super().__init__()
        self.step = int(initial_step)
        self.max_steps = int(max_steps)
        self.summary_freq = summary_freq
        self.image_summary_freq = image_summary_freq
        self.val_batch = val_batch
        self.num_summary_videos = num_summary_videos
        self.fps = fps
        self.verbose = verbose
        if output_dir is None:  # a non-chief worker: no event files
            self.train_writer = self.val_writer = tf.summary.create_noop_writer()
        else:
            self.train_writer = tf.summary.create_file_writer(os.path.join(output_dir, "train"))
            self.val_writer = tf.summary.create_file_writer(os.path.join(output_dir, "val"))
        self._val_losses_fn = None
        self._window_start = time.time()
        self._window_start_step = self.step

    def on_train_begin(self, logs=None):
        if self.image_summary_freq:
            self.write_image_summaries()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.summary_freq and self.step % self.summary_freq == 0:
            self.write_scalar_summaries(logs)
        if self.image_summary_freq and self.step % self.image_summary_freq == 0:
            self.write_image_summaries()

    def on_train_end(self, logs=None):
        self.train_writer.flush()
        self.val_writer.flush()

    def write_scalar_summaries(self, logs):
        now = time.time()
        steps_per_sec = (self.step - self._window_start_step) / max(now - self._window_start, 1e-9)
        self._window_start, self._window_start_step = now, self.step
        logs = {name: float(value) for name, value in (logs or {}).items()}
        model = self.model
        with self.train_writer.as_default(step=self.step):
            for name, value in logs.items():
                tf.summary.scalar(name, value)
            tf.summary.scalar("learning_rate", float(model.current_learning_rate()))
            if hasattr(model, "current_kl_weight"):
                tf.summary.scalar("kl_weight", float(model.current_kl_weight()))
            tf.summary.scalar("steps_per_sec", steps_per_sec)
        if self.val_batch is not None:
            with self.val_writer.as_default(step=self.step):
                for name, value in self.validation_losses().items():
                    tf.summary.scalar(name, float(value))
        if self.verbose:
            losses = " ".join(f"{name}={value:.4g}" for name, value in logs.items())
            tqdm.write(f"step {self.step}/{self.max_steps} {losses} ({steps_per_sec:.2f} steps/s)")

    def validation_losses(self):
        if self._val_losses_fn is None:
            model = self.model

            @tf.function
            def val_losses(batch):
                outputs = model(batch, training=False)
                losses = model.generator_losses(batch, outputs)
                return dict(losses, loss=tf.add_n(list(losses.values())))

            self._val_losses_fn = val_losses
        return self._val_losses_fn(self.val_batch)

    def write_image_summaries(self):
        if self.val_batch is None:
            return
        from video_prediction.inference import visualization

        model = self.model
        batch = {k: v[: self.num_summary_videos] for k, v in self.val_batch.items()}
        context = model.context_frames
        horizon = int(batch["images"].shape[1]) - context
        predictions = model.generate(batch, num_samples=1, horizon=horizon)[:, 0]
        images = batch["images"]
        strips = np.stack([
            visualization.side_by_side(images[i, :context], images[i, context:], predictions[i])
            for i in range(images.shape[0])
        ])
        with self.val_writer.as_default(step=self.step):
            visualization.write_gif_summary("predictions", strips, step=self.step, fps=self.fps,
                                            max_outputs=self.num_summary_videos)
            tf.summary.image("predictions_last_frame", strips[:, -1], max_outputs=self.num_summary_videos)
