"""Damaged checkpoints: a truncated or missing data shard, a missing, empty or garbled index, a state file
naming a deleted step.  Each is one error line naming the file -- in train (resume), generate/evaluate
(load_model), and the converters' readers -- and train falls back to the newest intact checkpoint only
with --recover_from_older_checkpoint, saying which it skipped; without it nothing in the run is changed."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.training import checkpointing
from video_prediction.training.building import load_model
from video_prediction.training.checkpointing import DamagedCheckpointError
from video_prediction.training.loop import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
DATASET_HPARAMS = "context_frames=2,sequence_length=4"
# The cheapest SAVP to trace (no latents, no GAN, no schedule sampling).
TINY = dict(ngf=4, nef=4, nz=0, batch_size=2, schedule_sampling="none", kl_weight=0.0, video_sn_vae_gan_weight=0.0,
            video_sn_gan_weight=0.0, vae_gan_feature_cdist_weight=0.0)
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1", PYTHONPATH=ROOT)
ENV.pop("VIDEO_PREDICTION_DEBUG", None)


def train_here(records, output_dir, max_steps, **kwargs):
    return train(str(records / "mm"), "moving_mnist", "savp", str(output_dir), dataset_hparams=DATASET_HPARAMS,
                 model_hparams_dict=str(records / "tiny.json"), max_steps=max_steps, save_freq=2, summary_freq=0,
                 image_summary_freq=0, keep_checkpoints=3, seed=3, verbose=0, **kwargs)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Records, and a run with checkpoints ckpt-2 and ckpt-4 (``records / "run"``)."""
    from video_prediction.datasets.moving_mnist import write_moving_mnist

    root = tmp_path_factory.mktemp("ckpt_faults")
    write_moving_mnist(str(root / "mm"), {"train": 4, "val": 2, "test": 2}, sequence_length=5, canvas_size=32,
                       examples_per_file=2, progress=False)
    with open(os.path.join(ROOT, "hparams/moving_mnist/ours_deterministic_l1/model_hparams.json")) as f:
        (root / "tiny.json").write_text(json.dumps(dict(json.load(f), **TINY)))
    train_here(root, root / "run", max_steps=4)
    assert [os.path.basename(p) for p in checkpointing.read_state(str(root / "run"))] == ["ckpt-2", "ckpt-4"]
    return root


def files_digest(directory):
    """{relative path: bytes} of every file under ``directory`` (the run is tiny)."""
    digest = {}
    for base, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(base, name)
            digest[os.path.relpath(path, directory)] = open(path, "rb").read()
    return digest


def truncate(path, keep=0.5):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: int(len(data) * keep)])


def damage(run, how):
    """Damage ckpt-4 of ``run``; returns the file the error must name."""
    prefix = os.path.join(run, "ckpt-4")
    data, index = prefix + ".data-00000-of-00001", prefix + ".index"
    if how == "truncated_data":
        truncate(data)
        return data
    if how == "missing_data":
        os.remove(data)
        return data
    if how == "flipped_data":
        raw = bytearray(open(data, "rb").read())
        raw[len(raw) // 3] ^= 0x10
        open(data, "wb").write(bytes(raw))
        return data
    if how == "missing_index":
        os.remove(index)
        return index
    if how == "empty_index":
        open(index, "wb").close()
        return index
    if how == "garbage_index":
        open(index, "wb").write(os.urandom(200))
        return index
    if how == "deleted_step":  # the state file still names ckpt-4, whose files are gone
        for path in checkpointing._files_of(prefix):
            os.remove(path)
        return index
    if how == "truncated_input_state":
        path = checkpointing.input_prefix(prefix, 0) + ".data-00000-of-00001"
        truncate(path, 0.3)
        return path
    raise AssertionError(how)


DAMAGES = ["truncated_data", "missing_data", "flipped_data", "missing_index", "empty_index", "garbage_index",
           "deleted_step", "truncated_input_state"]
WHAT = {"truncated_data": "is truncated", "missing_data": "is missing", "flipped_data": "is corrupt",
        "missing_index": "is missing", "empty_index": "is empty", "garbage_index": "is unreadable",
        "deleted_step": "whose files are gone", "truncated_input_state": "is truncated"}


@pytest.fixture
def damaged_run(records, tmp_path, request):
    run = str(tmp_path / "run")
    shutil.copytree(records / "run", run)
    return run, damage(run, request.param)


@pytest.mark.parametrize("damaged_run", DAMAGES, indirect=True)
def test_damaged_checkpoint_stops_resume_naming_the_file_and_changes_nothing(records, damaged_run):
    run, path = damaged_run
    before = files_digest(run)
    how = os.path.basename(path)
    with pytest.raises(DamagedCheckpointError) as error:
        train_here(records, run, max_steps=6)
    message = str(error.value)
    assert "\n" not in message and path in message, message
    assert "newest intact checkpoint is " + os.path.join(run, "ckpt-2") in message
    assert "--recover_from_older_checkpoint" in message
    assert files_digest(run) == before, how


@pytest.mark.parametrize("damaged_run", ["truncated_data", "missing_index", "empty_index", "deleted_step"],
                         indirect=True)
def test_generate_and_evaluate_name_the_damaged_file(damaged_run):
    """generate.py / evaluate.py load their model through load_model (and report its ValueError in one line
    through cli.run_main, as train.py does in test_train_script_reports_one_line)."""
    run, path = damaged_run
    with pytest.raises(DamagedCheckpointError, match="^checkpoint .*" + path.replace(".", r"\.")):
        load_model(run)


def test_recover_from_older_checkpoint_skips_the_damaged_one(records, tmp_path, capsys):
    run = str(tmp_path / "run")
    shutil.copytree(records / "run", run)
    intact = checkpointing.input_prefix(os.path.join(run, "ckpt-2"), 0)
    expected = _tensors(os.path.join(run, "ckpt-2"))
    damage(run, "truncated_data")
    # Resumed from ckpt-2, stopped there (max_steps=2): the restored state is ckpt-2's.
    model = train_here(records, run, max_steps=2, recover_from_older_checkpoint=True)
    out = capsys.readouterr().out
    assert f"skipping damaged checkpoint {os.path.join(run, 'ckpt-4')}: checkpoint data file" in out
    assert f"resumed from {os.path.join(run, 'ckpt-2')} at step 2" in out
    assert int(model.global_step.numpy()) == 2
    # Written with the run's own structure (minus its run state), the restored objects give ckpt-2's tensors.
    restored = _tensors(tf.train.Checkpoint(model=model, **model.optimizers_by_name()).write(str(tmp_path / "r")))
    assert len(restored) > 10 and set(restored) <= set(expected)
    for key, value in restored.items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)
    # The damaged files were set aside, not deleted, and the state file names the intact checkpoint only.
    assert sorted(os.listdir(os.path.join(run, "damaged")))[0].startswith("ckpt-4.")
    assert [os.path.basename(p) for p in checkpointing.read_state(run)] == ["ckpt-2"]
    assert os.path.exists(intact + ".index")
    # Training goes on from there and writes a new ckpt-4.
    train_here(records, run, max_steps=4)
    assert "resumed from " + os.path.join(run, "ckpt-2") in capsys.readouterr().out
    checkpointing.verify_checkpoint(os.path.join(run, "ckpt-4"))


def _tensors(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "OBJECT_GRAPH" not in k and not k.startswith("save_counter")}


def test_unreadable_state_file_is_named_and_never_empties_the_run(records, tmp_path):
    run = str(tmp_path / "run")
    shutil.copytree(records / "run", run)
    state = os.path.join(run, "checkpoint")
    open(state, "w").write("not a state file\n")
    before = files_digest(run)
    with pytest.raises(DamagedCheckpointError, match=f"state file {state} names no checkpoint"):
        train_here(records, run, max_steps=6)
    assert files_digest(run) == before
    os.remove(state)  # a missing state file next to checkpoints is no fresh start either
    with pytest.raises(DamagedCheckpointError, match=f"state file {state} is missing but .* holds ckpt-4"):
        train_here(records, run, max_steps=6)


def test_train_script_reports_one_line(records, tmp_path):
    """train.py through its absl main: one 'error:' line, no traceback, exit 1."""
    run = str(tmp_path / "run")
    shutil.copytree(records / "run", run)
    path = damage(run, "garbage_index")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--output_dir", run,
                             "--max_steps", "6"], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: checkpoint index " + path), result.stderr
