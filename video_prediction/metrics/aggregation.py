"""Best / average / worst aggregation over stochastic samples (specs/savp.md §4.3).

For one metric, per-frame values ``[B, S, T]`` (B videos, S stochastic
samples, T predicted frames) are reduced per video to three curves ``[B, T]``:

* ``best``  — the full curve of the sample with the best *time-averaged*
  value (max if higher is better, min otherwise), as the original's "max"
  subtask for psnr/ssim (and "min" for mse);
* ``avg``   — the per-timestep mean over all samples;
* ``worst`` — the curve of the sample with the worst time-averaged value.

Ties go to the lowest sample index.  One sample (deterministic models) gives
best = avg = worst.

:class:`MetricAccumulator` keeps these per-video curves over many batches and
reports per-timestep means and standard deviations over videos.

CSV layout (``write_csv``; comma-separated, one header line)::

    metric,subset,statistic,video,sample,0,1,...,T-1,mean

* ``subset``: ``best`` | ``avg`` | ``worst``.
* ``statistic``: ``value`` for one row per video (``video`` = index in the
  order the videos were added, ``sample`` = chosen sample index, -1 for
  ``avg``); ``mean`` and ``std`` for the rows over all videos (``video`` and
  ``sample`` = -1).
* ``0..T-1``: predicted-frame index (frame ``context + 1 + t`` of the video).
  Metrics with fewer timesteps than the longest leave the extra cells empty.
* ``mean``: the row's time average; for the ``std`` row, the standard
  deviation over videos of the per-video time averages.

It loads with ``pandas.read_csv(path)``; e.g.
``df[(df.metric == "psnr") & (df.subset == "best") & (df.statistic == "value")]``.

JSON layout (``to_json``; a plain dict ready for ``json.dump``)::

    {"format": "video_prediction.metric_accumulator", "version": 1,
     "metrics": {name: {"higher_is_better": bool, "num_videos": N, "num_samples": S, "num_timesteps": T,
                        "subsets": {"best"|"avg"|"worst": {
                            "mean": [T], "std": [T], "sem": [T],
                            "time_mean": float, "time_mean_std": float,
                            "per_video": [[T] x N], "sample_index": [N]}}}}}

``MetricAccumulator.from_json`` rebuilds the accumulator; ``results_from_json``
gives what ``results()`` returns.  ``write_original_csvs`` additionally writes
the original evaluate.py tree (``prediction_eval_<metric>_<max|avg|min>/
metrics/<metric>.csv``, tab-separated) for its plot/combine scripts.
"""

import collections
import csv
import importlib
import os

import numpy as np

SUBSETS = ("best", "avg", "worst")
JSON_FORMAT = "video_prediction.metric_accumulator"
JSON_VERSION = 1

BestAvgWorst = collections.namedtuple("BestAvgWorst", ["best", "avg", "worst", "best_index", "worst_index"])
BestAvgWorst.__doc__ = "Curves ``[B, T]`` and chosen sample indices ``[B]`` of one metric."


def best_avg_worst(values, higher_is_better):
    """Reduce per-frame values ``[B, S, T]`` to best/avg/worst curves ``[B, T]`` per video.

    Best and worst are whole sample curves chosen by the time average per
    video; ``avg`` is the mean over samples at each timestep.  Returns a
    :class:`BestAvgWorst` of float64 arrays and int64 indices.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3:
        raise ValueError(f"values must have shape [B, S, T] (videos, samples, timesteps), got shape {values.shape}")
    if values.shape[1] == 0 or values.shape[2] == 0:
        raise ValueError(f"values need at least one sample and one timestep, got shape {values.shape}")
    time_means = values.mean(axis=2)  # [B, S]
    if higher_is_better:
        best_index, worst_index = np.argmax(time_means, axis=1), np.argmin(time_means, axis=1)
    else:
        best_index, worst_index = np.argmin(time_means, axis=1), np.argmax(time_means, axis=1)
    videos = np.arange(values.shape[0])
    return BestAvgWorst(best=values[videos, best_index], avg=values.mean(axis=1), worst=values[videos, worst_index],
                        best_index=best_index.astype(np.int64), worst_index=worst_index.astype(np.int64))


def registered_higher_is_better(metric_name):
    """``higher_is_better`` of a registered per-frame metric class, without building it."""
    from video_prediction.metrics import _PER_FRAME_METRICS

    if metric_name not in _PER_FRAME_METRICS:
        raise ValueError(f"metric {metric_name!r} is not registered; pass higher_is_better explicitly")
    module_name, attr = _PER_FRAME_METRICS[metric_name].split(":")
    value = getattr(getattr(importlib.import_module(module_name), attr), "higher_is_better", None)
    if not isinstance(value, bool):
        raise ValueError(f"metric {metric_name!r} has no class-level higher_is_better; pass it explicitly")
    return value


def _stats(per_video):
    """Summary statistics over videos of per-video curves ``[N, T]``."""
    num_videos = per_video.shape[0]
    time_means = per_video.mean(axis=1)
    std = per_video.std(axis=0)  # population std over videos, as the original's printout
    return dict(mean=per_video.mean(axis=0), std=std, sem=std / np.sqrt(num_videos),
                time_mean=float(time_means.mean()), time_mean_std=float(time_means.std()))


class MetricAccumulator:
    """Streams best/avg/worst per-video curves of several metrics over many batches.

    ``add(name, values [B, S, T], higher_is_better=None)`` once per batch and
    metric; ``higher_is_better`` defaults to the registered metric's.
    ``results()`` gives, per metric and subset, ``mean``/``std``/``sem`` ``[T]``
    over videos, ``time_mean``/``time_mean_std`` scalars, ``per_video``
    ``[N, T]`` and ``sample_index`` ``[N]`` (-1 for ``avg``).
    """

    def __init__(self):
        self.higher_is_better = {}
        self._num_samples = {}
        self._curves = {}  # name -> subset -> list of [B, T] arrays
        self._indices = {}  # name -> subset -> list of [B] arrays

    @property
    def metric_names(self):
        return list(self._curves)

    def num_videos(self, metric_name):
        return int(sum(len(c) for c in self._curves[metric_name]["best"]))

    def add(self, metric_name, values, higher_is_better=None):
        """Add per-frame values ``[B, S, T]`` of one metric for B new videos; returns the :class:`BestAvgWorst`."""
        if higher_is_better is None:
            higher_is_better = self.higher_is_better.get(metric_name)
            if higher_is_better is None:
                higher_is_better = registered_higher_is_better(metric_name)
        higher_is_better = bool(higher_is_better)
        if self.higher_is_better.get(metric_name, higher_is_better) != higher_is_better:
            raise ValueError(f"metric {metric_name!r} was added with higher_is_better="
                             f"{self.higher_is_better[metric_name]}, now {higher_is_better}")
        reduced = best_avg_worst(values, higher_is_better)
        if metric_name in self._curves:
            expected_t = self._curves[metric_name]["best"][0].shape[1]
            if reduced.best.shape[1] != expected_t:
                raise ValueError(f"metric {metric_name!r}: got {reduced.best.shape[1]} timesteps, "
                                 f"earlier batches had {expected_t}")
        self.higher_is_better[metric_name] = higher_is_better
        # Samples may differ between batches only in count; remember the largest for the record.
        self._num_samples[metric_name] = max(self._num_samples.get(metric_name, 0), int(np.shape(values)[1]))
        curves = self._curves.setdefault(metric_name, {s: [] for s in SUBSETS})
        indices = self._indices.setdefault(metric_name, {s: [] for s in SUBSETS})
        no_index = np.full(reduced.best.shape[0], -1, dtype=np.int64)
        for subset, curve, index in (("best", reduced.best, reduced.best_index), ("avg", reduced.avg, no_index),
                                     ("worst", reduced.worst, reduced.worst_index)):
            curves[subset].append(curve)
            indices[subset].append(index)
        return reduced

    def results(self):
        """``{metric: {subset: stats}}``; see the class docstring for the stats keys."""
        results = {}
        for name, curves in self._curves.items():
            results[name] = {}
            for subset in SUBSETS:
                per_video = np.concatenate(curves[subset], axis=0)
                stats = _stats(per_video)
                stats.update(per_video=per_video, sample_index=np.concatenate(self._indices[name][subset]))
                results[name][subset] = stats
        return results

    def to_json(self):
        """A JSON-serialisable dict (layout in the module docstring)."""
        metrics = {}
        for name, by_subset in self.results().items():
            subsets = {}
            for subset, stats in by_subset.items():
                subsets[subset] = {key: (value.tolist() if isinstance(value, np.ndarray) else value)
                                   for key, value in stats.items()}
            metrics[name] = dict(higher_is_better=self.higher_is_better[name], num_videos=self.num_videos(name),
                                 num_samples=self._num_samples[name],
                                 num_timesteps=int(by_subset["best"]["per_video"].shape[1]), subsets=subsets)
        return dict(format=JSON_FORMAT, version=JSON_VERSION, metrics=metrics)

    @classmethod
    def from_json(cls, payload):
        """Rebuild an accumulator from :meth:`to_json` output."""
        if payload.get("format") != JSON_FORMAT or payload.get("version") != JSON_VERSION:
            raise ValueError(f"not a metric accumulator JSON (format {payload.get('format')!r}, "
                             f"version {payload.get('version')!r}); expected {JSON_FORMAT!r} version {JSON_VERSION}")
        accumulator = cls()
        for name, record in payload["metrics"].items():
            accumulator.higher_is_better[name] = bool(record["higher_is_better"])
            accumulator._num_samples[name] = int(record["num_samples"])
            num_timesteps = int(record["num_timesteps"])
            accumulator._curves[name] = {}
            accumulator._indices[name] = {}
            for subset in SUBSETS:
                stored = record["subsets"][subset]
                per_video = np.asarray(stored["per_video"], dtype=np.float64).reshape(-1, num_timesteps)
                accumulator._curves[name][subset] = [per_video]
                accumulator._indices[name][subset] = [np.asarray(stored["sample_index"], dtype=np.int64)]
        return accumulator

    @classmethod
    def results_from_json(cls, payload):
        """What :meth:`results` returns, from :meth:`to_json` output."""
        return cls.from_json(payload).results()

    def write_csv(self, path):
        """Write every metric into one CSV file (layout in the module docstring)."""
        results = self.results()
        max_t = max((r["best"]["per_video"].shape[1] for r in results.values()), default=0)
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)

        def cells(curve):
            return [repr(float(v)) for v in curve] + [""] * (max_t - len(curve))

        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["metric", "subset", "statistic", "video", "sample", *map(str, range(max_t)), "mean"])
            for name, by_subset in results.items():
                for subset in SUBSETS:
                    stats = by_subset[subset]
                    writer.writerow([name, subset, "mean", -1, -1, *cells(stats["mean"]), repr(stats["time_mean"])])
                    writer.writerow([name, subset, "std", -1, -1, *cells(stats["std"]),
                                     repr(stats["time_mean_std"])])
                    for video, (curve, sample) in enumerate(zip(stats["per_video"], stats["sample_index"])):
                        writer.writerow([name, subset, "value", video, int(sample), *cells(curve),
                                         repr(float(curve.mean()))])
        return path

    def write_original_csvs(self, output_dir, negated_metrics=("lpips",)):
        """Also write the original evaluate.py files, for its plot/combine scripts; returns the paths.

        ``<output_dir>/prediction_eval_<metric>_<max|avg|min>/metrics/<metric>.csv``: tab-separated,
        header ``sample_ind, 0..T-1, mean``, one row per video.  As in the original, ``max``/``min``
        are the samples with the largest/smallest time-averaged *stored* value, so for mse ``max`` is
        the worst sample.  The original stored LPIPS negated: metrics in ``negated_metrics`` are
        written negated, which makes their ``max`` the best (lowest-distance) sample.
        """
        paths = []
        for name, by_subset in self.results().items():
            negate = name in negated_metrics
            stored_higher_is_better = self.higher_is_better[name] != negate
            subtask_subsets = {"max": "best" if stored_higher_is_better else "worst", "avg": "avg",
                               "min": "worst" if stored_higher_is_better else "best"}
            for subtask, subset in subtask_subsets.items():
                per_video = by_subset[subset]["per_video"] * (-1.0 if negate else 1.0)
                directory = os.path.join(output_dir, f"prediction_eval_{name}_{subtask}", "metrics")
                os.makedirs(directory, exist_ok=True)
                path = os.path.join(directory, f"{name}.csv")
                with open(path, "w", newline="") as f:
                    writer = csv.writer(f, delimiter="\t", quotechar="|", quoting=csv.QUOTE_MINIMAL)
                    writer.writerow(["sample_ind", *map(str, range(per_video.shape[1])), "mean"])
                    for video, curve in enumerate(per_video):
                        writer.writerow([str(video), *map(str, curve), str(np.mean(curve))])
                paths.append(path)
        return paths


def read_csv(path):
    """Per-video curves back from :meth:`MetricAccumulator.write_csv`.

    Returns ``{metric: {subset: {"per_video": [N, T], "sample_index": [N], "mean": [T], "std": [T]}}}``
    with numpy arrays (the ``mean``/``std`` rows as written).
    """
    table = {}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        num_t = len(header) - 6
        for row in reader:
            name, subset, statistic, _, sample = row[:5]
            curve = [float(v) for v in row[5 : 5 + num_t] if v != ""]
            entry = table.setdefault(name, {}).setdefault(subset, {"per_video": [], "sample_index": []})
            if statistic == "value":
                entry["per_video"].append(curve)
                entry["sample_index"].append(int(sample))
            else:
                entry[statistic] = np.asarray(curve)
    for by_subset in table.values():
        for entry in by_subset.values():
            entry["per_video"] = np.asarray(entry["per_video"], dtype=np.float64)
            entry["sample_index"] = np.asarray(entry["sample_index"], dtype=np.int64)
    return table
