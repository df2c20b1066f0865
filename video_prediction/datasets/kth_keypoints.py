"""KTH-Actions with body keypoints, read from MSPred's processed layout (specs/mspred.md §2.3).

Layout under ``input_dir`` (the original's ``<data>/KTH_64/processed``), per class
(walking, jogging, running, handwaving, handclapping, boxing)::

    <class>/{train,test}_meta64x64.t7          SVG metadata: [{vid, files: [[frame names], ...]}, ...]
    <class>/{train,test}_keypoints64x64.json   {"<vid>/<frame name>": [[x, y] x 10], ...}
    <class>/<vid>/image-XXX_64x64.png          frames (data/download_kth_mspred.sh makes them)

The keypoint files are not made by any script of the original; they come with the
KTH folder the MSPred README links (Dropbox) and must be put there by the user.

Per item: T frames from a random start (test: ``random.Random(1234)`` per item), short
sequences of the walking/running/jogging classes (>= 29 frames) padded by repeating
the last frame; level-1 target = 9 keypoint heatmaps, level-2 = the 10th (neck, body
position), sigma 1; train/val flip horizontally with p 0.5 swapping the left/right
channels.  Batches: ``images`` [B,T,H,W,C], ``heatmaps_level1`` [B,T,H,W,9],
``heatmaps_level2`` [B,T,H,W,1], ``heatmap_weights`` [B,9] (w_easy / w_hard per class)
and ``action`` (class index).
"""

import json
import os
import random

import numpy as np
import tensorflow as tf
from PIL import Image

from video_prediction.datasets.heatmaps import gaussian_heatmaps
from video_prediction.hparams import ClipLengthsMixin, resolve_hparams
from video_prediction.conversion.formats.t7 import load_t7

CLASSES = ("boxing", "handclapping", "handwaving", "walking", "running", "jogging")
SHORT_CLASSES = ("walking", "running", "jogging")
MIN_SEQUENCE_LENGTH = 29
#: OpenPose-18 joint ids in the stored order (the last one, neck, is the level-2 target)
KEYPOINT_IDS = (0, 2, 5, 4, 7, 9, 12, 10, 13, 1)
#: left/right channel pairs swapped by the flip: shoulders, wrists, knees, ankles
FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8))
HARD_KEYPOINTS = {"boxing": (4, 7), "handclapping": (4, 7), "handwaving": (4, 7),
                  "walking": (9, 12, 10, 13), "running": (9, 12, 10, 13), "jogging": (9, 12, 10, 13)}
TEST_START_SEED = 1234
HEATMAP_SIGMA = 1.0


class KTHKeypointsVideoDataset(ClipLengthsMixin):
    """KTH videos with keypoint heatmap targets for MSPred."""

    heatmap_channels = (9, 1)
    level_structure = "keypoints"

    def __init__(self, input_dir, mode="train", num_epochs=None, seed=None, hparams_dict=None, hparams=None):
        if mode not in ("train", "val", "test"):
            raise ValueError(f"unknown mode {mode!r}; valid modes: train, val, test")
        self.input_dir, self.mode, self.num_epochs, self.seed = input_dir, mode, num_epochs, seed
        self.hparams = resolve_hparams(self.default_hparams(), hparams_dict, hparams)
        split = "test" if mode == "test" else "train"
        size = self.hparams.image_size
        self.meta, self.keypoints = {}, {}
        for cls in CLASSES:
            meta_path = os.path.join(input_dir, cls, f"{split}_meta{size}x{size}.t7")
            keypoint_path = os.path.join(input_dir, cls, f"{split}_keypoints{size}x{size}.json")
            if not os.path.exists(meta_path):
                raise ValueError(f"KTH metadata {meta_path} is missing (run data/download_kth_mspred.sh)")
            if not os.path.exists(keypoint_path):
                raise ValueError(f"KTH keypoints {keypoint_path} are missing: they come with the KTH folder "
                                 "linked from the MSPred README (see the README's MSPred section)")
            self.meta[cls] = load_t7(meta_path)
            with open(keypoint_path) as f:
                self.keypoints[cls] = json.load(f)
        self.items = self._valid_sequences()
        if mode != "test":
            # the original shuffles with Python's random (seeded 13) and keeps 98% / 2%
            order = list(range(len(self.items)))
            random.Random(self.hparams.split_seed).shuffle(order)
            cut = int(len(order) * self.hparams.train_fraction)
            order = order[:cut] if mode == "train" else order[cut:]
            self.items = [self.items[i] for i in order]
        if not self.items:
            raise ValueError(f"no KTH sequence of {self.sequence_length} frames in {input_dir} ({mode})")

    @classmethod
    def default_hparams(cls):
        return dict(context_frames=9, sequence_length=49, image_size=64, num_channels=3, horizontal_flip=True,
                    train_fraction=0.98, split_seed=13, w_easy_kpts=1.0, w_hard_kpts=1.0)

    @property
    def image_shape(self):
        return (self.hparams.image_size, self.hparams.image_size, self.hparams.num_channels)

    def num_examples_per_epoch(self):
        return len(self.items)

    def _valid_sequences(self):
        items = []
        for cls in CLASSES:
            for video in self.meta[cls]:
                for sequence in video["files"]:
                    long_enough = len(sequence) >= self.sequence_length
                    if long_enough or (cls in SHORT_CLASSES and len(sequence) >= MIN_SEQUENCE_LENGTH):
                        items.append((cls, video["vid"], list(sequence)))
        return items

    def heatmap_weights(self, cls):
        weights = np.full(9, self.hparams.w_easy_kpts, np.float32)
        for joint in HARD_KEYPOINTS[cls]:
            weights[KEYPOINT_IDS.index(joint)] = self.hparams.w_hard_kpts
        return weights

    def load_item(self, index, rng):
        """One example as numpy arrays (``rng``: the random.Random for start and flip)."""
        cls, vid, files = self.items[index]
        length, size = self.sequence_length, self.hparams.image_size
        first = 0
        if len(files) > length:
            start_rng = random.Random(TEST_START_SEED) if self.mode == "test" else rng
            first = start_rng.randint(0, len(files) - length)
        used = files[first: first + length]
        frames = np.zeros((length, size, size, self.hparams.num_channels), np.float32)
        level1 = np.zeros((length, size, size, 9), np.float32)
        level2 = np.zeros((length, size, size, 1), np.float32)
        for t, name in enumerate(used):
            image = np.asarray(Image.open(os.path.join(self.input_dir, cls, vid, name)).convert("RGB"),
                               np.float32) / 255.0
            frames[t] = image[..., :1] if self.hparams.num_channels == 1 else image
            points = self.keypoints[cls][f"{vid}/{name}"] or [(0.0, 0.0)] * 10
            level1[t] = gaussian_heatmaps(points[:-1], size, size, HEATMAP_SIGMA)
            level2[t] = gaussian_heatmaps(points[-1:], size, size, HEATMAP_SIGMA)
        last = len(used) - 1
        frames[last + 1:], level1[last + 1:], level2[last + 1:] = frames[last], level1[last], level2[last]
        if self.hparams.horizontal_flip and self.mode != "test" and rng.randint(0, 1) == 0:
            frames, level1, level2 = frames[:, :, ::-1], level1[:, :, ::-1], level2[:, :, ::-1]
            order = list(range(9))
            for a, b in FLIP_PAIRS:
                order[a], order[b] = order[b], order[a]
            level1 = level1[..., order]
        return {"images": np.ascontiguousarray(frames), "heatmaps_level1": np.ascontiguousarray(level1),
                "heatmaps_level2": np.ascontiguousarray(level2), "heatmap_weights": self.heatmap_weights(cls),
                "action": np.int32(CLASSES.index(cls))}

    def make_dataset(self, batch_size, drop_remainder=True):
        seed = self.seed if self.seed is not None else np.random.randint(2 ** 31 - 1)
        length, size, channels = self.sequence_length, self.hparams.image_size, self.hparams.num_channels

        def generate():
            rng = random.Random(seed)
            epoch = 0
            while self.num_epochs is None or epoch < self.num_epochs:
                order = list(range(len(self.items)))
                if self.mode == "train":
                    rng.shuffle(order)
                for index in order:
                    yield self.load_item(index, rng)
                epoch += 1

        signature = {
            "images": tf.TensorSpec((length, size, size, channels), tf.float32),
            "heatmaps_level1": tf.TensorSpec((length, size, size, 9), tf.float32),
            "heatmaps_level2": tf.TensorSpec((length, size, size, 1), tf.float32),
            "heatmap_weights": tf.TensorSpec((9,), tf.float32),
            "action": tf.TensorSpec((), tf.int32),
        }
        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
