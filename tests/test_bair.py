"""BAIR (softmotion) records in the original layout: frames, slicing, states/macro-actions; download end to end."""

import importlib.util
import os
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from local_http_server import FileServer
from video_prediction.datasets import get_dataset_class
from video_prediction.datasets.bair import BAIR_ARCHIVE, download_and_preprocess_bair, pixel_distribution
from video_prediction.datasets.video_dataset import per_timestep_example

STEPS = 30
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bair_video(video, steps=STEPS, size=64, object_pos=False):
    """Random frames whose pixel (0, 0) holds (t, video); states (video, t, 0.5); actions (video, t, t + .25, -t)."""
    rng = np.random.default_rng(video)
    frames = rng.integers(0, 256, (steps, size, size, 3), dtype=np.uint8)
    frames[:, 0, 0, 0] = np.arange(steps)
    frames[:, 0, 0, 1] = video % 256
    t = np.arange(steps, dtype=np.float32)
    sequences = {
        "%d/image_aux1/encoded": [f.tobytes() for f in frames],
        "%d/image_main/encoded": [f[::-1].tobytes() for f in frames],  # present in BAIR, must be ignored
        "%d/endeffector_pos": np.stack([np.full(steps, video), t, np.full(steps, 0.5)], 1),
        "%d/action": np.stack([np.full(steps - 1, video), t[:-1], t[:-1] + 0.25, -t[:-1]], 1),
    }
    if object_pos:  # one designated pixel moving right: (y, x) = (10.25, 3 + t)
        sequences["%d/object_pos"] = np.stack([np.full(steps, 10.25), 3.0 + t], 1)
    return frames, per_timestep_example(sequences)


def write_records(path, videos, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    frames = {}
    with tf.io.TFRecordWriter(str(path)) as writer:
        for video in videos:
            frames[video], example = bair_video(video, **kwargs)
            writer.write(example.SerializeToString())
    return frames


@pytest.fixture(scope="module")
def bair_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bair")
    frames = write_records(root / "train" / "traj_0_to_1.tfrecords", [0, 1])
    frames.update(write_records(root / "train" / "traj_2_to_3.tfrecords", [2, 3]))
    frames.update(write_records(root / "test" / "traj_0_to_1.tfrecords", [4, 5]))
    return str(root), frames


def identify(images):
    """(video, stored t) of every frame of a float batch, from pixel (0, 0)."""
    pixels = np.round(images[:, :, 0, 0, :2] * 255).astype(int)
    return pixels[..., 1], pixels[..., 0]


def test_defaults_and_registry(bair_dir):
    root, _ = bair_dir
    assert get_dataset_class("bair") is get_dataset_class("softmotion")
    dataset = get_dataset_class("bair")(root, "test")
    hp = dataset.hparams
    assert (hp.context_frames, hp.sequence_length, hp.long_sequence_length, hp.time_shift) == (2, 12, 30, 2)
    assert dataset.image_shape == (64, 64, 3) and dataset.stored_sequence_length == STEPS
    assert dataset.num_examples_per_epoch() == 2
    assert get_dataset_class("bair")(root, "train").num_examples_per_epoch() == 4


def test_test_frames_are_exact_and_start_at_zero(bair_dir):
    root, frames = bair_dir
    dataset = get_dataset_class("bair")(root, "test", num_epochs=1)
    (batch,) = list(dataset.make_dataset(2))
    assert set(batch) == {"images"}
    images = batch["images"].numpy()
    assert images.shape == (2, 12, 64, 64, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(np.round(images * 255).astype(np.uint8), np.stack([frames[4][:12], frames[5][:12]]))


def test_train_offsets_are_multiples_of_time_shift(bair_dir):
    root, frames = bair_dir
    dataset = get_dataset_class("bair")(root, "train", seed=5)
    starts = set()
    for batch in dataset.make_dataset(4).take(6):
        images = batch["images"].numpy()
        videos, times = identify(images)
        for b in range(4):
            start = times[b, 0]
            starts.add(start)
            np.testing.assert_array_equal(times[b], start + np.arange(12))
            np.testing.assert_array_equal(np.round(images[b] * 255).astype(np.uint8),
                                          frames[videos[b, 0]][start:start + 12])
    assert starts <= set(range(0, 19, 2)) and len(starts) > 3  # (30 - 12) // 2 = 9 shifts of 2


def test_states_and_macro_actions_with_frame_skip(bair_dir):
    root, _ = bair_dir
    dataset = get_dataset_class("bair")(root, "train", seed=1, hparams="use_state=True,frame_skip=1,sequence_length=6")
    for batch in dataset.make_dataset(3).take(3):
        videos, times = identify(batch["images"].numpy())
        states, actions = batch["states"].numpy(), batch["actions"].numpy()
        assert states.shape == (3, 6, 3) and actions.shape == (3, 5, 8)
        for b in range(3):
            video, start = videos[b, 0], times[b, 0]
            assert start % 2 == 0 and start <= 30 - 11
            np.testing.assert_array_equal(times[b], start + 2 * np.arange(6))
            np.testing.assert_allclose(states[b], np.stack([np.full(6, video), times[b], np.full(6, 0.5)], 1))
            # macro action k = actions of stored steps start + 2k and start + 2k + 1, concatenated
            t = start + np.arange(10, dtype=np.float32)
            raw = np.stack([np.full(10, video), t, t + 0.25, -t], 1)
            np.testing.assert_allclose(actions[b], raw.reshape(5, 8))


def test_sequence_length_zero_takes_the_longest_subclip(bair_dir):
    root, _ = bair_dir
    dataset = get_dataset_class("bair")(root, "test", hparams="sequence_length=0,frame_skip=2")
    assert dataset.sequence_length == 10  # (30 - 1) // 3 + 1
    _, times = identify(next(iter(dataset.make_dataset(1)))["images"].numpy())
    np.testing.assert_array_equal(times[0], 3 * np.arange(10))


def test_scale_and_crop(bair_dir):
    root, frames = bair_dir
    dataset = get_dataset_class("bair")(root, "test", hparams="crop_size=32,scale_size=16")
    images = next(iter(dataset.make_dataset(1)))["images"].numpy()
    assert dataset.image_shape == (16, 16, 3) and images.shape == (1, 12, 16, 16, 3)
    crop = frames[4][:12, 16:48, 16:48].astype(np.float64) / 255
    expected = crop.reshape(12, 16, 2, 16, 2, 3).mean(axis=(2, 4))  # area resize by 2 = 2x2 means
    np.testing.assert_allclose(images[0], expected, atol=1e-5)


def test_object_pos_gives_pixel_distributions(tmp_path):
    write_records(tmp_path / "test" / "traj_0_to_0.tfrecords", [0], size=16, object_pos=True)
    batch = next(iter(get_dataset_class("bair")(str(tmp_path), "test").make_dataset(1)))
    maps = batch["pix_distribs"].numpy()
    assert maps.shape == (1, 12, 16, 16, 1)
    np.testing.assert_allclose(maps.sum(axis=(2, 3)), 1.0, atol=1e-6)
    np.testing.assert_allclose(maps[0, 4, 10:12, 7, 0], [0.75, 0.25], atol=1e-6)  # x = 3 + 4, y = 10.25
    # a position past the right edge only keeps its in-image pixels
    edge = pixel_distribution(tf.constant([[2.0, 15.5]]), 16, 16).numpy()
    assert edge[0, 2, 15] == pytest.approx(0.5) and edge.sum() == pytest.approx(0.5)


def test_bad_input_errors(tmp_path, bair_dir):
    root, _ = bair_dir
    with pytest.raises(ValueError, match=r"does not exist"):
        get_dataset_class("bair")(str(tmp_path / "missing"), "train")
    with pytest.raises(ValueError, match=r"stores 30-frame videos; sequence_length=31"):
        get_dataset_class("bair")(root, "test", hparams="sequence_length=31")
    # a later record with 32x32 frames: a clear error when it is read
    mixed = tmp_path / "mixed" / "test"
    write_records(mixed / "traj_0_to_0.tfrecords", [0])
    write_records(mixed / "traj_1_to_1.tfrecords", [1], size=32)
    dataset = get_dataset_class("bair")(str(tmp_path / "mixed"), "test", num_epochs=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"does not have the 12288 bytes of a raw \(64, 64, 3\)"):
        list(dataset.make_dataset(1))
    # two image names and neither preferred one
    other = tmp_path / "other" / "test"
    other.mkdir(parents=True)
    example = per_timestep_example({"%d/image_a/encoded": [b"x" * 12] * 3, "%d/image_b/encoded": [b"x" * 12] * 3})
    with tf.io.TFRecordWriter(str(other / "traj_0_to_0.tfrecords")) as writer:
        writer.write(example.SerializeToString())
    with pytest.raises(ValueError, match=r"found \['image_a', 'image_b'\]"):
        get_dataset_class("bair")(str(tmp_path / "other"), "test")


# -- download and layout ---------------------------------------------------------------------------


def small_shard(first, last):
    """Serialized tiny (8x8, 12-step) BAIR-layout videos ``first..last``."""
    return [bair_video(v, steps=12, size=8)[1].SerializeToString() for v in range(first, last + 1)]


def test_download_and_preprocess_end_to_end(tmp_path):
    # Real BAIR files hold 256 videos each; only the one moved to val needs its real name (and size) here.
    shards = {"train": [(0, 1), (256, 511), (512, 513)], "test": [(0, 1)]}
    staging = tmp_path / "staging"
    archive = tmp_path / BAIR_ARCHIVE
    with tarfile.open(archive, "w") as tar:
        for split, ranges in shards.items():
            for first, last in ranges:
                path = staging / f"{split}_{first}.tfrecords"
                staging.mkdir(exist_ok=True)
                with tf.io.TFRecordWriter(str(path)) as writer:
                    for record in small_shard(first, last):
                        writer.write(record)
                tar.add(path, f"softmotion30_44k/{split}/traj_{first}_to_{last}.tfrecords")
    output = tmp_path / "bair"
    # The script's main in this process (test_kth runs the shell dispatch; a second TensorFlow start costs time).
    spec = importlib.util.spec_from_file_location("preprocess_bair", os.path.join(ROOT, "data", "preprocess_bair.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with FileServer({f"/{BAIR_ARCHIVE}": archive.read_bytes()}, cut_once={f"/{BAIR_ARCHIVE}"}) as server:
        assert script.main(["--output_dir", str(output), "--base_url", server.url, "--no_progress"]) == 0
        assert [r for _, r in server.requests][1].startswith("bytes=")  # the dropped transfer was resumed
        info = download_and_preprocess_bair(str(output), server.url, progress=False)  # second run: nothing to do
        assert len(server.requests) == 2
    assert sorted(os.listdir(output / "train")) == ["traj_0_to_1.tfrecords", "traj_512_to_513.tfrecords"]
    assert os.listdir(output / "val") == ["traj_256_to_511.tfrecords"]
    assert not (output / BAIR_ARCHIVE).exists()
    assert info["num_examples"] == {"train": 4, "val": 256, "test": 2}
    dataset = get_dataset_class("bair")(str(output), "val", num_epochs=1, hparams="use_state=True")
    assert dataset.num_examples_per_epoch() == 256 and dataset.image_shape == (8, 8, 3)
    batch = next(iter(dataset.make_dataset(2)))
    videos, times = identify(batch["images"].numpy())
    np.testing.assert_array_equal(videos[:, 0], [256 % 256, 257 % 256])  # the val file's first videos
    np.testing.assert_array_equal(times, np.broadcast_to(np.arange(12), (2, 12)))


def test_input_iterator_can_be_checkpointed(bair_dir, tmp_path):
    root, _ = bair_dir
    dataset = get_dataset_class("bair")(root, "train", seed=2, hparams="use_state=True")
    iterator = iter(dataset.make_dataset(2))
    next(iterator)
    saved = tf.train.Checkpoint(iterator=iterator).write(str(tmp_path / "input"))
    expected = next(iterator)
    restored = iter(dataset.make_dataset(2))
    tf.train.Checkpoint(iterator=restored).read(saved).assert_consumed()
    batch = next(restored)
    for key in ("images", "states", "actions"):
        np.testing.assert_array_equal(batch[key].numpy(), expected[key].numpy())
