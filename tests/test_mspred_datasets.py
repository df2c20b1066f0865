"""MSPred's heatmap rasteriser and the Moving MNIST targets."""

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.datasets.heatmaps import gaussian_heatmaps, tf_gaussian_heatmaps
from video_prediction.datasets.moving_mnist import write_moving_mnist
from video_prediction.datasets.mspred_moving_mnist import MSPredMovingMNISTVideoDataset


def test_rasteriser_peak_patch_and_missing_keypoints():
    maps = gaussian_heatmaps([(0.5, 0.25), (0.0, 0.5), (0.99, 0.99)], 32, 32, sigma=1.0)
    assert maps.shape == (32, 32, 3)
    assert maps[8, 16, 0] == 1.0  # (x, y) -> pixel (row int(y*S), col int(x*S))
    assert np.count_nonzero(maps[..., 0]) == 81  # 6 sigma + 3 = 9 pixel square patch
    assert maps[8, 18, 0] == pytest.approx(np.exp(-2.0))
    assert not maps[..., 1].any()  # integer x == 0 marks a missing keypoint
    assert maps[31, 31, 2] == 1.0 and np.count_nonzero(maps[..., 2]) == 25  # 5x5 of the patch left at the corner


def test_wide_canvas_clips_to_the_square_window():
    maps = gaussian_heatmaps([(0.5, 0.5)], 16, 40, sigma=4.0)[..., 0]
    assert maps[8, 20] == 1.0
    # the patch reaches 13 px, but the original pastes an HxH window: columns 12..27
    assert maps[8, 12] > 0 and maps[8, 27] > 0
    assert not maps[:, :12].any() and not maps[:, 28:].any()


@pytest.mark.parametrize("sigma", [1.0, 2.0, 5.0])
def test_tf_rasteriser_equals_numpy(sigma):
    points = np.array([[0.3, 0.7], [0.05, 0.95], [0.0, 0.4], [0.51, 0.02]], np.float32)
    expected = gaussian_heatmaps(points, 40, 40, sigma)
    np.testing.assert_allclose(tf_gaussian_heatmaps(points, 40, 40, sigma).numpy(), expected, atol=1e-6)


def test_moving_mnist_batches_have_summed_centre_and_blob_targets(tmp_path):
    write_moving_mnist(str(tmp_path), {"train": 2, "val": 1, "test": 2}, sequence_length=8, canvas_size=32,
                       examples_per_file=2, progress=False)
    dataset = MSPredMovingMNISTVideoDataset(str(tmp_path), mode="test", num_epochs=1, seed=0,
                                            hparams_dict=dict(context_frames=3, sequence_length=8))
    batch = next(iter(dataset.make_dataset(2)))
    assert batch["images"].shape == (2, 8, 32, 32, 3)
    poses = batch["poses"].numpy()
    for level, sigma in ((1, 2.0), (2, 5.0)):
        maps = batch[f"heatmaps_level{level}"].numpy()
        assert maps.shape == (2, 8, 32, 32, 1)
        expected = gaussian_heatmaps(poses[1, 4], 32, 32, sigma).sum(-1)
        np.testing.assert_allclose(maps[1, 4, ..., 0], expected, atol=1e-6)
