"""The original SAVP ``VideoDataset`` record layout: one feature per timestep.

Each record is one ``tf.train.Example`` holding a whole video, with one
feature per timestep named from a template such as ``'%d/image_aux1/encoded'``
(specs/savp.md §2.1).  What a dataset module declares:

* the image feature template, its codec (raw uint8 or JPEG) and, optionally,
  its shape (``None``: a raw frame is taken as a square RGB image whose size
  follows from the byte count, a JPEG frame's shape is read from its header);
* with ``use_state=True``, a *state-like* feature (one per frame, returned as
  ``states [T, S]``) and an *action-like* one (one per transition, returned as
  ``actions [T-1, A]``); ``None`` shapes are read from the first record.

The number of stored timesteps is the number of matching features of the
first record (plus one for action-like ones), the smallest over all features.
A subclip starts at a random multiple of ``time_shift`` (training) and takes
every ``frame_skip + 1``-th frame; its actions are the ``(T-1)*(frame_skip+1)``
actions from the start, each ``frame_skip + 1`` of them concatenated into one
macro action, exactly as the original's ``slice_sequences``.
"""

import math
import os
import re

import numpy as np
import tensorflow as tf

from video_prediction.datasets.base import (BaseVideoDataset, compression_of, encoded_frame_sizes,
                                            find_tfrecords)
from video_prediction.hparams import resolve_hparams


def read_first_example(path):
    """The first record of a TFRecord file as a ``tf.train.Example``; ValueError naming the file if unreadable."""
    try:
        first = next(iter(tf.data.TFRecordDataset(path, compression_type=compression_of(path))), None)
    except tf.errors.OpError as e:
        raise ValueError(f"corrupt TFRecord file {path}: record 0 cannot be read "
                         f"({e.message.strip().splitlines()[0]})") from None
    if first is None:
        raise ValueError(f"TFRecord file {path} holds no records")
    try:
        return tf.train.Example.FromString(first.numpy())
    except Exception as e:  # protobuf's DecodeError has no stable import path
        raise ValueError(f"the first record of {path} is not a tf.train.Example ({e})") from None


def template_regex(template):
    """``'%d/action'`` -> a regex matching ``'<int>/action'`` exactly, capturing the integer."""
    head, sep, tail = template.partition("%d")
    if not sep:
        raise ValueError(f"feature template {template!r} has no '%d' for the timestep")
    return re.compile(re.escape(head) + r"(\d+)" + re.escape(tail) + r"\Z")


def timestep_count(template, feature_names, path):
    """How many consecutive timesteps 0, 1, ... of ``template`` the example has; ValueError if none."""
    regex = template_regex(template)
    steps = {int(m.group(1)) for m in map(regex.match, feature_names) if m}
    if not steps:
        raise ValueError(
            f"{path}: no feature matches {template!r}; the records have: {', '.join(sorted(feature_names)[:20])}"
        )
    count = len(steps)
    if steps != set(range(count)):
        missing = min(set(range(count)) - steps)
        raise ValueError(f"{path}: feature {template % missing!r} is missing (timesteps of {template!r} have gaps)")
    return count


def square_rgb_shape(num_bytes):
    """The original's guess for a raw frame: a square RGB image (H*W*3 bytes), or None."""
    side = math.isqrt(num_bytes // 3)
    return (side, side, 3) if side and side * side * 3 == num_bytes else None


def count_from_range_names(filenames, prefix):
    """Videos in ``<prefix>_<first>_to_<last>.tfrecords`` files, from their names; None if a name differs."""
    pattern = re.compile(re.escape(prefix) + r"_(\d+)_to_(\d+)\.tfrecords\Z")
    count = 0
    for filename in filenames:
        match = pattern.match(os.path.basename(filename))
        if not match:
            return None
        count += int(match.group(2)) - int(match.group(1)) + 1
    return count


class VideoDataset(BaseVideoDataset):
    """Records with one feature per timestep (see the module docstring); subclasses set the class attributes."""

    #: template of the per-frame image bytes, e.g. ``'%d/image_aux1/encoded'``
    image_feature = None
    #: (H, W, C) of the stored frames, or None to infer it from the first record
    declared_image_shape = None
    #: True: JPEG frames; False: raw uint8 bytes
    jpeg_encoding = False
    #: ``(template, shape or None)`` of the state-like / action-like float features read with use_state
    state_feature = None
    action_feature = None

    def __init__(self, *args, **kwargs):
        self._layout = None
        super().__init__(*args, **kwargs)

    # -- which features --------------------------------------------------------------------------

    def image_feature_template(self, feature_names):
        """The image template to read (hook for datasets that choose by the features present)."""
        return self.image_feature

    def state_like_features(self, feature_names, use_state):
        """``{output name: (template, shape or None)}`` of float features with one value per frame."""
        if use_state and self.state_feature:
            return {"states": self.state_feature}
        return {}

    def action_like_features(self, feature_names, use_state):
        """``{output name: (template, shape or None)}`` of float features with one value per transition."""
        if use_state and self.action_feature:
            return {"actions": self.action_feature}
        return {}

    def check_use_state(self, use_state):
        """Hook: raise ValueError if ``use_state`` is not possible for this data."""

    # -- the first record --------------------------------------------------------------------------

    def _inspect(self, use_state, filenames=None):
        """Feature templates, shapes and the stored length, from the first record (cached)."""
        if self._layout is not None and self._layout["use_state"] == use_state:
            return self._layout
        self.check_use_state(use_state)
        path = (filenames or self.filenames)[0]
        feature = read_first_example(path).features.feature
        names = list(feature.keys())
        image_template = self.image_feature_template(names)
        lengths = [timestep_count(image_template, names, path)]
        image_bytes = feature[image_template % 0].bytes_list.value
        if len(image_bytes) != 1:
            raise ValueError(f"{path}: feature {image_template % 0!r} must hold one image (bytes), "
                             f"it has {len(image_bytes)} byte strings")
        image_shape = self._image_shape(image_bytes[0], image_template % 0, path)
        floats = {}
        for kind, specs in (("state", self.state_like_features(names, use_state)),
                            ("action", self.action_like_features(names, use_state))):
            for output, (template, shape) in specs.items():
                count = timestep_count(template, names, path)
                lengths.append(count if kind == "state" else count + 1)
                values = feature[template % 0].float_list.value
                inferred = (len(values),)
                if shape is not None and tuple(shape) != inferred:
                    raise ValueError(f"{path}: feature {template % 0!r} has {len(values)} floats, "
                                     f"expected shape {tuple(shape)}")
                floats[output] = (kind, template, inferred)
        self._layout = dict(use_state=use_state, image_template=image_template, image_shape=image_shape,
                            floats=floats, length=min(lengths), path=path)
        return self._layout

    def _image_shape(self, frame, key, path):
        """Stored (H, W, C): the declared shape checked against the first frame, or inferred from it."""
        declared = tuple(self.declared_image_shape) if self.declared_image_shape else None
        if self.jpeg_encoding:
            try:
                inferred = tuple(int(d) for d in tf.io.extract_jpeg_shape(frame).numpy())
            except tf.errors.OpError:
                raise ValueError(f"{path}: feature {key!r} is not a JPEG image") from None
        elif declared is not None:
            if len(frame) != int(np.prod(declared)):
                raise ValueError(f"{path}: feature {key!r} has {len(frame)} bytes, but a raw {declared} frame "
                                 f"has {int(np.prod(declared))}")
            return declared
        else:
            inferred = square_rgb_shape(len(frame))
        if declared is None:
            if inferred is None:
                raise ValueError(f"{path}: cannot infer the shape of {key!r} from its {len(frame)} bytes "
                                 "(raw frames are assumed square RGB)")
            return inferred
        if inferred is not None and inferred != declared:
            raise ValueError(f"{path}: feature {key!r} holds {inferred} images, expected {declared}")
        return declared

    # -- hparams and checks --------------------------------------------------------------------------

    def _resolve_hparams(self, hparams_dict, hparams):
        values = resolve_hparams(self.default_hparams(), hparams_dict, hparams).values()
        if values["sequence_length"] == 0:
            # The original: sequence_length=0 means the longest subclip the records allow.
            layout = self._inspect(values["use_state"], find_tfrecords(self.input_dir, self.mode))
            values["sequence_length"] = (layout["length"] - 1) // (values["frame_skip"] + 1) + 1
        return super()._resolve_hparams(values, None)

    def _check_lengths(self):
        layout = self._inspect(self.hparams.use_state)
        if layout["length"] < self.span:
            raise ValueError(
                f"{layout['path']} stores {layout['length']}-frame videos; sequence_length={self.sequence_length} "
                f"with frame_skip={self.hparams.frame_skip} needs {self.span}"
            )

    @property
    def stored_image_shape(self):
        return self._inspect(self.hparams.use_state)["image_shape"]

    @property
    def stored_sequence_length(self):
        """Timesteps per stored video."""
        return self._inspect(self.hparams.use_state)["length"]

    # -- parsing ----------------------------------------------------------------------------------

    def parse(self, serialized):
        layout = self._inspect(self.hparams.use_state)
        length = layout["length"]
        features = {layout["image_template"] % t: tf.io.FixedLenFeature([], tf.string) for t in range(length)}
        for kind, template, shape in layout["floats"].values():
            steps = length if kind == "state" else length - 1
            features.update({template % t: tf.io.FixedLenFeature(shape, tf.float32) for t in range(steps)})
        parsed = tf.io.parse_single_example(serialized, features)
        example = {"frames": tf.stack([parsed[layout["image_template"] % t] for t in range(length)])}
        for output, (kind, template, _) in layout["floats"].items():
            steps = length if kind == "state" else length - 1
            example[output] = tf.stack([parsed[template % t] for t in range(steps)])
        return example

    def stored_length(self, example):
        return tf.constant(self._inspect(self.hparams.use_state)["length"], tf.int64)

    def check_parsed(self, example):
        """Every stored frame (not only a subclip's) has the layout's size: its byte count when raw, its JPEG
        header's height and width otherwise."""
        height, width, channels = self.stored_image_shape
        if self.jpeg_encoding:
            return [tf.debugging.assert_equal(
                encoded_frame_sizes(example["frames"]), tf.constant([height, width], tf.int64),
                message=f"a JPEG frame is not {height}x{width}")]
        size = height * width * channels
        return [tf.debugging.assert_equal(
            tf.strings.length(example["frames"]), size,
            message=f"a frame does not have the {size} bytes of a raw {(height, width, channels)} image")]

    def decode_frames(self, frames):
        """Encoded frames ``[T]`` -> uint8 ``[T, H, W, C]`` in the stored shape."""
        height, width, channels = self.stored_image_shape
        if self.jpeg_encoding:
            def decode_one(frame):
                image = tf.io.decode_jpeg(frame, channels=channels)
                check = tf.debugging.assert_equal(
                    tf.shape(image), [height, width, channels],
                    message=f"a JPEG frame in {self.input_dir} is not {(height, width, channels)}",
                )
                with tf.control_dependencies([check]):
                    return tf.identity(image)

            images = tf.map_fn(decode_one, frames, fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8))
        else:
            size = height * width * channels
            check = tf.debugging.assert_equal(
                tf.strings.length(frames), size,
                message=f"a frame in {self.input_dir} does not have the {size} bytes of a raw "
                f"{(height, width, channels)} image",
            )
            with tf.control_dependencies([check]):
                images = tf.io.decode_raw(frames, tf.uint8)
        return tf.reshape(images, [-1, height, width, channels])

    def decode(self, example, frame_indices):
        layout = self._inspect(self.hparams.use_state)
        # Only the subclip's frames are decoded; per-frame decoding makes this equal to the original,
        # which decodes all of them first.
        images = self.decode_frames(tf.gather(example["frames"], frame_indices))
        output = {"images": self.preprocess_images(images)}
        step = self.hparams.frame_skip + 1
        for name, (kind, _, shape) in layout["floats"].items():
            if kind == "state":
                output[name] = tf.gather(example[name], frame_indices)
            else:
                indices = frame_indices[0] + tf.range((self.sequence_length - 1) * step, dtype=tf.int64)
                output[name] = tf.reshape(tf.gather(example[name], indices),
                                          [self.sequence_length - 1, step * shape[0]])
        return output

    def preprocess_images(self, images):
        # The original crops to a min(H, W) square whenever scale_size is set without crop_size.
        if self.hparams.scale_size and not self.hparams.crop_size:
            height, width, _ = self.stored_image_shape
            side = min(height, width)
            images = tf.image.resize_with_crop_or_pad(images, side, side)
        return super().preprocess_images(images)


def _feature(value):
    if isinstance(value, bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    return tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(value, np.float32).ravel().tolist()))


def per_timestep_example(sequences):
    """A ``tf.train.Example`` in the per-timestep layout.

    ``sequences`` maps a template (``'%d/action'``) to a list with one value
    per timestep: ``bytes`` (an encoded frame) or a float array.
    """
    feature = {}
    for template, values in sequences.items():
        template_regex(template)
        for t, value in enumerate(values):
            feature[template % t] = _feature(value)
    return tf.train.Example(features=tf.train.Features(feature=feature))
