"""Every trainable model family, at its smallest config, survives the faults the SAVP tests check
(tests/training/test_fault_tolerance.py): SIGKILL of a real ``train.py`` after a random step, then the same
command resumes and ends bitwise equal to an uninterrupted run (its own random ops -- dropout, predictor
noise, latent sampling, Keras seed generators -- included); and ``--skip_nonfinite_steps`` undoes and
counts an update whose loss is NaN.

To keep CI short both are checked on the same three runs per family (each ``train.py`` with
``--skip_nonfinite_steps`` and a NaN poisoned into its 3rd update): an uninterrupted reference, started
alongside a run that is SIGKILLed after a random step past the first checkpoint, then the rerun of it.
"""

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
from training_processes import ROOT, checkpoint_tensors, child_env, cpu_seconds, kill_after, read_until, step_of

MAX_STEPS = 5
SAVE_FREQ = 2
SEED = 3
ENV = child_env()

# family: (dataset, records, dataset hparams, smallest model hparams).  Each keeps (or turns on) the
# family's own random ops, so that the bitwise comparison covers their streams.
FAMILIES = {
    # Dropout on encoder and predictor input, predictor noise, encoder-target noise (spec §8.1).
    "epva": ("moving_mnist", "mm", "", dict(model_mode="epva", enc_size=4, batch_size=2, enc_keep_prob=0.5,
                                            van_keep_prob=0.5, pred_noise_std=0.1, enc_noise_stddev=0.1)),
    "pose_lstm": ("moving_mnist_pose", "mmp", "", dict(batch_size=2, lstm_units=4, lm_enc_units=4)),
    # The training pair (t, t+n) is drawn from a Keras SeedGenerator the model keeps.
    "pose_analogy": ("moving_mnist_pose", "mmp", ",heatmaps=true", dict(batch_size=2, alpha=0.0, beta=0.0,
                                                                        gf_dim=2, df_dim=2)),
    "vqvae": ("moving_mnist", "mm", "", dict(ch=4, ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[],
                                             resolution=32, z_channels=4, embed_dim=4, n_embed=8, num_groups=2,
                                             batch_size=2, grad_updates_per_step=1, perceptual_weight_2d=0.0,
                                             input_mean=[0.5], input_std=[0.25])),
    # Keras Dropout inside the token transformer.
    "vqvae_transformer": ("moving_mnist", "mm", "", dict(d_model=8, num_layers=1, num_heads=2, dropout=0.1,
                                                         batch_size=2)),
    # Posterior/prior latent sampling.
    "mspred": ("mspred_moving_mnist", "mm", ",num_channels=1",
               dict(num_preds=2, periods=[1, 2, 2], num_filters=4, dim=32, hidden_dim=4, num_layers=[1, 1, 1],
                    latent_dim=2, prior_hidden_dim=4, posterior_hidden_dim=4, num_channels=1, batch_size=2)),
    # Latent sampling and scheduled sampling of the CDNA predictor.
    "sv2p": ("moving_mnist", "mm", "", dict(batch_size=2)),
    # The same predictor, deterministic, conditioned on actions and states (BAIR-layout records at 16x16).
    "sna": ("bair", "bair", ",use_state=True,long_sequence_length=4,scale_size=16", dict(batch_size=2, ngf=4)),
}

# scripts/train.py with the family's update from global step 2 (its 3rd step) poisoned: every float input
# tensor of the batch times NaN (NaN loss and gradients wherever the inputs reach the loss) and every
# reported loss term times NaN (so that a family whose loss never sees the poisoned inputs, e.g. the
# transformer over discrete tokens, is flagged as well).
POISONED_TRAIN = """
import runpy, sys
import tensorflow as tf
from video_prediction.models import get_model_class
family = sys.argv[1]
cls = get_model_class(family)
original_step, original_values, factors = cls.train_step, getattr(cls, "step_values", None), []

def poison(values, factor):
    return {k: v * tf.cast(factor, v.dtype) if v.dtype.is_floating else v for k, v in values.items()}

def train_step(self, batch):
    factor = tf.where(tf.equal(self.global_step, 2), float("nan"), 1.0)
    factors.append(factor)
    return poison(original_step(self, poison(batch, factor)), factor)

cls.train_step = train_step
if original_values is not None:
    cls.step_values = lambda self: poison(original_values(self) or {}, factors[-1])
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    import tensorflow as tf

    from video_prediction.conversion.bookkeeping import write_run_directory
    from video_prediction.datasets.moving_mnist import write_moving_mnist
    from video_prediction.datasets.moving_mnist_pose import write_moving_mnist_pose
    from video_prediction.models.vqvae import VQVAEVideoPredictionModel

    root = tmp_path_factory.mktemp("families")
    # BAIR-layout records with actions and end-effector states, for sna (the small set of the fuzz tests;
    # its one split serves as the training split)
    from fuzz_record_sets import write_record_set

    write_record_set("bair", str(root / "bair"))
    os.symlink(root / "bair" / "test", root / "bair" / "train")
    write_moving_mnist(str(root / "mm"), {"train": 4, "test": 2}, sequence_length=4, canvas_size=32,
                       examples_per_file=2, progress=False)
    write_moving_mnist_pose(str(root / "mmp"), {"train": 4, "test": 2}, 4, 1, 32, examples_per_file=2,
                            progress=False)
    # The frozen first stage of vqvae_transformer: the tiny vqvae above with its initial weights.
    stage1 = VQVAEVideoPredictionModel(hparams=dict(FAMILIES["vqvae"][3], context_frames=2, sequence_length=4))
    stage1.build_from_batch({"images": tf.zeros([1, 4, 32, 32, 1])})
    write_run_directory(str(root / "stage1"), stage1, dict(dataset="moving_mnist", model="vqvae",
                                                           image_shape=[32, 32, 1]),
                        dict(context_frames=2, sequence_length=4))
    return root


def family_hparams(data, family):
    hparams = dict(FAMILIES[family][3])
    if family == "vqvae_transformer":
        hparams["first_stage_checkpoint"] = str(data / "stage1")
    path = data / f"{family}.json"
    path.write_text(json.dumps(hparams))
    return str(path)


def train_command(data, family, output_dir):
    dataset, records, dataset_hparams, _ = FAMILIES[family]
    return [sys.executable, "-c", POISONED_TRAIN, family, os.path.join(ROOT, "scripts", "train.py"),
            "--dataset", dataset, "--input_dir", str(data / records), "--dataset_hparams",
            "context_frames=2,sequence_length=4" + dataset_hparams, "--model", family,
            "--model_hparams_dict", family_hparams(data, family), "--output_dir", str(output_dir),
            "--max_steps", str(MAX_STEPS), "--save_freq", str(SAVE_FREQ), "--summary_freq", "1",
            "--image_summary_freq", "0", "--keep_checkpoints", "2", "--seed", str(SEED), "--deterministic",
            "--skip_nonfinite_steps", "--verbose", "1"]


def run_and_kill(command, rng, timeout=1200):
    """Start ``command`` and SIGKILL it right after a random step past the first checkpoint (plus a random
    delay: inside a step, a save or between them).  Returns ``(output, return code, target step)``."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
                               cwd=ROOT)
    target = rng.randint(SAVE_FREQ + 1, MAX_STEPS - 1)
    try:
        output, reached = read_until(process, lambda line: (step_of(line) or 0) >= target, timeout)
        if not reached and process.poll() is None:
            pytest.fail(f"no step {target} within {timeout} s:\n{''.join(output)[-2000:]}")
        kill_after(process, rng)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    output.append(process.stdout.read())
    return "".join(output), process.returncode, target


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_survives_sigkill_and_skips_nonfinite_steps(data, tmp_path, family):
    cpu_start = cpu_seconds()
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference = subprocess.Popen(train_command(data, family, reference_dir), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, env=ENV, cwd=ROOT)
    seed = int(time.time())  # a fresh kill point every run; printed on failure to reproduce it
    command = train_command(data, family, killed_dir)
    try:
        killed_output, code, target = run_and_kill(command, random.Random(seed))
        context = f"{family}, kill seed {seed} (after step {target}):\n{killed_output[-1500:]}"
        assert code == -signal.SIGKILL, context  # really killed, not finished
        rerun = subprocess.run(command, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=1200)
        assert rerun.returncode == 0, f"{context}\nrerun:\n{rerun.stdout[-2000:]}\n{rerun.stderr[-2000:]}"
        assert "resumed from" in rerun.stdout, context
        reference_output = reference.communicate(timeout=1200)[0]
    finally:
        if reference.poll() is None:
            reference.kill()
    assert reference.returncode == 0, f"{family} reference run failed:\n{reference_output[-3000:]}"

    prefix = f"ckpt-{MAX_STEPS}"
    expected = checkpoint_tensors(str(reference_dir / prefix))
    actual = checkpoint_tensors(str(killed_dir / prefix))
    assert actual.keys() == expected.keys() and any("run_state/rng" in k for k in actual)
    different = [k for k in expected if not np.array_equal(actual[k], expected[k])]
    assert different == [], f"{len(different)} tensors differ, e.g. {different[:5]}; {context}"

    # --skip_nonfinite_steps: the poisoned 3rd update was undone (nothing non-finite reached the weights
    # or optimizer slots; a single optimizer counts one update less than steps) and counted once.
    for output in (reference_output, killed_output + rerun.stdout):
        assert "step 3: non-finite" in output and "update skipped" in output, output[-2000:]
    assert [int(v) for k, v in expected.items() if "skipped_nonfinite_steps" in k] == [1]
    assert all(np.all(np.isfinite(v)) for v in expected.values() if v.dtype.kind == "f")
    iterations = [int(v) for k, v in expected.items() if re.search(r"optimizer[^/]*/_iterations/", k)]
    assert iterations, sorted(expected)[:20]
    if len(iterations) == 1:
        assert iterations == [MAX_STEPS - 1]
    assert [int(v) for k, v in expected.items() if k.startswith("model/global_step")] == [MAX_STEPS]
    print(f"{family}: killed after step {target}; children's CPU time {cpu_seconds() - cpu_start:.0f} s")


def test_keras_and_tf_random_ops_in_a_train_step_draw_from_the_checkpointed_generator():
    """Dropout, keras.random, a model's own SeedGenerator, tf.random.shuffle/categorical: traced under
    random_ops_from, each draws from the run's generator -- restoring the generator's state (what a resume
    does) repeats the draws, and nothing else (Keras' own seed states are not checkpointed) matters."""
    import keras
    import tensorflow as tf

    from video_prediction.training.fault_tolerance import random_ops_from

    generator = tf.random.Generator.from_seed(1)
    dropout, own = keras.layers.Dropout(0.5), keras.random.SeedGenerator(0)
    x = tf.ones([64])

    def draws():
        return [dropout(x, training=True), keras.random.normal([8]), keras.random.uniform([8], seed=own),
                tf.cast(tf.random.shuffle(tf.range(16)), tf.float32),
                tf.cast(tf.random.categorical(tf.zeros([1, 16]), 8)[0], tf.float32)]

    with random_ops_from(generator):
        step = tf.function(draws).get_concrete_function()
    start = generator.state.numpy().copy()
    first, second = [t.numpy() for t in step()], [t.numpy() for t in step()]
    assert not np.array_equal(generator.state.numpy(), start)  # the draws advance the checkpointed state
    # Keras' seed states are changed, as a fresh process (a resume) would have them: no effect.
    own.state.assign([7, 7])
    generator.reset(start)
    again = [t.numpy() for t in step()]
    for a, b, c in zip(first, second, again):
        assert not np.array_equal(a, b)  # a new draw each step (every op is random, not constant)
        np.testing.assert_array_equal(a, c)
    assert keras.random.SeedGenerator.next is not None and tf.random.shuffle.__module__.startswith("tensorflow")
