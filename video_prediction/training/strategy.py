"""``tf.distribute`` strategies for training: mirrored (default), one device, or multi-worker from ``TF_CONFIG``."""

import json
import os
import re

import tensorflow as tf

from video_prediction.training.run_directory import RunError


STRATEGIES = ("mirrored", "one_device", "multi_worker")

# How a multi-worker run notices a lost peer (README, "Reliability").  A worker killed on a machine that
# stays up resets its connections, and the others' pending collective fails at once.  A machine that
# disappears silently is found by TensorFlow's peer health check, which we run every PEER_CHECK_INTERVAL s
# (TF's default: 30) with a PEER_CHECK_TIMEOUT s deadline and PEER_CHECK_RETRIES attempts, so a dead peer
# stops the others within about PEER_CHECK_INTERVAL + PEER_CHECK_RETRIES * PEER_CHECK_TIMEOUT = 20 s.
# A peer that is alive but stuck (answers health checks, never joins the collective) is not detected.
PEER_CHECK_INTERVAL = 5
PEER_CHECK_TIMEOUT = 5
PEER_CHECK_RETRIES = 3
# How long a starting worker waits for every worker of TF_CONFIG's cluster (TF's default: forever).
CLUSTER_START_TIMEOUT = 900


def _multi_worker_strategy():
    """``MultiWorkerMirroredStrategy`` with a bounded wait for the cluster and a faster peer health check.

    The health-check settings are class attributes of TF's strategy extension
    (read when the strategy starts its check thread); they are set only here.
    """
    from tensorflow.python.distribute import collective_all_reduce_strategy as collective

    extended = collective.CollectiveAllReduceExtended
    extended._check_health_interval = PEER_CHECK_INTERVAL
    extended._check_health_timeout = PEER_CHECK_TIMEOUT
    extended._check_health_retry_limit = PEER_CHECK_RETRIES
    extended._check_health_initial_timeout = CLUSTER_START_TIMEOUT
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as e:
        if "Timeout waiting for the cluster" not in str(e):
            raise
        raise RunError(f"not every worker of TF_CONFIG's cluster started within {CLUSTER_START_TIMEOUT} s: start "
                       "the same command on every worker (README, Reliability)") from None


def make_strategy(name="mirrored"):
    """``mirrored`` (default: every local GPU, else the CPU; with one device, TF's default strategy),
    ``one_device`` or ``multi_worker``.

    ``multi_worker`` is ``tf.distribute.MultiWorkerMirroredStrategy`` configured
    by the ``TF_CONFIG`` environment variable (README, "Reliability"); create it
    before any other TensorFlow work in the process.
    """
    if name == "multi_worker":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise RunError("--strategy multi_worker needs the TF_CONFIG environment variable (cluster and task; "
                           "see the README's Reliability section)")
        try:
            parsed = json.loads(config)
        except json.JSONDecodeError as e:
            raise RunError(f"TF_CONFIG is not valid JSON: {e}") from None
        if not isinstance(parsed, dict) or "cluster" not in parsed or "task" not in parsed:
            raise RunError("TF_CONFIG must hold 'cluster' and 'task' (see the README's Reliability section)")
        return _multi_worker_strategy()
    if name == "mirrored":
        # Every GPU, else every logical CPU device (one, unless the process configured more).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        if len(devices) == 1:
            # One device: TensorFlow's default strategy, the same computation (one replica), run faster.
            # A MirroredStrategy (or OneDeviceStrategy) over one device places every op explicitly, and its
            # steps ran ~20% slower on a CPU: SAVP ours_vae_l1, B=4, T=12, one pinned thread, 2.45 vs
            # 2.07 s/step, with the same ops, each kernel slower (issue 18).
            return tf.distribute.get_strategy()
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "one_device":
        device = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    raise RunError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")


def worker_info(strategy):
    """``(worker index, number of workers, is chief)`` of this process; ``(0, 1, True)`` on one machine."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return 0, 1, True
    cluster = resolver.cluster_spec().as_dict()
    workers = [("chief", i) for i in range(len(cluster.get("chief", [])))]
    workers += [("worker", i) for i in range(len(cluster.get("worker", [])))]
    if not workers:
        return 0, 1, True
    index = workers.index((resolver.task_type, int(resolver.task_id)))
    return index, len(workers), index == 0


def make_barrier(strategy):
    """A function that returns once every worker has called it (an all-reduce of ones)."""
    @tf.function
    def barrier():
        return strategy.run(lambda: tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM,
                                                                                    tf.constant(1.0)))

    return barrier


class WorkerLostError(RunError):
    """A worker of a multi-worker run lost a peer; every worker must be stopped and the commands rerun."""


def is_peer_failure(error):
    """Whether a TensorFlow error of a multi-worker run means a peer died or became unreachable."""
    if not isinstance(error, tf.errors.OpError):
        return False
    if isinstance(error, tf.errors.UnavailableError):
        return True
    return bool(re.search(r"collective ops is aborted|cluster check alive failed|connection reset|"
                          r"failed to connect|socket closed", str(error), re.IGNORECASE))


def worker_lost_message(error, worker, num_workers, latest):
    """One line: which worker lost which peer, why, and what to do (rerun every worker's command)."""
    text = str(error)
    peers = sorted({m.group(0) for m in re.finditer(r"/job:\w+/replica:\d+/task:(\d+)", text)
                    if int(m.group(1)) != worker})
    reason = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
    reason = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", reason)
    reason = re.sub(r"\s*\[Op:[^\]]*\].*$", "", reason)
    lost = f"lost {', '.join(peers)}" if peers else "lost a peer"
    kept = (f"the latest checkpoint {latest} is kept" if latest else "no checkpoint was written yet")
    return (f"worker {worker} of {num_workers} {lost} ({type(error).__name__}: {reason}); this worker stopped and "
            f"{kept}: stop every worker and rerun the same commands to resume from it")
