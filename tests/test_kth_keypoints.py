"""KTH-MSPred reader on a fixture in the original layout (t7 metadata, keypoint JSON, PNG frames)."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from test_t7 import T7Writer
from video_prediction.datasets.heatmaps import gaussian_heatmaps
from video_prediction.datasets.kth_keypoints import CLASSES, KTHKeypointsVideoDataset


def write_kth(root, lengths, size=16):
    """One video per class; ``lengths[cls]`` frames, keypoint x drifting to the right over time."""
    for cls in CLASSES:
        for split in ("train", "test"):
            vid = f"person01_{cls}_d1"
            files = [f"image-{i:03d}_{size}x{size}.png" for i in range(1, lengths[cls] + 1)]
            os.makedirs(os.path.join(root, cls, vid), exist_ok=True)
            keypoints = {}
            for t, name in enumerate(files):
                frame = np.full((size, size, 3), t * 5, np.uint8)
                Image.fromarray(frame).save(os.path.join(root, cls, vid, name))
                points = [[(2 + k % 5 + 0.2 * t) / size, (3 + k) / size] for k in range(10)]
                keypoints[f"{vid}/{name}"] = points
            T7Writer().write([{"vid": vid, "files": [files]}]).save(
                os.path.join(root, cls, f"{split}_meta{size}x{size}.t7"))
            with open(os.path.join(root, cls, f"{split}_keypoints{size}x{size}.json"), "w") as f:
                json.dump(keypoints, f)


def test_test_split_targets_and_padding(tmp_path):
    lengths = {c: 8 for c in CLASSES}
    lengths["walking"] = 5  # short, walking: kept and padded only if >= 29 frames -> dropped here
    lengths["boxing"] = 12
    write_kth(str(tmp_path), lengths)
    dataset = KTHKeypointsVideoDataset(str(tmp_path), mode="test", hparams_dict=dict(
        context_frames=3, sequence_length=8, image_size=16))
    assert len(dataset.items) == 5 and "walking" not in [c for c, _, _ in dataset.items]
    item = dataset.load_item(0, None)  # boxing: 12 frames, start from random.Random(1234)
    import random
    first = random.Random(1234).randint(0, 12 - 8)
    np.testing.assert_allclose(item["images"][0, 0, 0, 0], first * 5 / 255, atol=1e-6)
    kpts = json.load(open(tmp_path / "boxing" / "test_keypoints16x16.json"))
    name = f"person01_boxing_d1/image-{first + 2:03d}_16x16.png"
    np.testing.assert_allclose(item["heatmaps_level1"][1], gaussian_heatmaps(kpts[name][:9], 16, 16, 1.0))
    np.testing.assert_allclose(item["heatmaps_level2"][1], gaussian_heatmaps(kpts[name][9:], 16, 16, 1.0))


def test_short_running_sequences_are_padded_and_flip_swaps_channels(tmp_path):
    lengths = {c: 30 for c in CLASSES}
    write_kth(str(tmp_path), lengths)
    dataset = KTHKeypointsVideoDataset(str(tmp_path), mode="train", hparams_dict=dict(
        context_frames=3, sequence_length=32, image_size=16, train_fraction=1.0))
    assert sorted(c for c, _, _ in dataset.items) == ["jogging", "running", "walking"]

    class Fixed:  # start 0, then "flip" (randint(0, 1) == 0)
        def randint(self, a, b):
            return 0

    index = [c for c, _, _ in dataset.items].index("running")
    plain = KTHKeypointsVideoDataset(str(tmp_path), mode="train", hparams_dict=dict(
        context_frames=3, sequence_length=32, image_size=16, train_fraction=1.0, horizontal_flip=False))
    a = plain.load_item([c for c, _, _ in plain.items].index("running"), Fixed())
    b = dataset.load_item(index, Fixed())
    np.testing.assert_array_equal(a["images"][30], a["images"][29])  # padded with the last frame
    np.testing.assert_array_equal(b["heatmaps_level1"][..., 1], a["heatmaps_level1"][:, :, ::-1, 2])
    np.testing.assert_array_equal(b["heatmaps_level1"][..., 0], a["heatmaps_level1"][:, :, ::-1, 0])
    batch = next(iter(dataset.make_dataset(2)))
    assert batch["images"].shape == (2, 32, 16, 16, 3) and batch["heatmap_weights"].shape == (2, 9)


def test_missing_keypoint_files_are_explained(tmp_path):
    write_kth(str(tmp_path), {c: 8 for c in CLASSES})
    os.remove(tmp_path / "boxing" / "test_keypoints16x16.json")
    with pytest.raises(ValueError, match="MSPred README"):
        KTHKeypointsVideoDataset(str(tmp_path), mode="test", hparams_dict=dict(
            context_frames=3, sequence_length=8, image_size=16))


def test_frame_extraction_script_on_an_avi(tmp_path):
    import subprocess
    import sys

    import imageio_ffmpeg

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "data"))
    from preprocess_kth_mspred import extract_frames

    raw = tmp_path / "raw" / "boxing"
    raw.mkdir(parents=True)
    # a 1 s, 25 fps 160x120 clip in an .avi container, as KTH's person01_boxing_d1_uncomp.avi
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=25:duration=1", "-c:v", "mjpeg",
                    str(raw / "person01_boxing_d1_uncomp.avi")], check=True)
    assert extract_frames(str(tmp_path), 16, progress=False) == 1
    frames = sorted(os.listdir(tmp_path / "processed" / "boxing" / "person01_boxing_d1"))
    assert len(frames) == 25 and frames[0] == "image-001_16x16.png"
    assert Image.open(tmp_path / "processed" / "boxing" / "person01_boxing_d1" / frames[0]).size == (16, 16)


def test_download_resumes_and_skips_finished_archives(tmp_path):
    import io
    import sys
    import tarfile
    import zipfile

    from local_http_server import FileServer

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "data"))
    from preprocess_kth_mspred import download_all

    from video_prediction.datasets.kth import KTH_ACTIONS

    meta = io.BytesIO()
    with tarfile.open(fileobj=meta, mode="w:gz") as tar:
        payload = b"t7 metadata"
        info = tarfile.TarInfo("boxing/train_meta64x64.t7")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    files = {"/kth.tar.gz": meta.getvalue()}
    for cls in KTH_ACTIONS:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr(f"person01_{cls}_d1_uncomp.avi", os.urandom(5000))  # incompressible: the cut lands mid-file
        files[f"/{cls}.zip"] = archive.getvalue()
    with FileServer(files, cut_once={"/boxing.zip"}) as server:
        download_all(str(tmp_path), server.url, progress=False)
        # the dropped transfer was resumed with a Range request
        assert any(path == "/boxing.zip" and rng for path, rng in server.requests)
        count = len(server.requests)
        download_all(str(tmp_path), server.url, progress=False)  # everything done: no request
        assert len(server.requests) == count
    assert (tmp_path / "processed" / "boxing" / "train_meta64x64.t7").read_bytes() == b"t7 metadata"
    for cls in KTH_ACTIONS:
        assert (tmp_path / "raw" / cls / f"person01_{cls}_d1_uncomp.avi").stat().st_size == 5000
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob("*.part"))
