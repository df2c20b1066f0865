"""The training step of :func:`video_prediction.training.loop.train` and what makes it survive faults.

* **Non-finite losses.**  Every step reports, per loss term, whether any
  replica saw a NaN/Inf (reduced across replicas and workers).  By default the
  run stops with :class:`NonFiniteLossError` naming the step and the terms and
  writes no checkpoint after it; with ``skip_nonfinite=True`` the step's
  update is undone instead (weights, optimizer slots and iterations, every
  other model variable such as BatchNorm statistics and spectral-norm vectors
  are restored to their values before the step) and counted.  The global step
  still advances, so schedules stay tied to the number of batches consumed.
* **Random streams in the checkpoint.**  Stateful TF random ops
  (``tf.random.normal`` / ``uniform`` / ``truncated_normal`` / ``shuffle`` /
  ``categorical`` in a model) keep their position inside kernels that no
  checkpoint can save, and Keras 3 ``SeedGenerator`` states (dropout,
  ``keras.random``) are not tracked by ``tf.train.Checkpoint``.  While the
  train step is traced, all of them are routed to a checkpointed
  ``tf.random.Generator`` (:func:`random_ops_from`), so a resumed run draws
  exactly the numbers an uninterrupted run draws -- for every model, without
  touching its code.
* **Multi-worker input.**  Every worker builds the same global-batch pipeline
  (same seed) and the train step keeps its slice of each batch, so N workers
  see exactly the batches a single process sees, each worker's plain
  ``tf.data`` iterator can be checkpointed, and every worker's saved position
  is the same one (a run resumes under another number of workers).
"""

import contextlib
import signal
import threading

import numpy as np
import tensorflow as tf


class NonFiniteLossError(ValueError):
    """Training produced a NaN or Inf loss; the message names the step and the loss terms."""


class TrainingInterrupted(ValueError):
    """SIGTERM/SIGINT stopped the run after a checkpoint of the current step was written."""


class StopRequests:
    """Turns SIGTERM (preemption) and SIGINT (Ctrl-C) into a request the train loop honours between steps.

    Installed only in the main thread of a single-worker run: a worker of a
    multi-worker run cannot save alone (saving takes every worker), so there
    the default handlers stay and the run resumes from its last checkpoint.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, enabled=True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.received = None
        self._previous = {}

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name

    def __enter__(self):
        if self.enabled:
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False


def derived_seed(seed, step):
    """A seed that is a pure function of ``(seed, step)`` (for restarting Python-generator input pipelines)."""
    return int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1)[0] % (2**31 - 1))


_ROUTED_RANDOM_OPS = ("normal", "uniform", "truncated_normal", "shuffle", "categorical")


def _keras_seed_generator_class():
    """Keras 3's ``SeedGenerator`` (its ``next()`` feeds every ``keras.random`` op and ``keras.layers.Dropout``)."""
    from keras.src.random.seed_generator import SeedGenerator

    return SeedGenerator


@contextlib.contextmanager
def random_ops_from(generator):
    """Within the block, the random ops of a model draw from ``generator``.

    Routed: ``tf.random.normal/uniform/truncated_normal`` (drawn by the
    generator), ``tf.random.shuffle/categorical`` (their stateless versions
    seeded by the generator) and every Keras 3 ``SeedGenerator.next()``, which
    seeds ``keras.random.*``, ``keras.layers.Dropout`` and seed generators a
    model keeps itself.  A ``SeedGenerator``'s own state variable is not in a
    ``tf.train.Checkpoint`` (Keras does not track it), so without the routing
    a resumed run would restart those streams.

    Used only while a train step is traced: the traced graph then reads and
    advances the generator's state variable, which the checkpoint saves.  The
    ops' own ``seed`` arguments are ignored (the generator is seeded by the run).
    """
    originals = {name: getattr(tf.random, name) for name in _ROUTED_RANDOM_OPS}
    seed_generator_class = _keras_seed_generator_class()
    original_next = seed_generator_class.next

    def seed_pair():
        return generator.make_seeds(1)[:, 0]

    def normal(shape, mean=0.0, stddev=1.0, dtype=tf.float32, seed=None, name=None):
        return generator.normal(shape, mean=mean, stddev=stddev, dtype=dtype, name=name)

    def uniform(shape, minval=0, maxval=None, dtype=tf.float32, seed=None, name=None):
        return generator.uniform(shape, minval=minval, maxval=maxval, dtype=dtype, name=name)

    def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=tf.float32, seed=None, name=None):
        return generator.truncated_normal(shape, mean=mean, stddev=stddev, dtype=dtype, name=name)

    def shuffle(value, seed=None, name=None):
        return tf.random.experimental.stateless_shuffle(value, seed=seed_pair(), name=name)

    def categorical(logits, num_samples, dtype=None, seed=None, name=None):
        return tf.random.stateless_categorical(logits, num_samples, seed=seed_pair(), dtype=dtype, name=name)

    def seed_generator_next(self, ordered=True):
        return tf.cast(seed_pair(), self.state.dtype)

    routed = {"normal": normal, "uniform": uniform, "truncated_normal": truncated_normal, "shuffle": shuffle,
              "categorical": categorical}
    try:
        for name in _ROUTED_RANDOM_OPS:
            setattr(tf.random, name, routed[name])
        seed_generator_class.next = seed_generator_next
        yield
    finally:
        for name, function in originals.items():
            setattr(tf.random, name, function)
        seed_generator_class.next = original_next


def worker_slice(batch, worker, num_workers):
    """Worker ``worker``'s contiguous share of every tensor of a global ``batch``."""
    def take(x):
        share = tf.shape(x)[0] // num_workers
        return x[worker * share:(worker + 1) * share]

    return {key: take(value) for key, value in batch.items()}


class RunState(tf.Module):
    """What a checkpoint keeps besides model and optimizers: the random stream of the train step and the
    number of steps whose update was skipped because a loss was not finite.  Create it in ``strategy.scope()``."""

    def __init__(self, seed):
        super().__init__(name="run_state")
        self.rng = tf.random.Generator.from_seed(int(seed))
        self.skipped_nonfinite_steps = tf.Variable(0, dtype=tf.int64, trainable=False,
                                                   name="skipped_nonfinite_steps")


def _restorable_variables(model):
    """Model and optimizer variables a skipped step restores (not the global step, not the loss trackers)."""
    excluded = {id(model.global_step)}
    for metric in model.metrics:
        excluded.update(id(v) for v in metric.variables)
    variables, seen = [], set()
    candidates = list(model.variables)
    for optimizer in model.optimizers_by_name().values():
        candidates.extend(optimizer.variables)
    for variable in candidates:
        if id(variable) not in excluded and id(variable) not in seen:
            seen.add(id(variable))
            variables.append(variable)
    return variables


def make_train_function(model, strategy, run_state, skip_nonfinite=False, worker=0, num_workers=1,
                        jit_compile=False):
    """A ``tf.function(iterator) -> (logs, nonfinite, values)`` running one ``model.train_step``.

    ``logs`` are the model's tracker results (replica 0), ``nonfinite`` maps
    each loss term to a bool (any replica on any worker), ``values`` are this
    step's raw losses (replica 0), for the error message.
    """
    local_replicas = strategy.num_replicas_in_sync // num_workers

    def replica_step(batch):
        logs = model.train_step(batch)
        values = (model.step_values() if hasattr(model, "step_values") else {}) or logs
        nonfinite = {name: tf.cast(tf.logical_not(tf.reduce_all(tf.math.is_finite(value))), tf.float32)
                     for name, value in values.items()}
        return logs, values, nonfinite

    if jit_compile:
        replica_step = tf.function(replica_step, jit_compile=True, reduce_retracing=True)

    def distribute(batch):
        if local_replicas == 1:
            return batch

        def value_fn(context):
            local = context.replica_id_in_sync_group - worker * local_replicas
            return worker_slice(batch, local, local_replicas)

        return strategy.experimental_distribute_values_from_function(value_fn)

    restorable = _restorable_variables(model) if skip_nonfinite else []
    first = strategy.experimental_local_results

    @tf.function
    def train_function(iterator):
        batch = next(iterator)
        if num_workers > 1:  # every worker reads the global batch (one input position for all): keep its share
            batch = worker_slice(batch, worker, num_workers)
        backup = [tf.identity(v.value) for v in restorable]
        with random_ops_from(run_state.rng):
            logs, values, flags = strategy.run(replica_step, args=(distribute(batch),))
        # Summed over replicas (and workers): every worker takes the same decision.
        nonfinite = {name: strategy.reduce(tf.distribute.ReduceOp.SUM, flag, axis=None) > 0
                     for name, flag in flags.items()}
        if skip_nonfinite:
            any_nonfinite = tf.reduce_any(tf.stack(list(nonfinite.values())))
            if any_nonfinite:
                for variable, saved in zip(restorable, backup):
                    variable.assign(saved)
                run_state.skipped_nonfinite_steps.assign_add(1)
        logs = {name: first(value)[0] for name, value in logs.items()}
        values = {name: first(value)[0] for name, value in values.items()}
        return logs, nonfinite, values

    return train_function


def nonfinite_message(step, nonfinite, values, latest_checkpoint):
    """The one-line explanation of a step whose loss terms ``nonfinite`` were NaN/Inf."""
    terms = ", ".join(f"{name}={float(values[name]):g}" if name in values else name
                      for name in sorted(nonfinite))
    kept = (f"the last good checkpoint {latest_checkpoint} is kept" if latest_checkpoint
            else "no checkpoint was written yet")
    return (f"non-finite loss at step {step}: {terms}; training stopped and {kept} (rerun the same command to "
            "resume from it, lower the learning rate, or pass --skip_nonfinite_steps to skip such updates)")
