"""moving_mnist_pose: the offline pose set, end to end through the shell entry point, read back with heatmaps."""

import importlib.util
import json
import os
import subprocess

import numpy as np
import pytest

from video_prediction.datasets import get_dataset_class
from video_prediction.datasets.moving_mnist import SPLIT_SEEDS, generate_videos, load_digit_pools
from video_prediction.datasets.moving_mnist_pose import generate_pose_videos, skeleton, write_moving_mnist_pose

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def pose_dir(tmp_path_factory):
    output = tmp_path_factory.mktemp("mmp") / "moving_mnist_pose"
    command = ["bash", os.path.join(ROOT, "data", "download_and_preprocess_dataset.sh"), "moving_mnist_pose",
               "--output_dir", str(output), "--num_train", "6", "--num_val", "2", "--num_test", "3",
               "--sequence_length", "12", "--image_size", "48", "--no_progress"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "10 joints" in result.stdout
    return output


def test_records_info_and_rerun_skips(pose_dir):
    info = json.loads((pose_dir / "dataset_info.json").read_text())
    assert info["num_examples"] == {"train": 6, "val": 2, "test": 3}
    assert len(info["joint_names"]) == 10 and info["joint_names"][0] == "digit0_centre"
    assert sorted(os.listdir(pose_dir / "test")) == ["sequence_0_to_2.tfrecord"]
    before = os.path.getmtime(pose_dir / "test" / "sequence_0_to_2.tfrecord")
    info2 = write_moving_mnist_pose(str(pose_dir), {"train": 6, "val": 2, "test": 3}, 12, 2, 48, progress=False)
    assert info2 == info and os.path.getmtime(pose_dir / "test" / "sequence_0_to_2.tfrecord") == before


def test_same_videos_as_moving_mnist_and_keypoints_bound_the_digits():
    pool = load_digit_pools()[0]["test"]
    plain = list(generate_videos(pool, 3, 8, 2, 48, SPLIT_SEEDS["test"]))
    posed = list(generate_pose_videos(pool, 3, 8, 2, 48, SPLIT_SEEDS["test"]))
    for (frames, centres), (frames2, points) in zip(plain, posed):
        np.testing.assert_array_equal(frames, frames2)
        assert points.shape == (8, 10, 2) and points.dtype == np.float32
        # MSPred's normalised centre (col + 14) / S is our centre pixel + 0.5, over S
        np.testing.assert_allclose((points[:, [0, 5]] + 0.5) / 48, centres, atol=1e-6)
        outside = np.ones(frames.shape[:3], bool)
        for t in range(8):
            for d in range(2):
                x0, y0 = points[t, 5 * d + 1].astype(int)
                x1, y1 = points[t, 5 * d + 4].astype(int)
                assert (x1 - x0, y1 - y0) == (27, 27)
                outside[t, y0:y1 + 1, x0:x1 + 1] = False
        assert frames[..., 0][outside].max() == 0 and frames.max() > 0


def test_reader_batches_follow_the_pose_contract(pose_dir):
    cls = get_dataset_class("moving_mnist_pose")
    assert cls.joint_names == skeleton(2)[0] and len(cls.limbs) == 16 and cls.heatmap_scheme == "joints"
    dataset = cls(str(pose_dir), "test", seed=1,
                  hparams="sequence_length=6,context_frames=2,heatmaps=true,heatmap_sigma=1.5")
    batch = next(iter(dataset.make_dataset(3)))
    assert batch["images"].shape == (3, 6, 48, 48, 1)
    assert batch["poses"].shape == (3, 6, 10, 2) and batch["pose_visibility"].shape == (3, 6, 10)
    assert batch["heatmaps"].shape == (3, 6, 48, 48, 10)
    np.testing.assert_array_equal(batch["labels"].numpy(), [-1, -1, -1])
    np.testing.assert_array_equal(batch["crop_box"].numpy()[0], [0, 0, 48, 48])
    maps, poses = batch["heatmaps"].numpy(), batch["poses"].numpy()
    flat = maps.reshape(3, 6, 48 * 48, 10).argmax(axis=2)
    peak_x, peak_y = flat % 48, flat // 48
    # the peak is the pixel nearest to the joint (corners are whole pixels; centres .5: either neighbour)
    assert np.abs(peak_x - poses[..., 0]).max() <= 0.5 and np.abs(peak_y - poses[..., 1]).max() <= 0.5
    np.testing.assert_allclose(maps.max(axis=(2, 3)), 1.0, atol=1e-6)
    scaled = cls(str(pose_dir), "test", seed=1, hparams="sequence_length=6,context_frames=2,scale_size=24")
    small = next(iter(scaled.make_dataset(3)))
    np.testing.assert_allclose(small["poses"].numpy(), poses / 2, atol=1e-5)


def test_bad_settings_give_one_line(tmp_path, capsys):
    with pytest.raises(ValueError, match="canvas_size must exceed"):
        write_moving_mnist_pose(str(tmp_path), {"train": 1}, 4, 2, 20, progress=False)
    spec = importlib.util.spec_from_file_location("preprocess_mmp", os.path.join(ROOT, "data",
                                                                                  "preprocess_moving_mnist_pose.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--output_dir", str(tmp_path), "--num_digits", "0"]) == 1
    assert capsys.readouterr().err.strip() == "error: num_digits must be >= 1, got 0"
