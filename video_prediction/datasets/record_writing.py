"""Writing the original's VarLen records from videos: shards, ``sequence_lengths.txt``, resumable splits.

Shared by the KTH and UCF101 converters.  A split is written to
``<split>.tmp`` and renamed when complete; a marker with the settings it was
written with lets a rerun after an interruption skip finished splits, and
``dataset_info.json`` (written last) marks the whole output as finished.
"""

import json
import os
import shutil

from video_prediction.datasets.base import varlen_example, write_tfrecord_shards


def ffmpeg_executable():
    """The ffmpeg binary that the imageio-ffmpeg wheel ships (no system ffmpeg needed)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def write_split(split_dir, sequences, sequences_per_file=128, encode_frame=None):
    """Write ``sequence_<first>_to_<last>.tfrecords`` shards and ``sequence_lengths.txt``; returns the count.

    ``sequences`` yields uint8 ``[T, H, W, C]`` videos; ``encode_frame`` (e.g.
    JPEG) replaces the raw bytes of each frame.
    """
    tmp = split_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    lengths = []

    def examples():
        for frames in sequences:
            lengths.append(len(frames))
            encoded = [encode_frame(frame) for frame in frames] if encode_frame else None
            yield varlen_example(frames, encoded_frames=encoded)

    for path in write_tfrecord_shards(tmp, examples(), sequences_per_file, prefix="sequence"):
        os.replace(path, path + "s")  # the original's shards end in .tfrecords
    with open(os.path.join(tmp, "sequence_lengths.txt"), "w") as f:
        f.writelines(f"{length}\n" for length in lengths)
    shutil.rmtree(split_dir, ignore_errors=True)
    os.replace(tmp, split_dir)
    return len(lengths)


def _same(saved, settings):
    return {key: saved.get(key) for key in settings} == json.loads(json.dumps(settings))


def write_splits(output_dir, splits, settings, sequences_per_file=128, encode_frame=None):
    """Write every split of ``splits`` (``{name: callable returning its videos}``); returns the dataset info.

    ``settings`` (JSON-able) describe how the data was made; an output whose
    ``dataset_info.json`` holds the same settings is left alone.
    """
    info_path = os.path.join(output_dir, "dataset_info.json")
    if os.path.exists(info_path):
        with open(info_path) as f:
            info = json.load(f)
        if _same(info, settings):
            print(f"{output_dir} already holds these records; nothing to do")
            return info
        os.remove(info_path)
    counts = {}
    for split, videos in splits.items():
        split_dir = os.path.join(output_dir, split)
        marker = os.path.join(output_dir, f".{split}_settings.json")
        if os.path.exists(marker) and os.path.isdir(split_dir):
            with open(marker) as f:
                if _same(json.load(f), settings):
                    with open(os.path.join(split_dir, "sequence_lengths.txt")) as lengths:
                        counts[split] = sum(1 for line in lengths if line.strip())
                    continue
        counts[split] = write_split(split_dir, videos(), sequences_per_file, encode_frame)
        with open(marker, "w") as f:
            json.dump(settings, f)
    info = dict(settings, num_examples=counts)
    write_dataset_info(output_dir, info)
    for split in splits:
        os.remove(os.path.join(output_dir, f".{split}_settings.json"))
    return info


def video_shard_path(split_dir, name):
    """``<split_dir>/<name>_0_to_0.tfrecord`` (spaces and slashes of ``name`` become ``_``)."""
    safe = name.replace("/", "_").replace(" ", "_")
    return os.path.join(split_dir, f"{safe}_0_to_0.tfrecord")


def write_video_record(split_dir, name, example):
    """Write one video's example as its own shard (via a ``.tmp`` name); returns the path.

    One shard per video lets a long conversion resume video by video: a rerun
    skips every video whose shard exists (:func:`video_shard_path`).
    """
    import tensorflow as tf

    os.makedirs(split_dir, exist_ok=True)
    path = video_shard_path(split_dir, name)
    with tf.io.TFRecordWriter(path + ".tmp") as writer:
        writer.write(example.SerializeToString())
    os.replace(path + ".tmp", path)
    return path


def check_settings(output_dir, settings):
    """Record ``settings`` in ``<output_dir>/.settings.json``, or ValueError if the output was made differently."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, ".settings.json")
    wanted = json.loads(json.dumps(settings))
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved != wanted:
            changed = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
            raise ValueError(f"{output_dir} holds records made with other settings ({', '.join(changed)}); "
                             "use another --output_dir or delete it")
        return
    with open(path, "w") as f:
        json.dump(wanted, f, indent=2, sort_keys=True)


def write_json_atomically(path, value, **json_kwargs):
    """Write ``value`` as JSON to ``path`` through a temporary file: a reader sees the old file or the whole new one."""
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, **json_kwargs)
    os.replace(path + ".tmp", path)


def write_dataset_info(output_dir, info):
    """``dataset_info.json`` (written last: it marks the output as finished)."""
    write_json_atomically(os.path.join(output_dir, "dataset_info.json"), info, indent=2, sort_keys=True)
