"""SynpickVP (bin-picking videos) with segmentation and gripper-blob targets (specs/mspred.md §2.4).

Layout under ``input_dir`` (the original's ``<data>/SYNPICK``), per split::

    <split>/rgb/<...><episode:6>_<frame:6>.<ext>     frames
    <split>/masks/...                                 label images (0 background, 1..21 YCB, 22 gripper),
                                                      sorted like rgb/
    <split>/scene_gt/<episode:6>_scene_gt.json        BOP-style {frame: [{obj_id, cam_t_m2c (mm)}, ...]}

Every second raw frame is used (``seq_step`` 2).  A start index is valid when its raw
frame number is >= 72, the span stays in one episode, the gripper's (x, y) is within
[0.01, 0.99] at the first and last frame, >= 67% of the consecutive gripper
displacements exceed 1 mm and all are below 30 mm; train/val take a new start every
span // 4 frames at most, test sequences never overlap.  Batches: ``images``
[B,T,H,W,3] (bilinear resize to ``image_size``), ``heatmaps_level1`` [B,T,H,W,23]
(one-hot of the nearest-resized masks), ``heatmaps_level2`` [B,T,H,W,1] (gripper
blob, sigma 4, from x = tx/615 + 0.5, y = ty/373 + 0.5).
Download: the MSPred README's Dropbox folder (the SynpickVP helper repo says to
contact the authors); nothing is fetched by this module.
"""

import json
import math
import os
from collections import defaultdict

import numpy as np
import tensorflow as tf
from PIL import Image

from video_prediction.datasets.heatmaps import gaussian_heatmaps
from video_prediction.hparams import ClipLengthsMixin, resolve_hparams

NUM_CLASSES = 22  # 21 YCB objects + gripper; 23 channels with the background
GRIPPER_ID = 22
BIN_SIZE = (373, 615)  # mm (height, width)
SKIP_FIRST_N = 72
GRIPPER_VALID_OFFSET = 0.01
GRIPPER_SIGMA = 4.0


def to_image_plane(position):
    """Normalised (x, y) of a 3-D position in mm; (0, 0) (= missing) outside the bin."""
    x, y = position[0] / BIN_SIZE[1] + 0.5, position[1] / BIN_SIZE[0] + 0.5
    return (x, y) if (0 <= x < 1.0 and 0 <= y < 1.0) else (0.0, 0.0)


def episode_of(name):
    return int(name[-17:-11])


def frame_of(name):
    return int(name[-10:-4])


def valid_starts(image_names, gripper_positions, num_frames, seq_step=2, allow_overlap=True):
    """Start indices into the sorted ``image_names`` satisfying the original's rules.

    ``gripper_positions[episode][frame]`` is the gripper's 3-D position (mm).
    """
    span = (num_frames - 1) * seq_step + 1
    offsets = range(0, num_frames * seq_step, seq_step)
    starts, last = [], -span
    for index in range(len(image_names) - span + 1):
        if index < last + (span // 4 if allow_overlap else span):
            continue
        episodes = [episode_of(image_names[index + o]) for o in offsets]
        frames = [frame_of(image_names[index + o]) for o in offsets]
        if frames[0] < SKIP_FIRST_N or episodes[0] != episodes[-1]:
            continue
        positions = [gripper_positions[episodes[0]][f] for f in frames]
        low, high = GRIPPER_VALID_OFFSET, 1.0 - GRIPPER_VALID_OFFSET
        if not all(low <= c <= high for p in (positions[0], positions[-1]) for c in to_image_plane(p)):
            continue
        deltas = [math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(positions, positions[1:])]
        if sum(d > 1.0 for d in deltas) < 0.67 * len(deltas) or not all(d < 30.0 for d in deltas):
            continue
        starts.append(index)
        last = index
    return starts


class SynpickVideoDataset(ClipLengthsMixin):
    """SynpickVP sequences for MSPred."""

    heatmap_channels = (NUM_CLASSES + 1, 1)
    level_structure = "segmentation"
    segmentation_levels = (1,)

    def __init__(self, input_dir, mode="train", num_epochs=None, seed=None, hparams_dict=None, hparams=None):
        if mode not in ("train", "val", "test"):
            raise ValueError(f"unknown mode {mode!r}; valid modes: train, val, test")
        self.input_dir, self.mode, self.num_epochs, self.seed = input_dir, mode, num_epochs, seed
        self.hparams = resolve_hparams(self.default_hparams(), hparams_dict, hparams)
        root = os.path.join(input_dir, mode)
        for sub in ("rgb", "masks", "scene_gt"):
            if not os.path.isdir(os.path.join(root, sub)):
                raise ValueError(f"SynpickVP directory {os.path.join(root, sub)} is missing")
        self.image_paths = [os.path.join(root, "rgb", n) for n in sorted(os.listdir(os.path.join(root, "rgb")))]
        self.mask_paths = [os.path.join(root, "masks", n) for n in sorted(os.listdir(os.path.join(root, "masks")))]
        self.image_names = [os.path.basename(p) for p in self.image_paths]
        self.object_positions = {}  # episode -> [frame -> {obj_id: [positions]}]
        for name in sorted(os.listdir(os.path.join(root, "scene_gt"))):
            with open(os.path.join(root, "scene_gt", name)) as f:
                scene = json.load(f)
            frames = []
            for objects in scene.values():  # in file order, as the original
                per_object = defaultdict(list)
                for obj in objects:
                    per_object[obj["obj_id"]].append(obj["cam_t_m2c"])
                frames.append(per_object)
            self.object_positions[int(name[-20:-14])] = frames
        gripper = {ep: [f[GRIPPER_ID][0] if f[GRIPPER_ID] else (1e9, 1e9, 0) for f in frames]
                   for ep, frames in self.object_positions.items()}
        self.starts = valid_starts(self.image_names, gripper, self.sequence_length, self.hparams.seq_step,
                                   allow_overlap=mode != "test")
        if not self.starts:
            raise ValueError(f"no valid SynpickVP sequence of {self.sequence_length} frames in {root}")

    @classmethod
    def default_hparams(cls):
        return dict(context_frames=9, sequence_length=29, seq_step=2, image_size=[64, 112])

    @property
    def image_shape(self):
        return (self.hparams.image_size[0], self.hparams.image_size[1], 3)

    def num_examples_per_epoch(self):
        return len(self.starts)

    def load_item(self, index):
        start, step = self.starts[index], self.hparams.seq_step
        indices = range(start, start + (self.sequence_length - 1) * step + 1, step)
        height, width = self.hparams.image_size
        frames = np.stack([np.asarray(Image.open(self.image_paths[i]).convert("RGB"), np.float32) / 255.0
                           for i in indices])
        # torchvision Resize on tensors: bilinear, half-pixel centres, no antialiasing
        frames = tf.image.resize(frames, (height, width), method="bilinear", antialias=False).numpy()
        masks = np.stack([np.asarray(Image.open(self.mask_paths[i]))[..., None] for i in indices]).astype(np.int32)
        masks = tf.image.resize(masks, (height, width), method="nearest").numpy()[..., 0]
        segmentation = np.eye(NUM_CLASSES + 1, dtype=np.float32)[masks]
        episode = episode_of(self.image_names[start])
        blobs = np.zeros((len(indices), height, width, 1), np.float32)
        for t, i in enumerate(indices):
            points = [to_image_plane(p) for p in self.object_positions[episode][frame_of(self.image_names[i])][GRIPPER_ID]]
            if points:
                blobs[t, ..., 0] = gaussian_heatmaps(points, height, width, GRIPPER_SIGMA).sum(-1)
        return {"images": frames, "heatmaps_level1": segmentation, "heatmaps_level2": blobs}

    def make_dataset(self, batch_size, drop_remainder=True):
        seed = self.seed if self.seed is not None else np.random.randint(2 ** 31 - 1)
        length, (height, width) = self.sequence_length, self.hparams.image_size

        def generate():
            rng = np.random.default_rng(seed)
            epoch = 0
            while self.num_epochs is None or epoch < self.num_epochs:
                order = rng.permutation(len(self.starts)) if self.mode == "train" else range(len(self.starts))
                for index in order:
                    yield self.load_item(int(index))
                epoch += 1

        signature = {
            "images": tf.TensorSpec((length, height, width, 3), tf.float32),
            "heatmaps_level1": tf.TensorSpec((length, height, width, NUM_CLASSES + 1), tf.float32),
            "heatmaps_level2": tf.TensorSpec((length, height, width, 1), tf.float32),
        }
        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
