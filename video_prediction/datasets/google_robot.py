"""Google robot push dataset (Finn et al. 2016) in the original's per-timestep reader.

specs/savp.md §2.4: records with ``'move/{t}/image/encoded'`` JPEG 512x640x3
frames; ``use_state`` reads ``'move/{t}/endeffector/vec_pitch_yaw'`` (5 floats)
as states and ``'move/{t}/commanded_pose/vec_pitch_yaw'`` (5 floats) as
actions.  The split is the directory holding the records: the original knows
the sizes of ``push_train``, ``push_testseen`` and ``push_testnovel``.
"""

import os

from video_prediction.datasets.video_dataset import VideoDataset

#: Videos per split directory (the original's table).
SPLIT_SIZES = {"push_train": 51615, "push_testseen": 1038, "push_testnovel": 995}


class GoogleRobotVideoDataset(VideoDataset):
    """Google push records: 512x640 JPEG frames, 5-d states and commanded poses."""

    image_feature = "move/%d/image/encoded"
    declared_image_shape = (512, 640, 3)
    jpeg_encoding = True
    state_feature = ("move/%d/endeffector/vec_pitch_yaw", (5,))
    action_feature = ("move/%d/commanded_pose/vec_pitch_yaw", (5,))

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(context_frames=2, sequence_length=15)
        return hparams

    def num_examples_per_epoch(self):
        """The original's size of ``push_train`` / ``push_testseen`` / ``push_testnovel``, else counted."""
        split = os.path.basename(os.path.dirname(self.filenames[0]))
        if split in SPLIT_SIZES:
            return SPLIT_SIZES[split]
        return super().num_examples_per_epoch()
