"""Shared pieces of the tests that train in subprocesses (train.py, or a child calling the library):
their environment, free ports for a cluster, bounded waits, a SIGKILL at a chosen step, the tensors of a
checkpoint and the CPU time the children took."""

import json
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository


def child_env(tf_config=None):
    """The environment of a training child: quiet TF, no GPU, unbuffered output, this checkout first on the path,
    and ``TF_CONFIG`` only when given (a cluster spec dict)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1", PYTHONPATH=ROOT)
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def free_ports(count):
    """``count`` TCP ports on 127.0.0.1 that were free a moment ago (for a TF_CONFIG cluster)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def finish(process, what, timeout=400):
    """Wait for ``process`` (at most ``timeout`` s: then it is killed and the test fails as a hang); it must
    exit 0.  Returns its standard output."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"{what} hung:\n{(stdout or '')[-2000:]}\n{(stderr or '')[-3000:]}")
    assert process.returncode == 0, f"{what} failed:\n{(stdout or '')[-2000:]}\n{(stderr or '')[-3000:]}"
    return stdout


def read_until(process, stop, timeout):
    """Read ``process``'s standard output line by line until ``stop(line)`` is true, the output ends or
    ``timeout`` s pass.  Returns ``(lines read, whether stop was met)``."""
    lines, deadline = [], time.time() + timeout
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    try:
        while time.time() < deadline:
            if not selector.select(timeout=1.0):
                if process.poll() is not None:
                    break
                continue
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if stop(line):
                return lines, True
    finally:
        selector.close()
    return lines, False


def step_of(line):
    """The step number of a train.py progress line ``step N/M ...``, else None."""
    reached = re.match(r"step (\d+)/", line)
    return int(reached.group(1)) if reached else None


def kill_after(process, rng):
    """SIGKILL ``process`` after a random delay of up to 0.1 s (inside a step, a save or between them)."""
    time.sleep(rng.uniform(0.0, 0.1))
    process.send_signal(signal.SIGKILL)


def checkpoint_tensors(prefix, skip=("_CHECKPOINTABLE_OBJECT_GRAPH",)):
    """``{key: array}`` of every tensor the checkpoint ``prefix`` holds, except keys starting with ``skip``."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map() if not key.startswith(skip)}


def cpu_seconds():
    """CPU time of this process's finished children (what a test costs on an idle machine, roughly)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
