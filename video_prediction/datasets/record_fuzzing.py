"""Fuzzing the records of any TFRecord dataset: mutate one file per case, read it strictly and with skipping.

Each case copies nothing but the mutated file (the rest of the input
directory is symlinked), applies one mutation to one file of the split and
reads the split twice, in ``test`` mode (no shuffling, clips from frame 0):

* strictly: the read must either raise one ``ValueError`` naming the file and
  the record (``corrupt TFRecord file <path>: record <i> ...``) or, where the
  mutation is by nature not detectable, return exactly the records the
  expectation says;
* with ``skip_corrupt_records``: it must return exactly the intact records,
  bitwise equal to the clean read's, and list the damaged file.

The expectation of each mutation kind (:data:`MUTATIONS`):

========================  ==============================================================================
``byte_flip``             1-3 random bytes of one file flipped: strict names the first damaged record; skip
                          returns the records before it and every other file (a reader cannot find the
                          record boundaries past broken framing, so the rest of that file is lost).
``truncate``              the file cut inside a record: as ``byte_flip``.
``truncate_boundary``     the file cut between two records: detectable only when the shard name promises
                          a count (``<prefix>_<a>_to_<b>.tfrecord``): strict names the first missing record,
                          skip returns the records left.  Otherwise nothing in the bytes tells: both reads
                          return the records left, without error.
``zero_length``           the file emptied: as ``truncate_boundary`` with no record left.
``duplicate_record``      one record written twice in a row: with a count-promising name, strict names the
                          file (it holds one record too many) and skip returns the records as stored (the
                          copy included: which one is extra cannot be known) and lists the file; otherwise
                          both reads return the stored records (the copy included), without error.
``swap_records``          two records of a file exchanged: records carry no index, so no reader can tell;
                          both reads return exactly the permuted records, without error.
``wrong_feature_type``    one feature of one record stored as another kind (bytes/float/int64): if the
                          dataset reads that feature, strict names the record and skip leaves out exactly
                          that record; if it does not read it, both reads return the clean records
                          ("ignored").
``wrong_image_size``      one frame of one record replaced by an image of another size (raw bytes, or a
                          JPEG/PNG of the same format): as ``wrong_feature_type``; a dataset whose reader
                          resizes every frame by design (``resizes_frames``, e.g. EPVA as its original)
                          returns that record resized and every other record unchanged ("resized").
``nonfinite_float``       one value of a float feature of one record set to NaN, +Inf or -Inf: as
                          ``wrong_feature_type``.
========================  ==============================================================================

Content mutations never touch the first record of the first file: the
readers take the layout (frame size, features, use_state dimensions) from
it, so every other record is judged against it; damage there is an error of
the whole split (each reader's layout checks and their tests).

The clips must be fixed functions of the records: a split read with random
offsets (``force_time_shift``, KTH's default) is refused; pass
``force_time_shift=False``.

Each case runs in a worker process; the parent gives it ``timeout`` seconds
per case and restarts it after a crash or a hang, which count as failures.
"""

import collections
import io
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

MUTATIONS = ("byte_flip", "truncate", "truncate_boundary", "zero_length", "duplicate_record", "swap_records",
             "wrong_feature_type", "wrong_image_size", "nonfinite_float")
#: Outcomes that pass; anything else (``wrong``, ``crash``, ``hang``) fails the run.
GOOD_OUTCOMES = ("error_named+skipped", "undetectable_as_documented", "ignored", "resized")
OUTCOMES = GOOD_OUTCOMES + ("wrong", "crash", "hang")
SPLIT = "test"
_ERROR = re.compile(r"corrupt TFRecord file (.+?): (?:record (\d+)|it holds (\d+) records)")


# -- record files --------------------------------------------------------------------------------------


def record_spans(path):
    """``[(start, end)]`` byte span of every record (header, payload and checksum) of a clean file."""
    with open(path, "rb") as f:
        data = f.read()
    spans, offset = [], 0
    while offset < len(data):
        if offset + 12 > len(data):
            raise ValueError(f"{path} is not a clean uncompressed TFRecord file")
        (length,) = struct.unpack("<Q", data[offset:offset + 8])
        spans.append((offset, offset + 12 + length + 4))
        offset = spans[-1][1]
    if offset != len(data):
        raise ValueError(f"{path} is not a clean uncompressed TFRecord file")
    return spans


def framed(payload):
    """One TFRecord (length, its masked CRC-32C, payload, its masked CRC-32C)."""
    import tensorflow as tf

    # TensorFlow's writer computes both checksums; write one record to memory through a temporary file.
    with tempfile.NamedTemporaryFile(suffix=".tfrecord", delete=False) as f:
        path = f.name
    try:
        with tf.io.TFRecordWriter(path) as writer:
            writer.write(payload)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.remove(path)


def payloads(data, spans):
    return [data[start + 12:end - 4] for start, end in spans]


# -- mutations ----------------------------------------------------------------------------------------


Mutation = collections.namedtuple("Mutation", "kind file data detail expect")
"""``expect``: dict with ``strict`` (None: no error, else the record index the error must name),
``kept`` (the file's clean record indices the skipping read returns, in order, possibly repeated),
``strict_kept`` (what a strict read without error returns), ``content`` (the record whose content changed)."""


def _image_like(value, image_shape):
    height, width, channels = image_shape
    return (len(value) == height * width * channels or value[:2] == b"\xff\xd8"
            or value[:8] == b"\x89PNG\r\n\x1a\n")


def _other_size_image(value, image_shape):
    """An image of another size in ``value``'s encoding (raw bytes, JPEG or PNG)."""
    height, width, channels = image_shape
    if value[:2] == b"\xff\xd8" or value[:8] == b"\x89PNG\r\n\x1a\n":
        from PIL import Image

        image = Image.open(io.BytesIO(value))
        bigger = image.resize((image.width + 2, image.height + 1))
        buffer = io.BytesIO()
        bigger.save(buffer, format="PNG" if value[:4] == b"\x89PNG" else "JPEG")
        return buffer.getvalue()
    return bytes(value[: (height - 1) * width * channels])  # one row short


def _content_mutation(kind, example, rng, image_shape):
    """Mutate a ``tf.train.Example`` in place; returns a description, or None if it has nothing to mutate."""
    features = example.features.feature
    names = sorted(features.keys())
    if kind == "wrong_feature_type":
        name = names[int(rng.integers(len(names)))]
        feature = features[name]
        which = feature.WhichOneof("kind")
        if which == "bytes_list":
            values = [float(len(v)) for v in feature.bytes_list.value] or [1.0]
            feature.ClearField("bytes_list")
            feature.float_list.value.extend(values)
            return f"{name}: bytes -> float"
        if which == "float_list":
            values = [int(v) if np.isfinite(v) else 0 for v in feature.float_list.value] or [1]
            feature.ClearField("float_list")
            feature.int64_list.value.extend(values)
            return f"{name}: float -> int64"
        values = [str(v).encode() for v in feature.int64_list.value] or [b"1"]
        feature.ClearField("int64_list")
        feature.bytes_list.value.extend(values)
        return f"{name}: {which or 'empty'} -> bytes"
    if kind == "wrong_image_size":
        frames = [(name, i) for name in names if features[name].WhichOneof("kind") == "bytes_list"
                  for i, value in enumerate(features[name].bytes_list.value) if _image_like(value, image_shape)]
        if not frames:
            return None
        name, i = frames[int(rng.integers(len(frames)))]
        values = features[name].bytes_list.value
        values[i] = _other_size_image(values[i], image_shape)
        return f"{name}[{i}]"
    if kind == "nonfinite_float":
        floats = [name for name in names
                  if features[name].WhichOneof("kind") == "float_list" and len(features[name].float_list.value)]
        if not floats:
            return None
        name = floats[int(rng.integers(len(floats)))]
        values = features[name].float_list.value
        i = int(rng.integers(len(values)))
        values[i] = float(rng.choice([np.nan, np.inf, -np.inf]))
        return f"{name}[{i}] = {values[i]}"
    raise ValueError(kind)


def mutate(kind, files, rng, image_shape):
    """One :class:`Mutation` of one of ``files`` (clean, uncompressed), or None when ``kind`` does not apply."""
    import tensorflow as tf

    file_index = int(rng.integers(len(files)))
    path = files[file_index]
    with open(path, "rb") as f:
        data = f.read()
    spans = record_spans(path)
    count = len(spans)
    promised = _promised_count(path)
    every = list(range(count))
    if kind == "byte_flip":
        offsets = sorted({int(o) for o in rng.integers(0, len(data), size=int(rng.integers(1, 4)))})
        new = bytearray(data)
        for offset in offsets:
            new[offset] ^= int(rng.integers(1, 256))
        first = next(i for i, (start, end) in enumerate(spans) if start <= offsets[0] < end)
        return Mutation(kind, file_index, bytes(new), f"bytes {offsets}", dict(strict=first, kept=every[:first]))
    if kind == "truncate":
        cut = int(rng.integers(1, len(data)))
        if any(start == cut for start, _ in spans):
            cut += 1  # inside a record: truncate_boundary is the other case
        first = next(i for i, (start, end) in enumerate(spans) if start < cut < end)
        return Mutation(kind, file_index, data[:cut], f"at byte {cut} of {len(data)}",
                        dict(strict=first, kept=every[:first]))
    if kind in ("truncate_boundary", "zero_length"):
        keep = 0 if kind == "zero_length" else int(rng.integers(0, count))
        new = data[:spans[keep][0]] if keep else b""
        detectable = promised is not None
        return Mutation(kind, file_index, new, f"{keep} of {count} records left",
                        dict(strict=keep if detectable else None, kept=every[:keep]))
    records = payloads(data, spans)
    if kind == "duplicate_record":
        i = int(rng.integers(count))
        order = every[:i + 1] + every[i:]
        new = b"".join(framed(records[j]) for j in order)
        detectable = promised is not None
        return Mutation(kind, file_index, new, f"record {i} twice", dict(strict=count + 1 if detectable else None,
                                                                          kept=order, strict_kept=order))
    if kind == "swap_records":
        if count < 2:
            return None
        i, j = sorted(int(x) for x in rng.choice(count, size=2, replace=False))
        order = list(every)
        order[i], order[j] = j, i
        new = b"".join(framed(records[k]) for k in order)
        return Mutation(kind, file_index, new, f"records {i} and {j}", dict(strict=None, kept=order,
                                                                             strict_kept=order))
    # content mutations: a well-framed record whose features are wrong (never the layout record, see above)
    candidates = [i for i in every if not (file_index == 0 and i == 0)]
    if not candidates:
        return None
    i = candidates[int(rng.integers(len(candidates)))]
    example = tf.train.Example.FromString(records[i])
    detail = _content_mutation(kind, example, rng, image_shape)
    if detail is None:
        return None
    records = list(records)
    records[i] = example.SerializeToString()
    new = b"".join(framed(r) for r in records)
    return Mutation(kind, file_index, new, f"record {i}: {detail}",
                    dict(strict=i, kept=[k for k in every if k != i], content=i))


def _promised_count(path):
    from video_prediction.datasets.base import records_named_in

    return records_named_in(path)


# -- reading ------------------------------------------------------------------------------------------


def _work_copy(input_dir, work_dir):
    """``work_dir`` mirroring ``input_dir``: real directories, symlinked files."""
    shutil.rmtree(work_dir, ignore_errors=True)
    for root, _, names in os.walk(input_dir, followlinks=True):
        target = os.path.join(work_dir, os.path.relpath(root, input_dir))
        os.makedirs(target, exist_ok=True)
        for name in names:
            os.symlink(os.path.abspath(os.path.join(root, name)), os.path.join(target, name))


def read_split(name, input_dir, hparams, skip):
    """``(examples as numpy dicts in order, dataset)`` of the test split; ValueError on a named problem."""
    from video_prediction.datasets import get_dataset_class
    from video_prediction.datasets.base import checked_batches

    dataset = get_dataset_class(name)(input_dir, SPLIT, num_epochs=1, seed=0, hparams=hparams,
                                      skip_corrupt_records=skip)
    examples = [{key: value.numpy()[0] for key, value in batch.items()}
                for batch in checked_batches(dataset, 1, drop_remainder=False)]
    return examples, dataset


def _same(a, b):
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and np.array_equal(a[k], b[k], equal_nan=True)
                                        for k in a)


def _same_list(examples, expected):
    return len(examples) == len(expected) and all(_same(a, b) for a, b in zip(examples, expected))


class Fuzzer:
    """The clean reference of one dataset's split and the case runner (used in the worker process)."""

    def __init__(self, name, input_dir, hparams, work_dir):
        from video_prediction.datasets import get_dataset_class
        from video_prediction.datasets.base import BaseVideoDataset, compression_of

        if not issubclass(get_dataset_class(name), BaseVideoDataset):
            raise ValueError(f"dataset {name!r} is not read from TFRecords; its files are not fuzzed")
        self.name, self.input_dir, self.hparams, self.work_dir = name, input_dir, hparams, work_dir
        clean, dataset = read_split(name, input_dir, hparams, skip=False)
        if dataset.random_offsets:
            # each clip's offset is drawn per position in the stream: leaving a record out moves the others'
            raise ValueError(f"{name}: clips start at random offsets in {SPLIT} mode (force_time_shift); pass "
                             "force_time_shift=False in the dataset hparams so that each record gives one clip")
        self.files = list(dataset.filenames)
        if any(compression_of(path) for path in self.files):
            raise ValueError(f"{name}: compressed TFRecords are not fuzzed (mutations work on the raw framing)")
        self.counts = [len(record_spans(path)) for path in self.files]
        if len(clean) != sum(self.counts):
            raise ValueError(f"{name}: the {SPLIT} split of {input_dir} gives {len(clean)} clips from "
                             f"{sum(self.counts)} records; fuzzing needs one clip per record (records shorter "
                             "than a clip, or outside a subset, cannot be told apart)")
        self.image_shape = tuple(int(d) for d in dataset.stored_image_shape)
        self.resizes_frames = bool(getattr(dataset, "resizes_frames", False))
        starts = np.cumsum([0] + self.counts)
        self.clean = [clean[starts[i]:starts[i + 1]] for i in range(len(self.files))]  # per file

    def run_case(self, kind, seed, case):
        """Apply ``kind`` with the case's random stream and check both reads; returns a result dict."""
        rng = np.random.default_rng([seed, case])
        local_files = [os.path.join(self.work_dir, os.path.relpath(p, self.input_dir)) for p in self.files]
        mutation = mutate(kind, self.files, rng, self.image_shape)
        if mutation is None:
            return dict(kind=kind, outcome="not_applicable", detail="nothing to mutate")
        _work_copy(self.input_dir, self.work_dir)
        path = local_files[mutation.file]
        os.remove(path)  # the symlink: write a real file in its place
        with open(path, "wb") as f:
            f.write(mutation.data)
        result = dict(kind=kind, file=os.path.basename(path), detail=mutation.detail)
        try:
            outcome, why = self._judge(mutation, path)
        except Exception as e:  # anything but the named ValueError is a failure of the reader
            outcome, why = "crash", f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        result.update(outcome=outcome, why=why)
        return result

    def _expected(self, file_index, kept, replace=None):
        """Clean examples of every file, file ``file_index`` holding its records ``kept``."""
        out = []
        for i, examples in enumerate(self.clean):
            out.extend([examples[k] for k in kept] if i == file_index else examples)
        return out

    def _judge(self, mutation, path):
        expect = mutation.expect
        # strict
        strict_error, strict_examples = None, None
        try:
            strict_examples, _ = read_split(self.name, self.work_dir, self.hparams, skip=False)
        except ValueError as e:
            strict_error = str(e)
        skip_error, skip_examples, dataset = None, None, None
        try:
            skip_examples, dataset = read_split(self.name, self.work_dir, self.hparams, skip=True)
        except ValueError as e:
            skip_error = str(e)
        content = expect.get("content")
        if content is not None and strict_error is None:
            # a content mutation the reader does not see: the feature is not read, or frames are resized
            if _same_list(strict_examples, self._expected(mutation.file, range(self.counts[mutation.file]))):
                if skip_error is None and _same_list(skip_examples, strict_examples) and not dataset.corrupt_records:
                    return "ignored", "the mutated feature is not read"
                return "wrong", f"ignored by the strict read but not by skipping ({skip_error})"
            if mutation.kind == "wrong_image_size" and self.resizes_frames:
                others = self._expected(mutation.file, [k for k in range(self.counts[mutation.file])])
                index = sum(self.counts[:mutation.file]) + content
                rest_same = all(_same(a, b) for i, (a, b) in enumerate(zip(strict_examples, others)) if i != index)
                if len(strict_examples) == len(others) and rest_same and skip_error is None and \
                        _same_list(skip_examples, strict_examples):
                    return "resized", "the reader resizes frames by design"
            return "wrong", "no error, but the batches differ from the clean ones"
        if expect["strict"] is None:
            kept = expect.get("strict_kept", expect["kept"])
            wanted = self._expected(mutation.file, kept)
            if strict_error is not None:
                return "wrong", f"strict read raised on an undetectable mutation: {strict_error}"
            if not _same_list(strict_examples, wanted):
                return "wrong", f"strict read gave {len(strict_examples)} clips, expected {len(wanted)}"
            if skip_error is not None or not _same_list(skip_examples, wanted):
                return "wrong", f"skipping read differs from the documented expectation ({skip_error})"
            return "undetectable_as_documented", ""
        # detectable: a named error, then exactly the intact records
        if strict_error is None:
            return "wrong", "strict read returned without error"
        match = _ERROR.search(strict_error)
        named = None if match is None else int(match.group(2) or match.group(3))
        if match is None or os.path.abspath(match.group(1)) != os.path.abspath(path) or named != expect["strict"]:
            return "wrong", f"strict error does not name {os.path.basename(path)} record {expect['strict']}: " \
                            f"{strict_error}"
        wanted = self._expected(mutation.file, expect["kept"])
        if skip_error is not None:
            return "wrong", f"skipping read raised: {skip_error}"
        if not _same_list(skip_examples, wanted):
            return "wrong", f"skipping read gave {len(skip_examples)} clips, expected the {len(wanted)} intact ones"
        listed = [os.path.abspath(r.path) for r in dataset.corrupt_records]
        if listed != [os.path.abspath(path)]:
            return "wrong", f"skipping read lists {listed} as corrupt, expected only {path}"
        return "error_named+skipped", ""


# -- the worker process and the parent ------------------------------------------------------------------


def case_kinds(count, seed, offset=0):
    """The mutation kind of each case: every kind in turn, in a seeded order, from the ``offset``-th."""
    order = list(MUTATIONS)
    np.random.default_rng(seed).shuffle(order)
    return [order[(offset + case) % len(order)] for case in range(count)]


def _worker():
    """Worker: one JSON request per line on stdin, one result line on stdout.

    A request names the dataset, its records and hparams, the seed, the case
    and its mutation kind; the clean reference of each dataset is read once.
    """
    out = sys.stdout
    sys.stdout = sys.stderr  # keep library prints off the protocol channel
    out.write(json.dumps(dict(ready=True)) + "\n")
    out.flush()
    fuzzers = {}
    for line in sys.stdin:
        request = json.loads(line)
        key = (request["name"], request["input_dir"], request["hparams"])
        started = time.time()
        if key not in fuzzers:
            try:
                fuzzers[key] = Fuzzer(*key, request["work_dir"])
            except ValueError as e:
                fuzzers[key] = str(e)
        fuzzer = fuzzers[key]
        if isinstance(fuzzer, str):
            result = dict(setup_error=fuzzer)
        else:
            result = fuzzer.run_case(request["kind"], request["seed"], request["case"])
        result.update(case=request["case"], seconds=round(time.time() - started, 2))
        out.write(json.dumps(result) + "\n")
        out.flush()


class _Worker:
    def __init__(self, timeout):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        self.process = subprocess.Popen([sys.executable, "-m", "video_prediction.datasets.record_fuzzing"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, env=env)
        self.hello = self.read(timeout)

    def read(self, timeout):
        """The next result line, or None after ``timeout`` seconds or when the worker died."""
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.process.stdout.readline()
        return json.loads(line) if line else None

    def ask(self, request, timeout):
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            return None
        return self.read(timeout)

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def fuzz_records(name, input_dir, count, seed, hparams="", timeout=120.0, log=print):
    """Run ``count`` cases on dataset ``name``'s ``test`` split in ``input_dir``; returns the per-case results.

    See :func:`fuzz_datasets`; ValueError if the clean records cannot be fuzzed.
    """
    return fuzz_datasets([(name, input_dir, hparams, count)], seed, timeout=timeout, log=log)[name]


def fuzz_datasets(jobs, seed, timeout=120.0, log=print, progress_every=50):
    """``{name: per-case results}`` for ``jobs`` ``[(name, input_dir, hparams, count)]``, all in one worker.

    Every case runs in a worker process (started once: TensorFlow is imported
    once) under ``timeout`` seconds (the first case of a dataset also reads
    its clean split and gets 3 times as long); a worker that dies is a
    ``crash``, one that does not answer in time a ``hang`` (it is killed and a
    new one started).  ValueError if a dataset's clean records cannot be
    fuzzed (unreadable, compressed, not one clip per record, not TFRecords).
    ``log`` gets each failed case and, every ``progress_every`` cases, a progress line.
    """
    started = time.time()
    work_dir = tempfile.mkdtemp(prefix="fuzz_records_")
    everything, worker = {}, None
    try:
        offset = 0
        for name, input_dir, hparams, count in jobs:
            results = everything[name] = []
            kinds = case_kinds(count, seed, offset)
            offset += count  # several datasets with few cases each still see every kind
            for case, kind in enumerate(kinds):
                if worker is None:
                    worker = _Worker(max(timeout, 300.0))  # importing TensorFlow on a busy machine
                    if worker.hello is None:
                        worker.stop()
                        raise RuntimeError("the fuzzing worker did not start")
                request = dict(name=name, input_dir=os.path.abspath(input_dir), hparams=hparams, kind=kind,
                               case=case, seed=seed,
                               # named as the input directory: some readers tell datasets apart by it (sv2p)
                               work_dir=os.path.join(work_dir, "case", os.path.basename(os.path.normpath(input_dir))))
                result = worker.ask(request, timeout * (3 if case == 0 else 1))
                if result is None:
                    alive = worker.process.poll() is None
                    worker.stop()
                    worker = None
                    result = dict(case=case, kind=kind, outcome="hang" if alive else "crash",
                                  why=f"no answer in {timeout:.0f} s" if alive else "the worker process died")
                if "setup_error" in result:
                    raise ValueError(f"{name}: cannot fuzz {input_dir}: {result['setup_error']}")
                results.append(result)
                if result["outcome"] not in GOOD_OUTCOMES + ("not_applicable",):
                    log(f"{name} case {case} ({kind}, {result.get('file')}, {result.get('detail')}): "
                        f"{result['outcome']}: {result['why']}")
                if (case + 1) % progress_every == 0 and case + 1 < count:
                    log(f"{name}: {case + 1}/{count} cases, {time.time() - started:.0f} s, "
                        f"{len(failures(results))} failed so far")
    finally:
        if worker is not None:
            worker.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    return everything


def outcome_table(results):
    """Text table: one row per mutation kind, one column per outcome (counts)."""
    columns = [o for o in OUTCOMES + ("not_applicable",) if o in GOOD_OUTCOMES or
               any(r["outcome"] == o for r in results)]
    counts = collections.Counter((r["kind"], r["outcome"]) for r in results)
    width = max(len(k) for k in MUTATIONS)
    lines = [" | ".join([f"{'mutation':<{width}}"] + columns + ["total"])]
    for kind in MUTATIONS:
        row = [counts[(kind, o)] for o in columns]
        lines.append(" | ".join([f"{kind:<{width}}"] + [f"{n:>{len(o)}}" for n, o in zip(row, columns)]
                                + [f"{sum(row):>5}"]))
    totals = [sum(counts[(k, o)] for k in MUTATIONS) for o in columns]
    lines.append(" | ".join([f"{'all':<{width}}"] + [f"{n:>{len(o)}}" for n, o in zip(totals, columns)]
                            + [f"{sum(totals):>5}"]))
    return "\n".join(lines)


def failures(results):
    """Results whose outcome fails the run (a wrong batch or error, a crash, a hang)."""
    return [r for r in results if r["outcome"] not in GOOD_OUTCOMES + ("not_applicable",)]


if __name__ == "__main__":
    _worker()
