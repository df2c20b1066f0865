"""Making EPVA-layout records (:mod:`~video_prediction.datasets.epva`): converters and the robot-push archive.

The original never shipped a converter and its data bucket is gone, so:

* :func:`convert_to_epva_records` reads any registered dataset through its
  class (``parse``/``decode``: the batch dict of one example, ``images``
  ``[T,H,W,C]`` in [0, 1]) and writes EPVA records, cutting every stored video
  into non-overlapping clips.

  - ``human36m``: frames at 12.5 fps, i.e. every 4th frame of the 50 fps
    videos (the human36m reader's ``fskip=4``, the hierarchical-LSTM original's).  EPVA reads its human records
    with ``skip_num 2`` and the paper works at 6.25 fps, which implies stored
    records at 12.5 fps (specs/epva.md §2.4; an inference, the original does
    not say).  Frames are stored at 64x64 (the crop resized with a box
    filter when larger), images only (EPVA's human reader parses nothing
    else).  Clips: 64 frames for train/val (the training ``--sequence_length
    64``), 256 for test (inference reads ``image_0 .. image_254``).
  - ``google_robot`` (Finn et al. push records): ``state_{i}`` <- 
    ``move/{i}/endeffector/vec_pitch_yaw``, ``action_{i}`` <-
    ``move/{i}/commanded_pose/vec_pitch_yaw`` (the commanded pose of the same
    frame, all frames kept), ``joint_positions_{i}`` <- ``move/{i}/joint/positions``
    (or the first ``move/{i}/...`` feature naming joint positions) when the
    records have it (7 floats, the arm's joints: EPVA's ``joint_pos_dim`` 7),
    else zeros; the original's source for it is unconfirmed, and whether the
    public push records carry joint positions could not be checked here.  Frames keep their stored size (512x640), so EPVA's reader
    does the one bicubic resize to 64x64, as the original would have on these
    frames; ``image_size=64`` stores them resized instead (smaller files).
    One EPVA record per push record, all its frames.

* :func:`download_and_prepare_robot_push` downloads the authors'
  ``robot_data.tar.gz`` (resumable, see :mod:`~video_prediction.download`),
  verifies and extracts it and lays the record files out flat in the output
  directory with ``train`` / ``validation`` / ``test`` in their names, so
  ``--dataset epva_robot --input_dir DIR`` (and the original's patterns)
  read them.  The archive's content is undocumented: files already in EPVA's
  layout are moved as they are; raw Finn push records are converted as above.
"""

import json
import os
import re
import shutil

import numpy as np
import tensorflow as tf
from PIL import Image

from video_prediction.datasets import get_dataset_class
from video_prediction.datasets.base import check_tfrecord_framing, compression_of
from video_prediction.datasets.epva import SPLIT_WORDS, epva_example, record_layout, write_epva_splits
from video_prediction.datasets.google_robot import GoogleRobotVideoDataset
from video_prediction.datasets.video_dataset import read_first_example
from video_prediction.download import download_file, extract_archive, file_sha256, verify_archive
from video_prediction.datasets.record_writing import write_dataset_info

HUMAN36M_FPS = 50
EPVA_HUMAN_FPS = 12.5
MODES = ("train", "val", "test")


class FinnPushAllFrames(GoogleRobotVideoDataset):
    """Finn et al. push records with the commanded pose of every frame (``commanded_poses`` ``[T, 5]``)
    and, when present, ``joint_positions`` ``[T, 7]`` from ``move/{t}/joint/positions``."""

    #: The push records' joint features are undocumented: the first ``move/0/...`` name holding "joint" and
    #: "pos" (e.g. ``move/0/joint/positions``) is taken when it has 7 floats (EPVA's joint_pos_dim).
    joint_name = re.compile(r"move/0/(.*joint.*pos.*)\Z")

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(use_state=True, sequence_length=0)  # 0: every stored frame
        return hparams

    def state_like_features(self, feature_names, use_state):
        features = {"states": self.state_feature, "commanded_poses": self.action_feature}
        for name in sorted(feature_names):
            match = self.joint_name.match(name)
            if match:
                features["joint_positions"] = (f"move/%d/{match.group(1)}", (7,))
                break
        return features

    def action_like_features(self, feature_names, use_state):
        return {}


#: Per source: how the source is read, how long the clips are, how the files are named.
SOURCES = {
    "human36m": dict(hparams={"fskip": 4}, frames_per_record=64,
                     test_frames_per_record=256, image_size=64, prefix="humans"),
    "google_robot": dict(hparams={}, frames_per_record=0, test_frames_per_record=0, image_size=0, prefix="robot"),
}
DEFAULT_SOURCE = dict(hparams={}, frames_per_record=0, test_frames_per_record=0, image_size=64, prefix="epva")


def source_class(source):
    return FinnPushAllFrames if source == "google_robot" else get_dataset_class(source)


def dataset_clips(dataset):
    """Non-overlapping clips of every stored video of ``dataset`` (in file order) as numpy dicts.

    Each clip is what ``dataset.decode`` returns for ``sequence_length``
    frames every ``frame_skip + 1``-th stored frame; clips start every
    ``span`` stored frames.
    """
    span, step, length = dataset.span, dataset.hparams.frame_skip + 1, dataset.sequence_length
    records = tf.data.TFRecordDataset(dataset.filenames, compression_type=compression_of(dataset.filenames[0]))
    examples = records.map(dataset.parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def windows(example):
        count = tf.maximum((dataset.stored_length(example) - span) // span + 1, 0)
        starts = tf.range(count, dtype=tf.int64) * span
        return tf.data.Dataset.from_tensor_slices(starts).map(
            lambda start: dataset.decode(example, start + tf.range(length, dtype=tf.int64) * step))

    for clip in examples.flat_map(windows).prefetch(tf.data.AUTOTUNE):
        yield {key: value.numpy() for key, value in clip.items()}


def to_uint8_rgb(images, image_size=0):
    """float ``[T,H,W,C]`` in [0,1] -> uint8 ``[T,S,S,3]`` (grey tiled; box-filtered when shrinking, bicubic when
    enlarging; ``image_size`` 0 keeps the size)."""
    frames = np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    if frames.shape[-1] != 3:
        raise ValueError(f"EPVA records hold RGB frames; the source has {frames.shape[-1]} channels")
    if image_size and frames.shape[1:3] != (image_size, image_size):
        shrink = frames.shape[1] * frames.shape[2] > image_size * image_size
        method = Image.BOX if shrink else Image.BICUBIC
        frames = np.stack([np.asarray(Image.fromarray(f).resize((image_size, image_size), method)) for f in frames])
    return frames


def clip_to_example(clip, image_size=0):
    """One EPVA record from a clip dict: robot keys when it has ``commanded_poses`` (Finn push), else images."""
    frames = to_uint8_rgb(clip["images"], image_size)
    if "commanded_poses" in clip:
        return epva_example(frames, states=clip["states"], actions=clip["commanded_poses"],
                            joint_positions=clip.get("joint_positions"))
    return epva_example(frames)


def convert_to_epva_records(source, input_dir, output_dir, modes=MODES, source_hparams=None, frames_per_record=None,
                            test_frames_per_record=None, image_size=None, prefix=None, examples_per_file=128,
                            progress=True):
    """Write EPVA records of the registered dataset ``source`` (or ``google_robot``'s raw push records).

    ``frames_per_record`` (train/val) and ``test_frames_per_record`` are the
    frames of each written clip after the source's frame skip (0: the whole
    stored video); ``image_size`` 0 keeps the source's frame size.  Modes the
    source has no records for are skipped; the same files serving two modes is
    an error.  Returns the ``dataset_info.json`` contents.
    """
    from tqdm import tqdm

    defaults = SOURCES.get(source, DEFAULT_SOURCE)
    # context_frames only has to be valid for the clip length; it plays no part in conversion
    hparams = {"context_frames": 1, **defaults["hparams"], **(source_hparams or {})}  # later ones win
    frames_per_record = defaults["frames_per_record"] if frames_per_record is None else frames_per_record
    test_frames = defaults["test_frames_per_record"] if test_frames_per_record is None else test_frames_per_record
    image_size = defaults["image_size"] if image_size is None else image_size
    prefix = prefix or defaults["prefix"]
    cls = source_class(source)
    datasets, seen = {}, {}
    for mode in modes:
        length = test_frames if mode == "test" else frames_per_record
        mode_hparams = dict(hparams, **({"sequence_length": length} if length else {}))
        try:
            dataset = cls(input_dir, mode, num_epochs=1, hparams_dict=mode_hparams)
        except ValueError as e:
            if str(e).startswith("no TFRecords"):
                print(f"{source}: no {mode} records in {input_dir}; skipping {mode}")
                continue
            raise
        key = tuple(dataset.filenames)
        if key in seen:
            raise ValueError(f"the same {source} files serve modes {seen[key]!r} and {mode!r}; put each split in "
                             f"{input_dir}/<mode>/ or pass only the modes you want")
        seen[key] = mode
        datasets[mode] = dataset
    if not datasets:
        raise ValueError(f"no {source} records in {input_dir} for any of the modes {', '.join(modes)}")
    settings = dict(source=source, input_dir=os.path.abspath(input_dir), source_hparams=hparams,
                    frames_per_record=frames_per_record, test_frames_per_record=test_frames, image_size=image_size,
                    prefix=prefix, examples_per_file=examples_per_file)
    if source == "human36m":
        settings["fps"] = EPVA_HUMAN_FPS

    def examples_of(mode):
        def generate():
            clips = dataset_clips(datasets[mode])
            for clip in tqdm(clips, desc=f"{source} {mode}", disable=not progress, unit="clip"):
                yield clip_to_example(clip, image_size)
        return generate

    return write_epva_splits(output_dir, {mode: examples_of(mode) for mode in datasets}, settings, prefix,
                             examples_per_file)


# -- the authors' robot push archive -------------------------------------------------------------

ROBOT_PUSH_URL = "https://storage.googleapis.com/unsupervised-hierarch-video/robot_data.tar.gz"
ROBOT_PUSH_ARCHIVE = "robot_data.tar.gz"
_EXTRACTED = ".extracted"


def mode_of(relative_path):
    """train / val / test from the words of a record file's path (``push_testnovel`` -> test); None if none."""
    words = re.split(r"[^a-z]+", relative_path.lower())
    for word in reversed(words):  # the file name first, then its directories
        if word.startswith("train"):
            return "train"
        if word.startswith("val"):
            return "val"
        if word.startswith("test"):
            return "test"
    return None


def _is_tfrecord(path):
    try:
        return bool(check_tfrecord_framing(path))
    except ValueError:
        return False


def download_and_prepare_robot_push(output_dir="data/robot_push", base_url=None, sha256=None, expected_size=None,
                                    keep_archive=False, progress=True):
    """Download ``robot_data.tar.gz`` and lay it out for ``--dataset epva_robot``; returns the info dict.

    ``base_url`` replaces the authors' bucket (a mirror, or a test server).
    The archive's size and sha256 were never published: the server's
    Content-Length is checked while downloading, ``sha256``/``expected_size``
    pin them when known, and the sha256 of what was downloaded is recorded
    in ``dataset_info.json``.  A finished directory is left alone; an
    interrupted run resumes the download and the extraction.
    """
    info_path = os.path.join(output_dir, "dataset_info.json")
    if os.path.exists(info_path):
        with open(info_path) as f:
            info = json.load(f)
        if info.get("dataset") == "robot_push":  # (not the converter's info of an interrupted run)
            print(f"{output_dir} already holds the robot push records; nothing to do")
            return info
    url = ROBOT_PUSH_URL if base_url is None else f"{base_url.rstrip('/')}/{ROBOT_PUSH_ARCHIVE}"
    archive = os.path.join(output_dir, ROBOT_PUSH_ARCHIVE)
    os.makedirs(output_dir, exist_ok=True)
    download_file(url, archive, expected_size=expected_size, sha256=sha256, progress=progress)
    archive_sha256 = file_sha256(archive)
    verify_archive(archive)
    extracted = os.path.join(output_dir, _EXTRACTED)
    extract_archive(archive, extracted, skip_existing=True)
    files = sorted(os.path.join(root, name) for root, _, names in os.walk(extracted) for name in names
                   if not name.endswith(".tmp"))
    records = [path for path in files if _is_tfrecord(path)]
    if not records:
        raise ValueError(f"{archive} holds no TFRecord files (found: {', '.join(os.path.relpath(p, extracted) for p in files[:10]) or 'nothing'})")
    by_layout = {"epva": [], "finn_push": []}
    for path in records:
        relative = os.path.relpath(path, extracted)
        mode = mode_of(relative)
        if mode is None:
            raise ValueError(f"{archive}: cannot tell the split of {relative!r} (no train/validation/test in its path)")
        names = read_first_example(path).features.feature.keys()
        layout = record_layout(names)
        if layout is None:
            raise ValueError(f"{archive}: {relative!r} is neither in EPVA's layout (image_0, ...) nor a Finn push "
                             f"record (move/0/image/encoded); its keys: {', '.join(sorted(names)[:10])}")
        by_layout[layout].append((path, relative, mode))
    counts = {}
    for path, relative, mode in by_layout["epva"]:
        name = relative.replace(os.sep, "-")
        if SPLIT_WORDS[mode] not in name:
            name = f"robot-{SPLIT_WORDS[mode]}-{name}"  # the reader finds a split by its word
        os.replace(path, os.path.join(output_dir, name))
        counts[mode] = counts.get(mode, 0) + sum(1 for _ in tf.data.TFRecordDataset(os.path.join(output_dir, name)))
    converted = None
    if by_layout["finn_push"]:
        staged = os.path.join(output_dir, ".finn_push")
        for path, relative, mode in by_layout["finn_push"]:
            target = os.path.join(staged, mode, relative.replace(os.sep, "-") + ".tfrecord")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(path, target)
        converted = convert_to_epva_records("google_robot", staged, output_dir, progress=progress,
                                            modes=sorted({mode for _, _, mode in by_layout["finn_push"]}))
        for mode, count in converted["num_examples"].items():
            counts[mode] = counts.get(mode, 0) + count
        shutil.rmtree(staged)
    shutil.rmtree(extracted)
    info = dict(dataset="robot_push", source=url, archive_sha256=archive_sha256, num_examples=counts,
                archive_layout="epva" if not by_layout["finn_push"] else
                ("finn_push (converted)" if not by_layout["epva"] else "mixed"),
                read_with="--dataset epva_robot")
    write_dataset_info(output_dir, info)
    if not keep_archive:
        os.remove(archive)
    return info
