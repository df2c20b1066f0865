"""Pose errors of the hierarchical models' predicted landmarks, next to a constant-pose baseline.

For ``pose_lstm`` and ``hierarchical_pose`` runs: every test clip is observed for the context, the
poses of the next ``horizon`` frames are predicted (``gen_poses``), and MPJPE / PCK@0.2 against the
ground truth (visible joints) are reported per future step, with the same figures for the baseline
that repeats the last observed pose.
"""

import json
import os

import numpy as np
import tensorflow as tf

from video_prediction.metrics import keypoints


def predicted_poses(model, batch, horizon):
    """``[B, horizon, K, 2]`` poses the model predicts after the context."""
    inputs = model.rollout_inputs(batch, horizon)
    outputs = model(inputs, training=False)
    if "gen_poses" not in outputs:
        raise ValueError(f"model {model.name!r} predicts no poses (use a pose_lstm or hierarchical_pose model)")
    context = model.context_frames
    return outputs["gen_poses"][:, context : context + horizon].numpy()


def evaluate_poses(model, dataset, batch_size=8, num_samples=None, horizon=None):
    """Per-step mean MPJPE and PCK of the model and of the constant (last observed) pose."""
    context = model.context_frames
    horizon = int(horizon or dataset.hparams.sequence_length - context)
    if context + horizon > dataset.hparams.sequence_length:
        raise ValueError(f"horizon {horizon} needs {context + horizon} frames per clip; the dataset gives "
                         f"{dataset.hparams.sequence_length} (set --dataset_hparams sequence_length=...)")
    sums = {name: [] for name in ("model_mpjpe", "model_pck", "constant_mpjpe", "constant_pck")}
    seen = 0
    for batch in dataset.make_dataset(batch_size):
        if num_samples is not None and seen >= num_samples:
            break
        batch = {k: v for k, v in batch.items()}
        target = batch["poses"][:, context : context + horizon].numpy()
        vis = batch["pose_visibility"][:, context : context + horizon].numpy()
        pred = predicted_poses(model, batch, horizon)
        constant = np.repeat(batch["poses"][:, context - 1 : context].numpy(), horizon, axis=1)
        for name, guess in (("model", pred), ("constant", constant)):
            sums[f"{name}_mpjpe"].append(keypoints.mpjpe(guess, target, vis))
            sums[f"{name}_pck"].append(keypoints.pck(guess, target, vis))
        seen += target.shape[0]
    results = {}
    for name, values in sums.items():
        per_step = np.nanmean(np.concatenate(values, 0), axis=0)
        results[name] = {"mean": float(np.mean(per_step)), "per_step": [float(v) for v in per_step]}
    results["num_videos"] = seen
    return results


def write_results(output_dir, results):
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "pose_metrics.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    return path
