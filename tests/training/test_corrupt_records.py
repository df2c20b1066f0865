"""Corrupt and truncated TFRecords: one error naming file and record, or a counted skip — never wrong frames.

The fuzz test runs in a child process (this file's ``__main__``) under a
timeout, so a hang or an interpreter crash fails the test instead of the run.
"""

import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
DATASET_HPARAMS = "context_frames=2,sequence_length=4"
RECORDS_PER_FILE = 3
FUZZ_CASES = 60  # flips of 1-3 bytes and truncations (half of them at a record boundary)


def write_records(directory):
    from video_prediction.datasets.moving_mnist import write_moving_mnist

    write_moving_mnist(directory, {"train": 2, "val": 2, "test": 2 * RECORDS_PER_FILE}, sequence_length=4,
                       canvas_size=32, examples_per_file=RECORDS_PER_FILE, progress=False)
    return directory


def record_spans(path):
    """``[(start, end)]`` byte span of every record (header, payload and checksum) of a clean file."""
    data = open(path, "rb").read()
    spans, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset:offset + 8])
        spans.append((offset, offset + 12 + length + 4))
        offset = spans[-1][1]
    return spans


def read_all(directory, skip=False):
    """Every example of the test split in order, as numpy dicts; the dataset too."""
    from video_prediction.datasets.base import checked_batches
    from video_prediction.datasets.moving_mnist import MovingMNISTVideoDataset

    dataset = MovingMNISTVideoDataset(directory, "test", num_epochs=1, hparams=DATASET_HPARAMS,
                                      skip_corrupt_records=skip)
    examples = [{k: v.numpy()[0] for k, v in batch.items()} for batch in checked_batches(dataset, 1)]
    return examples, dataset


def mutate(data, spans, rng):
    """A random flip or truncation of ``data``: ``(new bytes, kind, index of the first damaged record)``."""
    data = bytearray(data)
    if rng.random() < 0.6:
        offsets = sorted(set(int(o) for o in rng.integers(0, len(data), size=rng.integers(1, 4))))
        for offset in offsets:
            data[offset] ^= int(rng.integers(1, 256))
        first = min(i for i, (start, end) in enumerate(spans) if start <= offsets[0] < end)
        return bytes(data), "flip", first
    if rng.random() < 0.5:  # at a record boundary: every record left is intact, some are missing
        keep = int(rng.integers(0, len(spans)))
        return bytes(data[: spans[keep][0]] if keep else b""), "truncate_boundary", keep
    cut = int(rng.integers(1, len(data)))
    first = next(i for i, (start, end) in enumerate(spans) if start < cut < end or start == cut)
    return bytes(data[:cut]), "truncate", first


def run_fuzz(clean_dir, work_dir, cases, seed):
    """Mutate one file per case and read the split strictly and with skipping; returns the outcome counts."""
    import re

    clean, _ = read_all(clean_dir)
    files = sorted(os.listdir(os.path.join(clean_dir, "test")))
    rng = np.random.default_rng(seed)
    outcomes = {"error_named": 0, "skipped_and_counted": 0, "records_fuzzed": 0, "unexpected": []}
    for case in range(cases):
        shutil.rmtree(work_dir, ignore_errors=True)
        shutil.copytree(clean_dir, work_dir)
        file_index = int(rng.integers(len(files)))
        path = os.path.join(work_dir, "test", files[file_index])
        clean_bytes = open(path, "rb").read()
        new_bytes, kind, first_bad = mutate(clean_bytes, record_spans(path), rng)
        with open(path, "wb") as f:
            f.write(new_bytes)
        outcomes["records_fuzzed"] += 1

        def unexpected(what):
            outcomes["unexpected"].append(f"case {case} ({kind}, {files[file_index]}, record {first_bad}): {what}")

        # Strict: one ValueError naming the file and the first damaged record.
        try:
            read_all(work_dir)
            unexpected("no error")
        except ValueError as e:
            message = str(e)
            match = re.search(r"record (\d+)|holds (\d+) records", message)
            named = int(next(g for g in match.groups() if g is not None)) if match else None
            if path not in message or named != first_bad:
                unexpected(f"error does not name the file and record {first_bad}: {message}")
            else:
                outcomes["error_named"] += 1
        # Skipping: exactly the intact records before the damage, bitwise equal to the clean ones, counted.
        first_lost = file_index * RECORDS_PER_FILE + first_bad
        expected = clean[:first_lost] + clean[(file_index + 1) * RECORDS_PER_FILE:]
        try:
            examples, dataset = read_all(work_dir, skip=True)
        except ValueError as e:
            unexpected(f"skipping raised {e}")
            continue
        same = len(examples) == len(expected) and all(
            a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a) for a, b in zip(examples, expected))
        counted = [(os.path.basename(r.path), r.index) for r in dataset.corrupt_records]
        lost = RECORDS_PER_FILE - first_bad
        if not same:
            unexpected(f"skipping gave {len(examples)} examples, expected the {len(expected)} intact ones")
        elif counted != [(files[file_index], first_bad)] or dataset.num_skipped_records != lost:
            unexpected(f"skip count wrong: {counted}, {dataset.num_skipped_records} skipped, {lost} lost")
        else:
            outcomes["skipped_and_counted"] += 1
    return outcomes


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return write_records(str(tmp_path_factory.mktemp("records")))


def test_clean_records_read_the_same_with_and_without_skipping(records):
    strict, _ = read_all(records)
    skipping, dataset = read_all(records, skip=True)
    assert len(strict) == 2 * RECORDS_PER_FILE and dataset.corrupt_records == []
    for a, b in zip(strict, skipping):
        np.testing.assert_array_equal(a["images"], b["images"])


def test_crc_of_payload_is_checked(records, tmp_path):
    """A flipped payload byte keeps the framing intact: only the record's CRC-32C can catch it."""
    work = str(tmp_path / "copy")
    shutil.copytree(records, work)
    path = os.path.join(work, "test", sorted(os.listdir(os.path.join(work, "test")))[1])
    start, end = record_spans(path)[2]
    data = bytearray(open(path, "rb").read())
    data[(start + 12 + end - 4) // 2] ^= 0x01  # one bit in the middle of record 2's payload
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match=rf"corrupt TFRecord file {path}: record 2 cannot be read"):
        read_all(work)
    examples, dataset = read_all(work, skip=True)
    assert len(examples) == 2 * RECORDS_PER_FILE - 1 and dataset.num_skipped_records == 1


def test_skip_needs_a_tfrecord_dataset():
    from video_prediction.training.building import build_dataset

    with pytest.raises(ValueError, match="not read from TFRecords"):
        build_dataset("kth_mspred", "/nonexistent", "train", skip_corrupt_records=True)


def test_fuzzed_records_end_in_a_named_error_or_a_counted_skip(records, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), records, str(tmp_path / "work"), str(FUZZ_CASES), "7"],
        capture_output=True, text=True, env=env, timeout=900)  # a bound for hangs; ~2-4 min idle with the content scan
    assert result.returncode == 0, f"fuzz child crashed (rc {result.returncode}):\n{result.stderr[-3000:]}"
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcomes["unexpected"] == [], "\n".join(outcomes["unexpected"])
    assert outcomes["records_fuzzed"] == FUZZ_CASES
    assert outcomes["error_named"] == FUZZ_CASES and outcomes["skipped_and_counted"] == FUZZ_CASES


if __name__ == "__main__":
    clean_dir, work_dir, cases, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(run_fuzz(clean_dir, work_dir, cases, seed)))
