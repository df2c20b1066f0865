"""Cartgripper (simulated gripper pushing) records of the original: the BAIR layout with other features.

specs/savp.md §2.4: per-timestep records with ``'{t}/image_view0/encoded'``
raw uint8 48x64x3 frames, ``'{t}/endeffector_pos'`` (6 floats) and
``'{t}/action'`` (3 floats); ``use_state`` is on by default.  The original
subclasses the BAIR class, so the other defaults (``long_sequence_length=30``)
and the video count from ``traj_<first>_to_<last>`` file names are BAIR's.
"""

from video_prediction.datasets.bair import SoftmotionVideoDataset
from video_prediction.datasets.video_dataset import VideoDataset


class CartgripperVideoDataset(SoftmotionVideoDataset):
    """Cartgripper records: 48x64 RGB frames, 6-d states, 3-d actions."""

    image_feature = "%d/image_view0/encoded"
    declared_image_shape = (48, 64, 3)
    state_feature = ("%d/endeffector_pos", (6,))
    action_feature = ("%d/action", (3,))

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(context_frames=2, sequence_length=15, time_shift=3, use_state=True)
        return hparams

    # The original's cartgripper class sets its features itself: a fixed image name and no object_pos.
    image_feature_template = VideoDataset.image_feature_template
    state_like_features = VideoDataset.state_like_features
