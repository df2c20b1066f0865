"""The pose-record contract shared by the pose datasets (moving_mnist_pose, penn_action, human36m).

Record layout: the VarLen layout of :class:`VarLenFeatureVideoDataset` (one
``tf.train.Example`` per video: ``sequence_length``, ``height``, ``width``,
``channels``, ``images/encoded``) plus

* ``poses``: float ``T*K*2``, every frame's K joints as (x, y) in pixels of
  the *stored* frame (pixel (row i, col j) has coordinates (j, i); a joint
  of the original's crop at ``x_crop`` is stored at ``x_crop * W / crop_width``,
  so ``x / W`` is the original's normalised coordinate ``x_crop / crop_width``; the
  original's heatmaps, drawn at crop resolution and resized with half-pixel
  centres, peak within half a stored pixel of this point);
* ``pose_visibility``: float ``T*K``, 1 visible, 0 not (all ones where a
  dataset has no visibility);
* ``crop_box``: float ``[x1, y1, x2, y2]``, the crop ``img[y1:y2, x1:x2]`` of
  the source video the stored frames were resized from (the heatmaps of the
  original are drawn at that crop's resolution);
* ``label``: int64 action class (-1: none); ``video_id``: bytes;
* optionally ``estimated_poses`` / ``estimated_pose_visibility`` (same layout
  as ``poses``): poses of a pose estimator (the original's Hourglass files),
  read with ``use_estimated_poses=True``.

Batches: ``images`` ``[B, T, H, W, C]``, ``poses`` ``[B, T, K, 2]``,
``pose_visibility`` ``[B, T, K]``, ``crop_box`` ``[B, 4]``, ``labels`` ``[B]``,
and with ``heatmaps=True`` ``heatmaps`` ``[B, T, H, W, channels]`` drawn the
original's way (:mod:`video_prediction.layers.pose_rendering`).

Each dataset class names its skeleton: ``joint_names`` (K names), ``limbs``
(``(a, b, c, d)`` segments from mid(a, b) to mid(c, d); a bone a-b is
``(a, a, b, b)``), ``heatmap_scheme`` (``"joints"`` or ``"limbs"``) and
``heatmap_rounding``.
"""

import io
import os

import numpy as np
import tensorflow as tf

from video_prediction.datasets.base import VarLenFeatureVideoDataset
from video_prediction.layers import pose_rendering


class PoseVideoDataset(VarLenFeatureVideoDataset):
    """Videos with per-frame 2-D poses in the pose-record layout (module docstring)."""

    joint_names = ()
    limbs = ()
    heatmap_scheme = "joints"
    #: How the original rounds joints before drawing ("none", "truncate", "round").
    heatmap_rounding = "none"

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(
            heatmaps=False,  # add "heatmaps" [T, H, W, channels] to each example
            heatmap_sigma=pose_rendering.SIGMA,  # in pixels of the crop (spec §2.4)
            use_estimated_poses=False,  # also read estimated_poses (e.g. Hourglass test poses)
        )
        return hparams

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.hparams.use_estimated_poses:
            path = self.filenames[0]
            first = next(iter(tf.data.TFRecordDataset(path)))
            if "estimated_poses" not in tf.train.Example.FromString(first.numpy()).features.feature:
                raise ValueError(f"use_estimated_poses: the {self.mode} records of {self.input_dir} hold no "
                                 f"estimated poses (e.g. {os.path.basename(path)}); preprocess with the Hourglass "
                                 "poses (human36m: test subjects only)")

    # -- skeleton ---------------------------------------------------------------------------------

    @property
    def num_joints(self):
        return len(self.joint_names)

    @property
    def num_heatmap_channels(self):
        return pose_rendering.num_heatmap_channels(self.heatmap_scheme, self.num_joints, self.limbs)


    def num_examples_per_epoch(self):
        counts = self._info().get("num_examples", {})
        if self.mode in counts:
            return int(counts[self.mode])
        return super().num_examples_per_epoch()

    # -- parsing ------------------------------------------------------------------------------------

    def extra_frame_features(self):
        k = self.num_joints
        features = {"poses": (k, 2), "pose_visibility": (k,)}
        if self.hparams.use_estimated_poses:
            features.update(estimated_poses=(k, 2), estimated_pose_visibility=(k,))
        return features

    def extra_video_features(self):
        return {
            "crop_box": ([4], tf.float32, [0.0, 0.0, 0.0, 0.0]),
            "label": ([], tf.int64, -1),
        }

    def _transform_points(self, poses):
        """Poses in stored-frame pixels -> pixels of the batch frames (after crop_size / scale_size)."""
        height, width, _ = self.stored_image_shape
        crop, scale = self.hparams.crop_size, self.hparams.scale_size
        if crop:
            poses = poses - tf.constant([(width - crop) // 2, (height - crop) // 2], poses.dtype)
            height = width = crop
        if scale:
            poses = poses * tf.constant([scale / width, scale / height], poses.dtype)
        return poses

    def _resize_maps(self, maps):
        """Heatmaps at the stored size -> the batch size (the images' centre crop and resize)."""
        crop, scale = self.hparams.crop_size, self.hparams.scale_size
        if crop:
            maps = tf.image.resize_with_crop_or_pad(maps, crop, crop)
        if scale:
            maps = tf.image.resize(maps, (scale, scale), method="bilinear")
        return maps

    def heatmaps_of(self, poses, visibility, crop_box):
        """The original's heatmaps ``[T, H, W, C]`` at the stored size for stored-pixel poses ``[T, K, 2]``."""
        height, width, _ = self.stored_image_shape
        box = tf.cast(crop_box, tf.float32)
        crop_w, crop_h = box[2] - box[0], box[3] - box[1]
        # no crop recorded: the stored frame is the grid
        crop_w = tf.where(crop_w > 0, crop_w, float(width))
        crop_h = tf.where(crop_h > 0, crop_h, float(height))
        points = poses * tf.stack([crop_w / width, crop_h / height])
        grid = (tf.cast(tf.round(crop_h), tf.int32), tf.cast(tf.round(crop_w), tf.int32))
        return pose_rendering.render_heatmaps(
            points, visibility, grid, scheme=self.heatmap_scheme, limbs=self.limbs,
            sigma=self.hparams.heatmap_sigma, output_size=(height, width), rounding=self.heatmap_rounding)

    def decode(self, example, frame_indices):
        output = super().decode(example, frame_indices)
        output["labels"] = output.pop("label")
        if self.hparams.heatmaps:
            maps = self.heatmaps_of(output["poses"], output["pose_visibility"], output["crop_box"])
            output["heatmaps"] = self._resize_maps(maps)
        output["poses"] = self._transform_points(output["poses"])
        if self.hparams.use_estimated_poses:
            output["estimated_poses"] = self._transform_points(output["estimated_poses"])
        return output


def pose_record_features(poses, visibility, crop_box, label=-1, video_id="", estimated=None):
    """The ``extra`` dict of :func:`varlen_example` for one video of the pose layout.

    ``estimated`` is an optional ``(poses, visibility)`` pair of estimated poses.
    """
    poses = np.asarray(poses, np.float32)
    visibility = np.asarray(visibility, np.float32)
    if poses.ndim != 3 or poses.shape[-1] != 2 or visibility.shape != poses.shape[:2]:
        raise ValueError(f"poses must be [T, K, 2] with visibility [T, K]; got {poses.shape} and {visibility.shape}")
    extra = {
        "poses": poses,
        "pose_visibility": visibility,
        "crop_box": np.asarray(crop_box, np.float32).reshape(4),
        "label": np.int64(label),
        "video_id": str(video_id),
    }
    if estimated is not None:
        est_poses, est_vis = (np.asarray(a, np.float32) for a in estimated)
        if est_poses.shape != poses.shape or est_vis.shape != visibility.shape:
            raise ValueError(f"estimated poses {est_poses.shape} do not match the poses {poses.shape}")
        extra.update(estimated_poses=est_poses, estimated_pose_visibility=est_vis)
    return extra


def padded_square_box(box, pad, width, height, integer):
    """The originals' person crop (hierarchical-LSTM spec §2.1 step 3, §2.2 ``get_tube``).

    ``box`` = (x1, y1, x2, y2) of the person (Penn: union of the bboxes, int;
    Human3.6M: min/max of the joints, float); padded by ``pad``; the shorter side
    widened to the longer (``h = y2 - y1 + 1``, floor division for ints as
    Penn's Python 2 code, true division for floats as Human3.6M's), only the
    widened axis clamped to the image; then x1, y1 clamped at 0.  Returns
    ``(crop, original_offset)``: ``crop`` = (x1, y1, x2, y2) as the original saves
    it (x2, y2 may exceed the image on the axis that was not widened; slicing
    ``img[y1:y2, x1:x2]`` clips them) and ``original_offset`` = the (x, y) the
    original subtracted from the joints, which is the unpadded box corner, not
    the crop corner, when the padded box crossed the left/top border (its bug).
    """
    x1, y1, x2, y2 = (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad)
    h, w = y2 - y1 + 1, x2 - x1 + 1

    def halves(d):
        return (d // 2, d // 2 + d % 2) if integer else (d / 2, d / 2 + d % 2)

    if h > w:
        left, right = halves(h - w)
        x1 = max(x1 - left, 0)
        x2 = min(x2 + right, width)
    elif w > h:
        up, down = halves(w - h)
        y1 = max(y1 - up, 0)
        y2 = min(y2 + down, height)
    offset = (x1 if x1 >= 0 else box[0], y1 if y1 >= 0 else box[1])
    return (max(x1, 0), max(y1, 0), x2, y2), offset


def clipped_crop(crop, width, height):
    """The region ``img[y1:y2, x1:x2]`` really covers: (x1, y1, min(x2, W), min(y2, H)) as ints."""
    x1, y1, x2, y2 = (int(v) for v in crop)
    return x1, y1, min(x2, width), min(y2, height)


def to_stored_pixels(x, y, crop, size):
    """Joints in source-image pixels -> pixels of the crop resized to ``size`` x ``size``: ``[..., 2]`` float32."""
    x1, y1, x2, y2 = crop
    sx, sy = size / float(x2 - x1), size / float(y2 - y1)
    return np.stack([(np.asarray(x, np.float64) - x1) * sx, (np.asarray(y, np.float64) - y1) * sy],
                    axis=-1).astype(np.float32)


def resize_frames(frames, size):
    """uint8 ``[N, h, w, 3]`` -> ``[N, S, S, 3]``: bilinear, half-pixel centres, no antialiasing (cv2 INTER_LINEAR)."""
    out = tf.image.resize(tf.cast(frames, tf.float32), (size, size), method="bilinear", antialias=False)
    return np.clip(np.round(out.numpy()), 0, 255).astype(np.uint8)


def encoder(image_format, quality=95):
    """Frame encoder: uint8 ``[H, W, 3]`` -> JPEG or PNG bytes."""
    from PIL import Image

    if image_format not in ("jpeg", "png"):
        raise ValueError(f"image_format must be 'jpeg' or 'png', got {image_format!r}")

    def encode(frame):
        buffer = io.BytesIO()
        if image_format == "png":
            Image.fromarray(frame).save(buffer, format="PNG", compress_level=1)
        else:
            Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
        return buffer.getvalue()

    return encode
