"""Self-contained ``index.html`` pages of results: evaluate.py's, generate.py's and compare_results.py's.

A page lives in its output directory and links only relative files (GIFs under ``html/``, the metric plots
beside it); it has no script and loads nothing from elsewhere, so it opens from the file system and can be
copied or zipped with its directory.

Which samples a page shows: for each of the first ``--html_videos`` videos, the context, the ground truth
and three of its stochastic samples chosen by the *first* metric's time-averaged value (as the metrics'
best/worst, :func:`~video_prediction.metrics.aggregation.best_avg_worst`): the best, the worst, and as "an
average sample" the one whose value is closest to the mean over the video's samples.  :class:`ShownVideos`
collects them while evaluation or generation runs (only these videos' frames are kept, as uint8).
"""

import html
import json
import os

import numpy as np

from video_prediction.inference import visualization

SHOWN_SUBSETS = ("best", "avg", "worst")
SUBSET_TITLES = {"best": "best sample", "avg": "an average sample", "worst": "worst sample"}
HTML_SUBDIRECTORY = "html"
DEFAULT_HTML_VIDEOS = 16

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th { background: #eee; }
td.name, th.name { text-align: left; }
.videos td { text-align: center; vertical-align: top; }
.videos img { width: 128px; image-rendering: pixelated; display: block; margin: auto; }
.plots img { width: 420px; margin-right: 8px; }
.score { font-size: 85%; color: #444; }
pre { background: #f6f6f6; padding: 0.5em; max-height: 24em; overflow: auto; }
"""


def select_shown_samples(values, higher_is_better):
    """Sample indices ``{"best", "avg", "worst"}`` of one video from its first metric's values ``[S, T]``.

    Best/worst by the time average (ties to the lowest index, as the metrics'); ``avg`` is the sample whose
    time average is closest to the mean over samples.
    """
    time_means = np.asarray(values, dtype=np.float64).reshape(len(values), -1).mean(axis=1)
    best = int(np.argmax(time_means) if higher_is_better else np.argmin(time_means))
    worst = int(np.argmin(time_means) if higher_is_better else np.argmax(time_means))
    average = int(np.argmin(np.abs(time_means - time_means.mean())))
    return {"best": best, "avg": average, "worst": worst}


class ShownVideos:
    """The first ``limit`` videos of a run for a results page: frames of the chosen samples and their scores.

    ``add(context, ground_truth, samples, scores, higher_is_better)`` per batch: ``context`` ``[B, C, H, W, c]``,
    ``ground_truth`` ``[B, T, H, W, c]`` (or ``None``), ``samples`` ``[B, S, T, H, W, c]`` (float in [0, 1] or
    uint8), ``scores`` ``{metric: [B, S, T]}`` in the order of the metrics (the first one chooses the samples),
    ``higher_is_better`` ``{metric: bool}``.  Rows past ``limit`` are ignored (check :attr:`wanted` first
    to avoid computing them).
    """

    def __init__(self, limit=DEFAULT_HTML_VIDEOS):
        self.limit = int(limit or 0)
        self.videos = []

    @property
    def wanted(self):
        """How many more videos are wanted."""
        return max(0, self.limit - len(self.videos))

    def add(self, context, ground_truth, samples, scores, higher_is_better):
        metric_names = list(scores)
        for i in range(min(self.wanted, len(samples))):
            if metric_names:
                first = metric_names[0]
                chosen = select_shown_samples(np.asarray(scores[first][i]), higher_is_better[first])
            else:  # no ground truth to score against: the first samples
                count = len(samples[i])
                chosen = {"best": 0, "avg": min(1, count - 1), "worst": min(2, count - 1)}
            per_sample = {name: np.asarray(values[i], np.float64).mean(axis=-1).tolist()
                          for name, values in scores.items()}
            self.videos.append(dict(
                video=len(self.videos),
                context=visualization.to_uint8(np.asarray(context[i])),
                ground_truth=None if ground_truth is None else visualization.to_uint8(np.asarray(ground_truth[i])),
                samples={subset: visualization.to_uint8(np.asarray(samples[i][index]))
                         for subset, index in chosen.items()},
                sample_index=chosen,
                selection_metric=metric_names[0] if metric_names else None,
                per_sample=per_sample,
                scores={subset: {name: values[index] for name, values in per_sample.items()}
                        for subset, index in chosen.items()},
            ))

    def write_gifs(self, output_dir, fps=4):
        """Write every shown video's GIFs under ``<output_dir>/html/``; returns :meth:`to_json`."""
        directory = os.path.join(output_dir, HTML_SUBDIRECTORY)
        os.makedirs(directory, exist_ok=True)
        for video in self.videos:
            gifs = {}
            parts = [("context", video["context"]), ("ground_truth", video["ground_truth"])]
            parts += [(subset, video["samples"][subset]) for subset in SHOWN_SUBSETS]
            for part, frames in parts:
                if frames is None:
                    continue
                name = f"video_{video['video']:05d}_{part}.gif"
                visualization.save_gif(os.path.join(directory, name), frames, fps=fps)
                gifs[part] = f"{HTML_SUBDIRECTORY}/{name}"
            video["gifs"] = gifs
        return self.to_json()

    def to_json(self):
        """Scores and GIF paths (no frames), for ``metrics.json``'s ``shown_videos``."""
        keys = ("video", "selection_metric", "sample_index", "scores", "per_sample", "gifs")
        return [{key: video[key] for key in keys if key in video} for video in self.videos]


def _escape(value):
    return html.escape(str(value), quote=True)


def _format(value):
    return "" if value is None else (f"{value:.4f}" if isinstance(value, float) else _escape(value))


def _image(src, alt, css_class=None):
    css = f' class="{css_class}"' if css_class else ""
    return f'<img src="{_escape(src)}" alt="{_escape(alt)}"{css}>'


def summary_table_html(rows, first_column="model"):
    """An HTML table of ``rows`` ``[(name, metric, best, avg, worst)]`` (time-averaged means)."""
    lines = [f'<table class="summary"><tr><th class="name">{_escape(first_column)}</th><th class="name">metric</th>'
             "<th>best</th><th>average</th><th>worst</th></tr>"]
    for name, metric, best, avg, worst in rows:
        lines.append(f'<tr class="row"><td class="name">{_escape(name)}</td><td class="name">{_escape(metric)}</td>'
                     f"<td>{best:.4f}</td><td>{avg:.4f}</td><td>{worst:.4f}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _scores_html(scores):
    return "<br>".join(f"{_escape(name)} {value:.3f}" for name, value in scores.items())


def videos_table_html(shown):
    """The shown videos, one row each: context, ground truth, best / average / worst sample with scores."""
    scored = bool(shown) and bool(shown[0].get("selection_metric"))
    titles = SUBSET_TITLES if scored else {s: "sample" for s in SHOWN_SUBSETS}  # nothing to rank them by
    lines = ['<table class="videos"><tr><th>video</th><th>context</th><th>ground truth</th>'
             + "".join(f"<th>{titles[s]}</th>" for s in SHOWN_SUBSETS) + "</tr>"]
    for video in shown:
        gifs = video["gifs"]
        cells = [f"<td>{video['video']}</td>"]
        for part, title in (("context", "context"), ("ground_truth", "ground truth")):
            cells.append(f"<td>{_image(gifs[part], title) if part in gifs else '—'}</td>")
        for subset in SHOWN_SUBSETS:
            score = _scores_html(video["scores"][subset]) if video.get("scores") else ""
            cells.append(f"<td>{_image(gifs[subset], titles[subset])}<div class=\"score\">sample "
                         f"{video['sample_index'][subset]}<br>{score}</div></td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def settings_html(settings):
    """The run's settings: scalars as a table, ``hparams`` (a dict) as JSON."""
    settings = dict(settings or {})
    hparams = settings.pop("hparams", None)
    lines = ['<table class="settings">']
    for key, value in settings.items():
        lines.append(f'<tr><td class="name">{_escape(key)}</td><td class="name">{_format(value)}</td></tr>')
    lines.append("</table>")
    if hparams:
        lines.append("<details><summary>model hparams</summary><pre>"
                     + _escape(json.dumps(hparams, indent=1, sort_keys=True, default=str)) + "</pre></details>")
    return "\n".join(lines)


def page(title, sections):
    """A whole HTML document: ``sections`` is ``[(heading, html)]`` (empty html is skipped)."""
    body = [f"<h1>{_escape(title)}</h1>"]
    for heading, content in sections:
        if content:
            body.append(f"<h2>{_escape(heading)}</h2>\n{content}")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{_escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def set_metrics_html(set_metrics):
    """A table of set-level metrics (``{"fvd": {selection: {"fvd", "num_real", "num_fake"}}}``)."""
    if not set_metrics:
        return ""
    lines = ['<table class="set-metrics"><tr><th class="name">metric</th><th class="name">samples</th>'
             "<th>value</th><th>videos</th><th>predicted</th></tr>"]
    for metric, by_selection in set_metrics.items():
        for selection, entry in by_selection.items():
            lines.append(f'<tr><td class="name">{_escape(metric)}</td><td class="name">{_escape(selection)}</td>'
                         f"<td>{entry[metric]:.3f}</td><td>{entry['num_real']}</td><td>{entry['num_fake']}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def write_results_page(output_dir, title, shown, settings, summary_rows=(), plots=(), note=None, set_metrics=None):
    """Write ``<output_dir>/index.html`` for one run; returns its path.

    ``shown`` is :meth:`ShownVideos.to_json` (after :meth:`ShownVideos.write_gifs`), ``summary_rows``
    ``[(metric, best, avg, worst)]``, ``plots`` file names relative to ``output_dir``.
    """
    label = (settings or {}).get("model", "")
    rows = [(label, *row) for row in summary_rows]
    plots_html = "".join(_image(p, os.path.splitext(os.path.basename(p))[0]) for p in plots)
    sections = [
        ("Summary (time-averaged; best / worst sample per video chosen by each metric)",
         summary_table_html(rows) if rows else ""),
        ("Metrics of whole sets of videos", set_metrics_html(set_metrics)),
        ("Metrics over time (dashed line: end of the context)", f'<div class="plots">{plots_html}</div>' if plots else ""),
        (f"Videos (the first {len(shown)}; samples chosen by "
         f"{shown[0]['selection_metric'] if shown and shown[0].get('selection_metric') else 'order'})",
         videos_table_html(shown) if shown else ""),
        ("Settings", settings_html(settings)),
        ("Note", f"<p>{_escape(note)}</p>" if note else ""),
    ]
    path = os.path.join(output_dir, "index.html")
    with open(path, "w") as f:
        f.write(page(title, sections))
    return path


def run_settings(model, dataset_name=None, checkpoint=None, mode=None, **extra):
    """The settings a page shows: model (name and class), dataset, split, checkpoint and its step, hparams."""
    from video_prediction.training.run_directory import latest_checkpoint

    prefix = latest_checkpoint(checkpoint) if checkpoint else None
    step = None
    if prefix and os.path.basename(prefix).startswith("ckpt-"):
        step = int(os.path.basename(prefix).split("-")[-1])
    settings = dict(model=extra.pop("label", None) or model.name, model_class=type(model).__name__,
                    dataset=dataset_name, split=mode, checkpoint=checkpoint, checkpoint_step=step,
                    context_frames=model.context_frames)
    settings.update(extra)
    hparams = getattr(model, "hparams", None)
    if hparams is not None and hasattr(hparams, "values"):
        settings["hparams"] = hparams.values()
    return settings


def dataset_name(flag_value, checkpoint, dataset):
    """The dataset's registry name: ``--dataset``, else the one the run in ``checkpoint`` trained on, else
    the dataset's class name."""
    if flag_value:
        return flag_value
    if checkpoint:
        from video_prediction.training.run_directory import checkpoint_directory, read_run_config, require_checkpoint

        try:
            return read_run_config(checkpoint_directory(require_checkpoint(checkpoint)))[0]["dataset"]
        except (ValueError, KeyError, OSError):
            pass
    return type(dataset).__name__
