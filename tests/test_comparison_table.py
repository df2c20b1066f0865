"""summarize_results.py --compact: one row per model, best per column starred, a verdict for the subject."""

import numpy as np
import pytest

from video_prediction.inference import evaluation
from video_prediction.metrics.aggregation import MetricAccumulator


def results(psnr, ssim, samples=1):
    """Results of 2 videos x ``samples`` x 3 frames whose average over everything is (psnr, ssim)."""
    accumulator = MetricAccumulator()
    offsets = np.linspace(-1, 1, 2 * samples * 3).reshape(2, samples, 3)
    accumulator.add("psnr", psnr + offsets)
    accumulator.add("ssim", ssim + 0.01 * offsets)
    return accumulator.results()


def test_rows_stars_and_verdict():
    named = {"learned": results(17.0, 0.62, samples=3), "repeat": results(12.6, 0.32),
             "blank_mean_frame": results(15.1, 0.03), "blank_zeros": results(14.5, 0.45)}
    table = evaluation.format_comparison_table(named, subject="learned").splitlines()
    assert "PSNR (higher is better)" in table[0] and "SSIM (higher is better)" in table[0]
    rows = {line.split()[0]: line for line in table[2:-1]}
    assert set(rows) == set(named)
    assert rows["learned"].split()[1:] == ["17.0000", "*", "0.6200", "*"]
    assert rows["blank_zeros"].split()[1:] == ["14.5000", "0.4500"]
    assert table[-1] == "learned beats every other row on psnr and ssim"


def test_verdict_names_what_the_subject_does_not_beat():
    named = {"learned": results(15.8, 0.40), "repeat": results(12.6, 0.32), "blank_mean_frame": results(15.9, 0.03),
             "blank_zeros": results(14.5, 0.45)}
    table = evaluation.format_comparison_table(named, subject="learned").splitlines()
    assert table[-1] == "learned does NOT beat blank_mean_frame on psnr, blank_zeros on ssim"
    assert table[4].split()[:3] == ["blank_mean_frame", "15.9000", "*"]
    with pytest.raises(ValueError, match="no results labelled 'nope'"):
        evaluation.format_comparison_table(named, subject="nope")
