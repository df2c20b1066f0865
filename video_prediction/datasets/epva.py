"""EPVA's flat record layout: reader, writer, converters and the authors' robot-push archive.

Record layout (specs/epva.md §2.1): one ``tf.train.Example`` per clip with flat
per-frame keys, ``i`` a decimal frame index:

=========================  ===================================  ==========
key                        value                                datasets
=========================  ===================================  ==========
``image_{i}``              one JPEG-encoded RGB frame (bytes)   human, robot
``state_{i}``              5 floats (end effector xyz + 2 angles) robot
``action_{i}``             5 floats (commanded pose)            robot
``joint_positions_{i}``    7 floats (arm joints)                robot
=========================  ===================================  ==========

Reading (§2.2): frames ``0, skip, 2*skip, ...`` below the original's
``sequence_length`` (here: ``sequence_length`` = number of frames T and
``frame_skip`` = skip_num - 1, so the original's ``--sequence_length 64
--skip_num 2`` is ``sequence_length=32, frame_skip=1``), always from frame 0;
every key of every read frame must exist.  Each JPEG is decoded (3 channels),
resized to ``image_size`` x ``image_size`` with TF1's legacy bicubic
``resize_images`` (no half-pixel centres, not clipped: values may leave [0, 1]
slightly, as in the original) and divided by 255.  Batches: ``images``
``[B,T,64,64,3]``, ``states`` ``[B,T,5]``, ``actions`` ``[B,T,5]`` (one per frame,
as the original), ``joint_positions`` ``[B,T,7]`` and the original's
``joint_poses`` = concat(joint_positions, states) ``[B,T,12]``; with
``use_state=False`` (the original's ``dataset_type=human``) only images are
parsed and the others are zeros.  ``color_data_augment`` shifts the hue of
every frame of a clip by one random delta (max 0.5), as the original.

Two registered names, one class: ``epva_human36m`` (use_state False, T=32,
skip 2, 5 context frames: the README's human commands) and ``epva_robot``
(use_state True, T=20, skip 1, 2 context frames).  The layout is the same; what
must be present in a record and the published clip settings differ, so the
name picks both and ``--dataset_hparams`` can still change either.

Files: the original globs ``<data_dir>/*train*`` / ``*validation*`` (and the
notebook ``humans-test``), so record files are found by those words in their
names (``data_pattern`` overrides, like the original's flag); files under
``<dir>/<mode>/*.tfrecord*`` are accepted too.  The writer names files
``<prefix>-{train,validation,test}_<first>_to_<last>.tfrecord`` so the
original's patterns find them as well.
"""

import glob
import io
import json
import os
import shutil

import numpy as np
import tensorflow as tf
from PIL import Image

from video_prediction.datasets.base import BaseVideoDataset, write_tfrecord_shards
from video_prediction.datasets.video_dataset import read_first_example
from video_prediction.datasets.record_writing import write_dataset_info

EPVA_IMAGE_SIZE = 64  # prediction_input.py IMG_HEIGHT / IMG_WIDTH
POSE_DIM = 5  # prediction_train.py --pose_dim
JOINT_POS_DIM = 7  # prediction_train.py --joint_pos_dim
#: The word of each mode in the original's file patterns (*train*, *validation*, humans-test).
SPLIT_WORDS = {"train": "train", "val": "validation", "test": "test"}
#: Frame keys of the robot variant, with their sizes (hparam names).
ROBOT_KEYS = (("state", "pose_dim"), ("action", "pose_dim"), ("joint_positions", "joint_pos_dim"))
_NOT_RECORDS = (".tmp", ".part", ".json", ".txt", ".tar", ".gz", ".zip", ".md", ".csv", ".npy")


def _is_record_file(path):
    return os.path.isfile(path) and not path.endswith(_NOT_RECORDS)


def find_epva_files(input_dir, mode, data_pattern=""):
    """Record files of ``mode``: ``data_pattern`` if given, else names holding the mode's word, else
    ``<input_dir>/<mode>/*.tfrecord*``; ValueError naming what was tried."""
    if not input_dir or not os.path.isdir(input_dir):
        raise ValueError(f"dataset directory {input_dir!r} does not exist")
    patterns = [data_pattern] if data_pattern else [f"*{SPLIT_WORDS[mode]}*"]
    for pattern in patterns:
        files = sorted(p for p in glob.glob(os.path.join(input_dir, pattern)) if _is_record_file(p))
        if files:
            return files
    if not data_pattern:  # our split directories (not flat *.tfrecord files: they would serve every mode)
        files = sorted(p for p in glob.glob(os.path.join(input_dir, mode, "*.tfrecord*")) if _is_record_file(p))
        if files:
            return files
    tried = " or ".join(repr(os.path.join(input_dir, p)) for p in patterns)
    if not data_pattern:
        tried += f" or {os.path.join(input_dir, mode, '*.tfrecord*')!r}"
    raise ValueError(f"no EPVA record files for mode {mode!r}: nothing matches {tried}")


def record_layout(feature_names):
    """``'epva'``, ``'finn_push'`` (raw Finn et al. records) or None, from a record's feature names."""
    names = set(feature_names)
    if "image_0" in names:
        return "epva"
    if "move/0/image/encoded" in names:
        return "finn_push"
    return None


class EPVAVideoDataset(BaseVideoDataset):
    """EPVA's flat records (module docstring); ``use_state`` is the original's ``dataset_type == 'robot'``."""

    #: Frames of any size are resized to ``image_size`` (as the original's reader), so a frame of another
    #: size is not an error (record_fuzzing expects such a record back, resized).
    resizes_frames = True

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(
            context_frames=2,  # prediction_train.py --context_frames
            sequence_length=20,  # frames T (the robot commands: --sequence_length 20 --skip_num 1)
            frame_skip=0,  # skip_num - 1
            time_shift=0,  # the original always reads from frame 0
            use_state=True,
            image_size=EPVA_IMAGE_SIZE,
            pose_dim=POSE_DIM,
            joint_pos_dim=JOINT_POS_DIM,
            data_pattern="",  # the original's --data_pattern (a glob in input_dir); "" picks by mode
            color_data_augment=False,  # --color_data_augment: one random hue shift (max 0.5) per clip
        )
        return hparams

    def _resolve_hparams(self, hparams_dict, hparams):
        resolved = super()._resolve_hparams(hparams_dict, hparams)
        if resolved.time_shift or resolved.force_time_shift:
            raise ValueError("EPVA clips are read from frame 0 (as the original): time_shift must be 0 and "
                             "force_time_shift False")
        if resolved.crop_size or resolved.scale_size:
            raise ValueError("EPVA frames are resized with image_size (bicubic, as the original); crop_size and "
                             "scale_size must be 0")
        for key in ("image_size", "pose_dim", "joint_pos_dim"):
            if getattr(resolved, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(resolved, key)}")
        return resolved

    def find_files(self):
        return find_epva_files(self.input_dir, self.mode, self.hparams.data_pattern)

    def _check_lengths(self):
        # the first file left after the base class dropped empty (and, when skipping, corrupt) ones
        self._check_first_record(self.filenames[0])

    @property
    def frame_numbers(self):
        """Stored frame indices read per clip: ``range(0, span, frame_skip + 1)`` (the original's frame_nums)."""
        return list(range(0, self.span, self.hparams.frame_skip + 1))

    def required_keys(self):
        """``{key: (kind, size)}`` of every feature a record must hold (no defaults, as the original)."""
        keys = {}
        for i in self.frame_numbers:
            keys[f"image_{i}"] = ("bytes", 1)
            if self.hparams.use_state:
                for name, size in ROBOT_KEYS:
                    keys[f"{name}_{i}"] = ("float", getattr(self.hparams, size))
        return keys

    def _check_first_record(self, path):
        """One clear line when the first record lacks a key or has a wrong size (the original fails in TF)."""
        feature = read_first_example(path).features.feature
        if record_layout(feature.keys()) == "finn_push":
            raise ValueError(f"{path} holds raw Finn et al. push records (move/<t>/...), not EPVA's layout; convert "
                             "them with data/convert_to_epva_records.py --source google_robot")
        for key, (kind, size) in self.required_keys().items():
            if key not in feature:
                robot = " (use_state=True reads the robot fields; human records have images only)" \
                    if not key.startswith("image_") else ""
                raise ValueError(f"{path}: record 0 has no feature {key!r}; sequence_length={self.sequence_length} "
                                 f"with frame_skip={self.hparams.frame_skip} reads frames {self.frame_numbers[0]}.."
                                 f"{self.frame_numbers[-1]}{robot}")
            values = feature[key].bytes_list.value if kind == "bytes" else feature[key].float_list.value
            if len(values) != size:
                raise ValueError(f"{path}: record 0 feature {key!r} has {len(values)} {kind} values, expected {size}")

    @property
    def stored_image_shape(self):
        size = self.hparams.image_size
        return (size, size, 3)

    # -- parsing ---------------------------------------------------------------------------------

    def parse(self, serialized):
        specs = {key: tf.io.FixedLenFeature([size] if kind == "float" else [], tf.float32 if kind == "float"
                                            else tf.string)
                 for key, (kind, size) in self.required_keys().items()}
        parsed = tf.io.parse_single_example(serialized, specs)
        example = {"frames": tf.stack([parsed[f"image_{i}"] for i in self.frame_numbers])}
        if self.hparams.use_state:
            for name, _ in ROBOT_KEYS:
                example[name] = tf.stack([parsed[f"{name}_{i}"] for i in self.frame_numbers])
        return example

    def stored_length(self, example):
        return tf.constant(self.span, tf.int64)  # a record lacking a read frame fails in parse, as the original

    def _frame_indices(self, length, seed):
        self._example_seed = seed  # for the hue shift of decode(), traced in the same function
        return super()._frame_indices(length, seed)

    def decode(self, example, frame_indices):
        # Only the frames of frame_numbers were parsed, and clips start at 0, so frame_indices are those.
        size = self.hparams.image_size
        images = tf.map_fn(lambda frame: legacy_bicubic_frame(frame, size), example["frames"],
                           fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
        if self.hparams.color_data_augment:
            seed = getattr(self, "_example_seed", None)
            if seed is None:
                seed = tf.constant([self.seed or 0, 0], tf.int64)
            images = tf.image.stateless_random_hue(images, 0.5, seed)  # one delta for the whole clip
        length = len(self.frame_numbers)
        if self.hparams.use_state:
            states, actions, joints = example["state"], example["action"], example["joint_positions"]
        else:
            states = actions = tf.zeros([length, self.hparams.pose_dim])
            joints = tf.zeros([length, self.hparams.joint_pos_dim])
        return {"images": images, "states": states, "actions": actions, "joint_positions": joints,
                "joint_poses": tf.concat([joints, states], axis=-1)}


def legacy_bicubic_frame(encoded, size):
    """JPEG bytes -> float32 ``[size, size, 3]`` in 0..1 as EPVA's reader (TF1 ``resize_images`` BICUBIC).

    TF1 returned the image unchanged when it already had the size; otherwise
    ``resize_bicubic`` without half-pixel centres, unclipped; then ``/ 255``.
    """
    image = tf.io.decode_jpeg(encoded, channels=3)
    shape = tf.shape(image)

    def resize():
        resized = tf.raw_ops.ResizeBicubic(images=image[None], size=[size, size], align_corners=False,
                                           half_pixel_centers=False)
        return resized[0]

    same = tf.logical_and(tf.equal(shape[0], size), tf.equal(shape[1], size))
    image = tf.cond(same, lambda: tf.cast(image, tf.float32), resize)
    return tf.reshape(image, [size, size, 3]) / 255.0


class EPVAHuman36MVideoDataset(EPVAVideoDataset):
    """``epva_human36m``: images only (the original's ``dataset_type=human``), T=32 with skip 2, 5 context frames."""

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        # README human commands: --sequence_length 64 --skip_num 2 --context_frames 5 (inference: 256 / 2).
        hparams.update(use_state=False, sequence_length=32, frame_skip=1, context_frames=5)
        return hparams


class EPVARobotVideoDataset(EPVAVideoDataset):
    """``epva_robot``: images, states, actions and joint positions; T=20, skip 1, 2 context frames."""


# -- writing ---------------------------------------------------------------------------------------


def encode_jpeg(frame, quality=95):
    """uint8 ``[H, W, 3]`` -> JPEG bytes (Pillow, quality 95)."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(frame, np.uint8)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def epva_example(frames, states=None, actions=None, joint_positions=None, pose_dim=POSE_DIM,
                 joint_pos_dim=JOINT_POS_DIM, jpeg_quality=95):
    """An EPVA-layout ``tf.train.Example`` from uint8 RGB ``frames`` ``[T, H, W, 3]``.

    Without ``states``/``actions``/``joint_positions`` the record is a human
    one (images only).  If any is given, all three robot keys are written for
    every frame (the original reads them without defaults); a missing one is
    written as zeros.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    length = len(frames)
    feature = {f"image_{i}": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encode_jpeg(f, jpeg_quality)]))
               for i, f in enumerate(frames)}
    robot = {"state": states, "action": actions, "joint_positions": joint_positions}
    if any(v is not None for v in robot.values()):
        sizes = {"state": pose_dim, "action": pose_dim, "joint_positions": joint_pos_dim}
        for name, values in robot.items():
            values = np.zeros([length, sizes[name]], np.float32) if values is None else np.asarray(values, np.float32)
            if values.shape != (length, sizes[name]):
                raise ValueError(f"{name} must be [{length}, {sizes[name]}] for {length} frames, got {values.shape}")
            for i, value in enumerate(values):
                feature[f"{name}_{i}"] = tf.train.Feature(float_list=tf.train.FloatList(value=value.tolist()))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _load_json(path):
    with open(path) as f:
        return json.load(f)


def _same(saved, settings):
    return {key: saved.get(key) for key in settings} == json.loads(json.dumps(settings))


def write_epva_splits(output_dir, splits, settings, prefix, examples_per_file=128):
    """Write ``{mode: callable returning tf.train.Examples}`` as ``<prefix>-<word>_<a>_to_<b>.tfrecord``.

    Resumable like :mod:`~video_prediction.datasets.record_writing`: a split is
    written under ``.<mode>.tmp/`` and moved into place when complete, a marker
    with the settings lets a rerun skip finished splits, and
    ``dataset_info.json`` (written last) marks the whole output finished: a
    rerun with the same settings does nothing.  Returns the info dict.
    """
    info_path = os.path.join(output_dir, "dataset_info.json")
    if os.path.exists(info_path):
        info = _load_json(info_path)
        if _same(info, settings):
            print(f"{output_dir} already holds these EPVA records; nothing to do")
            return info
        os.remove(info_path)
    os.makedirs(output_dir, exist_ok=True)
    counts = {}
    for mode, examples in splits.items():
        word = SPLIT_WORDS[mode]
        marker = os.path.join(output_dir, f".{mode}_settings.json")
        stem = f"{prefix}-{word}"
        if os.path.exists(marker) and _same(_load_json(marker), settings):
            counts[mode] = _load_json(marker)["_count"]
            continue
        for old in glob.glob(os.path.join(output_dir, f"{stem}_*_to_*.tfrecord")):
            os.remove(old)  # records of this split from a run with other settings
        tmp = os.path.join(output_dir, f".{mode}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        count = 0

        def counted():
            nonlocal count
            for example in examples():
                count += 1
                yield example

        for path in write_tfrecord_shards(tmp, counted(), examples_per_file, prefix=stem):
            os.replace(path, os.path.join(output_dir, os.path.basename(path)))
        shutil.rmtree(tmp, ignore_errors=True)
        counts[mode] = count
        with open(marker, "w") as f:
            json.dump(dict(settings, _count=count), f)
    info = dict(settings, num_examples=counts, layout="epva (specs/epva.md §2.1)")
    write_dataset_info(output_dir, info)
    for mode in splits:
        os.remove(os.path.join(output_dir, f".{mode}_settings.json"))
    return info
