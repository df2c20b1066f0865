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

from video_prediction.inference.extras import extras_for
from video_prediction.inference.video_batches import first_videos
from video_prediction.metrics import get_metric
from video_prediction.metrics.aggregation import MetricAccumulator, best_avg_worst

SUBSETS = ("best", "avg", "worst")


SET_METRICS = ("fvd",)  # metrics of whole sets of videos rather than of frames


def parse_metric_names(text):
    names = [n.strip() for n in text.split(",") if n.strip()] if isinstance(text, str) else list(text)
    if not names:
        raise ValueError("no metrics requested")
    return names


def evaluate(model, dataset, metric_names=("psnr", "ssim"), num_stochastic_samples=100, batch_size=8,
             num_videos=None, samples_per_pass=None, metric_kwargs=None, fvd=None):
    """Run the model on ``dataset`` and return a filled :class:`MetricAccumulator`.

    ``metric_names`` are per-frame metrics of the registry (``fvd`` is skipped
    here: pass a :class:`~video_prediction.metrics.fvd.SampleSelectionFVD` as
    ``fvd`` instead and read its ``results()`` afterwards; its selection metric
    must be one of ``metric_names``).  ``samples_per_pass`` bounds how many
    samples are generated at once (memory); by default all of them for small
    batches.
    """
    frame_metric_names = [name for name in metric_names if name not in SET_METRICS]
    metrics = {name: get_metric(name, **(metric_kwargs or {}).get(name, {})) for name in frame_metric_names}
    if fvd is not None and fvd.selection_metric and fvd.selection_metric not in metrics:
        raise ValueError(f"FVD sample selection by {fvd.selection_metric!r} needs that metric among "
                         f"{sorted(metrics)}")
    num_samples = num_stochastic_samples if model.stochastic else 1
    samples_per_pass = samples_per_pass or max(1, min(num_samples, 256 // max(batch_size, 1)))
    context = model.context_frames
    horizon = dataset.sequence_length - context
    accumulator = MetricAccumulator()
    for batch in first_videos(dataset, batch_size, num_videos, desc="evaluate"):
        targets = batch["images"][:, context : context + horizon]
        values = {name: [] for name in metrics}
        predictions = []
        for start in range(0, num_samples, samples_per_pass):
            count = min(samples_per_pass, num_samples - start)
            samples = model.generate(batch, num_samples=count, horizon=horizon)  # [B, S, T, H, W, C]
            for name, metric in metrics.items():
                values[name].append(_per_sample_metric(metric, targets, samples))
            if fvd is not None:
                predictions.append(samples)
        values = {name: np.concatenate(v, axis=1) for name, v in values.items()}
        for name, metric in metrics.items():
            accumulator.add(name, values[name], metric.higher_is_better)
        if fvd is not None:
            _update_fvd(fvd, batch["images"][:, : context + horizon], tf.concat(predictions, axis=1), values,
                        metrics)
    return accumulator


def evaluate_family_extras(model, dataset, output_dir, settings):
    """The family's own metrics (:mod:`video_prediction.inference.extras`); a message saying what was
    written, or ``None`` when the family has none.  ``settings`` is an
    :class:`~video_prediction.inference.extras.InferenceSettings`."""
    extras = extras_for(model)
    return None if extras is None else extras.evaluate(dataset, output_dir, settings)


def _update_fvd(fvd, real_videos, predictions, values, metrics):
    """Add whole clips (context + predicted frames) of one batch to the FVD statistics."""
    context_frames = real_videos[:, None, : real_videos.shape[1] - predictions.shape[2]]
    context_frames = tf.repeat(context_frames, predictions.shape[1], axis=1)
    fake_videos = tf.concat([context_frames, predictions], axis=2)
    best = worst = None
    if fvd.selection_metric:
        name = fvd.selection_metric
        chosen = best_avg_worst(values[name], metrics[name].higher_is_better)
        best, worst = chosen.best_index, chosen.worst_index
    fvd.update(real_videos, fake_videos, best, worst)


def _per_sample_metric(metric, targets, samples):
    """Metric values ``[B, S, T]`` of every sample against the same targets."""
    shape = tf.shape(samples)
    num_samples = samples.shape[1]
    flat_samples = tf.reshape(samples, tf.concat([[-1], shape[2:]], axis=0))
    flat_targets = tf.repeat(targets, num_samples, axis=0)
    values = np.asarray(metric(flat_targets, flat_samples))
    return values.reshape(int(shape[0]), num_samples, -1)


def write_results(accumulator, output_dir, context_frames, training_length=None, extra=None, set_metrics=None):
    """Write ``metrics.json``, ``metrics.csv``, the original's CSV tree and one plot per metric.

    ``set_metrics`` (e.g. ``{"fvd": SampleSelectionFVD.results()}``) go into
    ``metrics.json`` under ``"set_metrics"``.
    """
    from video_prediction.inference import visualization

    os.makedirs(output_dir, exist_ok=True)
    results = accumulator.results()
    payload = dict(results=accumulator.to_json(), context_frames=context_frames, training_length=training_length)
    payload.update(extra or {})
    if set_metrics:
        payload["set_metrics"] = set_metrics
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


def format_comparison_table(named_results, subject=None):
    """One row per model, one column per metric: the average over test videos, stochastic samples and
    predicted frames, ``*`` on the best value of each column (by the metric's direction).

    With ``subject`` (a label), a last line says whether that model beats every other row on every
    metric, or names the rows it does not beat.
    """
    from video_prediction.metrics.aggregation import registered_higher_is_better

    metric_names = list(dict.fromkeys(name for results in named_results.values() for name in results))
    averages = {label: {name: float(np.mean(results[name]["avg"]["mean"])) for name in results}
                for label, results in named_results.items()}
    higher = {name: registered_higher_is_better(name) for name in metric_names}
    best = {name: (max if higher[name] else min)(a[name] for a in averages.values() if name in a)
            for name in metric_names}
    width = max([len("model")] + [len(label) for label in named_results])
    header = f"{'model':<{width}}" + "".join(
        f" {name.upper() + (' (higher is better)' if higher[name] else ' (lower is better)'):>24}"
        for name in metric_names)
    lines = [header, "-" * len(header)]
    for label, values in averages.items():
        cells = "".join(
            f" {'':>24}" if name not in values else
            f" {values[name]:>22.4f}{' *' if values[name] == best[name] else '  '}" for name in metric_names)
        lines.append(f"{label:<{width}}{cells}")
    if subject is not None:
        if subject not in averages:
            raise ValueError(f"no results labelled {subject!r}; labels: {', '.join(averages)}")
        beaten_by = [f"{other} on {name}" for other, values in averages.items() if other != subject
                     for name in metric_names if name in values and name in averages[subject]
                     and not (values[name] < averages[subject][name] if higher[name]
                              else values[name] > averages[subject][name])]
        verdict = ("beats every other row on " + " and ".join(metric_names) if not beaten_by
                   else "does NOT beat " + ", ".join(beaten_by))
        lines.append(f"{subject} {verdict}")
    return "\n".join(lines)


def format_set_table(named_set_metrics):
    """A plain-text table of set-level metrics (FVD per sample selection) per model.

    ``named_set_metrics`` is ``{label: {"fvd": {selection: {"fvd", "num_real", "num_fake"}}}}``.
    """
    lines = [f"{'model':<24} {'metric':<8} {'selection':<18} {'value':>10} {'videos':>7} {'predicted':>9}"]
    lines.append("-" * len(lines[0]))
    for label, set_metrics in named_set_metrics.items():
        for metric, by_selection in set_metrics.items():
            for selection, entry in by_selection.items():
                lines.append(f"{label:<24} {metric:<8} {selection:<18} {entry[metric]:>10.3f} "
                             f"{entry['num_real']:>7d} {entry['num_fake']:>9d}")
    return "\n".join(lines)


def _load_payload(path):
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.json")
    if not os.path.exists(path):
        raise ValueError(f"no evaluation results at {path!r}")
    with open(path) as f:
        return json.load(f)


def load_results(path):
    """Per-metric results from a ``metrics.json`` (or the directory holding it)."""
    return MetricAccumulator.results_from_json(_load_payload(path)["results"])


def load_set_metrics(path):
    """The set-level metrics (``{}`` if none) from a ``metrics.json`` (or the directory holding it)."""
    return _load_payload(path).get("set_metrics", {})
