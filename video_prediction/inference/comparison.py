"""Comparing several evaluate.py outputs: one plot per metric, a combined table, a page of GIFs side by side.

``scripts/compare_results.py RESULTS_DIR... --output_dir DIR`` calls :func:`compare`.  Results are only
comparable when they were evaluated on the same dataset, split, context length and horizon; anything else
is refused with one line (:class:`IncomparableResultsError`).  Only numpy, matplotlib and the results'
files are needed (no TensorFlow).
"""

import csv
import json
import os
import shutil

import numpy as np

from video_prediction.inference import html_report
from video_prediction.metrics.aggregation import SUBSETS, MetricAccumulator

# What must agree between results for them to be compared (metrics.json keys), with a name for the message.
COMPARED_SETTINGS = (("dataset", "datasets"), ("mode", "splits"), ("context_frames", "context lengths"))


class IncomparableResultsError(ValueError):
    """Results evaluated on different data (dataset, split, context or horizon)."""


def load_run(path):
    """``metrics.json`` of an evaluate.py output directory (or the file itself), with a clear error."""
    file = os.path.join(path, "metrics.json") if os.path.isdir(path) else path
    if not os.path.exists(file):
        raise ValueError(f"no evaluation results at {path!r} (expected metrics.json from evaluate.py)")
    with open(file) as f:
        try:
            payload = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{file} is not valid JSON: {e}") from None
    payload["_directory"] = os.path.dirname(os.path.abspath(file))
    payload["_results"] = MetricAccumulator.results_from_json(payload["results"])
    return payload


def run_labels(paths):
    """Legend labels: each directory's name, with its parent's when two names are the same."""
    names = [os.path.basename(os.path.normpath(p)) for p in paths]
    if len(set(names)) == len(names):
        return names
    labels = ["/".join(os.path.normpath(os.path.abspath(p)).split(os.sep)[-2:]) for p in paths]
    if len(set(labels)) != len(labels):
        raise ValueError(f"the same results directory is given twice: {paths}")
    return labels


def check_comparable(labels, runs):
    """Refuse, in one line, runs evaluated on different datasets, splits, context lengths or horizons."""
    for key, what in COMPARED_SETTINGS:
        missing = [label for label, run in zip(labels, runs) if run.get(key) is None]
        if missing:
            raise IncomparableResultsError(
                f"cannot compare: {', '.join(missing)} do not record the {key} they were evaluated on "
                f"(rerun evaluate.py)")
        values = {label: run[key] for label, run in zip(labels, runs)}
        if len(set(map(str, values.values()))) > 1:
            listed = ", ".join(f"{label}: {value}" for label, value in values.items())
            raise IncomparableResultsError(f"cannot compare results evaluated on different {what} ({listed})")
    horizons = {label: sorted({len(r["avg"]["mean"]) for r in run["_results"].values()})
                for label, run in zip(labels, runs)}
    if len({str(h) for h in horizons.values()}) > 1:
        listed = ", ".join(f"{label}: {h}" for label, h in horizons.items())
        raise IncomparableResultsError(f"cannot compare results with different numbers of predicted frames ({listed})")


def common_metrics(runs):
    """Per-frame metrics every run has, in the first run's order."""
    names = list(runs[0]["_results"])
    return [name for name in names if all(name in run["_results"] for run in runs)]


def plot_comparison(path, metric, labels, runs):
    """Every run's average curve with its best/worst band (between the best and worst samples' mean curves)."""
    from video_prediction.inference.visualization import metric_curves_figure

    curves, bands = {}, {}
    for label, run in zip(labels, runs):
        stats = run["_results"][metric]
        curves[label] = (stats["avg"]["mean"], None)
        bands[label] = (stats["worst"]["mean"], stats["best"]["mean"])
    figure = metric_curves_figure(curves, metric, runs[0]["context_frames"],
                                  title=f"{metric}: average sample, band from worst to best sample", bands=bands)
    figure.savefig(path, dpi=100)
    return path


def common_set_metrics(runs):
    """``[(metric, selection)]`` of set-level metrics (FVD per sample selection) that every run has."""
    keys = [(metric, selection) for metric, by_selection in (runs[0].get("set_metrics") or {}).items()
            for selection in by_selection]
    return [(m, s) for m, s in keys if all(s in (run.get("set_metrics") or {}).get(m, {}) for run in runs)]


def table_rows(labels, runs, metrics):
    """Header and one row per run: time-averaged best, average and worst of every metric, then the
    set-level metrics every run has (e.g. ``fvd best_psnr``)."""
    set_keys = common_set_metrics(runs)
    header = (["model"] + [f"{metric} {subset}" for metric in metrics for subset in SUBSETS]
              + [f"{metric} {selection}" for metric, selection in set_keys])
    rows = []
    for label, run in zip(labels, runs):
        results = run["_results"]
        rows.append([label] + [float(np.mean(results[m][s]["mean"])) for m in metrics for s in SUBSETS]
                    + [float(run["set_metrics"][m][s][m]) for m, s in set_keys])
    return header, rows


def write_tables(output_dir, header, rows):
    """``results.csv`` and ``results.md``; returns their paths."""
    csv_path, md_path = os.path.join(output_dir, "results.csv"), os.path.join(output_dir, "results.md")
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([[row[0]] + [repr(v) for v in row[1:]] for row in rows])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([row[0]] + [f"{v:.4f}" for v in row[1:]]) + " |" for row in rows]
    with open(md_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return csv_path, md_path


def _copy_gifs(output_dir, labels, runs):
    """Copy every run's shown GIFs under ``<output_dir>/gifs/<n>/``; returns ``{label: {video: {part: path}}}``."""
    copied = {}
    for index, (label, run) in enumerate(zip(labels, runs)):
        by_video = copied.setdefault(label, {})
        for video in run.get("shown_videos") or []:
            parts = {}
            for part, relative in (video.get("gifs") or {}).items():
                source = os.path.join(run["_directory"], relative)
                if not os.path.exists(source):
                    continue
                target = os.path.join("gifs", f"run{index}", os.path.basename(relative))
                os.makedirs(os.path.join(output_dir, os.path.dirname(target)), exist_ok=True)
                shutil.copyfile(source, os.path.join(output_dir, target))
                parts[part] = target.replace(os.sep, "/")
            by_video[video["video"]] = dict(video, gifs=parts)
    return copied


def _videos_html(labels, copied):
    """Per shown video: context and ground truth, then one row per model with its best / average / worst GIFs."""
    shared = sorted(set.intersection(*(set(copied[label]) for label in labels))) if labels else []
    blocks = []
    for video_index in shared:
        first = copied[labels[0]][video_index]
        lines = [f"<h3>video {video_index}</h3>", '<table class="videos">',
                 "<tr><th>run</th>" + "".join(f"<th>{html_report.SUBSET_TITLES[s]}</th>" for s in html_report.SHOWN_SUBSETS)
                 + "<th>context</th><th>ground truth</th></tr>"]
        for row, label in enumerate(labels):
            video = copied[label][video_index]
            cells = [f'<td class="name">{html_report._escape(label)}</td>']
            for subset in html_report.SHOWN_SUBSETS:
                gif = video["gifs"].get(subset)
                score = html_report._scores_html(video["scores"][subset]) if video.get("scores") else ""
                image = html_report._image(gif, f"{label} {subset}") if gif else "—"
                cells.append(f'<td>{image}<div class="score">{score}</div></td>')
            if row == 0:
                for part in ("context", "ground_truth"):
                    gif = first["gifs"].get(part)
                    cells.append(f'<td rowspan="{len(labels)}">{html_report._image(gif, part) if gif else "—"}</td>')
            lines.append("<tr>" + "".join(cells) + "</tr>")
        lines.append("</table>")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def compare(paths, output_dir):
    """Compare evaluate.py outputs ``paths``; writes plots, ``results.csv``/``.md`` and ``index.html``.

    Returns ``(markdown table, index.html path)``.
    """
    if not paths:
        raise ValueError("give one or more evaluate.py output directories")
    labels = run_labels(paths)
    runs = [load_run(path) for path in paths]
    check_comparable(labels, runs)
    metrics = common_metrics(runs)
    if not metrics:
        raise ValueError(f"the results share no per-frame metric ({', '.join(labels)})")
    os.makedirs(output_dir, exist_ok=True)
    plots = [os.path.basename(plot_comparison(os.path.join(output_dir, f"{m}.png"), m, labels, runs)) for m in metrics]
    header, rows = table_rows(labels, runs, metrics)
    _, md_path = write_tables(output_dir, header, rows)
    copied = _copy_gifs(output_dir, labels, runs)
    table = ['<table class="summary"><tr>' + "".join(
        f'<th class="name">{html_report._escape(h)}</th>' if i == 0 else f"<th>{html_report._escape(h)}</th>"
        for i, h in enumerate(header)) + "</tr>"]
    for row in rows:
        table.append('<tr class="row"><td class="name">' + html_report._escape(row[0]) + "</td>"
                     + "".join(f"<td>{v:.4f}</td>" for v in row[1:]) + "</tr>")
    table.append("</table>")
    first = runs[0]
    settings = {"dataset": first.get("dataset"), "split": first.get("mode"),
                "context_frames": first.get("context_frames"),
                "predicted frames": len(first["_results"][metrics[0]]["avg"]["mean"])}
    settings.update({f"run {label}": os.path.abspath(path) for label, path in zip(labels, paths)})
    sections = [
        ("Summary (time-averaged; results.csv, results.md)", "\n".join(table)),
        ("Metrics over time (line: average sample; band: worst to best sample; dashed: end of the context)",
         '<div class="plots">' + "".join(html_report._image(p, p) for p in plots) + "</div>"),
        ("Videos (the same test videos for every run; samples chosen by each run's first metric)",
         _videos_html(labels, copied)),
        ("Settings", html_report.settings_html(settings)),
    ]
    page_path = os.path.join(output_dir, "index.html")
    with open(page_path, "w") as f:
        f.write(html_report.page("Comparison: " + ", ".join(labels), sections))
    with open(md_path) as f:
        return f.read(), page_path
