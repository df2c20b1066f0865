"""``num_channels`` for datasets of grey frames: 1 as stored, or 3 identical channels.

Models trained on RGB-shaped grey frames need the latter: MSPred feeds Moving
MNIST as 3 channels, and the pretrained KTH models of the original SAVP were
trained on 3-channel KTH frames (its 2018 converter kept all channels).
"""

import tensorflow as tf


class GreyChannelsMixin:
    """Adds the ``num_channels`` hparam (1 or 3) to a dataset of 1-channel frames; put it before the base class."""

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(num_channels=1)  # 3 replicates the grey frames
        return hparams

    def _resolve_hparams(self, hparams_dict, hparams):
        resolved = super()._resolve_hparams(hparams_dict, hparams)
        if resolved.num_channels not in (1, 3):
            raise ValueError(f"num_channels must be 1 or 3, got {resolved.num_channels}")
        return resolved

    def output_channels(self, stored_channels):
        return self.hparams.num_channels

    def preprocess_images(self, images):
        images = super().preprocess_images(images)
        if self.hparams.num_channels == 3 and images.shape[-1] == 1:
            images = tf.repeat(images, 3, axis=-1)
        return images
