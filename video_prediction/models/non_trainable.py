"""Models without weights: ``ground_truth`` and ``repeat`` (the original's non_trainable_model.py), and ``blank``."""

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


class BlankVideoPredictionModel(BaseVideoPredictionModel):
    """Predicts one constant frame at every step: a floor that a learned model must clear.

    ``fill=train_mean`` (default): the per-pixel mean frame of the training split (the constant
    prediction with the least mean squared error, hence the best constant PSNR), averaged over every
    frame of the first ``mean_videos`` training clips (0: all) as the dataset delivers them (same
    size, channels and clip length). ``build_model`` computes it from the dataset's ``train``
    split in the same directory. ``fill=zeros``: black frames. On Moving MNIST both are near black,
    so a model that predicts darkness scores about as well as ``blank``.
    """

    FILLS = ("train_mean", "zeros")

    def __init__(self, hparams_dict=None, hparams=None, name=None, **kwargs):
        super().__init__(hparams_dict=hparams_dict, hparams=hparams, name=name, **kwargs)
        if self.hparams.fill not in self.FILLS:
            raise ValueError(f"unknown fill {self.hparams.fill!r} for blank; valid: {', '.join(self.FILLS)}")
        if self.hparams.mean_videos < 0:
            raise ValueError(f"mean_videos must be >= 0 (0: all), got {self.hparams.mean_videos}")
        self.fill_frame = None  # [H, W, C] for fill=train_mean, from prepare_from_dataset

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(fill="train_mean", mean_videos=1024)
        return hparams

    def prepare_from_dataset(self, dataset):
        if self.hparams.fill == "train_mean":
            self.fill_frame = mean_training_frame(dataset, self.hparams.mean_videos)

    def call(self, batch, training=False):
        images = tf.convert_to_tensor(batch["images"])
        if self.hparams.fill == "zeros":
            frame = tf.zeros_like(images[:, :1])
        else:
            if self.fill_frame is None:
                raise ValueError("blank with fill=train_mean has no mean frame: build it with "
                                 "training.build_model(..., dataset) or use fill=zeros")
            if tuple(self.fill_frame.shape) != tuple(images.shape[2:]):
                raise ValueError(f"blank's mean frame has shape {tuple(self.fill_frame.shape)}, "
                                 f"the frames {tuple(images.shape[2:])}")
            frame = tf.broadcast_to(self.fill_frame[None, None], tf.shape(images[:, :1]))
        return {"gen_images": tf.repeat(frame, tf.shape(images)[1] - 1, axis=1)}


def mean_training_frame(dataset, max_videos=0):
    """Per-pixel mean ``[H, W, C]`` over all frames of ``dataset``'s ``train`` split (first ``max_videos``
    clips in a fixed order; 0: all), read with ``dataset``'s class and hparams from the same directory."""
    try:
        train = type(dataset)(dataset.input_dir, mode="train", num_epochs=1, seed=0,
                              hparams_dict=dataset.hparams.values())
    except (ValueError, FileNotFoundError) as e:
        raise ValueError(f"blank: cannot read the train split of {dataset.input_dir!r} for its mean frame "
                         f"({e}); use --model_hparams fill=zeros") from None
    train.deterministic_order = True  # the same clips, and so the same frame, on every run (seed 0)
    batches = train.make_dataset(32, drop_remainder=False)
    if max_videos:
        batches = batches.unbatch().take(max_videos).batch(32)
    total, count = None, 0
    for batch in batches:
        images = tf.cast(batch["images"], tf.float64)
        frame_sum = tf.reduce_sum(images, axis=(0, 1))
        total = frame_sum if total is None else total + frame_sum
        count += int(images.shape[0]) * int(images.shape[1])
    if not count:
        raise ValueError(f"blank: the train split of {dataset.input_dir!r} holds no clips; use --model_hparams fill=zeros")
    return tf.cast(total / count, tf.float32)
