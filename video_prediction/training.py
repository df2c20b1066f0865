"""Running experiments: strategies, run directories, checkpoints, summaries and the train loop.

A *run directory* holds everything needed to rebuild a model: ``options.json``
(dataset and model names, image shape, ...), ``dataset_hparams.json``,
``model_hparams.json`` and TensorFlow checkpoints (``ckpt-<n>.*``) of the model,
its optimizers and the global step.  ``train`` writes one; ``generate.py`` and
``evaluate.py --checkpoint DIR`` read it back with :func:`load_model_for_inference`.
"""

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from video_prediction.checkpointing import AtomicCheckpointManager, input_prefix, latest_complete_checkpoint
from video_prediction.datasets import get_dataset_class
from video_prediction.datasets.base import BaseVideoDataset, explain_read_error
from video_prediction.fault_tolerance import (NonFiniteLossError, RunState, StopRequests, TrainingInterrupted,
                                              derived_seed, make_train_function, nonfinite_message, worker_slice)
from video_prediction.hparams import resolve_hparams
from video_prediction.models import get_model_class

RUN_CONFIG_FILES = ("options.json", "dataset_hparams.json", "model_hparams.json")
STRATEGIES = ("mirrored", "one_device", "multi_worker")


class RunError(ValueError):
    """A problem with the user's input (flags, files, checkpoints) that the scripts report in one line."""


# -- strategies ---------------------------------------------------------------------------------


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


# -- run directories ----------------------------------------------------------------------------


def write_json(path, values):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(values, f, sort_keys=True, indent=4, default=list)
    os.replace(tmp, path)


def write_run_config(directory, options, dataset_hparams, model_hparams):
    """Write the three JSON files that let a run be rebuilt exactly."""
    os.makedirs(directory, exist_ok=True)
    write_json(os.path.join(directory, "options.json"), options)
    write_json(os.path.join(directory, "dataset_hparams.json"), dataset_hparams)
    write_json(os.path.join(directory, "model_hparams.json"), model_hparams)


def read_run_config(directory):
    """``(options, dataset_hparams, model_hparams)`` of a run directory, with clear errors."""
    values = []
    for name in RUN_CONFIG_FILES:
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            raise RunError(f"{directory!r} is not a run directory: {name} is missing")
        with open(path) as f:
            try:
                values.append(json.load(f))
            except json.JSONDecodeError as e:
                raise RunError(f"{path} is not valid JSON: {e}") from None
    return tuple(values)


def checkpoint_directory(path):
    """The run directory of ``path`` (a directory, or a checkpoint prefix such as ``dir/ckpt-3``)."""
    return path if os.path.isdir(path) else os.path.dirname(path)


def latest_checkpoint(path):
    """The checkpoint prefix for ``path`` (a directory or a prefix), or None when there is none."""
    if path is None:
        return None
    if os.path.isdir(path):
        return latest_complete_checkpoint(path)
    if tf.io.gfile.exists(path + ".index"):
        return path
    return None


def require_checkpoint(path):
    """Like :func:`latest_checkpoint` but raises naming ``path`` when it holds no checkpoint."""
    if not os.path.exists(path) and not tf.io.gfile.exists(path + ".index"):
        raise RunError(f"checkpoint {path!r} does not exist")
    prefix = latest_checkpoint(path)
    if prefix is None:
        raise RunError(f"no checkpoint found in {path!r} (expected ckpt-<n>.index and a 'checkpoint' file)")
    return prefix


# -- datasets and models ------------------------------------------------------------------------


def build_dataset(name, input_dir, mode, hparams_dict=None, hparams=None, seed=None, num_epochs=None,
                  skip_corrupt_records=False):
    """Instantiate dataset ``name`` for ``mode`` (errors name the dataset, directory and hparam).

    ``skip_corrupt_records`` (TFRecord datasets only) skips unreadable records instead of failing on them.
    """
    dataset_class = get_dataset_class(name)
    extra = {}
    if skip_corrupt_records:
        if not issubclass(dataset_class, BaseVideoDataset):
            raise RunError(f"dataset {name!r} is not read from TFRecords; --skip_corrupt_records does not apply")
        extra["skip_corrupt_records"] = True
    return dataset_class(
        input_dir, mode=mode, num_epochs=num_epochs, seed=seed, hparams_dict=hparams_dict, hparams=hparams, **extra
    )


def build_model(name, dataset, hparams_dict=None, hparams=None):
    """Instantiate model ``name`` with context/sequence length taken from ``dataset`` as the original did.

    Order of precedence: class defaults < ``hparams_dict`` (dict or JSON path) <
    the dataset's ``context_frames``/``sequence_length``/``time_shift`` < ``hparams`` string.
    """
    model_class = get_model_class(name)
    defaults = model_class.default_hparams()
    merged = resolve_hparams(defaults, hparams_dict).values()
    merged.update(
        context_frames=dataset.hparams.context_frames,
        sequence_length=dataset.hparams.sequence_length,
        repeat=dataset.hparams.time_shift,
    )
    merged = resolve_hparams(defaults, merged, hparams).values()
    merged.update(model_class.hparams_from_dataset(merged, dataset))  # e.g. MSPred's epoch length
    model = model_class(hparams=merged)
    model.prepare_from_dataset(dataset)  # e.g. the blank baseline's mean training frame
    return model


def check_image_shape(expected, dataset, what):
    """Raise naming both shapes when the dataset's frames differ from what the model was built for."""
    actual = tuple(int(d) for d in dataset.image_shape)
    if expected is not None and tuple(expected) != actual:
        raise RunError(
            f"image size mismatch: {what} expects frames of shape {tuple(expected)} (H, W, C) "
            f"but the {dataset.mode} data in {dataset.input_dir!r} has {actual}"
        )


def first_batch(dataset, batch_size):
    """One batch of ``dataset`` as a dict of tensors (for building and summaries).

    A corrupt record met on the way (the shuffle buffer reads ahead) raises a ValueError naming it.
    """
    try:
        return next(iter(dataset.make_dataset(batch_size).take(1)))
    except tf.errors.OpError as e:
        raise _explain_input_error(dataset, e) from None


def check_checkpoint_covers(checkpoint, model):
    """Raise naming every weight of ``model`` that ``checkpoint`` would not save.

    With Keras 3, ``tf.train.Checkpoint`` does not follow layers or weights kept
    only in Python lists or dicts, and says nothing: such weights would be
    silently lost on save and left at their initial values on restore.
    """
    tracked = {id(obj) for obj in tf.train.TrackableView(checkpoint).descendants()}
    missing = [w.path for w in model.weights if id(w) not in tracked]
    if missing:
        raise RuntimeError(
            f"{len(missing)} weights of {model.name} are not tracked by the checkpoint (keep sub-layers and "
            f"weights as named attributes, not only in lists/dicts): {', '.join(missing[:10])}"
        )


def _restore(checkpoint, prefix, what, partial):
    try:
        status = checkpoint.restore(prefix)
        if partial:
            status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        detail = str(e).strip().splitlines()
        detail = " ".join(line.strip() for line in detail[:6])
        raise RunError(
            f"checkpoint {prefix!r} does not fit {what} (was it written by another model or hparams set?): {detail}"
        ) from None
    return status


def load_model(checkpoint, model_name=None, model_hparams=None, example_batch=None):
    """Rebuild a trained model from a run directory (or checkpoint prefix) and restore its weights.

    Returns ``(model, options, dataset_hparams)`` where the last two are what the
    run recorded.  ``example_batch`` builds the weights (it needs the keys the
    model is conditioned on, e.g. actions); by default a zero video of the
    recorded image shape.
    """
    prefix = require_checkpoint(checkpoint)
    run_dir = checkpoint_directory(prefix)
    options, saved_dataset_hparams, saved_model_hparams = read_run_config(run_dir)
    model_name = model_name or options["model"]
    model_class = get_model_class(model_name)
    hparams = resolve_hparams(model_class.default_hparams(), saved_model_hparams, model_hparams).values()
    model = model_class(hparams=hparams)
    if model.trainable_model:
        if example_batch is None:
            shape = [1, model.sequence_length] + list(options["image_shape"])
            example_batch = {"images": tf.zeros(shape, tf.float32)}
        model.build_from_batch(example_batch)
        checkpoint = tf.train.Checkpoint(model=model)
        check_checkpoint_covers(checkpoint, model)
        _restore(checkpoint, prefix, f"model {model_name!r}", partial=True)
    return model, options, saved_dataset_hparams


def load_model_and_dataset(checkpoint, dataset_name=None, input_dir=None, mode="test", dataset_hparams=None,
                           model_name=None, model_hparams=None, seed=None):
    """A trained model and the dataset to run it on, checked against each other.

    Returns ``(model, dataset, options)``.  Dataset name, directory and hparams
    not given come from the run directory; the frames must have the size the
    model was trained on and the context length the model was trained with.
    """
    prefix = require_checkpoint(checkpoint)
    options, saved_dataset_hparams, _ = read_run_config(checkpoint_directory(prefix))
    dataset_name = dataset_name or options["dataset"]
    input_dir = input_dir or options.get("input_dir")
    dataset = build_dataset(dataset_name, input_dir, mode, hparams_dict=saved_dataset_hparams,
                            hparams=dataset_hparams, seed=seed, num_epochs=1)
    check_image_shape(options.get("image_shape"), dataset, f"the model in {checkpoint!r}")
    model, options, _ = load_model(prefix, model_name, model_hparams, example_batch=first_batch(dataset, 1))
    if dataset.context_frames != model.context_frames:
        raise RunError(
            f"the model was trained with context_frames={model.context_frames} but the dataset gives "
            f"{dataset.context_frames}; set --dataset_hparams context_frames={model.context_frames}"
        )
    return model, dataset, options


# -- summaries during training ------------------------------------------------------------------


class TrainingMonitor(keras.callbacks.Callback):
    """Writes scalars, images and GIFs at their frequencies and prints progress; driven by :func:`train`.

    Scalars: every tracked loss (the mean since the last summary), the learning
    rate and, where the model has one, the KL weight; the same losses on a
    validation batch.  Images/GIFs: context | ground truth | prediction of a
    fixed validation batch.  One summary period is one "epoch" of the hooks.
    """

    def __init__(self, initial_step, max_steps, summary_freq, image_summary_freq, output_dir, val_batch=None,
                 num_summary_videos=4, fps=4, verbose=1):
        super().__init__()
        self.step = int(initial_step)
        self.max_steps = int(max_steps)
        self.summary_freq = summary_freq
        self.image_summary_freq = image_summary_freq
        self.val_batch = val_batch
        self.num_summary_videos = num_summary_videos
        self.fps = fps
        self.verbose = verbose
        if output_dir is None:  # a non-chief worker: no event files
            self.train_writer = self.val_writer = tf.summary.create_noop_writer()
        else:
            self.train_writer = tf.summary.create_file_writer(os.path.join(output_dir, "train"))
            self.val_writer = tf.summary.create_file_writer(os.path.join(output_dir, "val"))
        self._val_losses_fn = None
        self._window_start = time.time()
        self._window_start_step = self.step

    def on_train_begin(self, logs=None):
        if self.image_summary_freq:
            self.write_image_summaries()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.summary_freq and self.step % self.summary_freq == 0:
            self.write_scalar_summaries(logs)
        if self.image_summary_freq and self.step % self.image_summary_freq == 0:
            self.write_image_summaries()

    def on_train_end(self, logs=None):
        self.train_writer.flush()
        self.val_writer.flush()

    def write_scalar_summaries(self, logs):
        now = time.time()
        steps_per_sec = (self.step - self._window_start_step) / max(now - self._window_start, 1e-9)
        self._window_start, self._window_start_step = now, self.step
        logs = {name: float(value) for name, value in (logs or {}).items()}
        model = self.model
        with self.train_writer.as_default(step=self.step):
            for name, value in logs.items():
                tf.summary.scalar(name, value)
            tf.summary.scalar("learning_rate", float(model.current_learning_rate()))
            if hasattr(model, "current_kl_weight"):
                tf.summary.scalar("kl_weight", float(model.current_kl_weight()))
            tf.summary.scalar("steps_per_sec", steps_per_sec)
        if self.val_batch is not None:
            with self.val_writer.as_default(step=self.step):
                for name, value in self.validation_losses().items():
                    tf.summary.scalar(name, float(value))
        if self.verbose:
            losses = " ".join(f"{name}={value:.4g}" for name, value in logs.items())
            tqdm.write(f"step {self.step}/{self.max_steps} {losses} ({steps_per_sec:.2f} steps/s)")

    def validation_losses(self):
        if self._val_losses_fn is None:
            model = self.model

            @tf.function
            def val_losses(batch):
                outputs = model(batch, training=False)
                losses = model.generator_losses(batch, outputs)
                return dict(losses, loss=tf.add_n(list(losses.values())))

            self._val_losses_fn = val_losses
        return self._val_losses_fn(self.val_batch)

    def write_image_summaries(self):
        if self.val_batch is None:
            return
        from video_prediction import visualization

        model = self.model
        batch = {k: v[: self.num_summary_videos] for k, v in self.val_batch.items()}
        context = model.context_frames
        horizon = int(batch["images"].shape[1]) - context
        predictions = model.generate(batch, num_samples=1, horizon=horizon)[:, 0]
        images = batch["images"]
        strips = np.stack([
            visualization.side_by_side(images[i, :context], images[i, context:], predictions[i])
            for i in range(images.shape[0])
        ])
        with self.val_writer.as_default(step=self.step):
            visualization.write_gif_summary("predictions", strips, step=self.step, fps=self.fps,
                                            max_outputs=self.num_summary_videos)
            tf.summary.image("predictions_last_frame", strips[:, -1], max_outputs=self.num_summary_videos)


# -- training -----------------------------------------------------------------------------------


def train(input_dir, dataset_name, model_name, output_dir, dataset_hparams_dict=None, dataset_hparams=None,
          model_hparams_dict=None, model_hparams=None, checkpoint=None, val_input_dir=None, max_steps=None,
          summary_freq=1000, image_summary_freq=5000, save_freq=5000, keep_checkpoints=2, seed=None,
          strategy_name="mirrored", jit_compile=False, verbose="auto", deterministic=False,
          skip_nonfinite_steps=False, skip_corrupt_records=False):
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
    """
    # First: a multi-worker strategy must set up its collectives before any other TF work.
    strategy = make_strategy(strategy_name)
    worker, num_workers, is_chief = worker_info(strategy)
    if keep_checkpoints is None or keep_checkpoints < 1:
        raise RunError(f"--keep_checkpoints must be >= 1, got {keep_checkpoints}")
    if os.path.isdir(output_dir):
        AtomicCheckpointManager(None, output_dir, is_chief=is_chief).remove_incomplete()
    resume_prefix = latest_checkpoint(output_dir) if os.path.isdir(output_dir) else None
    init_prefix = None
    given_model_hparams = (model_hparams_dict, model_hparams)
    if resume_prefix is not None:
        options, saved_dataset_hparams, saved_model_hparams = read_run_config(output_dir)
        _check_resume_consistent(output_dir, options, dataset_name, model_name)
        dataset_name, model_name = options["dataset"], options["model"]
        dataset_hparams_dict = saved_dataset_hparams
        model_hparams_dict = saved_model_hparams
        input_dir = input_dir or options.get("input_dir")
        seed = _resumed_seed(output_dir, options, seed)
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
        _report_corrupt_records(dataset)
    # A seeded run reads its records in one order: resumes, reruns and the workers of a multi-worker run
    # (each slices the same global batches) all see the same batches.
    train_dataset.deterministic_order = True

    with strategy.scope():
        model = build_model(model_name, train_dataset, model_hparams_dict, model_hparams)
    if not model.trainable_model:
        raise RunError(f"model {model_name!r} has no weights to train")
    if resume_prefix is not None:
        _check_resume_hparams(output_dir, type(model), saved_model_hparams, *given_model_hparams)
    batch_size = model.hparams.batch_size
    if batch_size % strategy.num_replicas_in_sync:
        raise RunError(f"batch_size={batch_size} must be a multiple of the {strategy.num_replicas_in_sync} "
                       "replicas (it is the global batch)")
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
        _restore(target, resume_prefix, f"model {model_name!r} of {output_dir!r}", partial=False)
        print(f"resumed from {resume_prefix} at step {int(model.global_step.numpy())}")
    elif init_prefix is not None:
        _restore(ckpt, init_prefix, f"model {model_name!r}", partial=True)
        print(f"initialised from {init_prefix} at step {int(model.global_step.numpy())}")
    print(f"{model_name}: {model.count_params():,} parameters")
    initial_step = int(model.global_step.numpy())

    iterator, input_ckpt = _input_iterator(train_dataset, batch_size, seed, initial_step, worker, num_workers,
                                           resume_prefix if init_prefix is None else None)
    manager = AtomicCheckpointManager(ckpt, output_dir, keep_checkpoints, input_checkpoint=input_ckpt,
                                      worker=worker, is_chief=is_chief,
                                      barrier=_make_barrier(strategy) if num_workers > 1 else None)
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
            raise _explain_input_error(train_dataset, e) from None
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


def _input_iterator(dataset, batch_size, seed, step, worker, num_workers, resume_prefix):
    """This worker's training iterator, positioned where the checkpoint left it; ``(iterator, checkpoint)``.

    Pipelines without Python generators are checkpointed with
    ``tf.train.Checkpoint(iterator=...)``; others (e.g. ``kth_mspred``,
    ``synpick``) restart on resume with a seed derived from the step, so a
    resumed run sees a fresh shuffle rather than the batches it had left.
    """
    checkpointable = getattr(dataset, "supports_iterator_checkpoint", False)
    saved = resume_prefix is not None and os.path.exists(input_prefix(resume_prefix, worker) + ".index")
    if step and not (checkpointable and saved):
        dataset.seed = derived_seed(seed, step)
        why = "the dataset is read by Python code" if not checkpointable else "the checkpoint has no input state"
        print(f"input pipeline restarted with a new shuffle at step {step} ({why})")
    batches = dataset.make_dataset(batch_size)
    if num_workers > 1:
        batches = batches.map(lambda batch: worker_slice(batch, worker, num_workers))
    iterator = iter(batches)
    if not checkpointable:
        return iterator, None
    input_ckpt = tf.train.Checkpoint(iterator=iterator)
    input_ckpt.save_counter  # noqa: B018 (see train)
    if step and saved:
        prefix = input_prefix(resume_prefix, worker)
        try:
            input_ckpt.read(prefix).assert_consumed()
        except (AssertionError, ValueError, tf.errors.OpError) as e:
            raise RunError(f"the input-pipeline state {prefix!r} does not fit this dataset (were the records or "
                           f"dataset hparams changed?): {str(e).strip().splitlines()[0]}") from None
    return iterator, input_ckpt


def _explain_input_error(dataset, error):
    """A one-line error naming the corrupt file/record behind a read error, else ``error`` itself."""
    if isinstance(error, (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.UnknownError)):
        explained = explain_read_error(getattr(dataset, "filenames", []), error)
        if explained is not None:
            return explained
    return error


def _report_corrupt_records(dataset):
    for record in getattr(dataset, "corrupt_records", []) if dataset is not None else []:
        lost = "its remaining records" if record.lost is None else f"{record.lost} record(s)"
        print(f"skipping corrupt TFRecord {record.path} from record {record.index} ({lost}): {record.reason}")
    if dataset is not None and getattr(dataset, "corrupt_records", None):
        print(f"{dataset.mode}: skipped {dataset.num_skipped_records} corrupt or unreachable records in "
              f"{len(dataset.corrupt_records)} files")


def _make_barrier(strategy):
    """A function that returns once every worker has called it (an all-reduce of ones)."""
    @tf.function
    def barrier():
        return strategy.run(lambda: tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM,
                                                                                    tf.constant(1.0)))

    return barrier


def _resumed_seed(output_dir, options, seed):
    recorded = options.get("seed")
    if seed is not None and recorded is not None and int(seed) != int(recorded):
        raise RunError(f"{output_dir!r} was started with --seed {recorded}; refusing to resume it with --seed {seed}")
    return recorded if recorded is not None else seed


def _check_resume_hparams(output_dir, model_class, recorded, hparams_dict, hparams):
    """Refuse to resume with explicitly given model hparams that differ from the ``recorded`` ones."""
    if hparams_dict is None and hparams is None:
        return
    defaults = model_class.default_hparams()
    requested = resolve_hparams(defaults, hparams_dict, hparams).values()
    recorded = resolve_hparams(defaults, recorded).values()
    changed = [key for key, value in requested.items()
               if value != defaults[key] and key in recorded and value != recorded[key]
               and key not in ("context_frames", "sequence_length", "repeat")]
    if changed:
        details = ", ".join(f"{key}={recorded[key]!r} (given {requested[key]!r})" for key in sorted(changed))
        raise RunError(f"{output_dir!r} was trained with {details}; refusing to resume it with other hparams "
                       "(choose another --output_dir, or --checkpoint to start a new run from it)")


def _check_resume_consistent(output_dir, options, dataset_name, model_name):
    for key, given in (("dataset", dataset_name), ("model", model_name)):
        if given and given != options.get(key):
            raise RunError(
                f"{output_dir!r} holds a {options.get(key)!r} {key} run; refusing to resume it as {given!r} "
                "(choose another --output_dir)"
            )


def model_and_dataset_from_flags(flags_values, seed=None):
    """The model, dataset and output directory that generate.py / evaluate.py flags describe.

    With ``--checkpoint`` the model comes from a run directory; without, only
    weightless models (``ground_truth``, ``repeat``) can be built, from
    ``--model --dataset --input_dir``.
    """
    f = flags_values
    if f.checkpoint:
        model, dataset, _ = load_model_and_dataset(
            f.checkpoint, f.dataset, f.input_dir, f.mode, f.dataset_hparams, f.model, f.model_hparams, seed=seed
        )
        name = os.path.basename(os.path.normpath(checkpoint_directory(require_checkpoint(f.checkpoint))))
    else:
        if not (f.model and f.dataset and f.input_dir):
            raise RunError("without --checkpoint, give --model, --dataset and --input_dir")
        if get_model_class(f.model).trainable_model:
            raise RunError(f"model {f.model!r} has weights: give --checkpoint")
        dataset = build_dataset(f.dataset, f.input_dir, f.mode, hparams=f.dataset_hparams, seed=seed, num_epochs=1)
        model = build_model(f.model, dataset, hparams=f.model_hparams)
        name = f"model.{f.model}"
    output_dir = getattr(f, "output_dir", None) or os.path.join(f.results_dir, name)
    return model, dataset, output_dir
