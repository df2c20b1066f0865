"""The training loop: :func:`train` sets up a run (or resumes one) and steps it to ``max_steps``.

Around the model's own ``train_step`` it adds what long runs need (README,
"Reliability"): atomic checkpoints of the model, every optimizer, the run state
and the input position; resume after any interruption; non-finite losses and
corrupt records reported or skipped; SIGTERM/SIGINT handled after a step.
"""

import functools
import json
import os

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from video_prediction.datasets import get_dataset_class
from video_prediction.models import get_model_class
from video_prediction.training.building import (build_dataset, build_model, check_image_shape, explain_input_error,
                                                first_batch, report_corrupt_records)
from video_prediction.training.checkpointing import (AtomicCheckpointManager, DamagedCheckpointError,
                                                     find_resume_checkpoint, read_state, set_aside_damaged)
from video_prediction.training.fault_tolerance import (NonFiniteLossError, RunState, StopRequests,
                                                       TrainingInterrupted, derived_seed, make_train_function,
                                                       nonfinite_message)
from video_prediction.training.monitor import TrainingMonitor
from video_prediction.training.run_directory import (RunError, check_checkpoint_covers, check_resume_consistent,
                                                     check_resume_hparams, checkpoint_directory, latest_checkpoint,
                                                     read_run_config, require_checkpoint, restore_checkpoint,
                                                     resumed_seed, write_run_config)
from video_prediction.training.strategy import (WorkerLostError, is_peer_failure, make_barrier, make_strategy,
                                                worker_info, worker_lost_message)


def _restores_op_determinism(function):
    """Op determinism for one run only: enabling it is process-wide and makes Keras quietly drop
    ``jit_compile`` for every later model, so a caller that trains in-process (tests, notebooks) gets the
    previous state back when the run returns."""
    from tensorflow.python.framework import config as tf_config

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        was_enabled = tf_config.is_op_determinism_enabled()
        try:
            return function(*args, **kwargs)
        finally:
            if not was_enabled:
                tf_config.disable_op_determinism()
    return wrapper


def _resumes_a_deterministic_run(output_dir):
    """Whether ``output_dir`` holds a run started with ``--deterministic`` (its options.json says so)."""
    try:
        with open(os.path.join(output_dir, "options.json")) as f:
            return bool(json.load(f).get("deterministic"))
    except (OSError, ValueError):
        return False  # no run there yet, or a damaged file that the resume checks report properly


def _run_one_op_at_a_time():
    """Deterministic runs execute one TF op at a time (inter-op threads 1; each op still uses every
    intra-op thread).  Op determinism alone is not enough: a ``tf.while_loop``'s gradient sums the
    contributions of its iterations in the order they finish, so with two inter-op threads sv2p's
    weights differed in the last bits between two runs (measured).  It must be set before TensorFlow
    starts its runtime; a caller that already ran TF ops in this process is told it does not apply."""
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        if tf.config.threading.get_inter_op_parallelism_threads() != 1:
            print("note: TensorFlow was already running in this process, so --deterministic cannot make it run "
                  "one op at a time (inter-op threads 1): time-loop gradients may differ in the last bits "
                  "between runs (scripts/train.py sets it)")


@_restores_op_determinism
def train(input_dir, dataset_name, model_name, output_dir, dataset_hparams_dict=None, dataset_hparams=None,
          model_hparams_dict=None, model_hparams=None, checkpoint=None, val_input_dir=None, max_steps=None,
          summary_freq=1000, image_summary_freq=5000, save_freq=5000, keep_checkpoints=2, seed=None,
          strategy_name="mirrored", jit_compile=False, verbose="auto", deterministic=False,
          skip_nonfinite_steps=False, skip_corrupt_records=False, recover_from_older_checkpoint=False):
    """Train (or resume) a run in ``output_dir``; returns the trained model.

    If ``output_dir`` already holds a checkpoint the run resumes from it with its
    recorded hparams and seed: step, weights, every optimizer, the schedules,
    the run counters and the input-pipeline position are restored (README,
    "Reliability").  Otherwise a ``checkpoint`` given here initialises the
    weights, step and optimizers and supplies dataset/model names and hparams
    that are not given explicitly.

    ``deterministic`` enables TF op determinism: with the same seed an
    interrupted-and-resumed run ends bitwise equal to an uninterrupted one.
    ``skip_nonfinite_steps`` undoes and counts updates whose loss is NaN/Inf
    (by default they stop the run); ``skip_corrupt_records`` skips unreadable
    TFRecords (by default they stop the run with the file and record named).

    Every file of the checkpoint to resume from is read and checked first: a
    damaged one (truncated or missing data shard, missing or garbled index, a
    state file naming a deleted step) stops the run with one line naming the
    file, and nothing in ``output_dir`` is changed.  With
    ``recover_from_older_checkpoint`` the run resumes from the newest intact
    checkpoint instead, saying which it skipped (their files are moved to
    ``output_dir/damaged/``).  A run resumes under any strategy and replica
    count whose replicas divide its global batch.
    """
    args = dict(locals())
    if deterministic or _resumes_a_deterministic_run(output_dir):
        _run_one_op_at_a_time()
    # First: a multi-worker strategy must set up its collectives before any other TF work.
    strategy = make_strategy(strategy_name)
    worker, num_workers, is_chief = worker_info(strategy)
    try:
        return _train(strategy, worker, num_workers, is_chief, **args)
    except tf.errors.OpError as e:
        if num_workers == 1 or not is_peer_failure(e):
            raise
        # A peer died (README, "Reliability"): one line instead of a collective's traceback, never a hang.
        latest = latest_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        raise WorkerLostError(worker_lost_message(e, worker, num_workers, latest)) from None


def _train(strategy, worker, num_workers, is_chief, input_dir, dataset_name, model_name, output_dir,
           dataset_hparams_dict, dataset_hparams, model_hparams_dict, model_hparams, checkpoint, val_input_dir,
           max_steps, summary_freq, image_summary_freq, save_freq, keep_checkpoints, seed, strategy_name, jit_compile,
           verbose, deterministic, skip_nonfinite_steps, skip_corrupt_records, recover_from_older_checkpoint):
    if keep_checkpoints is None or keep_checkpoints < 1:
        raise RunError(f"--keep_checkpoints must be >= 1, got {keep_checkpoints}")
    resume_prefix = resume_input = None
    if os.path.isdir(output_dir):
        # Checked before anything is touched: a damaged checkpoint stops the run with the directory as it was.
        resume_prefix, resume_input = _resume_checkpoint(output_dir, worker, is_chief, recover_from_older_checkpoint)
        AtomicCheckpointManager(None, output_dir, is_chief=is_chief).remove_incomplete()
    init_prefix = None
    given_model_hparams = (model_hparams_dict, model_hparams)
    if resume_prefix is not None:
        options, saved_dataset_hparams, saved_model_hparams = read_run_config(output_dir)
        check_resume_consistent(output_dir, options, dataset_name, model_name)
        dataset_name, model_name = options["dataset"], options["model"]
        dataset_hparams_dict = saved_dataset_hparams
        model_hparams_dict = saved_model_hparams
        input_dir = input_dir or options.get("input_dir")
        seed = resumed_seed(output_dir, options, seed)
        deterministic = deterministic or bool(options.get("deterministic"))
    elif checkpoint is not None:
        init_prefix = require_checkpoint(checkpoint)
        options, saved_dataset_hparams, saved_model_hparams = read_run_config(checkpoint_directory(init_prefix))
        dataset_name = dataset_name or options["dataset"]
        model_name = model_name or options["model"]
        dataset_hparams_dict = dataset_hparams_dict or saved_dataset_hparams
        model_hparams_dict = model_hparams_dict or saved_model_hparams
    if not dataset_name:
        raise RunError("--dataset is required (or a --checkpoint whose options.json names it)")
    if not model_name:
        raise RunError("--model is required (or a --checkpoint whose options.json names it)")
    if not input_dir:
        raise RunError("--input_dir is required")
    get_model_class(model_name)  # an unknown name fails before any data is read
    get_dataset_class(dataset_name)
    if seed is None:
        if num_workers > 1:
            raise RunError("--strategy multi_worker needs --seed: every worker must build the same input pipeline")
        # Drawn once and recorded in options.json, so that a resumed run continues the same random streams.
        seed = int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1))
    if deterministic:
        if jit_compile:
            # Keras turns XLA off under op determinism (not every XLA kernel is deterministic) and goes on.
            raise RunError("--jit_compile and --deterministic cannot be combined: XLA has no deterministic "
                           "kernels for every op, so Keras would silently train without XLA")
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)

    train_dataset = build_dataset(dataset_name, input_dir, "train", dataset_hparams_dict, dataset_hparams, seed=seed,
                                  skip_corrupt_records=skip_corrupt_records)
    val_dataset = None
    try:
        val_dataset = build_dataset(dataset_name, val_input_dir or input_dir, "val", dataset_hparams_dict,
                                    dataset_hparams, seed=seed, skip_corrupt_records=skip_corrupt_records)
    except ValueError as e:
        if val_input_dir:
            raise
        print(f"no validation summaries: {e}")
    for dataset in (train_dataset, val_dataset):
        report_corrupt_records(dataset)
    # A seeded run reads its records in one order: resumes, reruns and the workers of a multi-worker run
    # (each slices the same global batches) all see the same batches.
    train_dataset.deterministic_order = True

    with strategy.scope():
        model = build_model(model_name, train_dataset, model_hparams_dict, model_hparams)
    if not model.trainable_model:
        raise RunError(f"model {model_name!r} has no weights to train")
    if resume_prefix is not None:
        check_resume_hparams(output_dir, type(model), saved_model_hparams, *given_model_hparams)
    batch_size = model.hparams.batch_size
    _check_batch_splits(batch_size, strategy, strategy_name, num_workers, resumed=resume_prefix is not None)
    max_steps = int(max_steps if max_steps is not None else model.hparams.max_steps)
    image_shape = list(train_dataset.image_shape)
    if resume_prefix is not None:
        check_image_shape(options.get("image_shape"), train_dataset, f"the run in {output_dir!r}")
    elif init_prefix is not None:
        check_image_shape(options.get("image_shape"), train_dataset, f"the model in {checkpoint!r}")

    options = dict(
        dataset=dataset_name, model=model_name, input_dir=os.path.abspath(input_dir), image_shape=image_shape,
        seed=seed, batch_size=batch_size, max_steps=max_steps, strategy=strategy_name,
        num_replicas=strategy.num_replicas_in_sync, num_workers=num_workers, deterministic=bool(deterministic),
    )
    if is_chief:
        write_run_config(output_dir, options, train_dataset.hparams.values(), model.hparams.values())

    sample = first_batch(train_dataset, batch_size)
    with strategy.scope():
        model.build_from_batch(sample)
        model.make_optimizers(jit_compile=jit_compile)
        model.build_optimizers()
        run_state = RunState(seed)
        ckpt = tf.train.Checkpoint(model=model, run_state=run_state, **model.optimizers_by_name())
        # Created now so that write() saves it: restoring creates it and expects a value for it.
        ckpt.save_counter  # noqa: B018
    check_checkpoint_covers(ckpt, model)
    if resume_prefix is not None:
        target = ckpt
        if not any(name.startswith("run_state/") for name, _ in tf.train.list_variables(resume_prefix)):
            # Written before run states were checkpointed: everything else resumes, the random stream restarts.
            target = tf.train.Checkpoint(model=model, **model.optimizers_by_name())
            print(f"{resume_prefix} has no run state (an older checkpoint): the random stream starts afresh")
        restore_checkpoint(target, resume_prefix, f"model {model_name!r} of {output_dir!r}", partial=False,
                           verify=False)  # verified by _resume_checkpoint
        print(f"resumed from {resume_prefix} at step {int(model.global_step.numpy())}")
    elif init_prefix is not None:
        restore_checkpoint(ckpt, init_prefix, f"model {model_name!r}", partial=True)
        print(f"initialised from {init_prefix} at step {int(model.global_step.numpy())}")
    print(f"{model_name}: {model.count_params():,} parameters")
    initial_step = int(model.global_step.numpy())

    iterator, input_ckpt = _input_iterator(train_dataset, batch_size, seed, initial_step, resume_input)
    manager = AtomicCheckpointManager(ckpt, output_dir, keep_checkpoints, input_checkpoint=input_ckpt,
                                      worker=worker, is_chief=is_chief,
                                      barrier=make_barrier(strategy) if num_workers > 1 else None)
    remaining = max_steps - initial_step
    if remaining <= 0:
        print(f"nothing to do: step {initial_step} >= max_steps {max_steps}")
        return model

    val_batch = None
    if val_dataset is not None and is_chief:
        val_batch = {k: v for k, v in first_batch(val_dataset, min(batch_size, 8)).items()}
    verbose = 1 if verbose == "auto" else int(verbose)
    monitor = TrainingMonitor(initial_step, max_steps, summary_freq if is_chief else 0,
                              image_summary_freq if is_chief else 0, output_dir if is_chief else None,
                              val_batch=val_batch,
                              verbose=verbose if is_chief else 0)
    monitor.set_model(model)
    model.train_function = make_train_function(model, strategy, run_state, skip_nonfinite_steps, worker,
                                               num_workers, jit_compile)
    with StopRequests(enabled=num_workers == 1) as stop:
        _run_loop(model, monitor, manager, run_state, iterator, train_dataset, initial_step=initial_step,
                  max_steps=max_steps, save_freq=save_freq, summary_freq=summary_freq,
                  skip_nonfinite_steps=skip_nonfinite_steps, stop=stop)
    skipped = int(run_state.skipped_nonfinite_steps.numpy())
    if skipped:
        print(f"{skipped} steps so far had a non-finite loss; their updates were skipped")
    return model


def _run_loop(model, monitor, manager, run_state, iterator, train_dataset, initial_step, max_steps, save_freq,
              summary_freq, skip_nonfinite_steps, stop):
    """Steps from ``initial_step`` to ``max_steps`` with ``model.train_function``; checkpoints every
    ``save_freq``, at the end, and when ``stop`` (SIGTERM/SIGINT) asks for it after a step."""
    monitor.on_train_begin()
    progress = tqdm(total=max_steps, initial=initial_step, desc="train", unit="step", dynamic_ncols=True,
                    disable=not monitor.verbose)
    try:
        _run_steps(model, monitor, manager, run_state, iterator, train_dataset, initial_step, max_steps, save_freq,
                   summary_freq, skip_nonfinite_steps, stop, progress)
    finally:
        progress.close()


def _run_steps(model, monitor, manager, run_state, iterator, train_dataset, step, max_steps, save_freq,
               summary_freq, skip_nonfinite_steps, stop, progress):
    epoch = 0
    while step < max_steps:
        try:
            logs, nonfinite, values = model.train_function(iterator)
        except tf.errors.OpError as e:
            raise explain_input_error(train_dataset, e) from None
        step += 1
        bad = sorted(name for name, flag in nonfinite.items() if bool(flag))
        if bad:
            if not skip_nonfinite_steps:
                monitor.on_train_end()
                raise NonFiniteLossError(nonfinite_message(step, bad, values, manager.latest))
            tqdm.write(f"step {step}: non-finite {', '.join(bad)}; update skipped "
                       f"({int(run_state.skipped_nonfinite_steps.numpy())} so far)")
            for metric in model.metrics:  # keep NaN out of the running means
                metric.reset_state()
        monitor.on_train_batch_end(step, logs)
        progress.update(1)
        if summary_freq and step % summary_freq == 0:
            progress.set_postfix(loss=f"{float(logs['loss']):.4g}" if "loss" in logs else None, refresh=False)
            monitor.on_epoch_end(epoch, logs)
            epoch += 1
            for metric in model.metrics:
                metric.reset_state()
        if (save_freq and step % save_freq == 0) or step == max_steps or stop.received:
            prefix = manager.save(step)
            if stop.received and step < max_steps:
                monitor.on_train_end()
                raise TrainingInterrupted(f"{stop.received} received: stopped after step {step} and saved {prefix}; "
                                          "rerun the same command to resume")
    monitor.on_train_end()


def _input_iterator(dataset, batch_size, seed, step, input_state):
    """This worker's training iterator, positioned at ``input_state`` (a checkpoint prefix, or None);
    ``(iterator, checkpoint)``.

    Every worker iterates the same global-batch pipeline (the train step keeps
    this worker's slice), so the state any worker saved is the position of all
    of them: a run resumes under another number of workers.  Pipelines without
    Python generators are checkpointed with ``tf.train.Checkpoint(iterator=...)``;
    others (e.g. ``kth_mspred``, ``synpick``) restart on resume with a seed
    derived from the step, so a resumed run sees a fresh shuffle rather than the
    batches it had left.
    """
    checkpointable = getattr(dataset, "supports_iterator_checkpoint", False)
    saved = input_state is not None
    if step and not (checkpointable and saved):
        dataset.seed = derived_seed(seed, step)
        why = "the dataset is read by Python code" if not checkpointable else "the checkpoint has no input state"
        print(f"input pipeline restarted with a new shuffle at step {step} ({why})")
    iterator = iter(dataset.make_dataset(batch_size))
    if not checkpointable:
        return iterator, None
    input_ckpt = tf.train.Checkpoint(iterator=iterator)
    input_ckpt.save_counter  # noqa: B018 (see train)
    if step and saved:
        try:
            input_ckpt.read(input_state).assert_consumed()
        except (AssertionError, ValueError, tf.errors.OpError) as e:
            raise RunError(f"the input-pipeline state {input_state!r} does not fit this dataset (were the records or "
                           f"dataset hparams changed?): {str(e).strip().splitlines()[0]}") from None
    return iterator, input_ckpt


def _resume_checkpoint(output_dir, worker, is_chief, recover):
    """``(checkpoint prefix, input-state prefix)`` to resume ``output_dir`` from (None, None: a new run).

    A damaged newest checkpoint is an error naming the file, unless ``recover``:
    then the newest intact one is used and the damaged ones are set aside.
    """
    prefix, input_state, damaged = find_resume_checkpoint(output_dir, worker)
    if not damaged:
        return prefix, input_state
    first = damaged[0][1]
    if not recover:
        fallback = (f"the newest intact checkpoint is {prefix}: rerun with --recover_from_older_checkpoint to resume "
                    "from it" if prefix else "no intact checkpoint remains (choose another --output_dir)")
        raise DamagedCheckpointError(f"{first}; {fallback}; nothing in {output_dir} was changed", first.path)
    if prefix is None:
        raise DamagedCheckpointError(f"{first}; no intact checkpoint in {output_dir} to recover from", first.path)
    skipped = [p for p, _ in damaged if p is not None]
    for p, error in damaged:
        print(f"skipping damaged checkpoint {p or output_dir}: {error}")
    if is_chief:
        listed = read_state(output_dir)
        older = listed[:listed.index(prefix)] if prefix in listed else []
        keep = [p for p in older if os.path.exists(p + ".index")] + [prefix]
        folder = set_aside_damaged(output_dir, skipped, keep)
        if skipped:
            print(f"moved the files of {', '.join(os.path.basename(p) for p in skipped)} to {folder}")
    print(f"recovering from the older checkpoint {prefix}")
    return prefix, input_state


def _check_batch_splits(batch_size, strategy, strategy_name, num_workers, resumed):
    """One line when the global batch cannot be split evenly over the strategy's replicas."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas == 0:
        return
    where = (f"{num_workers} workers x {replicas // num_workers} devices" if num_workers > 1
             else f"{replicas} devices")
    fix = ("it is the run's recorded global batch: resume it under a strategy whose replica count divides "
           f"{batch_size} (e.g. --strategy one_device)" if resumed else
           f"choose a batch_size that is a multiple of {replicas}, or another strategy")
    raise RunError(f"the global batch_size={batch_size} cannot be split evenly over the {replicas} replicas of "
                   f"--strategy {strategy_name} ({where}); {fix}")
