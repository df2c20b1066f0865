"""Hierarchical prediction: the pose LSTM chained with the analogy generator (specs/hierarchical_lstm.md §3.5).

The original trains the two networks separately and joins them only at test time
through files; here ``--model hierarchical_pose`` loads a ``pose_lstm`` run
(``pose_checkpoint=DIR``) and a ``pose_analogy`` run (``image_checkpoint=DIR``)
and follows the model contract:

1. the LSTM observes the context poses (``poses``, or the pose estimator's
   ``estimated_poses`` with ``observed_poses=estimated_poses``, the original's
   Hourglass test poses) and predicts every later pose (zero inputs);
2. observed poses pass through masked: an invisible joint comes out at the frame
   centre (the original's (64, 64) sentinel), so it is drawn only where the
   visibility says so; predicted joints are all visible;
3. each future frame is rendered from the LAST context frame, its (observed) pose
   and the predicted pose of that frame: no pixel-level recursion.

Heatmaps of the predicted poses are drawn with the dataset's scheme (per-joint or
Penn's 12 limbs x 4 points, :mod:`video_prediction.layers.pose_rendering`) at the
batch's frame size with the dataset's sigma scaled from the crop (the original
drew at the crop resolution and resized to 128: the same maps up to resampling).

Outputs: ``gen_images`` (contract), ``gen_poses`` ``[B, T, K, 2]`` pixels,
``gen_pose_visibility``.
"""

import tensorflow as tf

from video_prediction.layers import pose_rendering
from video_prediction.models.base import BaseVideoPredictionModel


class HierarchicalPoseVideoPredictionModel(BaseVideoPredictionModel):
    """``--model hierarchical_pose`` with ``pose_checkpoint=DIR,image_checkpoint=DIR`` (module docstring)."""

    trainable_model = False
    #: evaluate.py: MPJPE / PCK vs the constant pose; generate.py: skeleton GIFs
    inference_extras = "video_prediction.inference.extras.hierarchical_pose:HierarchicalPoseExtras"

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(
            pose_checkpoint="",  # a pose_lstm run directory
            image_checkpoint="",  # a pose_analogy run directory
            observed_poses="poses",  # or "estimated_poses" (dataset hparam use_estimated_poses=True)
            heatmap_scheme="joints",  # set from the dataset: "joints" or "limbs"
            limbs=[[0, 0, 0, 0]],  # set from the dataset (limbs scheme)
            heatmap_sigma=8.0,  # set from the dataset, pixels of the crop
            heatmap_rounding="none",
        )
        return hparams

    @classmethod
    def hparams_from_dataset(cls, hparams, dataset):
        values = {}
        for key in ("heatmap_scheme", "heatmap_rounding"):
            if hasattr(dataset, key):
                values[key] = getattr(dataset, key)
        if getattr(dataset, "limbs", None):
            values["limbs"] = [list(limb) for limb in dataset.limbs]
        if hasattr(dataset, "hparams") and "heatmap_sigma" in dataset.hparams:
            values["heatmap_sigma"] = float(dataset.hparams.heatmap_sigma)
        return values

    def __init__(self, hparams_dict=None, hparams=None, name=None, **kwargs):
        super().__init__(hparams_dict=hparams_dict, hparams=hparams, name=name, **kwargs)
        from video_prediction.training.building import load_model

        hp = self.hparams
        for key in ("pose_checkpoint", "image_checkpoint"):
            if not getattr(hp, key):
                raise ValueError(f"hierarchical_pose needs {key}=DIR (a pose_lstm / pose_analogy run directory)")
        if hp.observed_poses not in ("poses", "estimated_poses"):
            raise ValueError(f"observed_poses must be 'poses' or 'estimated_poses', got {hp.observed_poses!r}")
        # No layers of its own: mixed_precision (issue 18) is passed to the two trained models it chains.
        overrides = None if self.precision == "float32" else f"mixed_precision={self.precision}"
        self.pose_model, pose_options, _ = load_model(hp.pose_checkpoint, model_hparams=overrides)
        self.image_model, image_options, _ = load_model(hp.image_checkpoint, model_hparams=overrides)
        for key, options, model in (("pose_checkpoint", pose_options, self.pose_model),
                                    ("image_checkpoint", image_options, self.image_model)):
            expected = {"pose_checkpoint": "pose_lstm", "image_checkpoint": "pose_analogy"}[key]
            if options["model"] != expected:
                raise ValueError(f"{key} {getattr(hp, key)!r} holds a {options['model']!r} run, expected {expected!r}")
            if model.context_frames != self.context_frames:
                raise ValueError(f"{key} was trained with context_frames={model.context_frames}, the data gives "
                                 f"{self.context_frames}")

    def render(self, poses, visibility, images, crop_box=None):
        """Heatmaps ``[B, T, H, W, C]`` of ``poses`` at the frames' size (the analogy model's input).

        sigma is in crop pixels: scaled by frame width / crop width (the batch mean) when ``crop_box`` is given.
        """
        hp = self.hparams
        height, width = images.shape[2], images.shape[3]
        sigma = tf.constant(hp.heatmap_sigma, tf.float32)
        if crop_box is not None:
            crop_w = tf.cast(crop_box, tf.float32)[:, 2] - tf.cast(crop_box, tf.float32)[:, 0]
            mean_w = tf.reduce_mean(crop_w)
            sigma = tf.where(mean_w > 0, sigma * width / tf.maximum(mean_w, 1e-6), sigma)
        limbs = [tuple(limb) for limb in hp.limbs] if hp.heatmap_scheme == "limbs" else ()
        return pose_rendering.render_heatmaps(poses, visibility, (height, width), scheme=hp.heatmap_scheme,
                                              limbs=limbs, sigma=sigma, rounding=hp.heatmap_rounding)

    def call(self, batch, training=False):
        hp = self.hparams
        context = self.context_frames
        images = tf.convert_to_tensor(batch["images"], tf.float32)
        observed = dict(batch)
        if hp.observed_poses == "estimated_poses":
            if "estimated_poses" not in batch:
                raise ValueError("observed_poses=estimated_poses needs the dataset hparam use_estimated_poses=True")
            observed["poses"] = batch["estimated_poses"]
            observed["pose_visibility"] = batch.get("estimated_pose_visibility",
                                                    tf.ones_like(batch["estimated_poses"][..., 0]))
        pose_out = self.pose_model(observed, training=False)
        gen_poses = pose_out["gen_poses"]
        if "pose_visibility" in observed:
            seen = tf.cast(observed["pose_visibility"], tf.float32)[:, :context]
        else:
            seen = tf.ones_like(gen_poses[:, :context, :, 0])
        future = tf.ones_like(gen_poses[:, context:, :, 0])
        visibility = tf.concat([seen, future], axis=1)
        maps = self.render(gen_poses, visibility, images, batch.get("crop_box"))
        gen = self.image_model({"images": images, "heatmaps": maps}, training=False)["gen_images"]
        return {"gen_images": gen, "gen_poses": gen_poses, "gen_pose_visibility": visibility}

    def rollout_inputs(self, batch, horizon):
        inputs = super().rollout_inputs(batch, horizon)
        for key in ("poses", "pose_visibility", "estimated_poses", "estimated_pose_visibility"):
            if key in batch:
                value = tf.convert_to_tensor(batch[key])[:, : self.context_frames]
                pad = tf.repeat(tf.zeros_like(value[:, :1]), horizon, axis=1)
                inputs[key] = tf.concat([value, pad], axis=1)
        if "crop_box" in batch:
            inputs["crop_box"] = batch["crop_box"]
        return inputs
