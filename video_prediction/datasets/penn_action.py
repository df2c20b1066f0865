"""Penn Action as the hierarchical-LSTM original prepares it (specs/hierarchical_lstm.md §2.1), as pose records.

Download: ``Penn_Action.tar.gz`` (about 3 GB, http://dreamdragon.github.io/PennAction/) from
:data:`PENN_ACTION_URL`, resumable, its size checked against the server's and
the archive read through before extraction (:mod:`video_prediction.download`);
it holds ``Penn_Action/frames/NNNN/*.jpg`` and ``Penn_Action/labels/NNNN.mat``
(2326 videos).  An extracted copy can be given instead (``source_dir``).

Per video (the original's ``preprocess.py``): the ``.mat`` labels are read with
scipy (``x``, ``y``, ``visibility`` [nframes, 13], ``bbox`` [nframes(-1), 4],
``action``, ``train``, ``nframes``); the bboxes are rounded, the last row is
repeated when there is one frame more than rows, their union is padded by 5 and
squared (:func:`padded_square_box`, integer arithmetic); every frame is
cropped to it (``img[y1:y2, x1:x2]``) and resized to ``image_size`` (128, the
image generator's size) bilinearly without antialiasing (``cv2.resize``
INTER_LINEAR).  The crop box is kept in the record, so heatmaps are drawn at the
crop's resolution with sigma 8 and then resized, as the original does.

Records (pose contract, :mod:`video_prediction.datasets.pose`): 13 joints in
stored-frame pixels, ``pose_visibility``, ``crop_box``, ``label`` (index in
:data:`CLASSES`, the 15 actions), ``video_id`` (``NNNN``), ``in_subset`` (1 for
the 1100 videos of the original's 8-class LSTM lists).  Splits by the label
files' ``train`` flag (1: train, 1258 videos; -1: test, 1068), as the
original's ``train_list.txt`` / ``test_list.txt``; ``subset=True`` reads the
original's ``*_subset_list.txt`` videos (611 / 489).  The original's Hourglass
poses (``hourglass/NNNN.npz``, ``x``, ``y`` in [0, 1] of the crop) are stored
as ``estimated_poses``.  One shard per video; a rerun skips written videos.
"""

import glob
import os
import shutil

import numpy as np
import tensorflow as tf

from video_prediction.datasets.base import varlen_example
from video_prediction.datasets.pose import (PoseVideoDataset, clipped_crop, encoder, padded_square_box,
                                            pose_record_features, resize_frames, to_stored_pixels)
from video_prediction.datasets.record_writing import (check_settings, video_shard_path, write_dataset_info,
                                                      write_video_record)
from video_prediction.download import download_file, extract_archive, verify_archive
from video_prediction.layers.pose_rendering import PENN_ACTION_LIMBS

PENN_ACTION_URL = "https://www.cis.upenn.edu/~kostas/Penn_Action.tar.gz"
HOURGLASS_URL = "https://umich.box.com/shared/static/4agdc5ihb8er6pannnzm2fcdzh8xpw18.gz"
PAD = 5
JOINT_NAMES = ("head", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip",
               "l_knee", "r_knee", "l_ankle", "r_ankle")
#: The 15 Penn Action classes (label ids: this order).
CLASSES = ("baseball_pitch", "baseball_swing", "bench_press", "bowl", "clean_and_jerk", "golf_swing",
           "jump_rope", "jumping_jacks", "pullup", "pushup", "situp", "squat", "strum_guitar", "tennis_forehand",
           "tennis_serve")
#: The LSTM's 8 classes in the original's class_dict order (its label ids).
SUBSET_CLASSES = ("baseball_pitch", "baseball_swing", "clean_and_jerk", "golf_swing", "jumping_jacks",
                  "jump_rope", "tennis_forehand", "tennis_serve")
#: baseball_pitch videos absent from the original's subset lists (they hold every other video of the 8 classes;
#: why these 31 were left out is not documented).
SUBSET_EXCLUDED = (4, 7, 8, 9, 11, 12, 19, 21, 22, 32, 38, 43, 44, 48, 52, 53, 58, 74, 80, 89, 93, 115, 116, 117,
                   123, 124, 132, 144, 145, 164, 165)


def in_subset(video_number, action):
    return action in SUBSET_CLASSES and video_number not in SUBSET_EXCLUDED


class PennActionVideoDataset(PoseVideoDataset):
    """Penn Action pose records of :func:`prepare_penn_action`; 48 limb heatmap channels (12 limbs x 4 points)."""

    joint_names = JOINT_NAMES
    limbs = PENN_ACTION_LIMBS
    heatmap_scheme = "limbs"
    heatmap_rounding = "none"
    classes = CLASSES
    subset_classes = SUBSET_CLASSES

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        # the LSTM's 10 observed + 32 future poses, consecutive frames (spec §2.3)
        hparams.update(context_frames=10, sequence_length=42, subset=False,
                       pad_short=True)  # videos shorter than a clip: start 0, last frame repeated (spec §2.3)
        return hparams

    def extra_video_features(self):
        features = super().extra_video_features()
        features["in_subset"] = ([], tf.int64, 0)
        return features

    def stored_length(self, example):
        # records outside the 8-class subset look too short, so the pipeline's length filter drops them;
        # with pad_short, short videos look long enough (their clips start at 0, see decode)
        length = super().stored_length(example)
        if self.hparams.pad_short:
            length = tf.maximum(length, self.span)
        if self.hparams.subset:
            return tf.where(example["in_subset"] > 0, length, tf.zeros_like(length))
        return length

    def decode(self, example, frame_indices):
        # the original pads a short video by repeating its last frame (poses and visibility too)
        frame_indices = tf.minimum(frame_indices, example["length"] - 1)
        output = super().decode(example, frame_indices)
        output.pop("in_subset")
        return output

    def num_examples_per_epoch(self):
        key = "num_subset_examples" if self.hparams.subset else "num_examples"
        counts = self._info().get(key, {})
        if self.mode in counts:
            return int(counts[self.mode])
        return super().num_examples_per_epoch()


# -- the label files ------------------------------------------------------------------------------------


def _text(value):
    value = np.asarray(value).ravel()
    return str(value[0]) if value.size else ""


def read_labels(mat_path):
    """The fields of a Penn Action label file: dict of numpy arrays and strings; ValueError on a bad file."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(mat_path)
    except Exception as e:  # scipy raises assorted errors on damaged files
        raise ValueError(f"corrupt label file {mat_path}: {type(e).__name__}: {e}") from None
    missing = [k for k in ("x", "y", "visibility", "bbox", "action", "train", "nframes") if k not in mat]
    if missing:
        raise ValueError(f"label file {mat_path} lacks {', '.join(missing)}")
    labels = dict(
        x=np.asarray(mat["x"], np.float64), y=np.asarray(mat["y"], np.float64),
        visibility=np.asarray(mat["visibility"], np.float64), bbox=np.asarray(mat["bbox"], np.float64),
        action=_text(mat["action"]), train=int(np.asarray(mat["train"]).ravel()[0]),
        nframes=int(np.asarray(mat["nframes"]).ravel()[0]),
    )
    n = labels["nframes"]
    for key in ("x", "y", "visibility"):
        if labels[key].shape != (n, 13):
            raise ValueError(f"label file {mat_path}: {key} is {labels[key].shape}, expected ({n}, 13) (nframes={n})")
    if labels["bbox"].ndim != 2 or labels["bbox"].shape[1] != 4 or labels["bbox"].shape[0] not in (n, n - 1):
        raise ValueError(f"label file {mat_path}: bbox is {labels['bbox'].shape}, expected ({n} or {n - 1}, 4)")
    if labels["action"] not in CLASSES:
        raise ValueError(f"label file {mat_path}: unknown action {labels['action']!r}")
    return labels


def person_crop(bboxes, num_frames, width, height):
    """The original's crop (x1, y1, x2, y2) of a video from its per-frame bboxes (rounded, union, pad 5, squared)."""
    boxes = np.round(bboxes).astype(np.int32)
    if num_frames > len(boxes):
        boxes = np.concatenate([boxes, boxes[-1:]])
    union = (int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max()))
    crop, _ = padded_square_box(union, PAD, width, height, integer=True)
    return crop


def read_frames(frame_dir, names):
    from PIL import Image

    frames = []
    for name in names:
        path = os.path.join(frame_dir, name)
        try:
            with Image.open(path) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except OSError as e:
            raise ValueError(f"corrupt frame {path}: {e}") from None
    if len({f.shape for f in frames}) != 1:
        raise ValueError(f"the frames of {frame_dir} differ in size")
    return np.stack(frames)


def read_hourglass(path, num_frames, image_size):
    """Hourglass poses of one video: (points [N, 13, 2] stored pixels, visibility [N, 13])."""
    try:
        with np.load(path, allow_pickle=False) as data:
            x, y, vis = (np.asarray(data[k], np.float64) for k in ("x", "y", "visibility"))
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"corrupt Hourglass pose file {path}: {e}") from None
    if x.shape != (num_frames, 13) or y.shape != x.shape or vis.shape != x.shape:
        raise ValueError(f"Hourglass pose file {path} holds {x.shape}, expected ({num_frames}, 13)")
    # the original's test script uses them as coordinates in [0, 1] of the crop (spec §2.1, inferred)
    return np.stack([x, y], axis=-1).astype(np.float32) * image_size, vis


def convert_video(frame_dir, mat_path, image_size, encode, hourglass_dir=None):
    """One video -> (its ``tf.train.Example``, split name, whether it is in the 8-class subset, frames)."""
    labels = read_labels(mat_path)
    names = sorted(n for n in os.listdir(frame_dir) if n.endswith(".jpg"))
    n = labels["nframes"]
    if len(names) != n:
        raise ValueError(f"label file {mat_path} says {n} frames but {frame_dir} holds {len(names)} JPEG frames")
    images = read_frames(frame_dir, names)
    height, width = images.shape[1:3]
    crop = clipped_crop(person_crop(labels["bbox"], n, width, height), width, height)
    if crop[2] <= crop[0] or crop[3] <= crop[1]:
        raise ValueError(f"label file {mat_path}: the person box {crop} lies outside the {width}x{height} frames")
    frames = resize_frames(images[:, crop[1]:crop[3], crop[0]:crop[2]], image_size)
    video = os.path.basename(frame_dir.rstrip("/"))
    estimated = None
    if hourglass_dir:
        path = os.path.join(hourglass_dir, f"{video}.npz")
        if os.path.exists(path):
            estimated = read_hourglass(path, n, image_size)
    extra = pose_record_features(to_stored_pixels(labels["x"], labels["y"], crop, image_size),
                                 labels["visibility"], crop, CLASSES.index(labels["action"]), video, estimated)
    subset = in_subset(int(video), labels["action"]) if video.isdigit() else False
    extra["in_subset"] = np.int64(subset)
    split = "train" if labels["train"] == 1 else "test"
    return varlen_example(frames, [encode(f) for f in frames], extra=extra), split, subset, n


# -- download and the whole dataset ---------------------------------------------------------------------


def download_penn_action(raw_dir, url=PENN_ACTION_URL, progress=True):
    """``Penn_Action.tar.gz`` -> ``raw_dir/{frames,labels}`` (resumable; skipped when done)."""
    done = os.path.join(raw_dir, ".extracted")
    if os.path.exists(done):
        return raw_dir
    archive = os.path.join(raw_dir, "Penn_Action.tar.gz")
    download_file(url, archive, progress=progress)
    verify_archive(archive)
    extract_archive(archive, raw_dir, strip_components=1, skip_existing=True)
    open(done, "w").close()
    os.remove(archive)
    return raw_dir


def get_hourglass(hourglass_dir, url=HOURGLASS_URL, progress=True):
    """The original's Hourglass Penn poses -> ``hourglass_dir/NNNN.npz`` (downloaded once)."""
    done = os.path.join(hourglass_dir, ".extracted")
    if not os.path.exists(done):
        archive = os.path.join(hourglass_dir, "hourglass.tar.gz")
        download_file(url, archive, progress=progress)
        verify_archive(archive)
        extract_archive(archive, hourglass_dir, skip_existing=True)
        open(done, "w").close()
        os.remove(archive)
    found = glob.glob(os.path.join(hourglass_dir, "**", "0001.npz"), recursive=True)
    return os.path.dirname(found[0]) if found else hourglass_dir


def prepare_penn_action(output_dir, image_size=128, source_dir=None, url=PENN_ACTION_URL, hourglass=None,
                        image_format="jpeg", keep_raw=True, progress=True):
    """Download (unless ``source_dir``) and write the pose records; returns the dataset info.

    ``hourglass``: a directory with the original's ``NNNN.npz`` Hourglass poses, or a URL to download them from.
    """
    import time

    from tqdm import tqdm

    if image_size < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}")
    encode = encoder(image_format)
    settings = dict(dataset="penn_action", image_size=image_size, image_format=image_format, pad=PAD)
    raw_dir = os.path.join(output_dir, "raw")
    if source_dir is None:
        source_dir = download_penn_action(raw_dir, url, progress)
    frames_root, labels_root = os.path.join(source_dir, "frames"), os.path.join(source_dir, "labels")
    if not os.path.isdir(frames_root) or not os.path.isdir(labels_root):
        raise ValueError(f"{source_dir} is not an extracted Penn_Action directory (needs frames/ and labels/)")
    hourglass_dir = None
    if hourglass:
        hourglass_dir = hourglass if os.path.isdir(hourglass) else get_hourglass(
            os.path.join(output_dir, "hourglass"), hourglass, progress)
    label_files = sorted(glob.glob(os.path.join(labels_root, "*.mat")))
    if not label_files:
        raise ValueError(f"no label files (*.mat) in {labels_root}")
    check_settings(output_dir, settings)  # the input is there: records may be written
    counts, subset_counts = {"train": 0, "test": 0}, {"train": 0, "test": 0}
    frames_written, seconds = 0, 0.0
    for mat_path in tqdm(label_files, desc="penn_action", disable=not progress):
        video = os.path.basename(mat_path)[:-4]
        frame_dir = os.path.join(frames_root, video)
        if not os.path.isdir(frame_dir):
            raise ValueError(f"label file {mat_path} has no frame directory {frame_dir}")
        labels = read_labels(mat_path)  # cheap: decides the split before any frame is read
        split = "train" if labels["train"] == 1 else "test"
        counts[split] += 1
        subset_counts[split] += int(video.isdigit() and in_subset(int(video), labels["action"]))
        if os.path.exists(video_shard_path(os.path.join(output_dir, split), video)):
            continue  # written by an earlier run
        start = time.time()
        example, _, _, num_frames = convert_video(frame_dir, mat_path, image_size, encode, hourglass_dir)
        write_video_record(os.path.join(output_dir, split), video, example)
        frames_written += num_frames
        seconds += time.time() - start
    info = dict(settings, num_examples=counts, num_subset_examples=subset_counts, classes=list(CLASSES),
                subset_classes=list(SUBSET_CLASSES), joint_names=list(JOINT_NAMES), hourglass=bool(hourglass_dir),
                poses="13 joints, (x, y) in stored-frame pixels, [T, 13, 2]")
    write_dataset_info(output_dir, info)
    if not keep_raw:
        shutil.rmtree(raw_dir, ignore_errors=True)
    info["frames_per_second"] = frames_written / seconds if seconds else None
    return info
