"""BAIR robot pushing (the original's ``softmotion``; ``bair`` is an alias): reader, download and layout.

Records (specs/savp.md §2.2): the per-timestep layout of
:mod:`~video_prediction.datasets.video_dataset`, 30 timesteps per video,
``'{t}/image_aux1/encoded'`` raw uint8 64x64x3 frames (``'{t}/image_main/encoded'``
is ignored), ``'{t}/endeffector_pos'`` (3 floats) and ``'{t}/action'`` (4
floats).  ``use_state=True`` adds ``states [B, T, 3]`` and ``actions [B, T-1,
4 * (frame_skip + 1)]``; action-free and action-conditioned experiments read
the same files.  Records with ``'{t}/object_pos'`` (designated pixels, not in
BAIR) also give ``pix_distribs [B, T, H, W, num_points]``.

Layout made by :func:`download_and_preprocess_bair` (the original's
``download_and_preprocess_dataset.sh bair``): the archive
``bair_robot_pushing_dataset_v0.tar`` (root ``softmotion30_44k/``) extracted
with one path component stripped into ``<dir>/{train,test}/traj_<first>_to_<last>.tfrecords``
(256 videos per file), then ``train/traj_256_to_511.tfrecords`` moved to
``val/``.
"""

import json
import os
import re

import tensorflow as tf

from video_prediction.datasets.video_dataset import VideoDataset, count_from_range_names, template_regex
from video_prediction.download import download_file, extract_archive, verify_archive
from video_prediction.datasets.record_writing import write_dataset_info

BAIR_URL = "http://rail.eecs.berkeley.edu/datasets/bair_robot_pushing_dataset_v0.tar"
BAIR_ARCHIVE = "bair_robot_pushing_dataset_v0.tar"
# Size and sha256 of the archive at BAIR_URL, as listed by tensorflow_datasets
# (url_checksums/bair_robot_pushing_small.txt).
BAIR_ARCHIVE_SIZE = 32274964480
BAIR_ARCHIVE_SHA256 = "c6f8d164ab2be07174ef597e3e070d7466f3142caddc467b6af119b9458cd9cd"
#: The training file the original reserves for validation.
BAIR_VAL_FILE = "traj_256_to_511.tfrecords"

_IMAGE_NAME = re.compile(r"\d+/(\w+)/encoded\Z")


def pixel_distribution(positions, height, width):
    """Bilinear one-hot maps ``[N, H, W]`` of float pixel positions ``[N, 2]`` given as (y, x).

    The four pixels around each position get the bilinear weights; pixels
    outside the image are dropped.  (The original's flat ``y * W + x`` index
    would move a column past the right edge onto the next row; that is not
    reproduced.)
    """
    y, x = positions[:, 0], positions[:, 1]
    y0, x0 = tf.floor(y), tf.floor(x)
    y1, x1 = y0 + 1, x0 + 1
    corners = ((y0, x0, (x1 - x) * (y1 - y)), (y1, x0, (x1 - x) * (y - y0)),
               (y0, x1, (x - x0) * (y1 - y)), (y1, x1, (x - x0) * (y - y0)))
    maps = []
    for row, col, weight in corners:
        inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
        index = tf.where(inside, tf.cast(row, tf.int32) * width + tf.cast(col, tf.int32), -1)
        one_hot = tf.reshape(tf.one_hot(index, height * width), [-1, height, width])
        maps.append(weight[:, None, None] * one_hot)
    return tf.add_n(maps)


class SoftmotionVideoDataset(VideoDataset):
    """BAIR robot pushing / softmotion records (module docstring); ``use_state`` adds states and actions."""

    jpeg_encoding = False
    state_feature = ("%d/endeffector_pos", (3,))
    action_feature = ("%d/action", (4,))

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(context_frames=2, sequence_length=12, long_sequence_length=30, time_shift=2)
        return hparams

    def image_feature_template(self, feature_names):
        """``image_aux1``, else ``image_view0``, else the only image name present (the original's rule)."""
        names = {m.group(1) for m in map(_IMAGE_NAME.match, feature_names) if m}
        for preferred in ("image_aux1", "image_view0"):
            if preferred in names:
                return f"%d/{preferred}/encoded"
        if len(names) == 1:
            return f"%d/{names.pop()}/encoded"
        raise ValueError(
            f"{self.input_dir}: expected images under '<t>/image_aux1/encoded', '<t>/image_view0/encoded' or one "
            f"other '<t>/<name>/encoded' name; found {sorted(names) or 'none'}"
        )

    def state_like_features(self, feature_names, use_state):
        features = super().state_like_features(feature_names, use_state)
        regex = template_regex("%d/object_pos")
        if any(regex.match(name) for name in feature_names):
            features["object_pos"] = ("%d/object_pos", None)  # 2 * num_designated_pixels floats
        return features

    def decode(self, example, frame_indices):
        output = super().decode(example, frame_indices)
        if "object_pos" in output:
            height, width, _ = self.stored_image_shape
            positions = tf.reshape(output["object_pos"], [self.sequence_length, -1, 2])
            maps = tf.map_fn(lambda p: pixel_distribution(p, height, width), positions,
                             fn_output_signature=tf.TensorSpec([None, height, width], tf.float32))
            output["pix_distribs"] = tf.transpose(maps, [0, 2, 3, 1])
        return output

    def num_examples_per_epoch(self):
        """From the ``traj_<first>_to_<last>`` file names (as the original), else by counting records."""
        count = count_from_range_names(self.filenames, "traj")
        return count if count is not None else super().num_examples_per_epoch()


# -- download and layout --------------------------------------------------------------------------


def download_and_preprocess_bair(output_dir="data/bair", base_url=None, keep_archive=False, progress=True):
    """Download the BAIR archive into ``output_dir`` and lay out train/val/test as the original; returns the info.

    ``base_url`` replaces ``http://rail.eecs.berkeley.edu/datasets`` (e.g. a
    mirror or a test server; the size/sha256 check then only runs for the
    official URL).  A finished directory (``dataset_info.json`` present) is
    left alone; an interrupted run resumes the download and extracts only
    the files it had not finished.
    """
    info_path = os.path.join(output_dir, "dataset_info.json")
    if os.path.exists(info_path):
        with open(info_path) as f:
            info = json.load(f)
        print(f"{output_dir} already holds the BAIR dataset; nothing to do")
        return info
    url = BAIR_URL if base_url is None else f"{base_url.rstrip('/')}/{BAIR_ARCHIVE}"
    official = url == BAIR_URL
    archive = os.path.join(output_dir, BAIR_ARCHIVE)
    os.makedirs(output_dir, exist_ok=True)
    download_file(url, archive, expected_size=BAIR_ARCHIVE_SIZE if official else None,
                  sha256=BAIR_ARCHIVE_SHA256 if official else None, progress=progress)
    verify_archive(archive)
    # softmotion30_44k/{train,test}; files finished by an interrupted run are kept
    extract_archive(archive, output_dir, strip_components=1, skip_existing=True)
    val_dir = os.path.join(output_dir, "val")
    os.makedirs(val_dir, exist_ok=True)
    reserved = os.path.join(output_dir, "train", BAIR_VAL_FILE)
    if os.path.exists(reserved):
        os.replace(reserved, os.path.join(val_dir, BAIR_VAL_FILE))
    counts = {}
    for split in ("train", "val", "test"):
        split_dir = os.path.join(output_dir, split)
        files = sorted(f for f in os.listdir(split_dir) if f.endswith(".tfrecords")) if os.path.isdir(split_dir) else []
        if not files:
            raise ValueError(f"{archive} did not give any {split} records in {split_dir}")
        counts[split] = count_from_range_names(files, "traj")
    info = dict(dataset="bair", source=url, archive_sha256=BAIR_ARCHIVE_SHA256 if official else None,
                num_examples=counts, val=f"train/{BAIR_VAL_FILE} moved to val/ (as the original)")
    write_dataset_info(output_dir, info)
    if not keep_archive:
        os.remove(archive)
    return info
