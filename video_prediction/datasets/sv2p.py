"""The SV2P datasets (Babaeizadeh et al. 2018) in the original's per-timestep reader: ``shape`` and ``humans``.

specs/savp.md §2.4: records with ``'image_{t}'`` JPEG 64x64x3 frames.  Which
dataset it is comes from the name of the directory above the split
directory (``<root>/shape/train/*.tfrecord*`` or ``<root>/humans/val/...``),
as in the original, and sets the defaults and the known split sizes:

* ``shape``: ``context_frames=1, sequence_length=6, time_shift=0``;
  ``use_state`` reads ``'state_{t}'`` (2 floats) and ``'action_{t}'`` (2 floats);
* ``humans``: ``context_frames=10, sequence_length=20``; no states or actions.
"""

import os

from video_prediction.datasets.base import find_tfrecords
from video_prediction.datasets.video_dataset import VideoDataset

VARIANT_HPARAMS = {
    "shape": dict(context_frames=1, sequence_length=6, time_shift=0, use_state=False),
    "humans": dict(context_frames=10, sequence_length=20, use_state=False),
}
#: Videos per split (the original's table; ``shape`` has no test split).
SPLIT_SIZES = {
    "shape": {"train": 43415, "val": 2898},
    "humans": {"train": 23910, "val": 10472, "test": 7722},
}


def sv2p_variant(input_dir, mode):
    """``'shape'`` or ``'humans'``: the name of the directory above the one holding the records."""
    records_dir = os.path.dirname(find_tfrecords(input_dir, mode)[0])
    variant = os.path.basename(os.path.dirname(os.path.normpath(records_dir)))
    if variant not in VARIANT_HPARAMS:
        raise ValueError(
            f"sv2p records must sit in <root>/shape/<split>/ or <root>/humans/<split>/ (the original tells the "
            f"datasets apart by that name); {records_dir!r} is under {variant!r}"
        )
    return variant


class SV2PVideoDataset(VideoDataset):
    """SV2P ``shape`` / ``humans`` records: 64x64 JPEG frames; states and actions for ``shape`` only."""

    image_feature = "image_%d"
    declared_image_shape = (64, 64, 3)
    jpeg_encoding = True
    state_feature = ("state_%d", (2,))
    action_feature = ("action_%d", (2,))

    def __init__(self, input_dir, mode="train", *args, **kwargs):
        self.variant = sv2p_variant(input_dir, mode)
        super().__init__(input_dir, mode, *args, **kwargs)

    @classmethod
    def default_hparams(cls, variant="shape"):
        """Defaults of ``variant`` (an instance uses those of its directory name)."""
        hparams = super().default_hparams()
        hparams.update(VARIANT_HPARAMS[variant])
        return hparams

    def _resolve_hparams(self, hparams_dict, hparams):
        # The defaults depend on the directory; the base class asks self.default_hparams() for them.
        self.default_hparams = lambda: type(self).default_hparams(self.variant)
        return super()._resolve_hparams(hparams_dict, hparams)

    def check_use_state(self, use_state):
        if use_state and self.variant == "humans":
            raise ValueError("the sv2p humans dataset has no states or actions; use_state must be False")

    def num_examples_per_epoch(self):
        split = os.path.basename(os.path.dirname(self.filenames[0]))
        known = SPLIT_SIZES[self.variant]
        return known[split] if split in known else super().num_examples_per_epoch()
