"""An original's checkpoint that is cut short, missing or damaged gives the converters one error naming the
file: TF1 name-based checkpoints (SAVP, SV2P/SNA, EPVA, the pose models), torch ``.pth`` (MSPred, VQ-VAE)
and Torch7 ``.t7`` files."""

import os

import numpy as np
import pytest
import tensorflow as tf

from conversion.test_t7 import T7Writer
from torch_pth_writer import save_pth
from video_prediction.conversion.formats.t7 import T7FormatError, load_t7
from video_prediction.conversion.formats.tf1 import find_original_checkpoint, open_checkpoint
from video_prediction.conversion.formats.torch_pth import CheckpointFormatError, load_state_dict


@pytest.fixture
def tf1_run(tmp_path):
    """A name-based checkpoint ``model-5`` with its state file, as the originals ship them."""
    directory = tmp_path / "original"
    directory.mkdir()
    variables = {"generator/conv/kernel": tf.Variable(np.arange(3000, dtype=np.float32)),
                 "generator/conv/bias": tf.Variable(np.ones(7, np.float32))}
    tf.train.Checkpoint(**{k.replace("/", "_"): v for k, v in variables.items()}).write(str(directory / "model-5"))
    (directory / "checkpoint").write_text('model_checkpoint_path: "/home/author/run/model-5"\n')
    return str(directory), str(directory / "model-5")


def test_intact_tf1_checkpoint_opens(tf1_run):
    directory, prefix = tf1_run
    assert find_original_checkpoint(directory) == prefix
    reader, shapes = open_checkpoint(prefix)
    assert reader.get_tensor("generator_conv_kernel/.ATTRIBUTES/VARIABLE_VALUE")[-1] == 2999


def test_truncated_tf1_data_file_is_named(tf1_run):
    directory, prefix = tf1_run
    data = prefix + ".data-00000-of-00001"
    raw = open(data, "rb").read()
    open(data, "wb").write(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=f"^checkpoint data file {data} is truncated"):
        open_checkpoint(find_original_checkpoint(directory))


def test_missing_tf1_files_are_named(tf1_run):
    directory, prefix = tf1_run
    os.remove(prefix + ".index")
    with pytest.raises(FileNotFoundError, match=f"names model-5, but {prefix}.index is missing"):
        find_original_checkpoint(directory)
    os.remove(os.path.join(directory, "checkpoint"))
    for path in (directory, prefix):
        with pytest.raises(FileNotFoundError, match=f"checkpoint index {prefix}.index is missing"):
            find_original_checkpoint(path)
    open(prefix + ".index", "wb").close()
    with pytest.raises(ValueError, match=f"checkpoint index {prefix}.index is empty"):
        open_checkpoint(find_original_checkpoint(directory))
    os.remove(prefix + ".data-00000-of-00001")
    open(prefix + ".index", "wb").write(open(__file__, "rb").read()[:300])
    with pytest.raises(ValueError, match=f"checkpoint index {prefix}.index is unreadable"):
        open_checkpoint(prefix)


def test_damaged_pth_is_named(tmp_path):
    path = str(tmp_path / "checkpoint_epoch_final.pth")
    save_pth({"model_state_dict": {"w": np.arange(5000, dtype=np.float32)}}, path)
    raw = open(path, "rb").read()
    assert load_state_dict(path)["w"][-1] == 4999
    open(path, "wb").write(raw[: len(raw) * 2 // 3])
    with pytest.raises(CheckpointFormatError, match=f"^checkpoint {path} is truncated"):
        load_state_dict(path)
    flipped = bytearray(raw)
    flipped[raw.index(np.arange(5000, dtype=np.float32).tobytes()[4000:4016])] ^= 1  # inside the stored tensor
    open(path, "wb").write(bytes(flipped))
    with pytest.raises(CheckpointFormatError, match=f"^checkpoint {path} is damaged: .*CRC"):
        load_state_dict(path)
    os.remove(path)
    with pytest.raises(FileNotFoundError, match=f"checkpoint {path} does not exist"):
        load_state_dict(path)


def test_truncated_t7_is_named(tmp_path):
    path = tmp_path / "train_meta64x64.t7"
    T7Writer().write({"x": np.arange(50, dtype=np.float64)}).save(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(T7FormatError, match=f"^{path}: unexpected end of file"):
        load_t7(path)
