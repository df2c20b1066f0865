"""Best/average/worst selection and the streaming MetricAccumulator."""

import json

import numpy as np
import pytest

from video_prediction.metrics.aggregation import MetricAccumulator, best_avg_worst, read_csv


def hand_built_values():
    """[B=2, S=3, T=2]: video 0's sample 2 has the highest time mean, sample 0 the lowest; video 1 the reverse.

    Sample 1 of video 0 has the highest single value (9) but not the highest
    time mean, so choosing per frame would be wrong.
    """
    return np.array([
        [[1.0, 1.0], [9.0, 0.0], [5.0, 5.0]],  # time means 1, 4.5, 5
        [[7.0, 7.0], [3.0, 3.0], [0.0, 2.0]],  # time means 7, 3, 1
    ])


def test_higher_is_better_picks_by_time_mean():
    values = hand_built_values()
    result = best_avg_worst(values, higher_is_better=True)
    np.testing.assert_array_equal(result.best_index, [2, 0])
    np.testing.assert_array_equal(result.worst_index, [0, 2])
    np.testing.assert_array_equal(result.best, [[5, 5], [7, 7]])
    np.testing.assert_array_equal(result.worst, [[1, 1], [0, 2]])
    np.testing.assert_allclose(result.avg, [[5, 2], [10 / 3, 4]])


def test_lower_is_better_swaps_best_and_worst():
    values = hand_built_values()
    result = best_avg_worst(values, higher_is_better=False)
    np.testing.assert_array_equal(result.best_index, [0, 2])
    np.testing.assert_array_equal(result.worst_index, [2, 0])
    np.testing.assert_array_equal(result.best, [[1, 1], [0, 2]])


def test_single_sample_and_ties():
    values = np.array([[[0.3, 0.4, 0.5]]])
    result = best_avg_worst(values, True)
    for curve in (result.best, result.avg, result.worst):
        np.testing.assert_allclose(curve, values[:, 0])
    tied = best_avg_worst(np.ones((1, 4, 2)), False)
    assert tied.best_index[0] == 0 and tied.worst_index[0] == 0
    with pytest.raises(ValueError, match=r"\[B, S, T\]"):
        best_avg_worst(np.ones((2, 3)), True)


def random_batches():
    rng = np.random.default_rng(3)
    return [rng.random((size, 5, 4)) for size in (3, 1, 4)]


def filled_accumulator():
    accumulator = MetricAccumulator()
    for batch in random_batches():
        accumulator.add("psnr", 20 + 10 * batch)  # higher_is_better from the registry
        accumulator.add("mse", batch, False)
    return accumulator


def test_accumulator_over_batches_equals_one_shot():
    accumulator = filled_accumulator()
    everything = np.concatenate(random_batches(), axis=0)
    results = accumulator.results()
    assert accumulator.higher_is_better == {"psnr": True, "mse": False}
    assert accumulator.num_videos("psnr") == 8
    for name, values, higher in (("psnr", 20 + 10 * everything, True), ("mse", everything, False)):
        one_shot = best_avg_worst(values, higher)
        for subset, curves in (("best", one_shot.best), ("avg", one_shot.avg), ("worst", one_shot.worst)):
            stats = results[name][subset]
            np.testing.assert_allclose(stats["per_video"], curves)
            np.testing.assert_allclose(stats["mean"], curves.mean(axis=0))
            np.testing.assert_allclose(stats["std"], curves.std(axis=0))
            np.testing.assert_allclose(stats["sem"], curves.std(axis=0) / np.sqrt(8))
            assert stats["time_mean"] == pytest.approx(curves.mean())
            assert stats["time_mean_std"] == pytest.approx(curves.mean(axis=1).std())
        np.testing.assert_array_equal(results[name]["best"]["sample_index"], one_shot.best_index)
        np.testing.assert_array_equal(results[name]["worst"]["sample_index"], one_shot.worst_index)
        assert np.all(results[name]["avg"]["sample_index"] == -1)
        # best is never below worst (in the metric's own sense) for any video
        sign = 1 if higher else -1
        assert np.all(sign * (results[name]["best"]["per_video"].mean(1) - results[name]["worst"]["per_video"].mean(1)) >= 0)


def test_accumulator_rejects_inconsistent_batches():
    accumulator = MetricAccumulator()
    accumulator.add("ssim", np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="timesteps"):
        accumulator.add("ssim", np.ones((2, 3, 5)))
    with pytest.raises(ValueError, match="higher_is_better"):
        accumulator.add("ssim", np.ones((2, 3, 4)), False)
    with pytest.raises(ValueError, match="pass higher_is_better explicitly"):
        accumulator.add("unregistered", np.ones((2, 3, 4)))


def test_json_round_trip():
    accumulator = filled_accumulator()
    payload = json.loads(json.dumps(accumulator.to_json()))
    assert payload["metrics"]["psnr"]["num_videos"] == 8 and payload["metrics"]["psnr"]["num_samples"] == 5
    restored = MetricAccumulator.from_json(payload)
    assert restored.higher_is_better == accumulator.higher_is_better
    expected = accumulator.results()
    for results in (restored.results(), MetricAccumulator.results_from_json(payload)):
        for name in expected:
            for subset in ("best", "avg", "worst"):
                for key, value in expected[name][subset].items():
                    np.testing.assert_allclose(results[name][subset][key], value)
    # Restored accumulators keep streaming.
    restored.add("mse", np.zeros((2, 5, 4)))
    assert restored.num_videos("mse") == 10
    with pytest.raises(ValueError, match="not a metric accumulator"):
        MetricAccumulator.from_json({"metrics": {}})


def test_csv_round_trip(tmp_path):
    import pandas as pd

    accumulator = filled_accumulator()
    accumulator.add("short", np.ones((8, 2, 2)), True)  # fewer timesteps: blank cells
    path = accumulator.write_csv(str(tmp_path / "metrics.csv"))
    results = accumulator.results()
    table = read_csv(path)
    for name in results:
        for subset in ("best", "avg", "worst"):
            np.testing.assert_allclose(table[name][subset]["per_video"], results[name][subset]["per_video"])
            np.testing.assert_array_equal(table[name][subset]["sample_index"], results[name][subset]["sample_index"])
            np.testing.assert_allclose(table[name][subset]["mean"], results[name][subset]["mean"])
            np.testing.assert_allclose(table[name][subset]["std"], results[name][subset]["std"])
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["metric", "subset", "statistic", "video", "sample", "0", "1", "2", "3", "mean"]
    rows = frame[(frame.metric == "psnr") & (frame.subset == "best") & (frame.statistic == "value")]
    assert len(rows) == 8
    np.testing.assert_allclose(rows[["0", "1", "2", "3"]].to_numpy(), results["psnr"]["best"]["per_video"])
    np.testing.assert_allclose(rows["mean"], results["psnr"]["best"]["per_video"].mean(axis=1))
    summary = frame[(frame.metric == "mse") & (frame.subset == "worst") & (frame.statistic == "mean")]
    assert summary["mean"].item() == pytest.approx(results["mse"]["worst"]["time_mean"])
    assert frame[frame.metric == "short"][["2", "3"]].isna().all().all()


def test_original_csv_layout(tmp_path):
    accumulator = filled_accumulator()
    accumulator.add("lpips", np.random.default_rng(4).random((8, 5, 4)), False)
    paths = accumulator.write_original_csvs(str(tmp_path))
    assert len(paths) == 9
    results = accumulator.results()

    def load(name, subtask):  # as the original's plot_results.load_metrics
        path = tmp_path / f"prediction_eval_{name}_{subtask}" / "metrics" / f"{name}.csv"
        rows = [line.split("\t") for line in path.read_text().splitlines()]
        assert rows[0] == ["sample_ind", "0", "1", "2", "3", "mean"]
        assert [int(row[0]) for row in rows[1:]] == list(range(8))
        return np.array(rows)[1:, 1:-1].astype(np.float64)

    np.testing.assert_allclose(load("psnr", "max"), results["psnr"]["best"]["per_video"])
    np.testing.assert_allclose(load("mse", "max"), results["mse"]["worst"]["per_video"])  # max mse is the worst
    np.testing.assert_allclose(load("mse", "min"), results["mse"]["best"]["per_video"])
    np.testing.assert_allclose(load("lpips", "max"), -results["lpips"]["best"]["per_video"])  # stored negated
    np.testing.assert_allclose(load("psnr", "avg"), results["psnr"]["avg"]["per_video"])
