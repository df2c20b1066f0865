"""Small record sets in each TFRecord dataset's own layout, for fuzzing (tests/test_record_fuzzing.py, the note).

``write_record_set(name, root)`` writes the ``test`` split of dataset ``name``
under ``root`` (two files of ``RECORDS_PER_FILE`` records: one named
``<prefix>_<a>_to_<b>``, which promises its record count, one not) and
returns ``(input_dir, dataset hparams)``.  The records are tiny but complete:
every feature the dataset's original layout has (also the ones its reader
ignores), frames in the dataset's encoding (raw, JPEG, PNG).

Usage for the note: ``python tests/fuzz_record_sets.py DIR`` writes a set for
every TFRecord dataset into ``DIR/<name>`` and prints ``name input_dir hparams``.
"""

import io
import os
import sys

import numpy as np

RECORDS_PER_FILE = 3
FRAMES = 6  # stored frames per video; the clips read are 4 long
CLIP = "context_frames=2,sequence_length=4"


def _frames(video, steps, height, width, channels, seed=0):
    """Smooth (JPEG-friendly) distinct frames of one video."""
    y, x = np.mgrid[:height, :width]
    frames = []
    for t in range(steps):
        base = 120 + 90 * np.sin(x / width * 3 + video + seed + 0.4 * t) * np.cos(y / height * 2 + video)
        frames.append(np.stack([np.roll(base, c, axis=1) for c in range(channels)], -1))
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def _jpeg(frame):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _png(frame):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def _write(directory, examples, prefix, suffix=".tfrecord"):
    """Two files: ``<prefix>_0_to_<n-1><suffix>`` (a count-promising name) and ``<prefix>_extra<suffix>``."""
    import tensorflow as tf

    os.makedirs(directory, exist_ok=True)
    halves = [examples[:RECORDS_PER_FILE], examples[RECORDS_PER_FILE:]]
    names = [f"{prefix}_0_to_{RECORDS_PER_FILE - 1}{suffix}", f"{prefix}_extra{suffix}"]
    for name, half in zip(names, halves):
        with tf.io.TFRecordWriter(os.path.join(directory, name)) as writer:
            for example in half:
                writer.write(example.SerializeToString())


def _unname_last(directory):
    """Rename the last shard of a writer's output so that its name promises no record count."""
    files = sorted(f for f in os.listdir(directory) if ".tfrecord" in f)
    last = files[-1]
    os.rename(os.path.join(directory, last), os.path.join(directory, last.split("_")[0] + "_extra.tfrecord"
                                                          + ("s" if last.endswith("s") else "")))


def _varlen(frames, encode=None, extra=None):
    from video_prediction.datasets.base import varlen_example

    return varlen_example(frames, encoded_frames=[encode(f) for f in frames] if encode else None, extra=extra)


def _pose_extra(num_joints, video, steps, size):
    from video_prediction.datasets.pose import pose_record_features

    rng = np.random.default_rng(video)
    poses = rng.uniform(2, size - 2, (steps, num_joints, 2)).astype(np.float32)
    visibility = (rng.random((steps, num_joints)) > 0.2).astype(np.float32)
    return pose_record_features(poses, visibility, (0, 0, size, size), label=video % 3, video_id=f"video{video}")


def write_record_set(name, root):
    """Write dataset ``name``'s small test split under ``root``; returns ``(input_dir, hparams)``."""
    from video_prediction.datasets.video_dataset import per_timestep_example

    n = 2 * RECORDS_PER_FILE
    test = os.path.join(root, "test")
    if name in ("moving_mnist", "mspred_moving_mnist"):
        from video_prediction.datasets.moving_mnist import write_moving_mnist

        write_moving_mnist(root, {"train": 1, "val": 1, "test": n}, sequence_length=FRAMES, canvas_size=32,
                           examples_per_file=RECORDS_PER_FILE, progress=False)
        _unname_last(test)
        return root, CLIP + (",num_channels=3" if name == "mspred_moving_mnist" else "")
    if name == "moving_mnist_pose":
        from video_prediction.datasets.moving_mnist_pose import write_moving_mnist_pose

        write_moving_mnist_pose(root, {"train": 1, "val": 1, "test": n}, sequence_length=FRAMES, canvas_size=32,
                                examples_per_file=RECORDS_PER_FILE, progress=False)
        _unname_last(test)
        return root, CLIP
    if name in ("human36m", "penn_action"):
        from video_prediction.datasets import get_dataset_class

        joints = len(get_dataset_class(name).joint_names)
        examples = []
        for v in range(n):
            extra = _pose_extra(joints, v, FRAMES, 24)
            if name == "penn_action":
                extra["in_subset"] = np.int64(1)
            examples.append(_varlen(_frames(v, FRAMES, 24, 24, 3), _jpeg if name == "human36m" else _png, extra))
        _write(test, examples, "sequence")
        hparams = CLIP + (",frame_skip=0,fskip=1" if name == "human36m" else "")
        return root, hparams
    if name == "robonet":
        _write(test, [_varlen(_frames(v, FRAMES, 12, 16, 3)) for v in range(n)], "sequence")
        return root, CLIP
    if name == "kth":
        _write(test, [_varlen(_frames(v, FRAMES, 16, 16, 1)) for v in range(n)], "sequence", ".tfrecords")
        # force_time_shift (KTH's default) draws test clip offsets per stream position: fixed clips to compare
        return root, CLIP + ",long_sequence_length=4,force_time_shift=False"
    if name == "ucf101":
        _write(test, [_varlen(_frames(v, FRAMES, 16, 24, 3), _jpeg) for v in range(n)], "sequence", ".tfrecords")
        return root, CLIP
    if name in ("bair", "softmotion"):
        examples = []
        for v in range(n):
            frames = _frames(v, FRAMES, 64, 64, 3)
            t = np.arange(FRAMES, dtype=np.float32)
            examples.append(per_timestep_example({
                "%d/image_aux1/encoded": [f.tobytes() for f in frames],
                "%d/image_main/encoded": [f[::-1].tobytes() for f in frames],  # present in BAIR, not read
                "%d/endeffector_pos": np.stack([np.full(FRAMES, v), t, np.full(FRAMES, 0.5)], 1),
                "%d/action": np.stack([np.full(FRAMES - 1, v), t[:-1], t[:-1] + 0.25, -t[:-1]], 1),
            }))
        _write(test, examples, "traj", ".tfrecords")
        return root, CLIP + ",use_state=True,long_sequence_length=4"
    if name == "cartgripper":
        examples = [per_timestep_example({
            "%d/image_view0/encoded": [f.tobytes() for f in _frames(v, FRAMES, 48, 64, 3)],
            "%d/endeffector_pos": np.arange(FRAMES * 6, dtype=np.float32).reshape(FRAMES, 6) + 100 * v,
            "%d/action": np.arange((FRAMES - 1) * 3, dtype=np.float32).reshape(FRAMES - 1, 3) - 100 * v,
        }) for v in range(n)]
        _write(test, examples, "traj", ".tfrecords")
        return root, CLIP + ",long_sequence_length=4,time_shift=0"
    if name == "google_robot":
        examples = [per_timestep_example({
            "move/%d/image/encoded": [_jpeg(f) for f in _frames(v, FRAMES, 512, 640, 3)],
            "move/%d/endeffector/vec_pitch_yaw": np.full((FRAMES, 5), v, np.float32) + np.arange(FRAMES)[:, None],
            "move/%d/commanded_pose/vec_pitch_yaw": np.full((FRAMES - 1, 5), -v, np.float32),
            "move/%d/joint/positions": np.zeros((FRAMES, 7), np.float32),  # not read
        }) for v in range(n)]
        directory = os.path.join(root, "push_testseen")
        _write(directory, examples, "push_testseen")
        return directory, CLIP + ",use_state=True,scale_size=16"
    if name == "sv2p":
        examples = [per_timestep_example({
            "image_%d": [_jpeg(f) for f in _frames(v, FRAMES, 64, 64, 3)],
            "state_%d": np.full((FRAMES, 2), v, np.float32) + np.arange(FRAMES)[:, None],
            "action_%d": np.full((FRAMES - 1, 2), -v, np.float32),
        }) for v in range(n)]
        directory = os.path.join(root, "shape")
        _write(os.path.join(directory, "test"), examples, "shape")
        return directory, CLIP + ",use_state=True"
    if name in ("epva_human36m", "epva_robot"):
        from video_prediction.datasets.epva import epva_example

        robot = name == "epva_robot"
        examples = []
        for v in range(n):
            frames = _frames(v, FRAMES, 16, 16, 3)
            if robot:
                state = np.full((FRAMES, 5), v, np.float32) + np.arange(FRAMES)[:, None]
                examples.append(epva_example(frames, states=state, actions=-state,
                                             joint_positions=np.ones((FRAMES, 7), np.float32) * v))
            else:
                examples.append(epva_example(frames))
        _write(test, examples, "records")
        return root, CLIP + f",image_size=16,frame_skip=0,use_state={robot}"
    raise ValueError(f"no record set for dataset {name!r}")


def tfrecord_datasets():
    """Registered datasets read from TFRecords (the others are read by Python code)."""
    from video_prediction.datasets import _DATASETS, get_dataset_class
    from video_prediction.datasets.base import BaseVideoDataset

    return [name for name in _DATASETS if issubclass(get_dataset_class(name), BaseVideoDataset)]


if __name__ == "__main__":
    output = sys.argv[1]
    for dataset_name in (sys.argv[2:] or tfrecord_datasets()):
        input_dir, dataset_hparams = write_record_set(dataset_name, os.path.join(output, dataset_name))
        print(dataset_name, input_dir, dataset_hparams, flush=True)
