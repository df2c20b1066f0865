"""scripts/fuzz_records.py's library: every registered TFRecord dataset's records, mutated, end in a named error
or an exact skip (or, where no reader can tell, the documented records); content checks in the parse path."""

import os

import numpy as np
import pytest
import tensorflow as tf

from fuzz_record_sets import RECORDS_PER_FILE, tfrecord_datasets, write_record_set
from video_prediction.datasets import available_datasets
from video_prediction.datasets import record_fuzzing
from video_prediction.datasets.record_fuzzing import GOOD_OUTCOMES, MUTATIONS, Fuzzer, read_split

CASES_PER_DATASET = 2  # kinds rotate over the datasets: every kind is met 3+ times in all


@pytest.fixture(scope="module")
def record_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("record_sets")
    return {name: write_record_set(name, str(root / name)) for name in tfrecord_datasets()}


def test_every_tfrecord_dataset_survives_fuzzing(record_sets):
    assert set(available_datasets()) - set(record_sets) == {"kth_mspred", "synpick"}  # read by Python code
    jobs = [(name, input_dir, hparams, CASES_PER_DATASET) for name, (input_dir, hparams) in record_sets.items()]
    results = record_fuzzing.fuzz_datasets(jobs, seed=3, timeout=240)
    everything = [r for name in results for r in results[name]]
    failed = record_fuzzing.failures(everything)
    assert not failed, "\n".join(f"{r['kind']} {r.get('file')} {r.get('detail')}: {r['outcome']}: {r['why']}"
                                 for r in failed)
    assert len(everything) == CASES_PER_DATASET * len(jobs)
    assert {r["kind"] for r in everything} == set(MUTATIONS)
    assert any(r["outcome"] == "error_named+skipped" for r in everything)
    print(record_fuzzing.outcome_table(everything))


def test_a_silently_wrong_batch_is_caught(record_sets, tmp_path, monkeypatch):
    """Without the parse-path checks a NaN passes through the read: the fuzzer must call that wrong."""
    from video_prediction.datasets.base import BaseVideoDataset

    input_dir, hparams = record_sets["moving_mnist"]
    fuzzer = Fuzzer("moving_mnist", input_dir, hparams, str(tmp_path / "case"))
    assert fuzzer.run_case("nonfinite_float", 0, 0)["outcome"] == "error_named+skipped"
    monkeypatch.setattr(BaseVideoDataset, "checked_parse", lambda self, serialized: self.parse(serialized))
    monkeypatch.setattr(BaseVideoDataset, "check_record", lambda self, serialized: tf.constant(True))
    assert fuzzer.run_case("nonfinite_float", 0, 0)["outcome"] == "wrong"


def test_bad_content_is_named_and_skipped_alone(record_sets, tmp_path):
    """A NaN pose in record 1 of the second file: strict names it; skipping leaves out that record only."""
    input_dir, hparams = record_sets["moving_mnist"]
    clean, _ = read_split("moving_mnist", input_dir, hparams, skip=False)
    work = str(tmp_path / "copy")
    record_fuzzing._work_copy(input_dir, work)
    path = sorted(p for p in (os.path.join(work, "test", f) for f in os.listdir(os.path.join(work, "test")))
                  if ".tfrecord" in p)[1]
    data = open(path, "rb").read()
    records = record_fuzzing.payloads(data, record_fuzzing.record_spans(path))
    example = tf.train.Example.FromString(records[1])
    example.features.feature["poses"].float_list.value[3] = np.nan
    records[1] = example.SerializeToString()
    os.remove(path)
    open(path, "wb").write(b"".join(record_fuzzing.framed(r) for r in records))
    with pytest.raises(ValueError, match=rf"corrupt TFRecord file {path}: record 1 has bad content "
                                         r"\(feature 'poses' holds NaN or Inf"):
        read_split("moving_mnist", work, hparams, skip=False)
    examples, dataset = read_split("moving_mnist", work, hparams, skip=True)
    expected = clean[:RECORDS_PER_FILE + 1] + clean[RECORDS_PER_FILE + 2:]
    assert len(examples) == len(expected) and all(np.array_equal(a["images"], b["images"])
                                                  for a, b in zip(examples, expected))
    assert [(r.path, r.index, r.lost) for r in dataset.corrupt_records] == [(path, 1, 1)]
    assert dataset.num_skipped_records == 1


def test_datasets_read_by_python_code_are_refused(tmp_path):
    for name in ("kth_mspred", "synpick"):
        with pytest.raises(ValueError, match=f"dataset '{name}' is not read from TFRecords"):
            Fuzzer(name, str(tmp_path), "", str(tmp_path / "case"))


def test_outcome_table_counts_each_kind():
    results = [dict(kind="byte_flip", outcome="error_named+skipped"), dict(kind="swap_records", outcome="hang")]
    table = record_fuzzing.outcome_table(results).splitlines()
    assert table[0].split(" | ")[-2:] == ["hang", "total"]
    assert [int(x) for x in table[-1].split(" | ")[1:]] == [1, 0, 0, 0, 1, 2]
    assert [r["outcome"] for r in record_fuzzing.failures(results)] == ["hang"] and "hang" not in GOOD_OUTCOMES
