"""Models without weights: ``ground_truth`` and ``repeat`` (the original's non_trainable_model.py)."""

import tensorflow as tf

from video_prediction.models.base import BaseVideoPredictionModel


class GroundTruthVideoPredictionModel(BaseVideoPredictionModel):
    """Outputs the ground truth: ``gen_images = images[:, 1:]`` (used to dump GT frames)."""

    def call(self, batch, training=False):
        return {"gen_images": batch["images"][:, 1:]}

    def generate(self, batch, num_samples=1, horizon=None):
        context = self.context_frames
        horizon = self.sequence_length - context if horizon is None else int(horizon)
        images = tf.convert_to_tensor(batch["images"])
        if images.shape[1] is not None and images.shape[1] < context + horizon:
            raise ValueError(
                f"ground_truth needs {context + horizon} frames for a horizon of {horizon}, "
                f"the batch has {images.shape[1]}"
            )
        future = images[:, context : context + horizon]
        return tf.repeat(future[:, None], num_samples, axis=1)


class RepeatVideoPredictionModel(BaseVideoPredictionModel):
    """Copies the last context frame forward in time.

    The original concatenated along the channel axis by mistake; this
    concatenates along time, which is what the baseline means.
    """

    def call(self, batch, training=False):
        images = batch["images"]
        context = self.context_frames
        # Step t predicts frame t+1: the input frame during the context, the last
        # context frame afterwards.
        num_future = tf.shape(images)[1] - 1 - context
        last = images[:, context - 1 : context]
        future_part = tf.repeat(last, num_future, axis=1)
        return {"gen_images": tf.concat([images[:, :context], future_part], axis=1)}
