"""MSPred's keypoint and segmentation metrics on hand-made heatmaps."""

import numpy as np

from video_prediction.datasets.heatmaps import gaussian_heatmaps
from video_prediction.metrics.pose import mpjpe, pck, pdj
from video_prediction.metrics.segmentation import iou, segmentation_accuracy


def maps(points, size=32):
    return gaussian_heatmaps(points, size, size, 1.0)[None, None]


def test_pose_metrics():
    targets = maps([(0.5, 0.25), (0.5, 0.75), (0.0, 0.0)])  # third keypoint missing
    preds = maps([(0.5, 0.25), (0.625, 0.75), (0.25, 0.25)])  # second off by 4 px
    np.testing.assert_allclose(mpjpe(preds, targets), [[2.0]])  # (0 + 4) / 2 valid keypoints
    # body height 16 px: threshold 0.1 -> 1.6 px (1 correct), 0.3 -> 4.8 px (2 correct)
    np.testing.assert_allclose(pdj(preds, targets, 0.1), [[0.5]])
    np.testing.assert_allclose(pdj(preds, targets, 0.3), [[1.0]])
    np.testing.assert_allclose(pck(preds, targets, 0.3), [[2 / 3]])  # 3 confident predictions
    empty = np.zeros_like(targets)
    assert np.isnan(mpjpe(preds, empty)).all() and np.isnan(pdj(preds, empty)).all()


def test_segmentation_metrics():
    target = np.zeros((1, 1, 2, 2, 3), np.float32)
    target[0, 0, :, :, 0] = 1
    target[0, 0, 0, 0] = [0, 1, 0]
    pred = target.copy()
    pred[0, 0, 1, 1] = [0, 1, 0]  # one background pixel predicted as class 1
    acc, _ = segmentation_accuracy(pred, target)
    np.testing.assert_allclose(acc, [[0.75]])
    mean, per_class = iou(pred, target)
    np.testing.assert_allclose(per_class[0, 0, :2], [2 / 3, 1 / 2])
    assert np.isnan(per_class[0, 0, 2]) and np.isnan(mean).all()  # class 2 absent: the original's NaN
    np.testing.assert_allclose(iou(pred, target, ignore_absent=True)[0], [[(2 / 3 + 1 / 2) / 2]])


def test_best_of_samples_and_nan_masked_aggregation():
    from video_prediction.metrics.mspred_metrics import aggregate, select_best

    values = np.array([[[1.0, np.nan], [0.5, 0.7]], [[np.nan, np.nan], [2.0, 3.0]]])  # [B=2, S=2, F=2]
    best = select_best(values, lower_is_better=True)
    np.testing.assert_allclose(best[0], [1.0, np.nan])  # nansum 1.0 < 1.2
    np.testing.assert_allclose(best[1], [np.nan, np.nan])  # nansum 0 < 5
    stats = aggregate(np.array([[1.0, np.nan], [3.0, 4.0]]))
    assert stats["mean"] == 8 / 3 and stats["framewise"] == [2.0, 4.0]


def test_evaluate_levels_writes_per_level_results(tmp_path, lpips_weights):
    import json

    import tensorflow as tf

    from video_prediction.metrics.mspred_metrics import evaluate_levels, write_level_results
    from video_prediction.models import get_model_class

    model = get_model_class("mspred")(hparams_dict=dict(
        context_frames=3, sequence_length=11, num_preds=2, periods=[1, 2, 4], num_filters=4, dim=32, hidden_dim=8,
        num_layers=[1, 1, 1], latent_dim=2, prior_hidden_dim=4, posterior_hidden_dim=4, num_channels=3))
    rng = np.random.default_rng(0)

    class Data:
        sequence_length = 11

        def num_examples_per_epoch(self):
            return 2

        def make_dataset(self, batch_size, drop_remainder=False):
            batch = {"images": rng.uniform(size=(2, 11, 32, 32, 3)).astype(np.float32),
                     "heatmaps_level1": rng.uniform(size=(2, 11, 32, 32, 1)).astype(np.float32),
                     "heatmaps_level2": rng.uniform(size=(2, 11, 32, 32, 1)).astype(np.float32)}
            return [{k: tf.constant(v) for k, v in batch.items()}]

    results = evaluate_levels(model, Data(), "blobs", num_stochastic_samples=2, batch_size=2)
    assert results[0]["psnr"].shape == (2, 2) and set(results[1]) == {"mse", "mae"}
    assert results[0]["lpips"].shape == (2, 2) and np.all(results[0]["lpips"] > 0)
    write_level_results(results, str(tmp_path), model.level_target_frames())
    level2 = json.load(open(tmp_path / "metrics_level2.json"))
    assert level2["target_frames"] == [6, 10] and len(level2["framewise_mse"]) == 2
    assert (tmp_path / "results_ssim_valid_level_0.png").exists() and (tmp_path / "metrics_level1.csv").exists()
