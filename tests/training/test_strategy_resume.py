"""A run's checkpoint resumes under another strategy and replica count: two mirrored replicas (two logical
CPUs) -> one device -> two workers on 127.0.0.1, with the same weights, optimizer slots and iterations, step
and random-stream state right after the restore; training then goes on.  A global batch the replicas cannot
split is one error line."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from training_processes import ROOT, checkpoint_tensors, child_env, finish, free_ports

MODEL_HPARAMS = dict(ngf=4, nef=4, batch_size=4, nz=0, kl_weight=0.0, video_sn_vae_gan_weight=0.0,
                     video_sn_gan_weight=0.0, vae_gan_feature_cdist_weight=0.0, schedule_sampling="none")

# Trains (or resumes) the run to max_steps with the library function.  Right after the restore, before any
# step, the restored objects are written with the run checkpoint's own structure to <dump>, for the test to
# compare with the checkpoint the run resumed from.
CHILD = """
import json, sys
import tensorflow as tf
records, output_dir, phases, cpus, odd_batch_dir = sys.argv[1:6]
if int(cpus) > 1:  # logical CPU devices: replicas of a mirrored strategy in one process
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * int(cpus))
from video_prediction.training import loop

original, dump = loop._run_loop, None

def run_loop(model, monitor, manager, run_state, *args, **kwargs):
    tf.train.Checkpoint(model=model, run_state=run_state, **model.optimizers_by_name()).write(dump)
    print("replicas", model.distribute_strategy.num_replicas_in_sync, flush=True)
    return original(model, monitor, manager, run_state, *args, **kwargs)

loop._run_loop = run_loop
kwargs = dict(dataset_hparams="context_frames=2,sequence_length=4", summary_freq=0, image_summary_freq=0,
              seed=11, verbose=0, model_hparams_dict=records + "/model.json")
if odd_batch_dir != "-":  # a global batch of 3 over two replicas
    try:
        loop.train(records, "moving_mnist", "savp", odd_batch_dir, model_hparams="batch_size=3", max_steps=1,
                   strategy_name="mirrored", **kwargs)
    except ValueError as e:
        print("ODD BATCH:", e, flush=True)
for strategy, steps, dump in json.loads(phases):  # resumes output_dir under each strategy in turn
    model = loop.train(records, "moving_mnist", "savp", output_dir, max_steps=steps, save_freq=steps,
                       strategy_name=strategy, **kwargs)
    print("final step", int(model.global_step.numpy()), flush=True)
"""


def child(records, run, phases, cpus=1, tf_config=None, odd_batch_dir="-"):
    """A process that trains ``run`` through ``phases``: ``[(strategy, max_steps, dump path), ...]``."""
    return subprocess.Popen([sys.executable, "-c", CHILD, records, run, json.dumps(phases), str(cpus),
                             odd_batch_dir], env=child_env(tf_config), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def tensors(prefix):
    return checkpoint_tensors(prefix, skip=("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter"))


def assert_restored(dump, prefix):
    """Every tensor of checkpoint ``prefix`` (weights, optimizer slots and iterations, global step, the
    random stream's state, counters) is bitwise what the resumed process held before its first step."""
    restored, saved = tensors(dump), tensors(prefix)
    assert set(restored) == set(saved)
    assert any(key.startswith("optimizer/_iterations") for key in saved)
    assert any("run_state/rng" in key for key in saved)
    for key, value in saved.items():
        np.testing.assert_array_equal(restored[key], value, err_msg=key)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from video_prediction.datasets.moving_mnist import write_moving_mnist

    directory = str(tmp_path_factory.mktemp("strategies"))
    write_moving_mnist(directory, {"train": 8, "val": 2, "test": 2}, sequence_length=5, canvas_size=32,
                       examples_per_file=4, progress=False)
    with open(os.path.join(ROOT, "hparams/moving_mnist/ours_deterministic_l1/model_hparams.json")) as f:
        hparams = dict(json.load(f), **MODEL_HPARAMS)
    with open(os.path.join(directory, "model.json"), "w") as f:
        json.dump(hparams, f)
    return directory


def test_checkpoint_moves_between_strategies(records, tmp_path):
    run = str(tmp_path / "run")
    # Two mirrored replicas write ckpt-2 (after refusing a global batch of 3 in one line); then, in the same
    # process, one device resumes it (the state it holds before its first step is ckpt-2's) and writes ckpt-4.
    out = finish(child(records, run, [("mirrored", 2, str(tmp_path / "d0")), ("one_device", 4, str(tmp_path / "d1"))],
                       cpus=2, odd_batch_dir=str(tmp_path / "odd")), "mirrored on two logical CPUs, then one device")
    assert ("ODD BATCH: the global batch_size=3 cannot be split evenly over the 2 replicas of --strategy mirrored "
            "(2 devices)") in out
    assert not os.path.exists(tmp_path / "odd" / "options.json")
    assert "replicas 2\nfinal step 2\n" in out and "replicas 1\nfinal step 4\n" in out, out
    assert_restored(str(tmp_path / "d1"), os.path.join(run, "ckpt-2"))
    assert json.load(open(os.path.join(run, "options.json")))["num_replicas"] == 1

    # Two workers resume ckpt-4 (written by one process, with one input state that both workers take up).
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = [child(records, run, [("multi_worker", 6, str(tmp_path / f"d2-{i}"))],
                     tf_config={"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(2)]
    outs = [finish(process, f"worker {i}") for i, process in enumerate(workers)]
    for i, out in enumerate(outs):
        assert "replicas 2" in out and "final step 6" in out, out
        assert_restored(str(tmp_path / f"d2-{i}"), os.path.join(run, "ckpt-4"))
    final = tensors(os.path.join(run, "ckpt-6"))
    assert [int(v) for k, v in final.items() if k.startswith("optimizer/_iterations")] == [6]
    before = tensors(os.path.join(run, "ckpt-4"))
    assert sum(not np.array_equal(final[k], before[k]) for k in final) > 10  # it trained on
    assert {"ckpt-6.input-0.index", "ckpt-6.input-1.index"} <= set(os.listdir(run))
    assert json.load(open(os.path.join(run, "options.json")))["num_workers"] == 2


def test_unsplittable_batch_on_resume_says_why():
    from video_prediction.training.loop import _check_batch_splits
    from video_prediction.training.run_directory import RunError

    strategy = types.SimpleNamespace(num_replicas_in_sync=4)
    _check_batch_splits(8, strategy, "multi_worker", 2, resumed=True)
    with pytest.raises(RunError, match=r"^the global batch_size=6 cannot be split evenly over the 4 replicas of "
                                       r"--strategy multi_worker \(2 workers x 2 devices\); it is the run's recorded "
                                       r"global batch: resume it under a strategy whose replica count divides 6"):
        _check_batch_splits(6, strategy, "multi_worker", 2, resumed=True)
