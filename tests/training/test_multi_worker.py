"""--strategy multi_worker: two worker processes on 127.0.0.1 train like one process on the global batch
(and so do two mirrored replicas in one process)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from training_processes import (ROOT, checkpoint_tensors, child_env, cpu_seconds, finish, free_ports, kill_after,
                                read_until, step_of)

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


def child(records, output_dir, strategy, weights_path, tf_config=None, cpus=1):
    return subprocess.Popen([sys.executable, "-c", CHILD, records, output_dir, strategy, weights_path, str(STEPS),
                             os.path.join(records, "model_hparams.json"), str(cpus)], env=child_env(tf_config), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


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
    from video_prediction.training.strategy import make_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        make_strategy("multi_worker")


# -- a worker lost mid-run ------------------------------------------------------------------------

FAULT_STEPS = 8
PEER_LOSS_BOUND = 90  # s from the SIGKILL until the other worker has exited (detection takes <= ~20 s idle)


def worker_command(records, output_dir, ports, index):
    """`scripts/train.py` of worker ``index`` and its environment (the command a user reruns)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    env = child_env({"cluster": cluster, "task": {"type": "worker", "index": index}})
    args = [sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--dataset", "moving_mnist",
            "--input_dir", records, "--dataset_hparams", "context_frames=2,sequence_length=4", "--model", "savp",
            "--model_hparams_dict", os.path.join(records, "model_hparams.json"), "--output_dir", output_dir,
            "--max_steps", str(FAULT_STEPS), "--save_freq", "2", "--summary_freq", "1", "--image_summary_freq", "0",
            "--seed", "11", "--deterministic", "--strategy", "multi_worker", "--verbose", "1"]
    return args, env


def start_workers(records, output_dir, ports):
    processes = []
    for index in range(2):
        args, env = worker_command(records, output_dir, ports, index)
        processes.append(subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True))
    return processes


def finish_all(processes, what, timeout=400):
    outputs = []
    for i, process in enumerate(processes):
        try:
            outputs.append(process.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            pytest.fail(f"{what}: worker {i} hung")
        assert process.returncode == 0, f"{what}: worker {i} failed:\n{outputs[-1][-3000:]}"
    return outputs


def test_lost_worker_stops_the_other_and_a_rerun_resumes_bitwise(records, tmp_path):
    """SIGKILL one of two workers after a random step: the other stops within a bound with one line
    naming the lost peer; rerunning both commands resumes (each worker from its own input position) and
    ends bitwise equal to an uninterrupted two-worker run."""
    import random
    import re
    import signal
    import time

    cpu_start = cpu_seconds()
    seed = int(time.time())  # fresh victim and kill point every run; printed on failure to reproduce them
    rng = random.Random(seed)
    victim = rng.randrange(2)
    reference_dir, killed_dir = str(tmp_path / "reference"), str(tmp_path / "killed")
    reference = start_workers(records, reference_dir, free_ports(2))
    ports = free_ports(2)
    workers = start_workers(records, killed_dir, ports)
    survivor = workers[1 - victim]
    # The chief prints the steps; kill after the first checkpoint (step 2) and before the end.
    target = rng.randint(3, FAULT_STEPS - 2)
    chief_output, _ = read_until(workers[0], lambda line: (step_of(line) or 0) >= target, timeout=400)
    kill_after(workers[victim], rng)
    killed_at = time.time()
    context = f"seed {seed}: killed worker {victim} at step {target}; chief:\n{''.join(chief_output)[-1500:]}"
    try:
        output = survivor.communicate(timeout=PEER_LOSS_BOUND)[0]
    except subprocess.TimeoutExpired:
        for p in workers + reference:
            p.kill()
        pytest.fail(f"worker {1 - victim} still running {PEER_LOSS_BOUND} s after its peer was killed; {context}")
    waited = time.time() - killed_at
    workers[victim].wait(timeout=60)
    if victim == 1:
        output = "".join(chief_output) + output
    assert workers[victim].returncode == -signal.SIGKILL, context
    assert survivor.returncode == 1, f"{context}\nsurvivor:\n{output[-3000:]}"
    lines = [line for line in output.splitlines() if "lost" in line]
    assert lines and re.search(rf"worker {1 - victim} of 2 lost /job:worker/replica:0/task:{victim} .*"
                               r"stop every worker and rerun the same commands", lines[-1]), \
        f"{context}\nsurvivor:\n{output[-3000:]}"
    assert "Traceback" not in output, f"{context}\nsurvivor:\n{output[-3000:]}"

    rerun = start_workers(records, killed_dir, ports)
    rerun_outputs = finish_all(rerun, "rerun")
    finish_all(reference, "uninterrupted run")
    assert "resumed from" in rerun_outputs[0], rerun_outputs[0][-2000:]
    prefix = f"ckpt-{FAULT_STEPS}"
    expected = checkpoint_tensors(os.path.join(reference_dir, prefix))
    actual = checkpoint_tensors(os.path.join(killed_dir, prefix))
    assert actual.keys() == expected.keys() and any("run_state/rng" in k for k in actual)
    different = [k for k in expected if not np.array_equal(actual[k], expected[k])]
    assert different == [], f"{len(different)} tensors differ, e.g. {different[:5]}; {context}"
    # Each worker resumed from its own input position: restored from the final checkpoints, both workers'
    # iterators give the batches the uninterrupted run's would give next.
    from video_prediction.training.building import build_dataset
    from video_prediction.training.checkpointing import input_prefix
    from video_prediction.training.fault_tolerance import worker_slice
    from video_prediction.training.loop import _input_iterator

    for index in range(2):
        batches = []
        for directory in (reference_dir, killed_dir):
            dataset = build_dataset("moving_mnist", records, "train", hparams="context_frames=2,sequence_length=4",
                                    seed=11)
            dataset.deterministic_order = True
            # every worker reads the global batch; the train step keeps this worker's slice
            iterator, _ = _input_iterator(dataset, MODEL_HPARAMS["batch_size"], 11, FAULT_STEPS,
                                          input_prefix(os.path.join(directory, prefix), index))
            batches.append([worker_slice(next(iterator), index, 2)["images"].numpy() for _ in range(2)])
        assert batches[0][0].shape[0] == MODEL_HPARAMS["batch_size"] // 2
        for a, b in zip(*batches):
            np.testing.assert_array_equal(a, b, err_msg=f"input position of worker {index}")
    print(f"peer loss noticed {waited:.1f} s after the SIGKILL of worker {victim} after step {target}; "
          f"children's CPU time {cpu_seconds() - cpu_start:.0f} s")


def test_lost_peer_message_is_one_line_naming_the_peer():
    """The text TensorFlow gives a worker whose peer was killed (seen in the test above) -> one line."""
    import tensorflow as tf

    from video_prediction.training.strategy import is_peer_failure, worker_lost_message

    error = tf.errors.UnavailableError(None, None, (
        "{{function_node __wrapped__CollectiveReduceV2_Nordering_token_1_device_/job:worker/replica:0/task:0/"
        "device:CPU:0}} Collective ops is aborted by: recvmsg:Connection reset by peer\nAdditional GRPC error "
        "information from remote target /job:worker/replica:0/task:1 while calling /tensorflow.WorkerService/"
        "RecvBuf:\n:UNKNOWN:Error received from peer  {grpc_status:14}\nThe error could be from a previous "
        "operation. Restart your program to reset. [Op:CollectiveReduceV2] name: "))
    assert is_peer_failure(error)
    assert not is_peer_failure(tf.errors.InvalidArgumentError(None, None, "shapes differ"))
    message = worker_lost_message(error, 0, 2, "/runs/a/ckpt-4")
    assert message == ("worker 0 of 2 lost /job:worker/replica:0/task:1 (UnavailableError: Collective ops is aborted "
                       "by: recvmsg:Connection reset by peer); this worker stopped and the latest checkpoint "
                       "/runs/a/ckpt-4 is kept: stop every worker and rerun the same commands to resume from it")
