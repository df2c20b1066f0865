"""Training that survives faults: kill -9 and resume (bitwise with --deterministic), atomic checkpoints,
a full disk, NaN losses, and bad input that leaves existing checkpoints intact."""

import errno
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from training_processes import checkpoint_tensors, child_env, kill_after, read_until, step_of
from video_prediction.training import checkpointing
from video_prediction.training.building import load_model
from video_prediction.training.fault_tolerance import NonFiniteLossError, TrainingInterrupted
from video_prediction.training.loop import train
from video_prediction.training.monitor import TrainingMonitor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
DATASET_HPARAMS = "context_frames=2,sequence_length=5"
MAX_STEPS = 10
KILLS = 3
# SAVP-VAE at its smallest, with KL annealing and an lr decay inside the run, schedule sampling and
# latent sampling (random ops): everything a resume must restore.  (The GAN variants trace several
# times slower; their second optimizer goes through the same optimizers_by_name() checkpointing.)
TINY_VAE = dict(ngf=4, nef=4, nz=2, batch_size=2, kl_anneal="linear", kl_anneal_steps=[2, 8],
                decay_steps=[4, 10], schedule_sampling_steps=[0, 10])
# The cheapest SAVP to trace, for the tests that only need some training.
TINY_DETERMINISTIC = dict(ngf=4, nef=4, nz=0, batch_size=2, schedule_sampling="none")


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from video_prediction.datasets.moving_mnist import write_moving_mnist

    root = tmp_path_factory.mktemp("ft")
    write_moving_mnist(str(root / "mm32"), {"train": 6, "val": 2, "test": 2}, sequence_length=6, canvas_size=32,
                       examples_per_file=3, progress=False)
    write_moving_mnist(str(root / "mm40"), {"train": 2, "val": 2, "test": 2}, sequence_length=6, canvas_size=40,
                       progress=False)
    for name, variant, tiny in (("vae", "ours_vae_l1", TINY_VAE), ("det", "ours_deterministic_l1", TINY_DETERMINISTIC)):
        with open(os.path.join(ROOT, f"hparams/moving_mnist/{variant}/model_hparams.json")) as f:
            (root / f"{name}.json").write_text(json.dumps(dict(json.load(f), **tiny)))
    return root


def train_args(records, output_dir, *extra):
    return ["--dataset", "moving_mnist", "--input_dir", str(records / "mm32"), "--dataset_hparams", DATASET_HPARAMS,
            "--model", "savp", "--model_hparams_dict", str(records / "vae.json"),
            "--output_dir", str(output_dir), "--max_steps", str(MAX_STEPS), "--save_freq", "2",
            "--summary_freq", "1", "--image_summary_freq", "0", "--keep_checkpoints", "2", "--seed", "5",
            "--deterministic", "--verbose", "1", *extra]


def train_command(args):
    return [sys.executable, os.path.join(ROOT, "scripts", "train.py"), *args]


ENV = child_env()


def run_to_end(args):
    result = subprocess.run(train_command(args), capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
    assert result.returncode == 0, f"train.py failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def run_and_kill(args, rng, earliest=1, timeout=400):
    """Start train.py and SIGKILL it soon after it reaches a random step (plus a random delay).

    The step is drawn after the run says where it starts, within four steps of that start and not
    too close to the end, so that every run is really killed.  Returns ``(output, return code)``.
    """
    process = subprocess.Popen(train_command(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=ENV, cwd=ROOT)
    start, target = 0, None

    def reached_target(line):
        nonlocal start, target
        resumed = re.match(r"resumed from .* at step (\d+)", line)
        if resumed:
            start = int(resumed.group(1))
        step = step_of(line)
        if step is not None and target is None:
            target = rng.randint(max(start + 1, earliest), max(min(start + 4, MAX_STEPS - 4), start + 1))
        return step is not None and step >= target

    try:
        output, _ = read_until(process, reached_target, timeout)
        kill_after(process, rng)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    output.append(process.stdout.read())
    return "".join(output), process.returncode


def files_digest(directory):
    digest = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and name.startswith(("ckpt-", "checkpoint")):
            digest[name] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return digest


@pytest.fixture(scope="module")
def reference_run(records):
    """An uninterrupted --deterministic run of MAX_STEPS steps."""
    output_dir = records / "reference"
    run_to_end(train_args(records, output_dir))
    return output_dir


def test_sigkill_at_random_points_then_resume_is_bitwise_equal(records, reference_run):
    seed = int(time.time())  # fresh kill points every run; printed on failure to reproduce them
    rng = random.Random(seed)
    output_dir = records / "killed"
    args = train_args(records, output_dir)
    outputs, codes = [], []
    for cycle in range(KILLS):
        # The first kill comes after the first checkpoint, so that the later runs really resume.
        output, code = run_and_kill(args, rng, earliest=3 if cycle == 0 else 1)
        outputs.append(output)
        codes.append(code)
    final = run_to_end(args)
    context = f"kill seed {seed}; outputs:\n" + "\n----\n".join(o[-800:] for o in outputs + [final])
    assert codes == [-signal.SIGKILL] * KILLS, context  # every run was really killed
    assert all("resumed from" in o for o in outputs[1:] + [final]), context
    latest = checkpointing.latest_complete_checkpoint(str(output_dir))
    assert latest.endswith(f"ckpt-{MAX_STEPS}"), context
    expected = checkpoint_tensors(checkpointing.latest_complete_checkpoint(str(reference_run)))
    actual = checkpoint_tensors(latest)
    assert actual.keys() == expected.keys()
    assert any("optimizer" in k and ".OPTIMIZER_SLOT" not in k for k in actual)  # Adam's state is compared
    assert any("run_state/rng" in k for k in actual)  # and the random stream
    different = [k for k in expected if not np.array_equal(actual[k], expected[k])]
    assert different == [], f"{len(different)} tensors differ, e.g. {different[:5]}; {context}"
    # --keep_checkpoints 2: no more than two checkpoints survive, and no leftovers of killed saves.
    steps = sorted({checkpointing.step_of(n) for n in os.listdir(output_dir) if n.startswith("ckpt-")})
    assert steps == [MAX_STEPS - 2, MAX_STEPS], steps
    assert not [n for n in os.listdir(output_dir) if n.startswith(".saving")]


# -- checkpoint files ---------------------------------------------------------------------------


def small_manager(directory, keep=2):
    value = tf.Variable(0.0)
    checkpoint = tf.train.Checkpoint(value=value)
    return value, checkpoint, checkpointing.AtomicCheckpointManager(checkpoint, str(directory), keep)


def test_keep_checkpoints_bounds_disk_use(tmp_path):
    value, _, manager = small_manager(tmp_path, keep=2)
    for step in range(1, 6):
        value.assign(float(step))
        manager.save(step)
    names = sorted(os.listdir(tmp_path))
    assert {checkpointing.step_of(n) for n in names if n.startswith("ckpt-")} == {4, 5}, names
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-5")
    assert [os.path.basename(p) for p in checkpointing.read_state(str(tmp_path))] == ["ckpt-4", "ckpt-5"]


def test_crash_while_saving_leaves_previous_latest_loadable(tmp_path, monkeypatch):
    value, checkpoint, manager = small_manager(tmp_path)
    value.assign(1.0)
    manager.save(1)
    value.assign(2.0)
    real_replace, moved = os.replace, []

    def dying_replace(source, target):  # the process dies after moving the first file of ckpt-2
        if moved:
            raise SystemExit("killed")
        moved.append(target)
        real_replace(source, target)

    monkeypatch.setattr(checkpointing.os, "replace", dying_replace)
    with pytest.raises(SystemExit):
        manager.save(2)
    monkeypatch.setattr(checkpointing.os, "replace", real_replace)
    assert moved and any(n.startswith(".saving-ckpt-2") for n in os.listdir(tmp_path))
    latest = checkpointing.latest_complete_checkpoint(str(tmp_path))
    assert latest.endswith("ckpt-1") and tf.train.latest_checkpoint(str(tmp_path)) == latest
    value.assign(0.0)
    checkpoint.read(latest).assert_consumed()
    assert float(value.numpy()) == 1.0
    # The next start removes the leftovers; saving works again.
    removed = manager.remove_incomplete()
    assert removed and not [n for n in os.listdir(tmp_path) if n.startswith((".saving", "ckpt-2"))]
    manager.save(2)
    assert checkpointing.latest_complete_checkpoint(str(tmp_path)).endswith("ckpt-2")


def test_full_disk_while_saving_is_one_clear_error(tmp_path, monkeypatch):
    value, checkpoint, manager = small_manager(tmp_path)
    value.assign(1.0)
    manager.save(1)
    before = files_digest(tmp_path)
    real_write = tf.train.Checkpoint.write

    def write_then_fail(self, prefix, options=None):
        real_write(self, prefix, options=options)  # some files reach the disk, then it is full
        with open(prefix + ".index", "ab") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tf.train.Checkpoint, "write", write_then_fail)
    with pytest.raises(checkpointing.CheckpointSaveError, match=r"ckpt-2: the disk is full .*ckpt-1 is still the latest"):
        manager.save(2)
    assert files_digest(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == sorted(before)  # no staging directory left either


def test_full_disk_in_train_keeps_checkpoints(records, tmp_path, monkeypatch):
    """The same through train: the save at step 4 fails, the run stops, ckpt-2 stays the latest."""
    output_dir = str(tmp_path / "run")
    calls = []
    real_write = tf.train.Checkpoint.write

    def fail_second_save(self, prefix, options=None):
        calls.append(prefix)
        if "ckpt-4" in prefix:
            raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
        return real_write(self, prefix, options=options)

    monkeypatch.setattr(tf.train.Checkpoint, "write", fail_second_save)
    with pytest.raises(checkpointing.CheckpointSaveError, match=r"ckpt-4: No space left .*ckpt-2 is still"):
        train_in_process(records, output_dir, max_steps=6)
    assert checkpointing.latest_complete_checkpoint(output_dir).endswith("ckpt-2")
    assert not [n for n in os.listdir(output_dir) if n.startswith(("ckpt-4", ".saving"))]


# -- non-finite losses --------------------------------------------------------------------------


def train_in_process(records, output_dir, max_steps=6, **kwargs):
    args = dict(input_dir=str(records / "mm32"), dataset_name="moving_mnist", model_name="savp",
                output_dir=str(output_dir), dataset_hparams=DATASET_HPARAMS,
                model_hparams_dict=str(records / "det.json"), max_steps=max_steps, save_freq=2,
                summary_freq=0, image_summary_freq=0, seed=5, verbose=0)
    args.update(kwargs)
    return train(**args)


@pytest.fixture
def nan_at_step_3(monkeypatch):
    """The L1 term of SAVP becomes NaN on the update from global step 2 to 3 (the 3rd step)."""
    from video_prediction.models.savp import SAVPVideoPredictionModel

    original = SAVPVideoPredictionModel.generator_losses

    def poisoned(self, batch, outputs):
        losses = original(self, batch, outputs)
        poison = tf.where(tf.equal(self.global_step, 2), float("nan"), 1.0)
        return dict(losses, gen_l1_loss=losses["gen_l1_loss"] * poison)

    monkeypatch.setattr(SAVPVideoPredictionModel, "generator_losses", poisoned)


def test_nonfinite_loss_stops_naming_step_and_term(records, tmp_path, nan_at_step_3):
    output_dir = str(tmp_path / "run")
    with pytest.raises(NonFiniteLossError,
                       match=r"non-finite loss at step 3: .*gen_l1_loss=nan.*ckpt-2 is kept"):
        train_in_process(records, output_dir)
    latest = checkpointing.latest_complete_checkpoint(output_dir)
    assert latest.endswith("ckpt-2")
    assert all(np.all(np.isfinite(v)) for v in checkpoint_tensors(latest).values() if v.dtype.kind == "f")


def test_skip_nonfinite_steps_undoes_and_counts(records, tmp_path, nan_at_step_3):
    model = train_in_process(records, str(tmp_path / "run"), skip_nonfinite_steps=True)
    assert int(model.global_step.numpy()) == 6
    assert int(model.optimizer.iterations.numpy()) == 5  # the poisoned update was undone, Adam's count too
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    tensors = checkpoint_tensors(checkpointing.latest_complete_checkpoint(str(tmp_path / "run")))
    assert [int(v) for k, v in tensors.items() if "skipped_nonfinite_steps" in k] == [1]


# -- bad input leaves checkpoints intact ---------------------------------------------------------


@pytest.mark.parametrize("overrides,message", [
    (dict(model_hparams="ngf=8"), r"was trained with ngf=4 \(given 8\); refusing to resume"),
    (dict(model_hparams_dict="det.json"), r"was trained with .*nz=2 \(given 0\)"),
    (dict(model_hparams="ngff=8"), r"unknown hparam 'ngff'"),
    (dict(input_dir="mm40"), r"image size mismatch: .* \(32, 32, 1\) .* \(40, 40, 1\)"),
    (dict(model_name="mspred"), r"holds a 'savp' model run; refusing to resume it as 'mspred'"),
    (dict(seed=6), r"was started with --seed 5; refusing to resume it with --seed 6"),
    (dict(keep_checkpoints=0), r"--keep_checkpoints must be >= 1"),
])
def test_bad_input_on_resume_is_one_error_and_keeps_checkpoints(records, reference_run, overrides, message):
    before = files_digest(reference_run)
    overrides = dict(dict(model_hparams_dict="vae.json"), **overrides)
    for key in ("input_dir", "model_hparams_dict"):
        if key in overrides:
            overrides[key] = str(records / overrides[key])
    with pytest.raises(ValueError, match=message):
        train_in_process(records, reference_run, max_steps=MAX_STEPS + 2, **overrides)
    assert files_digest(reference_run) == before


def test_checkpoint_of_another_hparams_set_is_refused(records, reference_run, tmp_path):
    before = files_digest(reference_run)
    with pytest.raises(ValueError, match=r"does not fit model 'savp' \(was it written by another model or hparams"):
        train_in_process(records, tmp_path / "new", checkpoint=str(reference_run), model_hparams="ngf=8",
                         model_hparams_dict=str(records / "vae.json"))
    assert files_digest(reference_run) == before


def test_corrupt_training_record_is_named_or_skipped(records, tmp_path, capsys):
    """Through train: a flipped payload byte stops the run naming file and record; with
    --skip_corrupt_records the run trains on the rest and reports what it skipped."""
    import shutil

    from test_corrupt_records import record_spans

    data_dir = tmp_path / "data"
    shutil.copytree(records / "mm32", data_dir)
    path = str(sorted((data_dir / "train").iterdir())[1])
    start, end = record_spans(path)[1]
    damaged = bytearray(open(path, "rb").read())
    damaged[(start + end) // 2] ^= 0x10
    open(path, "wb").write(bytes(damaged))
    with pytest.raises(ValueError, match=rf"corrupt TFRecord file {path}: record 1 cannot be read .*"
                                         r"--skip_corrupt_records"):
        train_in_process(records, tmp_path / "strict", input_dir=str(data_dir))
    assert not (tmp_path / "strict" / "checkpoint").exists()
    capsys.readouterr()
    model = train_in_process(records, tmp_path / "skipping", input_dir=str(data_dir), max_steps=2,
                             skip_corrupt_records=True)
    assert int(model.global_step.numpy()) == 2
    assert "train: skipped 2 corrupt or unreachable records in 1 files" in capsys.readouterr().out


def test_sigterm_saves_the_current_step_and_stops(records, tmp_path, monkeypatch):
    """Preemption (SIGTERM) after step 3: the step finishes, ckpt-3 is written, the run stops cleanly."""
    previous_handler = signal.getsignal(signal.SIGTERM)
    original = TrainingMonitor.on_train_batch_end

    def preempt_at_step_3(self, batch, logs=None):
        original(self, batch, logs)
        if self.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(TrainingMonitor, "on_train_batch_end", preempt_at_step_3)
    output_dir = str(tmp_path / "run")
    with pytest.raises(TrainingInterrupted, match=r"SIGTERM received: stopped after step 3 and saved "
                                                  r".*ckpt-3; rerun the same command to resume"):
        train_in_process(records, output_dir)
    assert checkpointing.latest_complete_checkpoint(output_dir).endswith("ckpt-3")
    assert os.path.exists(checkpointing.input_prefix(os.path.join(output_dir, "ckpt-3"), 0) + ".index")
    assert signal.getsignal(signal.SIGTERM) is previous_handler


def test_checkpoint_without_run_state_still_resumes(records, reference_run, tmp_path, capsys):
    """A run written before run states (RNG, counters) were checkpointed still resumes, and says so."""
    import shutil

    output_dir = tmp_path / "old"
    shutil.copytree(reference_run, output_dir)
    latest = checkpointing.latest_complete_checkpoint(str(output_dir))
    # Rewrite the latest checkpoint as the earlier training loop did: model and optimizer only.
    model, _, _ = load_model(latest)
    model.make_optimizers()
    model.build_optimizers()
    legacy = tf.train.Checkpoint(model=model, **model.optimizers_by_name())
    legacy.restore(latest).expect_partial()
    legacy.save_counter  # noqa: B018 (CheckpointManager.save wrote it)
    legacy.write(latest)
    assert not any(name.startswith("run_state/") for name, _ in tf.train.list_variables(latest))
    capsys.readouterr()
    resumed = train_in_process(records, output_dir, max_steps=MAX_STEPS, model_hparams_dict=str(records / "vae.json"))
    out = capsys.readouterr().out
    assert "has no run state (an older checkpoint)" in out and f"at step {MAX_STEPS}" in out
    assert int(resumed.global_step.numpy()) == MAX_STEPS
