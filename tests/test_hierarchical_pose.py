"""hierarchical_pose: the pose LSTM and the analogy generator chained at test time (spec §3.5); pose metrics."""

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.conversion.bookkeeping import write_run_directory
from video_prediction.layers import pose_rendering
from video_prediction.metrics import keypoints
from video_prediction.models import get_model_class
from video_prediction.models.hierarchical_pose import HierarchicalPoseVideoPredictionModel
from video_prediction.models.pose_analogy import PoseAnalogyVideoPredictionModel
from video_prediction.models.pose_lstm import PoseLSTMVideoPredictionModel

SIZE, JOINTS, CONTEXT, LENGTH = 16, 3, 3, 6


def batch_of(rng):
    return {"images": rng.uniform(size=(2, LENGTH, SIZE, SIZE, 3)).astype(np.float32),
            "poses": rng.uniform(2, SIZE - 2, (2, LENGTH, JOINTS, 2)).astype(np.float32),
            "pose_visibility": np.array([[[1, 0, 1]] * LENGTH] * 2, np.float32)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    batch = batch_of(rng)
    common = dict(context_frames=CONTEXT, sequence_length=LENGTH, batch_size=2)
    lstm = PoseLSTMVideoPredictionModel(hparams=dict(common, lstm_units=8, num_landmarks=JOINTS))
    lstm.build_from_batch(batch)
    analogy = PoseAnalogyVideoPredictionModel(hparams=dict(common, gf_dim=4, df_dim=4, alpha=0.0, beta=0.0,
                                                           num_joints=JOINTS))
    analogy.build_from_batch(batch)
    options = dict(dataset="moving_mnist_pose", input_dir=None, image_shape=[SIZE, SIZE, 3])
    write_run_directory(str(tmp / "lstm"), lstm, dict(options, model="pose_lstm"), {})
    write_run_directory(str(tmp / "analogy"), analogy, dict(options, model="pose_analogy"), {})
    return str(tmp / "lstm"), str(tmp / "analogy"), lstm, analogy, batch


def test_chained_prediction_follows_the_original_test_pipeline(runs):
    lstm_dir, analogy_dir, lstm, analogy, batch = runs
    model = HierarchicalPoseVideoPredictionModel(hparams=dict(
        context_frames=CONTEXT, sequence_length=LENGTH, pose_checkpoint=lstm_dir, image_checkpoint=analogy_dir,
        heatmap_sigma=2.0))
    assert get_model_class("hierarchical_pose") is HierarchicalPoseVideoPredictionModel
    out = model(batch)
    assert out["gen_images"].shape == (2, LENGTH - 1, SIZE, SIZE, 3)
    # the poses are the LSTM's (restored weights), the frames the generator's on the predicted poses' maps
    np.testing.assert_allclose(out["gen_poses"].numpy(), lstm(batch)["gen_poses"].numpy(), atol=1e-5)
    vis = out["gen_pose_visibility"].numpy()
    np.testing.assert_array_equal(vis[:, :CONTEXT], batch["pose_visibility"][:, :CONTEXT])
    assert np.all(vis[:, CONTEXT:] == 1)
    maps = pose_rendering.render_heatmaps(out["gen_poses"], vis, (SIZE, SIZE), sigma=2.0)
    expected = analogy({"images": batch["images"], "heatmaps": maps})["gen_images"].numpy()
    np.testing.assert_allclose(out["gen_images"].numpy(), expected, atol=1e-5)
    # the future ground truth is never looked at
    blind = {k: v.copy() for k, v in batch.items()}
    blind["images"][:, CONTEXT:] = 0.0
    blind["poses"][:, CONTEXT:] = 0.0
    np.testing.assert_allclose(model(blind)["gen_images"].numpy(), out["gen_images"].numpy(), atol=1e-5)
    assert model.generate(batch, horizon=7).shape == (2, 1, 7, SIZE, SIZE, 3)


def test_bad_configuration_is_one_clear_error(runs):
    lstm_dir, analogy_dir, *_ = runs
    with pytest.raises(ValueError, match="image_checkpoint"):
        HierarchicalPoseVideoPredictionModel(hparams=dict(context_frames=CONTEXT, sequence_length=LENGTH,
                                                          pose_checkpoint=lstm_dir))
    with pytest.raises(ValueError, match="expected 'pose_lstm'"):
        HierarchicalPoseVideoPredictionModel(hparams=dict(context_frames=CONTEXT, sequence_length=LENGTH,
                                                          pose_checkpoint=analogy_dir, image_checkpoint=analogy_dir))
    with pytest.raises(ValueError, match="context_frames"):
        HierarchicalPoseVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=LENGTH,
                                                          pose_checkpoint=lstm_dir, image_checkpoint=analogy_dir))


def test_keypoint_metrics_by_hand():
    target = np.array([[[0.0, 0.0], [10.0, 0.0], [0.0, 20.0]]])  # box 10 x 20 -> PCK threshold 4
    pred = target + np.array([[[3.0, 4.0], [0.0, 1.0], [0.0, 30.0]]])
    vis = np.array([[1, 1, 0]])
    np.testing.assert_allclose(keypoints.mpjpe(pred, target, vis), [3.0])  # (5 + 1) / 2
    np.testing.assert_allclose(keypoints.mpjpe(pred, target), [(5 + 1 + 30) / 3])
    # visible joints span 10 x 0 -> threshold 0.2 * 10 = 2: joint 1 (distance 1) correct, joint 0 (5) not
    np.testing.assert_allclose(keypoints.pck(pred, target, vis), [0.5])
    assert np.isnan(keypoints.mpjpe(pred, target, np.zeros((1, 3))))[0]


def test_inference_extras_pose_metrics_and_skeleton_gifs(tmp_path):
    """evaluate.py / generate.py hooks on a tiny moving_mnist_pose split: metrics vs the constant pose, GIFs."""
    import json
    import os

    from video_prediction.datasets.moving_mnist_pose import write_moving_mnist_pose
    from video_prediction.inference.extras import InferenceSettings, extras_for
    from video_prediction.training.building import build_dataset

    write_moving_mnist_pose(str(tmp_path / "data"), {"train": 2, "val": 2, "test": 3}, sequence_length=8,
                            canvas_size=32, progress=False)
    dataset = build_dataset("moving_mnist_pose", str(tmp_path / "data"), "test",
                            hparams="context_frames=3,sequence_length=6", num_epochs=1)
    model = PoseLSTMVideoPredictionModel(hparams=dict(context_frames=3, sequence_length=6, lstm_units=8,
                                                      num_landmarks=dataset.num_joints))
    extras = extras_for(model)
    settings = InferenceSettings(batch_size=2)
    message = extras.evaluate(dataset, str(tmp_path / "eval"), settings)
    assert "MPJPE" in message and "\n" not in message
    results = json.load(open(tmp_path / "eval" / "poses" / "pose_metrics.json"))
    assert results["num_videos"] == 3 and len(results["model_mpjpe"]["per_step"]) == 3
    # the constant baseline by hand on the same videos
    batch = next(iter(dataset.make_dataset(3, drop_remainder=False)))
    poses, vis = batch["poses"].numpy(), batch["pose_visibility"].numpy()
    expected = keypoints.mpjpe(np.repeat(poses[:, 2:3], 3, 1), poses[:, 3:6], vis[:, 3:6])
    np.testing.assert_allclose(results["constant_mpjpe"]["per_step"], np.nanmean(expected, 0), rtol=1e-6)
    assert "3 skeleton GIFs" in extras.write_dataset_outputs(dataset, str(tmp_path / "gen"), settings)
    assert sorted(os.listdir(tmp_path / "gen" / "poses")) == ["00000.gif", "00001.gif", "00002.gif"]
