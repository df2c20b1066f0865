"""EPVA's flat records: the original's file names and keys, legacy bicubic, conversion, the robot_data archive."""

import io
import os
import tarfile

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from local_http_server import FileServer
from video_prediction.datasets import get_dataset_class
from video_prediction.datasets.epva import epva_example
from video_prediction.datasets.epva_conversion import (ROBOT_PUSH_ARCHIVE, convert_to_epva_records,
                                                       download_and_prepare_robot_push)
from video_prediction.datasets.video_dataset import per_timestep_example


def jpeg(frame):
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def clip(video, length=10, size=16):
    """Smooth frames (JPEG-friendly) with pixel (0, 0) ~ 8 * t and the clip id in pixel (0, 1)."""
    y, x = np.mgrid[0:size, 0:size]
    frames = np.stack([np.stack([(x * 7 + t * 3) % 256, (y * 5 + video * 40) % 256, np.full_like(x, 128)], -1)
                       for t in range(length)]).astype(np.uint8)
    return frames


def original_record(video, length=10, size=16, robot=False, drop=None):
    """A record built key by key as the original's reader expects it (not with our writer)."""
    feature = {}
    for i, frame in enumerate(clip(video, length, size)):
        feature[f"image_{i}"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[jpeg(frame)]))
        if robot:
            feature[f"state_{i}"] = tf.train.Feature(float_list=tf.train.FloatList(value=[video, i, 0, 0, 1]))
            feature[f"action_{i}"] = tf.train.Feature(float_list=tf.train.FloatList(value=[video, -i, 0, 0, 2]))
            feature[f"joint_positions_{i}"] = tf.train.Feature(float_list=tf.train.FloatList(value=[i] * 7))
    feature.pop(drop, None)
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write(path, records):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)


@pytest.fixture(scope="module")
def original_dir(tmp_path_factory):
    """The original's human files: humans-train / humans-validation / humans-test, no extension."""
    root = tmp_path_factory.mktemp("epva_human")
    write(root / "humans-train", [original_record(v) for v in range(3)])
    write(root / "humans-validation", [original_record(3)])
    write(root / "humans-test", [original_record(4), original_record(5)])
    return root


def test_human_records_of_the_original(original_dir):
    dataset = get_dataset_class("epva_human36m")(str(original_dir), "test", num_epochs=1,
                                                 hparams_dict=dict(context_frames=1, sequence_length=4, frame_skip=2, image_size=16))
    assert dataset.filenames == [str(original_dir / "humans-test")] and dataset.frame_numbers == [0, 3, 6, 9]
    batch = next(iter(dataset.make_dataset(2)))
    assert batch["images"].shape == (2, 4, 16, 16, 3)
    expected = np.stack([tf.io.decode_jpeg(jpeg(f)).numpy() for f in clip(4)[[0, 3, 6, 9]]]) / 255.0
    np.testing.assert_allclose(batch["images"][0], expected, atol=1e-6)  # same size: no resize, as TF1
    assert batch["joint_poses"].shape == (2, 4, 12) and not np.any(batch["joint_poses"])  # human: zeros
    assert batch["actions"].shape == (2, 4, 5) and batch["states"].shape == (2, 4, 5)
    defaults = get_dataset_class("epva_human36m").default_hparams()
    assert (defaults["sequence_length"], defaults["frame_skip"], defaults["context_frames"]) == (32, 1, 5)
    robot = get_dataset_class("epva_robot").default_hparams()
    assert (robot["sequence_length"], robot["frame_skip"], robot["context_frames"], robot["use_state"]) == (
        20, 0, 2, True)
    assert get_dataset_class("epva_human36m")(str(original_dir), "val", hparams_dict=dict(
        context_frames=1, sequence_length=4, frame_skip=2)).filenames == [str(original_dir / "humans-validation")]


def test_legacy_bicubic_is_not_half_pixel(tmp_path):
    """TF1 resize_bicubic without half-pixel centres halves a 32x32 frame by taking every other pixel exactly."""
    frames = clip(0, 2, 32)
    write(tmp_path / "x-train", [original_record(0, 2, 32)])
    dataset = get_dataset_class("epva_human36m")(str(tmp_path), "train", num_epochs=1, seed=0,
                                                 hparams_dict=dict(context_frames=1, sequence_length=2, frame_skip=0, image_size=16))
    images = next(iter(dataset.make_dataset(1)))["images"][0].numpy()
    decoded = np.stack([tf.io.decode_jpeg(jpeg(f)).numpy() for f in frames]).astype(np.float32)
    np.testing.assert_allclose(images, decoded[:, ::2, ::2] / 255.0, atol=1e-5)
    half_pixel = tf.image.resize(decoded, (16, 16), method="bicubic").numpy() / 255.0
    assert np.abs(images - half_pixel).max() > 0.02
    augmented = get_dataset_class("epva_human36m")(str(tmp_path), "train", num_epochs=1, seed=0, hparams_dict=dict(
        context_frames=1, sequence_length=2, frame_skip=0, image_size=16, color_data_augment=True))
    shifted = next(iter(augmented.make_dataset(1)))["images"][0].numpy()
    assert np.abs(shifted - images).max() > 0.05
    # one hue delta per clip: the same shift of identical frames gives identical frames
    np.testing.assert_allclose(tf.image.rgb_to_hsv(np.clip(shifted, 0, 1))[..., 1:],
                               tf.image.rgb_to_hsv(np.clip(images, 0, 1))[..., 1:], atol=0.02)


def test_robot_records_and_writer_round_trip(tmp_path):
    write(tmp_path / "robot-train", [original_record(v, robot=True) for v in range(2)])
    frames = clip(7, 10)
    states = np.arange(50, dtype=np.float32).reshape(10, 5)
    written = epva_example(frames, states=states, actions=-states)  # joint_positions written as zeros
    write(tmp_path / "robot-test", [written.SerializeToString()])
    train = get_dataset_class("epva_robot")(str(tmp_path), "train", num_epochs=1, hparams_dict=dict(
        context_frames=1, sequence_length=5, image_size=16))
    batch = next(iter(train.make_dataset(2)))
    videos = batch["states"][:, 0, 0].numpy().astype(int)
    np.testing.assert_array_equal(batch["states"][:, :, 1], np.tile(np.arange(5.0), (2, 1)))
    np.testing.assert_array_equal(batch["actions"][:, :, 1], -np.tile(np.arange(5.0), (2, 1)))
    np.testing.assert_array_equal(batch["joint_poses"][:, :, :7], np.tile(np.arange(5.0)[:, None], (2, 1, 7)))
    np.testing.assert_array_equal(batch["joint_poses"][:, :, 7:], batch["states"])  # joints first, then state
    assert sorted(videos) == [0, 1]
    test = next(iter(get_dataset_class("epva_robot")(str(tmp_path), "test", num_epochs=1, hparams_dict=dict(
        context_frames=1, sequence_length=10, image_size=16)).make_dataset(1)))
    np.testing.assert_array_equal(test["states"][0], states)
    np.testing.assert_array_equal(test["actions"][0], -states)
    assert not np.any(test["joint_positions"])
    expected = np.stack([tf.io.decode_jpeg(jpeg(f)).numpy() for f in frames]) / 255.0
    assert np.abs(test["images"][0].numpy() - expected).max() < 0.05  # our JPEG quality 95 vs the test's 90


def test_bad_records(tmp_path, original_dir):
    write(tmp_path / "h-train", [original_record(0, length=5)])
    with pytest.raises(ValueError, match=r"h-train: record 0 has no feature 'image_6'.* reads frames 0\.\.6"):
        get_dataset_class("epva_human36m")(str(tmp_path), "train", hparams_dict=dict(context_frames=1, sequence_length=4,
                                                                                     frame_skip=1))
    with pytest.raises(ValueError, match=r"record 0 has no feature 'state_0'.*\(use_state=True"):
        get_dataset_class("epva_robot")(str(original_dir), "train", hparams_dict=dict(context_frames=1, sequence_length=4))
    bad = tmp_path / "bad"
    bad.mkdir()
    write(bad / "r-train", [original_record(0, robot=True, drop="joint_positions_3")])
    with pytest.raises(ValueError, match="no feature 'joint_positions_3'"):
        get_dataset_class("epva_robot")(str(bad), "train", hparams_dict=dict(context_frames=1, sequence_length=5))
    finn = tmp_path / "finn"
    finn.mkdir()
    write(finn / "push_train.tfrecord", [finn_record(0).SerializeToString()])
    with pytest.raises(ValueError, match="raw Finn et al. push records.*convert_to_epva_records"):
        get_dataset_class("epva_robot")(str(finn), "train", hparams_dict=dict(context_frames=1, sequence_length=4))
    with pytest.raises(ValueError, match="no EPVA record files for mode 'val'"):
        get_dataset_class("epva_robot")(str(finn), "val")
    with pytest.raises(ValueError, match="time_shift must be 0"):
        get_dataset_class("epva_robot")(str(original_dir), "train", hparams_dict=dict(time_shift=1))


def test_convert_a_dataset_with_poses(tmp_path):
    """The generic path (Human3.6M uses it): a registered dataset's batch dicts -> EPVA human records."""
    from video_prediction.datasets.moving_mnist import write_moving_mnist

    source = tmp_path / "mm"
    write_moving_mnist(str(source), {"train": 2, "val": 1, "test": 1}, sequence_length=12, canvas_size=32,
                       progress=False)
    out = tmp_path / "epva"
    info = convert_to_epva_records("moving_mnist", str(source), str(out), source_hparams=dict(
        context_frames=1, frame_skip=1), frames_per_record=3, test_frames_per_record=6, image_size=32, progress=False)
    # train: 12 stored frames / span 5 -> 2 clips per video; test: span 11 -> 1
    assert info["num_examples"] == {"train": 4, "val": 2, "test": 1}
    assert sorted(os.listdir(out)) == ["dataset_info.json", "epva-test_0_to_0.tfrecord",
                                       "epva-train_0_to_3.tfrecord", "epva-validation_0_to_1.tfrecord"]
    source_batch = next(iter(get_dataset_class("moving_mnist")(str(source), "test", num_epochs=1, hparams_dict=dict(
        context_frames=1, frame_skip=1, sequence_length=6)).make_dataset(1)))
    converted = next(iter(get_dataset_class("epva_human36m")(str(out), "test", num_epochs=1, hparams_dict=dict(
        context_frames=1, sequence_length=6, frame_skip=0, image_size=32)).make_dataset(1)))
    grey = converted["images"][0].numpy()
    assert np.abs(grey[..., :1] - source_batch["images"][0].numpy()).mean() < 0.01
    mtime = os.path.getmtime(out / "dataset_info.json")
    assert convert_to_epva_records("moving_mnist", str(source), str(out), source_hparams=dict(
        context_frames=1, frame_skip=1), frames_per_record=3, test_frames_per_record=6, image_size=32,
        progress=False) == info
    assert os.path.getmtime(out / "dataset_info.json") == mtime


def finn_record(video, length=6, joints=True):
    """A Finn et al. push record (the layout google_robot reads), with small frames."""
    frames = clip(video, length, 16)
    sequences = {"move/%d/image/encoded": [jpeg(f) for f in frames],
                 "move/%d/endeffector/vec_pitch_yaw": [[video, t, 1, 2, 3] for t in range(length)],
                 "move/%d/commanded_pose/vec_pitch_yaw": [[video, t + 0.5, 4, 5, 6] for t in range(length)]}
    if joints:
        sequences["move/%d/joint/positions"] = [[t] * 7 for t in range(length)]
    return per_timestep_example(sequences)


def test_convert_finn_push_records(tmp_path, monkeypatch):
    from video_prediction.datasets import google_robot

    monkeypatch.setattr(google_robot.GoogleRobotVideoDataset, "declared_image_shape", (16, 16, 3))
    for mode, videos in (("train", [0, 1]), ("test", [2])):
        (tmp_path / "push" / mode).mkdir(parents=True)
        write(tmp_path / "push" / mode / "push.tfrecord-00000", [finn_record(v).SerializeToString() for v in videos])
    info = convert_to_epva_records("google_robot", str(tmp_path / "push"), str(tmp_path / "out"), progress=False)
    assert info["num_examples"] == {"train": 2, "test": 1}
    batch = next(iter(get_dataset_class("epva_robot")(str(tmp_path / "out"), "test", num_epochs=1, hparams_dict=dict(
        context_frames=1, sequence_length=6, image_size=16)).make_dataset(1)))
    t = np.arange(6.0)
    np.testing.assert_array_equal(batch["states"][0], np.stack([np.full(6, 2.0), t, *np.ones((3, 6)) * [[1], [2], [3]]], 1))
    np.testing.assert_array_equal(batch["actions"][0][:, 1], t + 0.5)  # the last frame's commanded pose kept
    np.testing.assert_array_equal(batch["joint_positions"][0], np.tile(t[:, None], (1, 7)))


def test_robot_data_archive_download(tmp_path):
    """The authors' robot_data.tar.gz (here: EPVA-layout files), served locally, resumed after a cut."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, records in (("robot_data/robot-train", [original_record(v, robot=True) for v in range(3)]),
                              ("robot_data/robot-validation", [original_record(3, robot=True)])):
            path = tmp_path / "src"
            write(path, records)
            archive.add(path, arcname=name)
    data = buffer.getvalue()
    out = tmp_path / "robot_push"
    with FileServer({f"/{ROBOT_PUSH_ARCHIVE}": data}, cut_once={f"/{ROBOT_PUSH_ARCHIVE}"}) as server:
        info = download_and_prepare_robot_push(str(out), base_url=server.url, progress=False)
        assert any(r for _, r in server.requests)  # the cut transfer was resumed with a Range request
    assert info["num_examples"] == {"train": 3, "val": 1} and info["archive_layout"] == "epva"
    assert sorted(os.listdir(out)) == ["dataset_info.json", "robot_data-robot-train", "robot_data-robot-validation"]
    dataset = get_dataset_class("epva_robot")(str(out), "train", num_epochs=1, hparams_dict=dict(
        context_frames=1, sequence_length=10, image_size=16))
    assert dataset.num_examples_per_epoch() == 3
    assert download_and_prepare_robot_push(str(out), base_url="http://127.0.0.1:9", progress=False) == info
    broken = tmp_path / "broken"
    with FileServer({f"/{ROBOT_PUSH_ARCHIVE}": data[: len(data) // 2]}) as server:
        with pytest.raises(ValueError, match="robot_data.tar.gz"):
            download_and_prepare_robot_push(str(broken), base_url=server.url, progress=False)


def test_convert_human36m_records(h36m_dir, tmp_path):
    """human36m (50 fps, 64x64 crops) -> EPVA human records at 12.5 fps (fskip 4), read by epva_human36m."""
    out = tmp_path / "epva_h36m"
    info = convert_to_epva_records("human36m", str(h36m_dir), str(out), frames_per_record=4, test_frames_per_record=8,
                                   progress=False)
    # 40 stored frames per video; a 4-frame clip at fskip 4 spans 13 frames (3 clips), an 8-frame one 29 (1 clip)
    assert info["num_examples"] == {"train": 6, "test": 2} and info["fps"] == 12.5
    assert info["source_hparams"] == {"context_frames": 1, "fskip": 4}
    source = get_dataset_class("human36m")(str(h36m_dir), "test", num_epochs=1, hparams_dict=dict(
        context_frames=1, sequence_length=8))
    expected = next(iter(source.make_dataset(2)))["images"].numpy()
    dataset = get_dataset_class("epva_human36m")(str(out), "test", num_epochs=1, hparams_dict=dict(
        context_frames=1, sequence_length=8, frame_skip=0))
    images = next(iter(dataset.make_dataset(2)))["images"].numpy()
    assert images.shape == (2, 8, 64, 64, 3)
    assert np.abs(images - expected).mean() < 0.02  # JPEG of the same frames 0, 4, ..., 28
    # the source's own hparams can be overridden (here every frame: 50 fps clips of 20 frames)
    every = convert_to_epva_records("human36m", str(h36m_dir), str(tmp_path / "every"), modes=("test",),
                                    source_hparams={"fskip": 1}, test_frames_per_record=20, progress=False)
    assert every["num_examples"] == {"test": 4} and every["source_hparams"]["fskip"] == 1


def test_parity_with_the_original_reader(tmp_path):
    """Our reader on a record the original's own reader read (tests/data/epva/README.md): same tensors."""
    data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "epva")
    reference = np.load(os.path.join(data, "original_reader_output.npz"))
    dataset = get_dataset_class("epva_robot")(data, "train", num_epochs=1, hparams_dict=dict(
        context_frames=1, sequence_length=3, frame_skip=1))  # the original's sequence_length 5, skip_num 2
    batch = next(iter(dataset.make_dataset(1)))
    np.testing.assert_allclose(batch["images"], reference["images"], atol=2e-6)
    np.testing.assert_array_equal(batch["actions"], reference["actions"])
    np.testing.assert_array_equal(batch["joint_poses"], reference["joint_poses"])
    assert reference["images"].min() < 0 and reference["images"].max() > 1  # unclipped bicubic, kept
    # meaningful: the neighbouring frames (skip 1) differ from the reference by far more than the tolerance
    other = next(iter(get_dataset_class("epva_robot")(data, "train", num_epochs=1, hparams_dict=dict(
        context_frames=1, sequence_length=3, frame_skip=0)).make_dataset(1)))
    assert np.abs(other["images"][:, 1:] - reference["images"][:, 1:]).max() > 0.1


def test_robot_data_archive_of_raw_push_records(tmp_path, monkeypatch):
    """An archive holding Finn et al.'s raw push records is converted to EPVA's layout on the way."""
    from video_prediction.datasets import google_robot

    monkeypatch.setattr(google_robot.GoogleRobotVideoDataset, "declared_image_shape", (16, 16, 3))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, videos in (("push/push_train/push_train.tfrecord-00000-of-00001", [0, 1]),
                             ("push/push_testnovel/push_testnovel.tfrecord-00000-of-00001", [2])):
            write(tmp_path / "src", [finn_record(v).SerializeToString() for v in videos])
            archive.add(tmp_path / "src", arcname=name)
    out = tmp_path / "robot_push"
    with FileServer({f"/{ROBOT_PUSH_ARCHIVE}": buffer.getvalue()}) as server:
        info = download_and_prepare_robot_push(str(out), base_url=server.url, progress=False)
    assert info["num_examples"] == {"train": 2, "test": 1} and info["archive_layout"] == "finn_push (converted)"
    batch = next(iter(get_dataset_class("epva_robot")(str(out), "test", num_epochs=1, hparams_dict=dict(
        context_frames=1, sequence_length=6, image_size=16)).make_dataset(1)))
    np.testing.assert_array_equal(batch["states"][0, :, 0], np.full(6, 2.0))
    assert not os.path.exists(out / ".extracted") and not os.path.exists(out / ROBOT_PUSH_ARCHIVE)


def load_data_script(name):
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scripts_report_bad_input_in_one_line(tmp_path, original_dir, capsys):
    convert = load_data_script("convert_to_epva_records")
    assert convert.main(["--source", "no_such_set", "--input_dir", str(tmp_path), "--output_dir",
                         str(tmp_path / "o"), "--no_progress"]) == 1
    assert capsys.readouterr().err.strip().startswith("error: unknown dataset 'no_such_set'")
    assert convert.main(["--source", "moving_mnist", "--input_dir", str(tmp_path), "--output_dir",
                         str(tmp_path / "o"), "--no_progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no moving_mnist records in")
    push = load_data_script("preprocess_robot_push")
    with FileServer({}) as server:
        assert push.main(["--output_dir", str(tmp_path / "p"), "--base_url", server.url, "--no_progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "HTTP 404" in err[0] and ROBOT_PUSH_ARCHIVE in err[0]
