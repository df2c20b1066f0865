"""Reading the pose datasets' records back in the tests (human36m, penn_action: one tf.train.Example per video)."""

import glob
import os

import tensorflow as tf


def read_records(split_dir):
    """{video_id: the Example's features} of every record in ``split_dir``."""
    examples = {}
    for path in sorted(glob.glob(os.path.join(split_dir, "*.tfrecord"))):
        for record in tf.data.TFRecordDataset(path):
            example = tf.train.Example.FromString(record.numpy()).features.feature
            examples[example["video_id"].bytes_list.value[0].decode()] = example
    return examples
