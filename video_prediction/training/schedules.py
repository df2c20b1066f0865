"""Step-keyed schedules of the SAVP family: learning rate, KL weight, schedule sampling.

All take the global step as a tensor so they can run inside ``tf.function``.
Numbers and semantics follow the original's ``VideoPredictionModel`` and
``SAVPCell`` (specs/savp.md §3.2 and §3.5).
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="video_prediction")
class SAVPLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """The original's lr rule.

    If any ``lr_boundaries``: piecewise constant, ``lr * 0.1**k`` after the k-th
    boundary.  Elif any ``decay_steps``: constant ``lr`` until ``decay_steps[0]``,
    then linear to ``end_lr`` at ``decay_steps[1]`` (a step change when they are
    equal).  Else constant.
    """

    def __init__(self, lr, end_lr=0.0, decay_steps=(0, 0), lr_boundaries=(0,)):
        self.lr = float(lr)
        self.end_lr = float(end_lr)
        self.decay_steps = tuple(int(s) for s in decay_steps)
        self.lr_boundaries = tuple(int(b) for b in lr_boundaries)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        lr = tf.constant(self.lr, tf.float32)
        if any(self.lr_boundaries):
            factor = tf.add_n([tf.cast(step >= b, tf.float32) for b in self.lr_boundaries])
            return lr * tf.pow(0.1, factor)
        if any(self.decay_steps):
            start, end = self.decay_steps
            if end == start:
                return tf.where(step < start, lr, self.end_lr)
            progress = tf.clip_by_value((step - start) / float(end - start), 0.0, 1.0)
            return lr + (self.end_lr - lr) * progress
        return lr

    def get_config(self):
        return {
            "lr": self.lr,
            "end_lr": self.end_lr,
            "decay_steps": self.decay_steps,
            "lr_boundaries": self.lr_boundaries,
        }


def kl_weight_schedule(step, kl_weight, kl_anneal="linear", kl_anneal_k=-1.0, kl_anneal_steps=(50000, 100000)):
    """KL weight at ``step``: ``none`` constant, ``sigmoid`` k-rate, ``linear`` (default) 0 -> kl_weight."""
    step = tf.cast(step, tf.float32)
    if not kl_weight or kl_anneal == "none":
        return tf.constant(float(kl_weight), tf.float32)
    if kl_anneal == "sigmoid":
        k = float(kl_anneal_k)
        if k <= 0:
            raise ValueError("kl_anneal='sigmoid' needs kl_anneal_k > 0")
        return kl_weight / (1.0 + k * tf.exp(-step / k))
    if kl_anneal == "linear":
        start, end = (float(s) for s in kl_anneal_steps)
        if end <= start:
            return tf.where(step < start, 0.0, float(kl_weight))
        return kl_weight * tf.clip_by_value((step - start) / (end - start), 0.0, 1.0)
    raise ValueError(f"unknown kl_anneal {kl_anneal!r}; valid: none, sigmoid, linear")


def ground_truth_sampling_probability(step, schedule_sampling="inverse_sigmoid", k=900.0, steps=(0, 100000)):
    """Probability of feeding the ground-truth frame after the context (SAVPCell schedule sampling).

    ``inverse_sigmoid``: ``k / (k + exp((step - steps[0]) / k))``, 1 before ``steps[0]``;
    ``linear``: 1 -> 0 over ``steps``; ``none``: 0 (always the model's own predictions).
    Values under 1e-3 are forced to 0, as in the original.
    """
    step = tf.cast(step, tf.float32)
    start, end = (float(s) for s in steps)
    if schedule_sampling in ("none", None):
        return tf.constant(0.0)
    if schedule_sampling == "inverse_sigmoid":
        prob = k / (k + tf.exp(tf.minimum((step - start) / k, 80.0)))
        prob = tf.where(step < start, 1.0, prob)
    elif schedule_sampling == "linear":
        prob = 1.0 - tf.clip_by_value((step - start) / max(end - start, 1.0), 0.0, 1.0)
    else:
        raise ValueError(f"unknown schedule_sampling {schedule_sampling!r}; valid: none, inverse_sigmoid, linear")
    return tf.where(prob < 1e-3, 0.0, prob)
