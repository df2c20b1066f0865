"""Moving MNIST with MSPred's high-level targets (specs/mspred.md §2.2).

The foundation's Moving MNIST records (digit centres stored as ``poses``) plus:
``heatmaps_level1`` = per-digit Gaussian centre points (sigma 2) summed over digits,
``heatmaps_level2`` = location blobs (sigma 5) summed likewise, both ``[T, H, W, 1]``
(values may exceed 1 where digits overlap, as in the original).  The default
lengths are the mmnist config's (17 context + 5 x 8 = 57 frames, 3 channels).
"""

import tensorflow as tf

from video_prediction.datasets.heatmaps import tf_gaussian_heatmaps
from video_prediction.datasets.moving_mnist import MovingMNISTVideoDataset

#: sigma of the level-1 centre point and the level-2 location blob (CustomMovingMNIST)
HEATMAP_SIGMAS = (2.0, 5.0)


class MSPredMovingMNISTVideoDataset(MovingMNISTVideoDataset):
    """Moving MNIST batches with ``heatmaps_level1`` / ``heatmaps_level2`` targets."""

    heatmap_channels = (1, 1)
    level_structure = "blobs"  # metrics of levels 1/2 (video_prediction.metrics.mspred_metrics)

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(context_frames=17, sequence_length=57, num_channels=3)
        return hparams

    def decode(self, example, frame_indices):
        outputs = super().decode(example, frame_indices)
        height, width = self.image_shape[:2]
        poses = outputs["poses"]  # [T, D, 2] normalised (x, y)
        for level, sigma in enumerate(HEATMAP_SIGMAS, start=1):
            maps = tf_gaussian_heatmaps(poses, height, width, sigma)  # [T, H, W, D]
            outputs[f"heatmaps_level{level}"] = tf.reduce_sum(maps, axis=-1, keepdims=True)
        return outputs
