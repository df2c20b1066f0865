"""The TFRecord pipeline of datasets/base.py: discovery, round trip, slicing, errors."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.datasets.base import (VarLenFeatureVideoDataset, check_tfrecord_framing, find_tfrecords,
                                            varlen_example, verify_tfrecords, write_tfrecord_shards)


class CountingDataset(VarLenFeatureVideoDataset):
    """Frames whose every pixel equals the stored frame index: slicing is visible in the values."""

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(context_frames=2, sequence_length=4)
        return hparams


def counting_videos(num_videos, length, size=4):
    for v in range(num_videos):
        frames = np.broadcast_to(np.arange(length, dtype=np.uint8)[:, None, None, None] + 20 * v,
                                 (length, size, size, 1)).copy()
        yield varlen_example(frames)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    for mode, count in (("train", 6), ("test", 5)):
        write_tfrecord_shards(str(root / mode), counting_videos(count, 12), examples_per_file=4)
    return str(root)


def stored_indices(batch):
    """Stored frame index of every frame (pixel value mod 20)."""
    return np.round(batch["images"].numpy()[..., 0, 0, 0] * 255).astype(int) % 20


def test_discovery_sorted_and_shards(records):
    files = find_tfrecords(records, "train")
    assert [os.path.basename(f) for f in files] == ["sequence_0_to_3.tfrecord", "sequence_4_to_5.tfrecord"]


def test_round_trip_exact_frames(records):
    dataset = CountingDataset(records, "test", num_epochs=1)
    assert dataset.image_shape == (4, 4, 1) and dataset.num_examples_per_epoch() == 5
    batches = list(dataset.make_dataset(5))
    assert len(batches) == 1
    images = batches[0]["images"].numpy()
    assert images.dtype == np.float32 and images.shape == (5, 4, 4, 4, 1)
    expected = (np.arange(4)[None, :] + 20 * np.arange(5)[:, None]) / 255.0
    np.testing.assert_allclose(images[..., 0, 0, 0], expected, atol=1e-7)


def test_train_offsets_random_in_range_and_seeded(records):
    first = CountingDataset(records, "train", seed=3, hparams="time_shift=2")
    second = CountingDataset(records, "train", seed=3, hparams="time_shift=2")
    a = np.concatenate([stored_indices(b) for b in first.make_dataset(3).take(20)])
    b = np.concatenate([stored_indices(b) for b in second.make_dataset(3).take(20)])
    np.testing.assert_array_equal(a, b)
    starts = a[:, 0]
    assert set(starts) <= {0, 2, 4, 6, 8} and len(set(starts)) > 2  # (12-1-3)//2 = 4 shifts of 2
    np.testing.assert_array_equal(a - starts[:, None], np.broadcast_to(np.arange(4), a.shape))


def test_test_mode_starts_at_zero_and_frame_skip(records):
    dataset = CountingDataset(records, "test", hparams="frame_skip=2")
    indices = stored_indices(next(iter(dataset.make_dataset(2))))
    np.testing.assert_array_equal(indices, [[0, 3, 6, 9]] * 2)


def test_drop_remainder(records):
    dataset = CountingDataset(records, "test", num_epochs=1)
    assert [b["images"].shape[0] for b in dataset.make_dataset(2)] == [2, 2]
    assert [b["images"].shape[0] for b in dataset.make_dataset(2, drop_remainder=False)] == [2, 2, 1]


def test_short_records_are_skipped(tmp_path):
    write_tfrecord_shards(str(tmp_path / "test"), list(counting_videos(2, 3)) + list(counting_videos(1, 6)))
    dataset = CountingDataset(str(tmp_path), "test", num_epochs=1)
    assert dataset.num_examples_per_epoch() == 1
    assert sum(int(b["images"].shape[0]) for b in dataset.make_dataset(1)) == 1


def test_crop_and_scale(records):
    dataset = CountingDataset(records, "test", hparams="crop_size=2,scale_size=8")
    assert dataset.image_shape == (8, 8, 1)
    assert next(iter(dataset.make_dataset(1)))["images"].shape == (1, 4, 8, 8, 1)


def test_missing_and_empty_directories(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        CountingDataset(str(tmp_path / "missing"), "train")
    with pytest.raises(ValueError, match=r"no TFRecords .* for mode 'val'"):
        CountingDataset(str(tmp_path), "val")
    with pytest.raises(ValueError, match="unknown mode"):
        CountingDataset(str(tmp_path), "training")


def test_bad_hparams(records):
    with pytest.raises(ValueError, match="unknown hparam 'sequence_len'"):
        CountingDataset(records, "test", hparams="sequence_len=3")
    with pytest.raises(ValueError, match="context_frames must be in"):
        CountingDataset(records, "test", hparams="context_frames=4")


def test_truncated_file_names_the_file(tmp_path):
    [path] = write_tfrecord_shards(str(tmp_path / "test"), counting_videos(3, 6))
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) - 30])
    with pytest.raises(ValueError, match=r"corrupt TFRecord file .*sequence_0_to_2.tfrecord: record 2"):
        CountingDataset(str(tmp_path), "test")


def test_flipped_payload_found_by_verify(tmp_path):
    [path] = write_tfrecord_shards(str(tmp_path / "test"), counting_videos(3, 6))
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    check_tfrecord_framing(path)  # framing intact: only the payload checksum can tell
    with pytest.raises(ValueError, match=r"corrupt TFRecord file .*sequence_0_to_2.tfrecord: record 1"):
        verify_tfrecords([path])


def test_first_damaged_record_is_named_when_a_later_header_is_also_broken(tmp_path):
    # Found by scripts/fuzz_records.py (moving_mnist, seed 1, case 784): record 1's payload and record 2's length
    # field were both damaged; the header walk met record 2 first and named it.
    [path] = write_tfrecord_shards(str(tmp_path / "test"), counting_videos(4, 6))
    data = bytearray(open(path, "rb").read())
    record_starts, offset = [], 0
    while offset < len(data):
        record_starts.append(offset)
        offset += 12 + int.from_bytes(data[offset:offset + 8], "little") + 4
    data[record_starts[1] + 20] ^= 0xFF  # record 1's payload
    data[record_starts[2] + 3] ^= 0xFF  # record 2's length field
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match=r"sequence_0_to_3.tfrecord: record 1 cannot be read"):
        CountingDataset(str(tmp_path), "test")
    with pytest.raises(ValueError, match=r"sequence_0_to_3.tfrecord: record 1 cannot be read"):
        verify_tfrecords([path])
    skipping = CountingDataset(str(tmp_path), "test", num_epochs=1, skip_corrupt_records=True)
    assert [(r.index, r.lost) for r in skipping.corrupt_records] == [(1, 3)]
    assert len(list(skipping.make_dataset(1))) == 1


def test_inconsistent_frame_shapes_fail(tmp_path):
    small = varlen_example(np.zeros((6, 4, 4, 1), np.uint8))
    large = varlen_example(np.zeros((6, 5, 5, 1), np.uint8))
    write_tfrecord_shards(str(tmp_path / "test"), [small, large])
    dataset = CountingDataset(str(tmp_path), "test", num_epochs=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="frame shape differs"):
        list(dataset.make_dataset(1))


def test_varlen_example_rejects_non_uint8():
    with pytest.raises(ValueError, match="uint8"):
        varlen_example(np.zeros((2, 4, 4, 1), np.float32))
