"""Evaluation over many stochastic samples: best / average / worst per video (specs/savp.md §4.3).

For every video, ``num_stochastic_samples`` futures are drawn; each per-frame
metric is computed on the predicted frames only (the T-C frames after the
context).  Per metric and video the *best* and *worst* samples are the ones
with the best and worst time-averaged value (as in the original), and
*average* is the mean over all samples.  Deterministic models have one sample,
so best = average = worst.
"""

import json
import os

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from video_prediction.metrics import get_metric
from video_prediction.metrics.aggregation import MetricAccumulator

SUBSETS = ("best", "avg", "worst")


def parse_metric_names(text):
    names = [n.strip() for n in text.split(",") if n.strip()] if isinstance(text, str) else list(text)
    if not names:
        raise ValueError("no metrics requested")
    return names


def evaluate(model, dataset, metric_names=("psnr", "ssim"), num_stochastic_samples=100, batch_size=8,
             num_videos=None, samples_per_pass=None, metric_kwargs=None):
    """Run the model on ``dataset`` and return a filled :class:`MetricAccumulator`.

    ``samples_per_pass`` bounds how many samples are generated at once (memory);
    by default all of them for small batches.
    """
    metrics = {name: get_metric(name, **(metric_kwargs or {}).get(name, {})) for name in metric_names}
    num_samples = num_stochastic_samples if model.stochastic else 1
    samples_per_pass = samples_per_pass or max(1, min(num_samples, 256 // max(batch_size, 1)))
    context = model.context_frames
    horizon = dataset.sequence_length - context
    accumulator = MetricAccumulator()
    total = dataset.num_examples_per_epoch()
    if num_videos:
        total = min(total, num_videos)
    seen = 0
    with tqdm(total=total, desc="evaluate", unit="video") as progress:
        for batch in dataset.make_dataset(batch_size, drop_remainder=False):
            keep = min(int(batch["images"].shape[0]), total - seen)
            if keep <= 0:
                break
            batch = {k: v[:keep] for k, v in batch.items()}
            targets = batch["images"][:, context : context + horizon]
            values = {name: [] for name in metrics}
            for start in range(0, num_samples, samples_per_pass):
                count = min(samples_per_pass, num_samples - start)
                samples = model.generate(batch, num_samples=count, horizon=horizon)  # [B, S, T, H, W, C]
                for name, metric in metrics.items():
                    values[name].append(_per_sample_metric(metric, targets, samples))
            for name, metric in metrics.items():
                accumulator.add(name, np.concatenate(values[name], axis=1), metric.higher_is_better)
            seen += keep
            progress.update(keep)
            if seen >= total:
                break
    return accumulator


def _per_sample_metric(metric, targets, samples):
    """Metric values ``[B, S, T]`` of every sample against the same targets."""
    shape = tf.shape(samples)
    num_samples = samples.shape[1]
    flat_samples = tf.reshape(samples, tf.concat([[-1], shape[2:]], axis=0))
    flat_targets = tf.repeat(targets, num_samples, axis=0)
    values = np.asarray(metric(flat_targets, flat_samples))
    return values.reshape(int(shape[0]), num_samples, -1)


def write_results(accumulator, output_dir, context_frames, training_length=None, extra=None):
    """Write ``metrics.json``, ``metrics.csv``, the original's CSV tree and one plot per metric."""
    from video_prediction import visualization

    os.makedirs(output_dir, exist_ok=True)
    results = accumulator.results()
    payload = dict(results=accumulator.to_json(), context_frames=context_frames, training_length=training_length)
    payload.update(extra or {})
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump(payload, f, indent=2)
    accumulator.write_csv(os.path.join(output_dir, "metrics.csv"))
    # The original's per-metric tree (prediction_eval_<metric>_<max|avg|min>/metrics/<metric>.csv) for its
    # plotting scripts.
    accumulator.write_original_csvs(output_dir)
    for name, by_subset in results.items():
        curves = {subset: (by_subset[subset]["mean"], by_subset[subset]["std"]) for subset in SUBSETS}
        visualization.plot_metric_curves(os.path.join(output_dir, f"{name}.png"), curves, name, context_frames,
                                         training_length=training_length)
    return results


def summary_rows(results):
    """``[(metric, best, avg, worst), ...]`` of time-averaged means."""
    rows = []
    for name, by_subset in results.items():
        rows.append((name, *(float(np.mean(by_subset[s]["mean"])) for s in SUBSETS)))
    return rows


def format_table(named_results):
    """A plain-text table of time-averaged best/avg/worst per model and metric.

    ``named_results`` is ``{label: results}`` as returned by :func:`write_results`
    or loaded from ``metrics.json`` files by :func:`load_results`.
    """
    lines = [f"{'model':<24} {'metric':<8} {'best':>9} {'average':>9} {'worst':>9}"]
    lines.append("-" * len(lines[0]))
    for label, results in named_results.items():
        for name, best, avg, worst in summary_rows(results):
            lines.append(f"{label:<24} {name:<8} {best:>9.4f} {avg:>9.4f} {worst:>9.4f}")
    return "\n".join(lines)


def load_results(path):
    """Per-metric results from a ``metrics.json`` (or the directory holding it)."""
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.json")
    if not os.path.exists(path):
        raise ValueError(f"no evaluation results at {path!r}")
    with open(path) as f:
        payload = json.load(f)
    return MetricAccumulator.results_from_json(payload["results"])
