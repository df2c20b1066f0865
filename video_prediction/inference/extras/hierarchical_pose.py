"""``generate.py`` / ``evaluate.py`` extras of the hierarchical pose models (``pose_lstm``, ``hierarchical_pose``).

* evaluate: MPJPE and PCK@0.2 (:mod:`video_prediction.metrics.keypoints`) of the predicted landmarks
  against the ground-truth poses (visible joints), per future step, next to the constant-pose baseline
  that repeats the last observed pose -> ``<output_dir>/poses/pose_metrics.json``;
* generate: GIFs of the first videos with the predicted skeletons drawn over the generated frames and the
  true skeletons over the ground truth, side by side -> ``<results_dir>/poses/<index>.gif``.
"""

import json
import os

import numpy as np

from video_prediction.inference import visualization
from video_prediction.inference.extras import InferenceExtras
from video_prediction.inference.video_batches import first_videos
from video_prediction.layers import pose_rendering
from video_prediction.metrics import keypoints


def predict(model, batch, horizon):
    """(frames ``[B, horizon, H, W, C]``, poses ``[B, horizon, K, 2]``) the model predicts after the context."""
    inputs = model.rollout_inputs(batch, horizon)
    outputs = model(inputs, training=False)
    if "gen_poses" not in outputs:
        raise ValueError(f"model {model.name!r} predicts no poses")
    context = model.context_frames
    frames = outputs["gen_images"][:, context - 1 : context - 1 + horizon].numpy()
    return frames, outputs["gen_poses"][:, context : context + horizon].numpy()


def _horizon(model, dataset, horizon):
    context = model.context_frames
    horizon = int(horizon or dataset.hparams.sequence_length - context)
    if context + horizon > dataset.hparams.sequence_length:
        raise ValueError(f"a horizon of {horizon} needs {context + horizon} frames per clip; the dataset gives "
                         f"{dataset.hparams.sequence_length} (set --dataset_hparams sequence_length=...)")
    return horizon


def evaluate_poses(model, dataset, batch_size=8, num_videos=None, horizon=None):
    """Per-step mean MPJPE / PCK of the model and of the constant (last observed) pose."""
    context = model.context_frames
    horizon = _horizon(model, dataset, horizon)
    values = {name: [] for name in ("model_mpjpe", "model_pck", "constant_mpjpe", "constant_pck")}
    seen = 0
    for batch in first_videos(dataset, batch_size, num_videos, desc="pose metrics"):
        target = batch["poses"][:, context : context + horizon].numpy()
        vis = batch["pose_visibility"][:, context : context + horizon].numpy()
        _, pred = predict(model, batch, horizon)
        constant = np.repeat(batch["poses"][:, context - 1 : context].numpy(), horizon, axis=1)
        for name, guess in (("model", pred), ("constant", constant)):
            values[f"{name}_mpjpe"].append(keypoints.mpjpe(guess, target, vis))
            values[f"{name}_pck"].append(keypoints.pck(guess, target, vis))
        seen += target.shape[0]
    results = {"num_videos": seen, "horizon": horizon, "units": "pixels of the batch frames; PCK@0.2 of the box"}
    for name, parts in values.items():
        per_step = np.nanmean(np.concatenate(parts, 0), axis=0)
        results[name] = {"mean": float(np.mean(per_step)), "per_step": [float(v) for v in per_step]}
    return results


def write_skeleton_gifs(model, dataset, results_dir, num_videos=8, batch_size=8, horizon=None, fps=4):
    """Context | ground truth + true skeleton | prediction + predicted skeleton, one GIF per video."""
    context = model.context_frames
    horizon = _horizon(model, dataset, horizon)
    limbs = tuple(getattr(dataset, "limbs", ())) or ()
    index = 0
    for batch in first_videos(dataset, batch_size, num_videos):
        frames, poses = predict(model, batch, horizon)
        images = batch["images"].numpy()
        truth = batch["poses"].numpy()
        vis = batch["pose_visibility"].numpy()
        for i in range(images.shape[0]):
            ctx = pose_rendering.draw_skeletons(images[i, :context], truth[i, :context], limbs, vis[i, :context],
                                                color=pose_rendering.TRUE_POSE_COLOR)
            gt = pose_rendering.draw_skeletons(images[i, context : context + horizon],
                                               truth[i, context : context + horizon], limbs,
                                               vis[i, context : context + horizon], color=pose_rendering.TRUE_POSE_COLOR)
            pred = pose_rendering.draw_skeletons(frames[i], poses[i], limbs)
            visualization.save_gif(os.path.join(results_dir, f"{index:05d}.gif"),
                                   visualization.side_by_side(ctx, gt, pred), fps=fps)
            index += 1
    return index


class HierarchicalPoseExtras(InferenceExtras):
    """Pose metrics vs the constant-pose baseline, and skeleton GIFs (module docstring)."""

    subdirectory = "poses"

    def write_dataset_outputs(self, dataset, results_dir, settings):
        output_dir = os.path.join(results_dir, self.subdirectory)
        count = write_skeleton_gifs(self.model, dataset, output_dir, settings.num_videos or 8, settings.batch_size,
                                    settings.horizon, settings.fps)
        return f"wrote {count} skeleton GIFs to {output_dir}"

    def evaluate(self, dataset, output_dir, settings):
        results = evaluate_poses(self.model, dataset, settings.batch_size, settings.num_videos, settings.horizon)
        directory = os.path.join(output_dir, self.subdirectory)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "pose_metrics.json")
        with open(path, "w") as f:
            json.dump(results, f, indent=2)
        return (f"pose MPJPE {results['model_mpjpe']['mean']:.3f} (constant pose {results['constant_mpjpe']['mean']:.3f}), "
                f"PCK@0.2 {results['model_pck']['mean']:.3f} ({results['constant_pck']['mean']:.3f}) -> {path}")
