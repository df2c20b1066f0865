"""UCF101 in the original's VarLen record layout (reader only).

specs/savp.md §2.4: one ``tf.train.Example`` per video with ``sequence_length``,
``height``, ``width``, ``channels`` and ``images/encoded`` (one JPEG per frame,
240x320x3), in ``<dir>/{train,val,test,test_mathieu}/sequence_<first>_to_<last>.tfrecords``.
Defaults ``context_frames=4, sequence_length=8``.  ``random_crop_size=S``
crops every frame of a video to the same random S x S window (in every mode,
as the original); ``crop_size``/``scale_size`` are not supported, as in the
original.
"""

import tensorflow as tf

from video_prediction.datasets.base import VarLenFeatureVideoDataset
from video_prediction.datasets.video_dataset import count_from_range_names


class UCF101VideoDataset(VarLenFeatureVideoDataset):
    """UCF101 videos as JPEG frames; optional random square crop per video."""

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(context_frames=4, sequence_length=8, random_crop_size=0, use_state=False)
        return hparams

    def _resolve_hparams(self, hparams_dict, hparams):
        resolved = super()._resolve_hparams(hparams_dict, hparams)
        if resolved.crop_size or resolved.scale_size:
            raise ValueError("ucf101 supports random_crop_size, not crop_size or scale_size (as the original)")
        if resolved.use_state:
            raise ValueError("ucf101 has no states or actions; use_state must be False")
        if resolved.random_crop_size < 0:
            raise ValueError(f"random_crop_size must be >= 0, got {resolved.random_crop_size}")
        return resolved

    def _check_lengths(self):
        height, width, _ = self.stored_image_shape
        size = self.hparams.random_crop_size
        if size > min(height, width):
            raise ValueError(f"random_crop_size={size} exceeds the {height}x{width} frames in {self.input_dir}")

    @property
    def image_shape(self):
        height, width, channels = self.stored_image_shape
        size = self.hparams.random_crop_size
        return (size, size, channels) if size else (height, width, channels)

    def preprocess_images(self, images):
        images = super().preprocess_images(images)
        size = self.hparams.random_crop_size
        if size:
            height, width, channels = self.stored_image_shape
            # One window per video; offsets inclusive of the last position (the original's excluded it).
            top = tf.random.uniform([], 0, height - size + 1, dtype=tf.int32, seed=self.seed)
            left = tf.random.uniform([], 0, width - size + 1, dtype=tf.int32, seed=self.seed)
            images = tf.reshape(images[:, top:top + size, left:left + size], [-1, size, size, channels])
        return images

    def num_examples_per_epoch(self):
        """From the ``sequence_<first>_to_<last>`` file names (as the original), else by counting records."""
        count = count_from_range_names(self.filenames, "sequence")
        return count if count is not None else super().num_examples_per_epoch()
