"""--strategy multi_worker: two worker processes on 127.0.0.1 train like one process on the global batch
(and so do two mirrored replicas in one process)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
STEPS = 3
# Deterministic SAVP (no latents, no GAN, no schedule sampling): the single-process reference draws
# its random numbers differently from two workers, so the model must not draw any.  Without
# normalisation layers: a conv bias in front of an instance norm has a gradient of pure rounding
# noise, which Adam scales up to a full lr-sized step of random sign, in any two runs.
MODEL_HPARAMS = dict(ngf=4, nef=4, batch_size=4, nz=0, kl_weight=0.0, video_sn_vae_gan_weight=0.0,
                     video_sn_gan_weight=0.0, vae_gan_feature_cdist_weight=0.0, schedule_sampling="none",
                     norm_layer="none", conv_rnn_norm_layer="none")

# The child trains with the library function and dumps its weights, so the test can compare them.
CHILD = """
import sys, numpy as np
import tensorflow as tf
records, output_dir, strategy, weights_path, steps, model_hparams, cpus = sys.argv[1:8]
if int(cpus) > 1:  # logical CPU devices: replicas of a mirrored strategy in one process
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * int(cpus))
from video_prediction.training.loop import train
from video_prediction.training.strategy import make_strategy
model = train(records, "moving_mnist", "savp", output_dir, dataset_hparams="context_frames=2,sequence_length=4",
              model_hparams_dict=model_hparams, max_steps=int(steps), save_freq=int(steps), summary_freq=0,
              image_summary_freq=0, seed=11, strategy_name=strategy, verbose=0)
np.savez(weights_path, *model.get_weights())
"""


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def child(records, output_dir, strategy, weights_path, tf_config=None, cpus=1):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT)
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen([sys.executable, "-c", CHILD, records, output_dir, strategy, weights_path, str(STEPS),
                             os.path.join(records, "model_hparams.json"), str(cpus)], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(process, what):
    try:
        stdout, stderr = process.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"{what} hung:\n{stdout[-2000:]}\n{stderr[-3000:]}")
    assert process.returncode == 0, f"{what} failed:\n{stdout[-2000:]}\n{stderr[-3000:]}"


def load(path):
    with np.load(path) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from video_prediction.datasets.moving_mnist import write_moving_mnist

    directory = str(tmp_path_factory.mktemp("mw"))
    write_moving_mnist(directory, {"train": 8, "val": 2, "test": 2}, sequence_length=5, canvas_size=32,
                       examples_per_file=4, progress=False)
    with open(os.path.join(directory, "model_hparams.json"), "w") as f:
        json.dump(MODEL_HPARAMS, f)
    return directory


def test_two_workers_equal_one_process_on_the_global_batch(records, tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    run_dir = str(tmp_path / "multi")
    workers = [child(records, run_dir, "multi_worker", str(tmp_path / f"worker{i}.npz"),
                     {"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(2)]
    single = child(records, str(tmp_path / "single"), "one_device", str(tmp_path / "single.npz"))
    # The same training loop with two replicas in one process (two logical CPUs, batch split in two).
    mirrored = child(records, str(tmp_path / "mirrored"), "mirrored", str(tmp_path / "mirrored.npz"), cpus=2)
    for i, process in enumerate(workers):
        finish(process, f"worker {i}")
    finish(single, "single process")
    finish(mirrored, "mirrored, two logical CPUs")

    w0, w1, reference, two_replicas = (load(str(tmp_path / f"{name}.npz"))
                                       for name in ("worker0", "worker1", "single", "mirrored"))
    assert len(w0) == len(w1) == len(reference) == len(two_replicas) > 10
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)  # mirrored: both workers hold the same weights
    for a, b, c in zip(w0, reference, two_replicas):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
        np.testing.assert_allclose(c, b, rtol=0, atol=1e-5)
    assert json.load(open(tmp_path / "mirrored" / "options.json"))["num_replicas"] == 2
    # The chief committed the checkpoint; each worker saved its own input position next to it.
    options = json.load(open(os.path.join(run_dir, "options.json")))
    assert options["num_workers"] == 2 and options["num_replicas"] == 2
    names = os.listdir(run_dir)
    assert f"ckpt-{STEPS}.index" in names
    assert {f"ckpt-{STEPS}.input-0.index", f"ckpt-{STEPS}.input-1.index"} <= set(names)
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(run_dir, f"ckpt-{STEPS}"))
    iterations = [reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
                  if key.startswith("optimizer/_iterations/")]
    assert iterations == [STEPS]  # the weights compared above are after STEPS real updates


def test_multi_worker_needs_tf_config(monkeypatch):
    from video_prediction.training.loop import train
    from video_prediction.training.strategy import make_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        make_strategy("multi_worker")
