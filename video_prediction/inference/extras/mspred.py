"""MSPred's inference extras: per-level GIFs and arrays (the original's 04_generate_figs, in our forms)
and per-level metrics (``metrics/mspred_metrics.py``), written into ``<results>/levels``.

For every video and sample: ``level0_<v>_<s>.gif`` (context | ground truth | prediction, the
foundation's side-by-side layout), and for levels 1 and 2 ``level<h>_<v>_<s>.gif`` with one
GIF frame per prediction: the true frame at the target time beside the predicted and the
true map (heatmaps summed over channels in a colour map, segmentations as a class palette).
With ``save_arrays`` ``levels_<v>.npz`` holds every level's predictions ``[S, N, H, W, K]``,
the targets and the target frame numbers.
"""

import os

import numpy as np
import tensorflow as tf

from video_prediction.inference import visualization
from video_prediction.inference.extras import InferenceExtras
from video_prediction.inference.video_batches import first_videos

_PALETTE = (np.array([[(i * 67) % 256, (i * 151) % 256, (i * 211) % 256] for i in range(64)]) / 255.0)
_PALETTE[0] = 0.0  # background black


def colorize(maps, segmentation=False):
    """``[N, H, W, K]`` maps -> RGB ``[N, H, W, 3]`` in [0, 1]."""
    maps = np.asarray(maps, np.float32)
    if segmentation:
        return _PALETTE[np.argmax(maps, -1) % len(_PALETTE)]
    intensity = np.clip(maps.sum(-1), 0.0, 1.0)
    # a simple hot colour map: black -> red -> yellow -> white
    return np.stack([np.clip(3 * intensity, 0, 1), np.clip(3 * intensity - 1, 0, 1),
                     np.clip(3 * intensity - 2, 0, 1)], axis=-1)


def _rgb(frames):
    frames = np.asarray(frames, np.float32)
    return np.repeat(frames, 3, axis=-1) if frames.shape[-1] == 1 else frames


def level_panels(frames, preds, targets, segmentation=False):
    """GIF frames ``[N, H, 3W(+gaps), 3]``: true frame | predicted map | true map."""
    gap = np.ones(frames.shape[:2] + (1, 3), np.float32)
    parts = [_rgb(frames), gap, colorize(preds, segmentation)]
    if targets is not None:
        parts += [gap, colorize(targets, segmentation)]
    return np.concatenate(parts, axis=2)


def write_level_outputs(model, batch, results_dir, first_index=0, num_samples=1, fps=4, save_arrays=False,
                        segmentation_levels=()):
    """Run ``model`` ``num_samples`` times on ``batch`` and write every level's GIFs (and arrays)."""
    os.makedirs(results_dir, exist_ok=True)
    images = np.asarray(batch["images"])
    length, context = images.shape[1], model.context_frames
    frames_of_level = model.level_target_frames(length)
    outputs = [model(batch, training=False) for _ in range(num_samples)]
    keys = ["gen_level0", "gen_heatmaps_level1", "gen_heatmaps_level2"]
    for i in range(images.shape[0]):
        arrays = {}
        for level, key in enumerate(keys):
            if key not in outputs[0]:
                continue
            preds = np.stack([o[key].numpy()[i] for o in outputs])  # [S, N, H, W, K]
            target_frames = [f for f in frames_of_level[level] if f < length]
            arrays[f"level{level}"] = preds
            arrays[f"target_frames_level{level}"] = np.asarray(frames_of_level[level])
            source = images if level == 0 else batch.get(f"heatmaps_level{level}")
            targets = None if source is None else np.asarray(source)[i, target_frames]
            if targets is not None:
                arrays[f"targets_level{level}"] = targets
            for s in range(num_samples):
                name = os.path.join(results_dir, f"level{level}_{first_index + i:05d}_{s:02d}.gif")
                if level == 0:
                    gif = visualization.side_by_side(images[i, :context], targets, preds[s])
                else:
                    count = min(len(target_frames), preds.shape[1])
                    gif = level_panels(images[i, target_frames[:count]], preds[s, :count],
                                       None if targets is None else targets[:count],
                                       segmentation=level in segmentation_levels)
                visualization.save_gif(name, gif, fps=fps)
        if save_arrays:
            np.savez_compressed(os.path.join(results_dir, f"levels_{first_index + i:05d}.npz"), **arrays)
    return images.shape[0]


def write_level_outputs_for_dataset(model, dataset, results_dir, num_videos=8, num_samples=1, batch_size=8,
                                    fps=4, save_arrays=False, segmentation_levels=()):
    written = 0
    for batch in first_videos(dataset, batch_size, num_videos):
        batch = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
        written += write_level_outputs(model, batch, results_dir, written, num_samples, fps, save_arrays,
                                       segmentation_levels)
    return written


def write_video_level_outputs(model, video, results_dir, num_samples=1, horizon=None, fps=4, save_arrays=False):
    """Per-level GIFs for one video ``[T, H, W, C]``: its context, zeros after (no targets shown)."""
    context = model.context_frames
    length = context + (horizon or (model.sequence_length - context))
    images = np.zeros((1, length) + video.shape[1:], np.float32)
    images[0, :context] = video[:context]
    return write_level_outputs(model, {"images": tf.constant(images)}, results_dir, 0, num_samples, fps,
                               save_arrays)


class MSPredInferenceExtras(InferenceExtras):
    """Per-level GIFs (and arrays) from ``generate.py``, per-level metrics from ``evaluate.py``."""

    subdirectory = "levels"

    def write_dataset_outputs(self, dataset, results_dir, settings):
        output_dir = os.path.join(results_dir, self.subdirectory)
        write_level_outputs_for_dataset(
            self.model, dataset, output_dir, num_videos=settings.num_videos or 8,
            num_samples=settings.num_stochastic_samples, batch_size=settings.batch_size, fps=settings.fps,
            save_arrays=settings.save_arrays, segmentation_levels=getattr(dataset, "segmentation_levels", ()))
        return f"wrote per-level GIFs to {output_dir}"

    def write_video_outputs(self, video, results_dir, settings):
        output_dir = os.path.join(results_dir, self.subdirectory)
        write_video_level_outputs(self.model, video, output_dir, settings.num_stochastic_samples, settings.horizon,
                                  settings.fps, settings.save_arrays)
        return f"wrote per-level GIFs to {output_dir}"

    def evaluate(self, dataset, output_dir, settings):
        from video_prediction.metrics import mspred_metrics

        normalize = settings.lpips_normalize_inputs
        level_results = mspred_metrics.evaluate_levels(
            self.model, dataset, getattr(dataset, "level_structure", "blobs"),
            num_stochastic_samples=settings.num_stochastic_samples, batch_size=settings.batch_size,
            num_videos=settings.num_videos,
            lpips_normalize_inputs=mspred_metrics.ORIGINAL_LPIPS_NORMALIZE_INPUTS if normalize is None else normalize)
        output_dir = os.path.join(output_dir, self.subdirectory)
        mspred_metrics.write_level_results(level_results, output_dir,
                                           self.model.level_target_frames(dataset.sequence_length))
        return f"wrote per-level metrics to {output_dir}"
