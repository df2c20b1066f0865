"""Results pages (issue 19): evaluate.py's / generate.py's index.html, compare_results.py, checked in Chromium."""

import json
import os
import re
import shutil

import numpy as np
import pytest

from video_prediction.inference import comparison, evaluation, generation, html_report
from video_prediction.training.building import build_dataset, load_model

import headless_chromium
import results_fixtures
from test_scripts import run

NUM_SAMPLES, HTML_VIDEOS = 3, 3


def _evaluate(model, dataset, output_dir, checkpoint):
    shown = html_report.ShownVideos(HTML_VIDEOS)
    accumulator = evaluation.evaluate(model, dataset, ("psnr", "ssim"), num_stochastic_samples=NUM_SAMPLES,
                                      batch_size=2, shown=shown)
    settings = html_report.run_settings(model, "moving_mnist", checkpoint, "test", label=os.path.basename(output_dir))
    evaluation.write_results(accumulator, output_dir, model.context_frames, training_length=model.sequence_length,
                             extra=dict(model=settings["model"], mode="test", dataset="moving_mnist"),
                             shown=shown, settings=settings)
    return output_dir


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Two tiny SAVP runs evaluated and one generated in-process, the repeat baseline through evaluate.py."""
    root = tmp_path_factory.mktemp("pages")
    records = results_fixtures.write_records(str(root / "mm"))
    dataset_hparams = dict(context_frames=2, sequence_length=5)
    out = {}
    run_dir = results_fixtures.write_tiny_run(str(root / "runs" / "ours"), records)
    model, _, _ = load_model(run_dir)
    dataset = build_dataset("moving_mnist", records, "test", hparams_dict=dataset_hparams, num_epochs=1)
    for name in ("ours_a", "ours_b"):  # the same run evaluated twice: other samples (and no second trace)
        out[name] = _evaluate(model, dataset, str(root / "results" / name), run_dir)
    out["generated"] = str(root / "generated")
    generation.generate_from_dataset(model, dataset, out["generated"], num_stochastic_samples=NUM_SAMPLES,
                                     batch_size=2, html_videos=2, log=None,
                                     settings=html_report.run_settings(model, "moving_mnist", run_dir, "test"))
    out["video"] = str(root / "video")  # generate.py --video: one clip, no dataset
    clip = np.random.default_rng(0).random((5, 32, 32, 1)).astype(np.float32)
    generation.generate_from_video(model, clip, out["video"], num_stochastic_samples=NUM_SAMPLES, log=None, html=True,
                                   settings=html_report.run_settings(model, None, run_dir, None, video="clip.npy"))
    out["repeat"] = str(root / "results" / "repeat")
    run("evaluate.py", "--model", "repeat", "--dataset", "moving_mnist", "--input_dir", records, "--dataset_hparams",
        "context_frames=2,sequence_length=5", "--output_dir", out["repeat"], "--html_videos", str(HTML_VIDEOS))
    out["comparison"] = str(root / "comparison")
    result = run("compare_results.py", out["ours_a"], out["ours_b"], out["repeat"], "--output_dir", out["comparison"])
    out["comparison_stdout"] = result.stdout
    return out


def _linked_files(page_path):
    with open(page_path) as f:
        text = f.read()
    assert "<script" not in text and "http://" not in text and "https://" not in text  # self-contained
    links = re.findall(r'src="([^"]+)"', text)
    for link in links:
        assert not os.path.isabs(link) and ".." not in link, link  # relative, inside the page's directory
        assert os.path.getsize(os.path.join(os.path.dirname(page_path), link)) > 0, link
    return text, links


def test_select_shown_samples():
    values = np.array([[1.0, 1.0], [3.0, 3.0], [2.2, 2.0], [0.0, 0.5]])  # time means 1, 3, 2.1, 0.25 (mean 1.59)
    assert html_report.select_shown_samples(values, True) == {"best": 1, "avg": 2, "worst": 3}
    assert html_report.select_shown_samples(values, False) == {"best": 3, "avg": 2, "worst": 1}


def test_set_metrics_table():
    table = html_report.set_metrics_html({"fvd": {"best_psnr": {"fvd": 12.5, "num_real": 4, "num_fake": 4}}})
    assert "best_psnr" in table and "12.500" in table and html_report.set_metrics_html({}) == ""


def test_evaluation_page_and_scores(outputs):
    directory = outputs["ours_a"]
    text, links = _linked_files(os.path.join(directory, "index.html"))
    assert len(links) == 2 + HTML_VIDEOS * 5  # psnr/ssim plots; context, truth, best, avg, worst per video
    assert "checkpoint_step" in text and "ngf" in text and "moving_mnist" in text  # the run's settings
    payload = json.load(open(os.path.join(directory, "metrics.json")))
    assert payload["dataset"] == "moving_mnist" and payload["mode"] == "test" and payload["context_frames"] == 2
    shown = payload["shown_videos"]
    assert [v["video"] for v in shown] == list(range(HTML_VIDEOS))
    per_video = payload["results"]["metrics"]["psnr"]["subsets"]
    for video in shown:
        psnr = video["per_sample"]["psnr"]
        assert len(psnr) == NUM_SAMPLES and video["selection_metric"] == "psnr"
        assert video["scores"]["best"]["psnr"] == max(psnr) and video["scores"]["worst"]["psnr"] == min(psnr)
        assert min(psnr) < video["scores"]["avg"]["psnr"] <= max(psnr) or len(set(psnr)) == 1
        # the same choice as the metrics' best/worst and the same values
        assert video["sample_index"]["best"] == per_video["best"]["sample_index"][video["video"]]
        assert np.isclose(np.mean(per_video["best"]["per_video"][video["video"]]), max(psnr))


def test_generation_page(outputs):
    text, links = _linked_files(os.path.join(outputs["generated"], "index.html"))
    assert len(links) == 2 + 2 * 5 and "Predictions" in text and "generated videos" in text


def test_single_video_page(outputs):
    text, links = _linked_files(os.path.join(outputs["video"], "index.html"))
    assert len(links) == 5 and "clip.npy" in text and "psnr" in text  # scored: the clip covers the horizon


def test_comparison_tables_and_plots(outputs):
    directory = outputs["comparison"]
    assert "| ours_a |" in outputs["comparison_stdout"] and "| repeat |" in outputs["comparison_stdout"]
    rows = open(os.path.join(directory, "results.csv")).read().splitlines()
    assert rows[0].startswith("model,psnr best,psnr avg,psnr worst,ssim best")
    assert [r.split(",")[0] for r in rows[1:]] == ["ours_a", "ours_b", "repeat"]
    repeat = [float(v) for v in rows[3].split(",")[1:4]]
    assert repeat[0] == repeat[1] == repeat[2]  # one sample: best = average = worst
    assert os.path.getsize(os.path.join(directory, "psnr.png")) > 10000
    _, links = _linked_files(os.path.join(directory, "index.html"))
    assert len(links) == 2 + HTML_VIDEOS * (3 * 3 + 2)


@pytest.mark.parametrize("key, value, message", [
    ("mode", "val", "different splits"), ("context_frames", 3, "different context lengths"),
    ("dataset", "bair", "different datasets"), ("dataset", None, "do not record the dataset")])
def test_comparison_refuses_different_data(outputs, tmp_path, key, value, message):
    other = str(tmp_path / "other")
    shutil.copytree(outputs["ours_b"], other)
    payload = json.load(open(os.path.join(other, "metrics.json")))
    payload[key] = value
    json.dump(payload, open(os.path.join(other, "metrics.json"), "w"))
    with pytest.raises(comparison.IncomparableResultsError, match=message):
        comparison.compare([outputs["ours_a"], other], str(tmp_path / "out"))


def test_comparison_table_has_shared_set_metrics(outputs, tmp_path):
    runs = []
    for name, value in (("a", 10.0), ("b", 20.0)):
        directory = str(tmp_path / name)
        shutil.copytree(outputs["ours_a"], directory)
        payload = json.load(open(os.path.join(directory, "metrics.json")))
        payload["set_metrics"] = {"fvd": {"best_psnr": {"fvd": value, "num_real": 4, "num_fake": 4},
                                          **({"avg": {"fvd": 1.0, "num_real": 4, "num_fake": 12}} if value > 15 else {})}}
        json.dump(payload, open(os.path.join(directory, "metrics.json"), "w"))
        runs.append(directory)
    markdown, _ = comparison.compare(runs, str(tmp_path / "out"))
    assert "fvd best_psnr" in markdown and "fvd avg" not in markdown  # only what both runs have
    assert markdown.splitlines()[2].endswith("| 10.0000 |") and markdown.splitlines()[3].endswith("| 20.0000 |")


def test_compare_script_one_line_error(outputs, tmp_path):
    result = run("compare_results.py", outputs["ours_a"], str(tmp_path), "--output_dir", str(tmp_path / "o"),
                 expect_ok=False)
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0
    assert "no evaluation results" in result.stderr


def test_pages_in_headless_chromium(outputs, tmp_path):
    chromium, reason = headless_chromium.find_chromium(install=True)
    if chromium is None:
        pytest.skip(reason)
    screenshots = os.environ.get("VIDEO_PREDICTION_SCREENSHOT_DIR", str(tmp_path))
    os.makedirs(screenshots, exist_ok=True)
    expected_rows = {"ours_a": ["ours_a"] * 2, "generated": ["SAVPVideoPredictionModel"] * 2, "video": [], "comparison": ["ours_a", "ours_b", "repeat"]}
    expected_images = {"ours_a": 2 + HTML_VIDEOS * 5, "generated": 2 + 2 * 5, "video": 5, "comparison": 2 + HTML_VIDEOS * 11}
    for name, rows in expected_rows.items():
        page = os.path.join(outputs[name], "index.html")
        seen = headless_chromium.check_page(chromium, page)
        assert len(seen["images"]) == expected_images[name]
        broken = [image["src"] for image in seen["images"] if not (image["complete"] and image["naturalWidth"] > 0)]
        assert not broken, f"{name}: images that did not load: {broken}"
        assert seen["summary_rows"] == rows  # one row per model (and metric on a run's own page)
        png = headless_chromium.screenshot(chromium, page, os.path.join(screenshots, f"{name}.png"))
        assert os.path.getsize(png) > 10000
        print(f"screenshot of {page}: {png}")
