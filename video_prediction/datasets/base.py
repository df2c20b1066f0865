"""TFRecord video datasets: discovery, parsing, subclip slicing and the tf.data pipeline.

Semantics follow the original SAVP ``BaseVideoDataset`` (specs/savp.md §2.1):

* records are found as ``*.tfrecord*`` directly in ``input_dir``, else in
  ``input_dir/<mode>``, sorted by name;
* a subclip of ``sequence_length`` frames (every ``frame_skip + 1``-th frame) is
  cut from each stored video, at a random offset that is a multiple of
  ``time_shift`` in training (or always, with ``force_time_shift``), else at 0;
* training (and validation with ``shuffle_on_val``) shuffles files and records
  and repeats; test never shuffles, so its subclips are reproducible.

Batches are dicts of float32 tensors: ``images`` ``[B, T, H, W, C]`` in [0, 1]
plus what a dataset adds (``poses`` for Moving MNIST, ``states``/``actions``
with ``use_state``).
"""

import collections
import glob
import json
import os
import re
import struct

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError

from video_prediction.hparams import ClipLengthsMixin, resolve_hparams

MODES = ("train", "val", "test")


def find_tfrecords(input_dir, mode):
    """Sorted ``*.tfrecord*`` files of ``input_dir`` (or ``input_dir/<mode>``); ValueError naming both if none."""
    if not input_dir or not os.path.isdir(input_dir):
        raise ValueError(f"dataset directory {input_dir!r} does not exist")
    files = sorted(glob.glob(os.path.join(input_dir, "*.tfrecord*")))
    if not files:
        files = sorted(glob.glob(os.path.join(input_dir, mode, "*.tfrecord*")))
    files = [f for f in files if not f.endswith(".tmp")]
    if not files:
        raise ValueError(
            f"no TFRecords (*.tfrecord*) for mode {mode!r} in {input_dir!r} or {os.path.join(input_dir, mode)!r}"
        )
    return files


def compression_of(path):
    """TFRecord compression inferred from the file name (``.gz`` → GZIP, ``.zlib`` → ZLIB)."""
    if path.endswith(".gz"):
        return "GZIP"
    if path.endswith(".zlib"):
        return "ZLIB"
    return ""


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli polynomial, reflected
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def masked_crc32c(data):
    """The masked CRC-32C that TFRecord headers store (pure Python: used on 8-byte length fields only)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


_SHARD_NAME = re.compile(r"_(\d+)_to_(\d+)\.tfrecords?$")


def records_named_in(path):
    """Record count that a shard name ``<prefix>_<first>_to_<last>.tfrecord(s)`` promises, else None.

    :func:`write_tfrecord_shards` and the original SAVP conversions (e.g. BAIR's
    ``traj_0_to_255.tfrecords``) name shards this way; the count catches a file
    truncated exactly at a record boundary, which the framing alone cannot.
    """
    match = _SHARD_NAME.search(os.path.basename(path))
    if not match:
        return None
    first, last = int(match.group(1)), int(match.group(2))
    return last - first + 1 if last >= first else None


def check_tfrecord_framing(path):
    """Walk the record headers of an uncompressed TFRecord file; returns the record count.

    Raises ValueError naming the file and record index when a header is
    truncated or its length checksum is wrong, when a record runs past the end
    of the file, or when the file holds fewer/more records than its shard name
    promises.  Only the 12-byte headers are read (payloads are skipped), so
    this is cheap even for large files; a payload whose checksum is wrong is
    caught when read (:func:`verify_tfrecords`, :func:`locate_corrupt_record`).
    """
    if compression_of(path):
        return None
    size = os.path.getsize(path)
    offset, index = 0, 0
    with open(path, "rb") as f:
        while offset < size:
            header = f.read(12)
            if len(header) < 12:
                raise ValueError(f"corrupt TFRecord file {path}: record {index} is truncated (header)")
            (length,) = struct.unpack("<Q", header[:8])
            (length_crc,) = struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != length_crc:
                raise ValueError(f"corrupt TFRecord file {path}: record {index} has a corrupt length field "
                                 "(checksum mismatch)")
            end = offset + 12 + length + 4
            if end > size:
                raise ValueError(
                    f"corrupt TFRecord file {path}: record {index} claims {length} bytes but the file ends first"
                )
            f.seek(end)
            offset, index = end, index + 1
    expected = records_named_in(path)
    if expected is not None and index != expected:
        raise RecordCountMismatch(path, index, expected)
    return index


class RecordCountMismatch(ValueError):
    """A TFRecord file with well-framed records, but not as many as its shard name promises."""

    def __init__(self, path, found, expected):
        super().__init__(f"corrupt TFRecord file {path}: it holds {found} records but its name promises "
                         f"{expected} (truncated or appended to?)")
        self.found, self.expected = found, expected


def locate_corrupt_record(path):
    """``(record index, reason)`` of the first record of ``path`` that cannot be read, or None.

    Checks the framing (:func:`check_tfrecord_framing`) and then reads every
    record with TensorFlow's reader, which verifies each payload's CRC-32C.
    """
    framing_problem = None
    try:
        check_tfrecord_framing(path)
    except RecordCountMismatch as e:
        framing_problem = e.found, str(e).split(": ", 1)[-1]  # the records present may still be fine
    except ValueError as e:
        framing_problem = int(re.search(r"record (\d+)", str(e)).group(1)), str(e).split(": ", 1)[-1]
    # The header walk checks only length fields: a payload before the first broken header may be damaged too,
    # and the first damaged record is the one to name (a reader stops there).
    records = tf.data.TFRecordDataset(path, compression_type=compression_of(path))
    if framing_problem is not None:
        records = records.take(framing_problem[0])
    index = 0
    try:
        for _ in records:
            index += 1
    except tf.errors.OpError as e:
        return index, f"record {index} cannot be read ({e.message.strip().splitlines()[0]})"
    return framing_problem


def framed_record_count(path):
    """:func:`check_tfrecord_framing`, but an error names the file's *first* damaged record, payloads included."""
    try:
        return check_tfrecord_framing(path)
    except ValueError:
        problem = locate_corrupt_record(path)
        raise ValueError(f"corrupt TFRecord file {path}: {problem[1]}") from None


def verify_tfrecords(paths):
    """Read every record of ``paths`` fully; ValueError naming the file and record index of the first bad one."""
    for path in paths:
        problem = locate_corrupt_record(path)
        if problem is not None:
            raise ValueError(f"corrupt TFRecord file {path}: {problem[1]}")
    return True


def find_invalid_records(paths, record_check, limits=None):
    """``{path: [(record index, reason)]}`` of every record of ``paths`` that ``record_check`` rejects.

    ``record_check`` maps a serialized record to a tensor and fails (a
    TensorFlow op error) on a record with bad content: a feature of the wrong
    type, a frame of the wrong size, NaN/Inf floats
    (:meth:`BaseVideoDataset.check_record`).  ``limits`` (path -> count) reads
    only a file's first records (those before a broken frame, see
    :func:`scan_tfrecords`).  One parallel, order-keeping ``map`` over all
    files (the check is traced once): an element that fails does not stop the
    iterator, so the n-th answer is the n-th record's.
    """
    limits = limits or {}
    counts = []
    for path in paths:
        count = limits.get(path)
        if count is None:
            count = None if compression_of(path) else _count_framed_records(path)
        if count is None:  # compressed (or unframed): count what the reader finds
            count = 0
            try:
                for _ in tf.data.TFRecordDataset(path, compression_type=compression_of(path)):
                    count += 1
            except tf.errors.OpError:
                pass
        counts.append(count)
    positions = [(path, index) for path, count in zip(paths, counts) for index in range(count)]
    invalid = {}
    if not positions:
        return invalid
    compression = compression_of(paths[0])
    files = tf.data.Dataset.from_tensor_slices((list(paths), tf.constant(counts, tf.int64)))
    records = files.flat_map(lambda path, count: tf.data.TFRecordDataset(path, compression_type=compression)
                             .take(count))
    iterator = iter(records.map(record_check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))
    for path, index in positions:
        try:
            next(iterator)
        except StopIteration:
            break
        except tf.errors.DataLossError:
            break  # a broken frame: locate_corrupt_record names it
        except tf.errors.OpError as e:
            invalid.setdefault(path, []).append((index, f"record {index} has bad content "
                                                        f"({_first_line(e.message)})"))
    return invalid


def _first_line(message):
    """The first line of a TensorFlow error message without tf.data's wrapping (function node, iterator)."""
    lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
    line = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", lines[0] if lines else "unknown error")
    line = re.sub(r"^Error in user-defined function passed to .*? transformation with iterator: \S+: ", "", line)
    assertion = re.match(r"assertion failed: \[(.*?)\] \[", line)  # an Assert op: keep its message
    return assertion.group(1).replace("\\'", "'") if assertion else line


def explain_read_error(paths, error, record_check=None):
    """A ValueError naming the file and record behind a TensorFlow read ``error`` of ``paths``.

    TensorFlow's ``DataLossError`` names neither the file (when several are
    interleaved) nor the record; the files are scanned to find them: first
    their framing and checksums, then, with ``record_check`` (a dataset's
    :meth:`BaseVideoDataset.check_record`), the content of every record.
    Returns None when no file is corrupt (the error had another cause).
    """
    for path in paths:
        problem = locate_corrupt_record(path)
        if problem is not None:
            return ValueError(f"corrupt TFRecord file {path}: {problem[1]}; rerun with --skip_corrupt_records "
                              "to skip it")
    if record_check is not None and paths:
        invalid = find_invalid_records(paths, record_check)
        for path in paths:
            if path in invalid:
                return ValueError(f"corrupt TFRecord file {path}: {invalid[path][0][1]}; rerun with "
                                  "--skip_corrupt_records to skip it")
    return None


def record_check_of(dataset):
    """The content check of a TFRecord dataset (None for datasets read otherwise)."""
    return getattr(dataset, "check_record", None)


def checked_batches(dataset, batch_size, drop_remainder=True):
    """Iterate ``dataset.make_dataset(...)`` eagerly; a read error becomes a ValueError naming file and record."""
    iterator = iter(dataset.make_dataset(batch_size, drop_remainder=drop_remainder))
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except tf.errors.OpError as e:
            explained = explain_read_error(getattr(dataset, "filenames", []), e, record_check_of(dataset))
            if explained is None:
                raise
            raise explained from None
        yield batch


class CorruptRecord(collections.namedtuple("CorruptRecord", "path index reason lost")):
    """The first record of ``path`` that cannot be read (or, for a short file, the first missing one).

    ``lost`` is how many records of the file are lost: the corrupt one and those
    after it, which a TFRecord reader cannot resynchronise to (None: unknown,
    the framing past it is broken).  A well-framed record with bad content
    (:meth:`BaseVideoDataset.check_record`) is skipped alone: ``lost`` is 1.
    """


def scan_tfrecords(paths):
    """Every file's readable record count and its first corrupt record: ``(limits, corrupt)``.

    ``limits`` maps each path to the number of leading records that read
    cleanly (None: the whole file); ``corrupt`` lists :class:`CorruptRecord`.
    """
    limits, corrupt = {}, []
    for path in paths:
        problem = locate_corrupt_record(path)
        limits[path] = None
        if problem is None:
            continue
        index, reason = problem
        limits[path] = index
        lost = None
        if not compression_of(path):
            total = _count_framed_records(path)
            expected = records_named_in(path)
            if expected is not None:
                lost = max(expected - index, 0)  # the name tells how many records the file should hold
            elif total is not None:
                lost = total - index
        corrupt.append(CorruptRecord(path, index, reason, lost))
    return limits, corrupt


def _count_framed_records(path):
    """Records whose headers frame correctly up to the end of the file, else None."""
    size = os.path.getsize(path)
    offset, count = 0, 0
    with open(path, "rb") as f:
        while offset < size:
            header = f.read(12)
            if len(header) < 12 or masked_crc32c(header[:8]) != struct.unpack("<I", header[8:])[0]:
                return None
            offset += 12 + struct.unpack("<Q", header[:8])[0] + 4
            if offset > size:
                return None
            f.seek(offset)
            count += 1
    return count


class BaseVideoDataset(ClipLengthsMixin):
    """A video dataset read from TFRecords; subclasses define the record layout."""

    #: The tf.data pipeline of :meth:`make_dataset` can be saved with ``tf.train.Checkpoint(iterator=...)``
    #: (no Python generators), so training resumes at the exact input position.
    supports_iterator_checkpoint = True
    #: Keep the record order of a shuffled pipeline reproducible even with parallel parsing (slower).
    deterministic_order = False
    #: Parsed (whole-video) examples held for shuffling; datasets of long videos hold fewer.
    shuffle_buffer_size = 1024

    def __init__(self, input_dir, mode="train", num_epochs=None, seed=None, hparams_dict=None, hparams=None,
                 skip_corrupt_records=False):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
        self.input_dir = input_dir
        self.mode = mode
        self.num_epochs = num_epochs
        self.seed = seed
        self.hparams = self._resolve_hparams(hparams_dict, hparams)
        self.filenames = self.find_files()
        self.skip_corrupt_records = skip_corrupt_records
        self._corrupt_records = []
        self._record_limits = {}
        self._invalid_records = None  # {path: [index]} of well-framed records with bad content, found lazily
        if skip_corrupt_records:
            # Every record is read once now, so that the pipeline only ever touches clean ones.
            self._record_limits, self._corrupt_records = scan_tfrecords(self.filenames)
            readable = [p for p in self.filenames if self._record_limits[p] != 0]
            if not readable:
                raise ValueError(f"every TFRecord file for mode {mode!r} in {input_dir!r} is corrupt from its "
                                 "first record")
            self.filenames = readable
        else:
            counts = {path: framed_record_count(path) for path in self.filenames}
            # An empty file (whose name promises no count) holds no records: the layout comes from another one.
            self.filenames = [path for path in self.filenames if counts[path] != 0]
            if not self.filenames:
                raise ValueError(f"every TFRecord file for mode {mode!r} in {input_dir!r} is empty")
        self._check_lengths()

    def find_files(self):
        """The record files of this split (hook: datasets whose originals name files differently override it)."""
        return find_tfrecords(self.input_dir, self.mode)

    @property
    def corrupt_records(self):
        """Records that cannot be read (:class:`CorruptRecord`), found up front with ``skip_corrupt_records``:
        broken framing or checksums (at construction) and bad content (:meth:`check_record`, on first use, once
        the subclass knows its layout), in file order."""
        self._scan_content()
        return self._corrupt_records

    def _scan_content(self):
        """With ``skip_corrupt_records``: run :meth:`check_record` over every readable record, once."""
        if self._invalid_records is not None:
            return
        self._invalid_records = {}
        if not self.skip_corrupt_records:
            return
        order = {path: i for i, path in enumerate(self.filenames)}
        invalid = find_invalid_records(self.filenames, self.check_record, self._record_limits)
        for path, records in invalid.items():
            self._invalid_records[path] = [index for index, _ in records]
            self._corrupt_records.extend(CorruptRecord(path, index, reason, 1) for index, reason in records)
        self._corrupt_records.sort(key=lambda r: (order.get(r.path, -1), r.index))

    @property
    def num_skipped_records(self):
        """Records skipped because of corruption (a file whose framing breaks counts its first bad record only)."""
        return sum(record.lost or 1 for record in self.corrupt_records)

    @classmethod
    def default_hparams(cls):
        """The original's base hparams (specs/savp.md §2.1)."""
        return dict(
            crop_size=0,
            scale_size=0,
            context_frames=1,
            sequence_length=0,
            long_sequence_length=0,  # 0: equal to sequence_length
            frame_skip=0,
            time_shift=1,
            force_time_shift=False,
            shuffle_on_val=False,
            use_state=False,
        )

    def _resolve_hparams(self, hparams_dict, hparams):
        defaults = self.default_hparams()
        resolved = resolve_hparams(defaults, hparams_dict, hparams)
        values = resolved.values()
        if values["sequence_length"] < 2:
            raise ValueError(f"sequence_length must be >= 2, got {values['sequence_length']}")
        if not 1 <= values["context_frames"] < values["sequence_length"]:
            raise ValueError(
                f"context_frames must be in [1, sequence_length); got context_frames={values['context_frames']}, "
                f"sequence_length={values['sequence_length']}"
            )
        if values["long_sequence_length"] == 0:
            values["long_sequence_length"] = values["sequence_length"]
        return resolve_hparams(defaults, values)

    # -- properties ------------------------------------------------------------------------------

    @property
    def span(self):
        """Stored frames one subclip covers: ``(T - 1) * (frame_skip + 1) + 1``."""
        return (self.sequence_length - 1) * (self.hparams.frame_skip + 1) + 1

    @property
    def shuffled(self):
        return self.mode == "train" or (self.mode == "val" and self.hparams.shuffle_on_val)

    @property
    def ordered(self):
        """Whether parallel parsing keeps the record order: always when not shuffled, and when
        ``deterministic_order`` asks for it (multi-worker training needs every worker to see the same order)."""
        return self.deterministic_order or not self.shuffled

    @property
    def random_offsets(self):
        return (self.hparams.time_shift > 0 and self.mode == "train") or self.hparams.force_time_shift

    @property
    def stored_image_shape(self):
        """(H, W, C) of the frames as stored; subclasses set it."""
        raise NotImplementedError

    @property
    def image_shape(self):
        """(H, W, C) of the frames a batch holds, after crop/scale."""
        height, width, channels = self.stored_image_shape
        crop = self.hparams.crop_size
        if crop:
            height = width = crop
        scale = self.hparams.scale_size
        if scale:
            height = width = scale
        return (int(height), int(width), int(self.output_channels(channels)))

    def output_channels(self, stored_channels):
        return stored_channels

    def num_examples_per_epoch(self):
        """Records in the files (counted once and cached); datasets with known sizes or records that hold
        several examples override this."""
        if not hasattr(self, "_num_examples"):
            dataset = tf.data.TFRecordDataset(self.filenames, compression_type=compression_of(self.filenames[0]))
            self._num_examples = int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))
        return self._num_examples

    def _info(self):
        """``dataset_info.json`` next to the splits (what our preprocessors record), read once; ``{}`` for
        records made elsewhere."""
        if not hasattr(self, "_info_cache"):
            path = os.path.join(self.input_dir, "dataset_info.json")
            self._info_cache = {}
            if os.path.exists(path):
                with open(path) as f:
                    self._info_cache = json.load(f)
        return self._info_cache

    def _check_lengths(self):
        """Subclasses check that stored videos are long enough for ``span``."""

    # -- parsing ---------------------------------------------------------------------------------

    def parse(self, serialized):
        """Record -> dict of per-example tensors with a leading time axis of stored length."""
        raise NotImplementedError

    def stored_length(self, example):
        """Number of stored frames of a parsed example (a scalar tensor)."""
        raise NotImplementedError

    def check_parsed(self, example):
        """Hook: assertions (a list of ops) on a parsed example's content that :meth:`parse` alone does not
        make, e.g. that every stored frame has the layout's size.  They run on every stored frame, not only
        on a subclip's, so that a record is bad or good as a whole; keep them cheap (no image decoding)."""
        return []

    def checked_parse(self, serialized):
        """:meth:`parse` plus the content checks every record of every TFRecord dataset gets, in one place.

        A feature of the wrong type fails in ``parse_single_example``; a float
        feature with NaN/Inf and what :meth:`check_parsed` asserts (frame sizes)
        fail here.  The pipeline maps this (in parallel), so a strict read stops
        at such a record; :func:`explain_read_error` then names it, and with
        ``skip_corrupt_records`` it is left out (:meth:`check_record`).
        """
        example = self.parse(serialized)
        checks = list(self.check_parsed(example))
        # assert ops, not check_numerics: tf.data can save an iterator whose functions hold Assert, not
        # CheckNumerics (stateful), and training saves the input position in every checkpoint
        checks += [all_finite(value, f"feature {name!r} holds NaN or Inf")
                   for name, value in example.items() if value.dtype.is_floating]
        if not checks:
            return example
        with tf.control_dependencies(checks):
            return {name: tf.identity(value) for name, value in example.items()}

    def check_record(self, serialized):
        """Fails (an op error) on a record whose content is bad: :meth:`checked_parse`, and a decode of its
        first subclip (what a test read returns) when it is long enough for one.  Returns a scalar."""
        example = self.checked_parse(serialized)
        step = self.hparams.frame_skip + 1
        indices = tf.range(self.sequence_length, dtype=tf.int64) * step

        def decoded():
            output = self.decode(example, indices)
            checks = [all_finite(v, f"decoded {k!r} holds NaN or Inf") for k, v in output.items()
                      if v.dtype.is_floating]
            with tf.control_dependencies(checks):
                return tf.constant(True)

        return tf.cond(self.stored_length(example) >= self.span, decoded, lambda: tf.constant(False))

    def decode(self, example, frame_indices):
        """Turn a parsed example into the output dict for the stored frames ``frame_indices``."""
        raise NotImplementedError

    def preprocess_images(self, images):
        """uint8 ``[T, H, W, C]`` -> float32 in [0, 1] with the original's centre crop and resize."""
        crop = self.hparams.crop_size
        scale = self.hparams.scale_size
        if crop:
            images = tf.image.resize_with_crop_or_pad(images, crop, crop)
        images = tf.image.convert_image_dtype(images, tf.float32)
        if scale:
            size = int(images.shape[1] or crop)
            # The original: bilinear when upsampling, area when downsampling.
            method = "bilinear" if scale > size else "area"
            images = tf.image.resize(images, (scale, scale), method=method)
        return images

    def _frame_indices(self, length, seed):
        """Indices of the subclip's stored frames; the offset drawn from a per-example stateless seed."""
        step = self.hparams.frame_skip + 1
        if self.random_offsets:
            shift = max(self.hparams.time_shift, 1)
            num_shifts = (length - self.span) // shift
            offset = tf.random.stateless_uniform([], seed, 0, num_shifts + 1, dtype=tf.int64) * shift
        else:
            offset = tf.constant(0, tf.int64)
        return offset + tf.range(self.sequence_length, dtype=tf.int64) * step

    # -- the pipeline ----------------------------------------------------------------------------

    def _records(self, filenames):
        """Serialized records of ``filenames`` in order (interleaved when shuffled), clean ones only."""
        compression = compression_of(filenames[0])
        parallel_reads = tf.data.AUTOTUNE if self.shuffled and len(filenames) > 1 else None
        limits = [self._record_limits.get(path) for path in filenames]
        self._scan_content()
        invalid = [self._invalid_records.get(path, []) for path in filenames]
        if all(limit is None for limit in limits) and not any(invalid):
            return tf.data.TFRecordDataset(filenames, compression_type=compression, buffer_size=8 * 1024 * 1024,
                                           num_parallel_reads=parallel_reads)
        # Files with a corrupt record are read up to it: the reader cannot find the next record past it.
        limits = [-1 if limit is None else limit for limit in limits]
        # Records with bad content are left out one by one (-1 pads the per-file index lists).
        width = max(1, max(len(indices) for indices in invalid))
        skipped = [indices + [-1] * (width - len(indices)) for indices in invalid]
        files = tf.data.Dataset.from_tensor_slices((filenames, tf.constant(limits, tf.int64),
                                                    tf.constant(skipped, tf.int64)))
        parallel = dict(num_parallel_calls=parallel_reads, deterministic=True) if parallel_reads else {}

        def read(path, limit, skip):
            records = tf.data.TFRecordDataset(path, compression_type=compression,
                                              buffer_size=8 * 1024 * 1024).take(limit).enumerate()
            records = records.filter(lambda index, _: tf.logical_not(tf.reduce_any(tf.equal(skip, index))))
            return records.map(lambda _, record: record)

        return files.interleave(read, cycle_length=len(filenames) if parallel_reads else 1, block_length=1,
                                **parallel)

    def make_dataset(self, batch_size, drop_remainder=True):
        """The batched ``tf.data.Dataset`` of this split (see the module docstring)."""
        filenames = list(self.filenames)
        seed = self.seed if self.seed is not None else np.random.randint(2**31 - 1)
        if self.shuffled:
            np.random.default_rng(seed).shuffle(filenames)
        records = self._records(filenames)
        parallel = tf.data.AUTOTUNE
        examples = records.map(self.checked_parse, num_parallel_calls=parallel, deterministic=self.ordered)
        span = self.span
        examples = examples.filter(lambda example: self.stored_length(example) >= span)
        if self.shuffled:
            examples = examples.shuffle(self.shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
        examples = examples.repeat(self.num_epochs)
        # A stateless seed per example makes the random offsets independent of parallelism.
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        dataset = tf.data.Dataset.zip((examples, seeds)).map(
            lambda example, pair: self.decode(example, self._frame_indices(self.stored_length(example), pair)),
            num_parallel_calls=parallel, deterministic=self.ordered,
        )
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        return dataset.prefetch(tf.data.AUTOTUNE)


class VarLenFeatureVideoDataset(BaseVideoDataset):
    """One ``tf.train.Example`` per video with variable-length frame lists (the original's KTH layout).

    Features: ``sequence_length``, ``height``, ``width``, ``channels`` (int64) and
    ``images/encoded`` (bytes list, one frame each: raw uint8 ``H*W*C`` bytes or
    PNG/JPEG).  Subclasses may add per-frame float features with
    :meth:`extra_frame_features` (``{name: per-frame shape}``), stored flattened.
    Records shorter than the subclip span are skipped; frames are decoded after
    slicing, so only the needed ones are.
    """

    def __init__(self, *args, **kwargs):
        self._metadata = None
        super().__init__(*args, **kwargs)
        self._read_metadata()  # eagerly: the tf.data functions below only use the cached values

    def extra_frame_features(self):
        return {}

    def extra_video_features(self):
        """``{name: (shape, dtype, default)}`` of per-video features (e.g. a crop box, a label), passed through."""
        return {}

    def _read_metadata(self):
        """Shape, encoding and per-file lengths from the records (first record for shapes)."""
        if self._metadata is None:
            path = self.filenames[0]
            try:
                first = next(iter(tf.data.TFRecordDataset(path, compression_type=compression_of(path))))
                example = tf.train.Example.FromString(first.numpy())
            except (tf.errors.OpError, StopIteration, DecodeError) as e:
                raise ValueError(f"corrupt TFRecord file {path}: record 0 cannot be read "
                                 f"({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})"
                                 ) from None
            feature = example.features.feature
            try:
                shape = tuple(int(feature[k].int64_list.value[0]) for k in ("height", "width", "channels"))
                frame = feature["images/encoded"].bytes_list.value[0]
            except (KeyError, IndexError):
                raise ValueError(
                    f"{self.filenames[0]} is not in the VarLen video layout (needs height, width, channels, "
                    "images/encoded)"
                ) from None
            raw = len(frame) == shape[0] * shape[1] * shape[2]
            self._metadata = dict(shape=shape, raw=raw)
        return self._metadata

    @property
    def stored_image_shape(self):
        return self._read_metadata()["shape"]

    def parse(self, serialized):
        features = {
            "sequence_length": tf.io.FixedLenFeature([], tf.int64),
            "height": tf.io.FixedLenFeature([], tf.int64),
            "width": tf.io.FixedLenFeature([], tf.int64),
            "channels": tf.io.FixedLenFeature([], tf.int64),
            "images/encoded": tf.io.VarLenFeature(tf.string),
        }
        for name in self.extra_frame_features():
            features[name] = tf.io.VarLenFeature(tf.float32)
        for name, (shape, dtype, default) in self.extra_video_features().items():
            features[name] = tf.io.FixedLenFeature(shape, dtype, default_value=default)
        parsed = tf.io.parse_single_example(serialized, features)
        example = {
            "length": parsed["sequence_length"],
            "shape": tf.stack([parsed["height"], parsed["width"], parsed["channels"]]),
            "frames": tf.sparse.to_dense(parsed["images/encoded"]),
        }
        for name, shape in self.extra_frame_features().items():
            values = tf.sparse.to_dense(parsed[name])
            example[name] = tf.reshape(values, [-1, *shape])
        for name in self.extra_video_features():
            example[name] = parsed[name]
        return example

    def stored_length(self, example):
        return example["length"]

    def check_parsed(self, example):
        """Every stored frame has the first record's (H, W, C): the shape fields, and the byte count of a raw
        frame or the header of a JPEG/PNG one; the frame count is the stored ``sequence_length``."""
        height, width, channels = self.stored_image_shape
        frames = example["frames"]
        shape = (height, width, channels)
        checks = [
            tf.debugging.assert_equal(example["shape"], tf.constant(shape, tf.int64),
                                      message=f"its frame shape differs from the first record's {shape}"),
            tf.debugging.assert_equal(tf.size(frames, out_type=tf.int64), example["length"],
                                      message="its number of frames differs from its sequence_length"),
        ]
        if self._read_metadata()["raw"]:
            checks.append(tf.debugging.assert_equal(
                tf.strings.length(frames), height * width * channels,
                message=f"a frame does not have the {height * width * channels} bytes of a raw {shape} image"))
        else:
            checks.append(tf.debugging.assert_equal(
                encoded_frame_sizes(frames), tf.constant([height, width], tf.int64),
                message=f"an encoded frame is not {height}x{width}"))
        return checks

    def decode(self, example, frame_indices):
        height, width, channels = self.stored_image_shape
        expected = tf.constant([height, width, channels], tf.int64)
        check = tf.debugging.assert_equal(
            example["shape"], expected,
            message=f"a record's frame shape differs from the first record's {(height, width, channels)} "
            f"in {self.input_dir}",
        )
        with tf.control_dependencies([check]):
            frames = tf.gather(example["frames"], frame_indices)
        if self._read_metadata()["raw"]:
            images = tf.io.decode_raw(frames, tf.uint8)
        else:
            images = tf.map_fn(lambda f: tf.io.decode_image(f, channels=channels, expand_animations=False),
                               frames, fn_output_signature=tf.uint8)
        images = tf.reshape(images, [self.sequence_length, height, width, channels])
        output = {"images": self.preprocess_images(images)}
        for name in self.extra_frame_features():
            output[name] = tf.gather(example[name], frame_indices)
        for name in self.extra_video_features():
            output[name] = example[name]
        return output

    def num_examples_per_epoch(self):
        """Records long enough for one subclip (counted once and cached)."""
        if not hasattr(self, "_num_examples"):
            span = self.span
            dataset = tf.data.TFRecordDataset(self.filenames, compression_type=compression_of(self.filenames[0]))
            dataset = dataset.map(lambda r: tf.io.parse_single_example(
                r, {"sequence_length": tf.io.FixedLenFeature([], tf.int64)})["sequence_length"])
            self._num_examples = int(dataset.reduce(tf.constant(0, tf.int64),
                                                    lambda count, n: count + tf.cast(n >= span, tf.int64)))
        return self._num_examples


def all_finite(values, message):
    """An assertion (an op) that every value of the float tensor ``values`` is finite."""
    return tf.debugging.assert_equal(tf.reduce_all(tf.math.is_finite(values)), True, message=message,
                                     summarize=1)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encoded_frame_sizes(frames):
    """``[N, 2]`` int64 (height, width) of JPEG or PNG ``frames`` ``[N]`` read from their headers (no decoding).

    Fails (an op error) on bytes that are neither a PNG nor a JPEG image.
    """
    def size(frame):
        def png():
            # IHDR: width and height, 4 big-endian bytes each, right after the signature and chunk header
            digits = tf.cast(tf.io.decode_raw(tf.strings.substr(frame, 16, 8), tf.uint8), tf.int64)
            scale = tf.constant([1 << 24, 1 << 16, 1 << 8, 1], tf.int64)
            width, height = tf.reduce_sum(digits[:4] * scale), tf.reduce_sum(digits[4:] * scale)
            return tf.stack([height, width])

        def jpeg():
            return tf.cast(tf.io.extract_jpeg_shape(frame)[:2], tf.int64)

        is_png = tf.logical_and(tf.strings.length(frame) >= 24,
                                tf.equal(tf.strings.substr(frame, 0, 8, unit="BYTE"), _PNG_SIGNATURE))
        return tf.cond(is_png, png, jpeg)

    return tf.map_fn(size, frames, fn_output_signature=tf.TensorSpec([2], tf.int64))


def _bytes_feature(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _int64_feature(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _float_feature(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(values, np.float32).ravel().tolist()))


def _feature(values):
    """bytes / str -> bytes list, integer arrays -> int64 list, anything else -> float list."""
    if isinstance(values, (bytes, str)):
        return _bytes_feature([values.encode() if isinstance(values, str) else values])
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=array.astype(np.int64).ravel().tolist()))
    return _float_feature(array)


def varlen_example(frames, encoded_frames=None, extra=None):
    """A VarLen-layout ``tf.train.Example`` for uint8 ``frames`` ``[T, H, W, C]``.

    ``encoded_frames`` (e.g. PNG bytes per frame) replaces the raw bytes when
    given; ``extra`` maps feature names to per-frame float arrays ``[T, ...]``
    or per-video values (integer arrays are stored as int64, ``str``/``bytes``
    as bytes, the rest as float).
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4:
        raise ValueError(f"frames must be uint8 [T, H, W, C], got {frames.dtype} {frames.shape}")
    length, height, width, channels = frames.shape
    encoded = encoded_frames if encoded_frames is not None else [frame.tobytes() for frame in frames]
    feature = {
        "sequence_length": _int64_feature(length),
        "height": _int64_feature(height),
        "width": _int64_feature(width),
        "channels": _int64_feature(channels),
        "images/encoded": _bytes_feature(encoded),
    }
    for name, values in (extra or {}).items():
        feature[name] = _feature(values)
    return tf.train.Example(features=tf.train.Features(feature=feature))


def write_tfrecord_shards(output_dir, examples, examples_per_file=128, prefix="sequence"):
    """Write serialisable examples to ``<prefix>_<first>_to_<last>.tfrecord`` shards.

    Each shard is written under a ``.tmp`` name and renamed when complete, so an
    interrupted run never leaves a file that looks finished.  Returns the paths.
    """
    os.makedirs(output_dir, exist_ok=True)
    paths, shard, first = [], [], 0

    def flush():
        last = first + len(shard) - 1
        path = os.path.join(output_dir, f"{prefix}_{first}_to_{last}.tfrecord")
        with tf.io.TFRecordWriter(path + ".tmp") as writer:
            for example in shard:
                writer.write(example.SerializeToString())
        os.replace(path + ".tmp", path)
        paths.append(path)

    for example in examples:
        shard.append(example)
        if len(shard) == examples_per_file:
            flush()
            first += len(shard)
            shard = []
    if shard:
        flush()
    return paths
