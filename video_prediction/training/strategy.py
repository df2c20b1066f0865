"""``tf.distribute`` strategies for training: mirrored (default), one device, or multi-worker from ``TF_CONFIG``."""

import json
import os

import tensorflow as tf

from video_prediction.training.run_directory import RunError


STRATEGIES = ("mirrored", "one_device", "multi_worker")


def make_strategy(name="mirrored"):
    """``mirrored`` (default: every local GPU, else the CPU), ``one_device`` or ``multi_worker``.

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
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        # Every GPU, else every logical CPU device (one, unless the process configured more).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
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
