"""UCF101 in the original's VarLen record layout: reader and converter.

specs/savp.md §2.4: one ``tf.train.Example`` per video with ``sequence_length``,
``height``, ``width``, ``channels`` and ``images/encoded`` (one JPEG per frame,
240x320x3), in ``<dir>/{train,val,test,test_mathieu}/sequence_<first>_to_<last>.tfrecords``.
Defaults ``context_frames=4, sequence_length=8``.  ``random_crop_size=S``
crops every frame of a video to the same random S x S window (in every mode,
as the original); ``crop_size``/``scale_size`` are not supported, as in the
original.

:func:`write_ucf101_records` converts the videos (``<root>/<class>/v_*.avi``)
with the split lists (``trainlist0*.txt``, ``testlist0*.txt``) as the
original's converter: frames decoded by ffmpeg (resized to 320x240 with
bilinear interpolation when needed), JPEG quality 95, one record per video,
128 per file; train/val 95/5 from a fixed-seed shuffle of the train lists (the
original's was unseeded); test_mathieu every 10th video of ``testlist01.txt``.
UCF101 itself comes as a RAR archive, which is not unpacked here.
"""

import glob
import io
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from video_prediction.datasets.base import VarLenFeatureVideoDataset
from video_prediction.datasets.record_writing import ffmpeg_executable, write_splits
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

    def _frame_indices(self, length, seed):
        # make_dataset calls decode() (and so preprocess_images) right after this, in the same traced
        # function: the example's stateless seed pair is kept for the crop, so the pipeline has no stateful
        # random op and its iterator can be checkpointed.
        self._example_seed = seed
        return super()._frame_indices(length, seed)

    def preprocess_images(self, images):
        images = super().preprocess_images(images)
        size = self.hparams.random_crop_size
        if size:
            height, width, channels = self.stored_image_shape
            seed = getattr(self, "_example_seed", None)
            if seed is None:
                seed = tf.constant([self.seed or 0, 0], tf.int64)
            top_seed, left_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3)[1:])
            # One window per video; offsets inclusive of the last position (the original's excluded it).
            top = tf.random.stateless_uniform([], top_seed, 0, height - size + 1, dtype=tf.int32)
            left = tf.random.stateless_uniform([], left_seed, 0, width - size + 1, dtype=tf.int32)
            images = tf.reshape(images[:, top:top + size, left:left + size], [-1, size, size, channels])
        return images

    def num_examples_per_epoch(self):
        """From the ``sequence_<first>_to_<last>`` file names (as the original), else by counting records."""
        count = count_from_range_names(self.filenames, "sequence")
        return count if count is not None else super().num_examples_per_epoch()


# -- conversion ------------------------------------------------------------------------------------

#: Frame size of the records (the original resizes other sizes with bilinear interpolation).
UCF101_FRAME_SIZE = (240, 320)
UCF101_SPLIT_SEED = 0
UCF101_TRAIN_FRACTION = 0.95
#: Mathieu et al.'s test subset: every 10th video of testlist01.
MATHIEU_STRIDE = 10


def read_list_files(paths):
    """Video paths (first column) of UCF101 ``trainlist*.txt`` / ``testlist*.txt`` files, in file order."""
    names = []
    for path in sorted(paths):
        with open(path) as f:
            names.extend(line.split()[0] for line in f if line.strip())
    return names


def partition_ucf101(video_root, lists_dir, seed=UCF101_SPLIT_SEED):
    """``{'train', 'val', 'test', 'test_mathieu'}`` -> video paths, with the original's rules.

    train/val: the videos of every ``trainlist*.txt`` shuffled (fixed seed; the
    original's shuffle was unseeded) and split 95/5; test: every
    ``testlist*.txt``; test_mathieu: every 10th video of ``testlist01.txt``.
    """
    train_lists = glob.glob(os.path.join(lists_dir, "trainlist*.txt"))
    test_lists = glob.glob(os.path.join(lists_dir, "testlist*.txt"))
    if not train_lists or not test_lists:
        raise FileNotFoundError(f"{lists_dir} must hold the UCF101 trainlist*.txt and testlist*.txt files")
    train = [os.path.join(video_root, name) for name in read_list_files(train_lists)]
    test = [os.path.join(video_root, name) for name in read_list_files(test_lists)]
    mathieu = [os.path.join(video_root, name)
               for name in read_list_files([os.path.join(lists_dir, "testlist01.txt")])][::MATHIEU_STRIDE]
    train = [train[i] for i in np.random.default_rng(seed).permutation(len(train))]
    pivot = int(UCF101_TRAIN_FRACTION * len(train))
    return {"train": train[:pivot], "val": train[pivot:], "test": test, "test_mathieu": mathieu}


def read_video_frames(path):
    """All frames of a video as uint8 ``[T, 240, 320, 3]`` RGB (ffmpeg of imageio-ffmpeg; bilinear resize)."""
    import ffmpeg

    if not os.path.isfile(path):
        raise FileNotFoundError(f"UCF101 video {path} does not exist")
    height, width = UCF101_FRAME_SIZE
    stream = ffmpeg.input(path).output("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}",
                                       sws_flags="bilinear", fps_mode="passthrough")
    try:
        data, _ = stream.run(cmd=ffmpeg_executable(), capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as e:
        message = (e.stderr or b"").decode(errors="replace").strip().splitlines()
        raise ValueError(f"ffmpeg cannot decode {path}: {message[-1] if message else e}") from None
    frames = np.frombuffer(data, np.uint8)
    if frames.size == 0:
        raise ValueError(f"ffmpeg decoded no frames from {path}")
    return frames.reshape(-1, height, width, 3)


def encode_jpeg(frame):
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=95)  # cv2.imencode's default quality
    return buffer.getvalue()


def write_ucf101_records(video_root, lists_dir, output_dir, seed=UCF101_SPLIT_SEED, sequences_per_file=128,
                         progress=True):
    """Convert UCF101 videos into ``<output_dir>/<split>/sequence_<first>_to_<last>.tfrecords``; returns the info.

    One record per video with JPEG frames (the VarLen layout); finished splits
    of an interrupted run are kept (see :mod:`~video_prediction.datasets.record_writing`).
    """
    from tqdm import tqdm

    partition = partition_ucf101(video_root, lists_dir, seed)
    settings = dict(dataset="ucf101", split_seed=seed, train_fraction=UCF101_TRAIN_FRACTION,
                    sequences_per_file=sequences_per_file,
                    videos={split: [os.path.relpath(p, video_root) for p in paths] for split, paths in partition.items()})

    def videos_of(split):
        return lambda: (read_video_frames(path)
                        for path in tqdm(partition[split], desc=f"ucf101 {split}", disable=not progress))

    return write_splits(output_dir, {split: videos_of(split) for split in partition}, settings, sequences_per_file,
                        encode_frame=encode_jpeg)
