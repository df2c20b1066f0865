"""Running experiments: strategies, run directories, checkpoints, summaries and the train loop.

A *run directory* holds everything needed to rebuild a model: ``options.json``
(dataset and model names, image shape, ...), ``dataset_hparams.json``,
``model_hparams.json`` and TensorFlow checkpoints (``ckpt-<n>.*``) of the model,
its optimizers and the global step.  ``train`` writes one; ``generate.py`` and
``evaluate.py --checkpoint DIR`` read it back with :func:`load_model_for_inference`.
"""

import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from video_prediction.datasets import get_dataset_class
from video_prediction.hparams import resolve_hparams
from video_prediction.models import get_model_class

RUN_CONFIG_FILES = ("options.json", "dataset_hparams.json", "model_hparams.json")
STRATEGIES = ("mirrored", "one_device")


class RunError(ValueError):
    """A problem with the user's input (flags, files, checkpoints) that the scripts report in one line."""


# -- strategies ---------------------------------------------------------------------------------


def make_strategy(name="mirrored"):
    """``mirrored`` (default: every local GPU, else the CPU) or ``one_device``."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "one_device":
        device = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    raise RunError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")


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
        return tf.train.latest_checkpoint(path)
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


def build_dataset(name, input_dir, mode, hparams_dict=None, hparams=None, seed=None, num_epochs=None):
    """Instantiate dataset ``name`` for ``mode`` (errors name the dataset, directory and hparam)."""
    dataset_class = get_dataset_class(name)
    return dataset_class(
        input_dir, mode=mode, num_epochs=num_epochs, seed=seed, hparams_dict=hparams_dict, hparams=hparams
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
    return model_class(hparams=merged)


def check_image_shape(expected, dataset, what):
    """Raise naming both shapes when the dataset's frames differ from what the model was built for."""
    actual = tuple(int(d) for d in dataset.image_shape)
    if expected is not None and tuple(expected) != actual:
        raise RunError(
            f"image size mismatch: {what} expects frames of shape {tuple(expected)} (H, W, C) "
            f"but the {dataset.mode} data in {dataset.input_dir!r} has {actual}"
        )


def first_batch(dataset, batch_size):
    """One batch of ``dataset`` as a dict of tensors (for building and summaries)."""
    return next(iter(dataset.make_dataset(batch_size).take(1)))


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


# -- summaries and checkpoints during training --------------------------------------------------


class TrainingMonitor(keras.callbacks.Callback):
    """Keeps the global step and writes checkpoints, scalars, images and GIFs at their frequencies.

    Scalars: every tracked loss (the mean since the last summary), the learning
    rate and, where the model has one, the KL weight; the same losses on a
    validation batch.  Images/GIFs: context | ground truth | prediction of a
    fixed validation batch.
    """

    def __init__(self, manager, initial_step, max_steps, summary_freq, image_summary_freq, save_freq,
                 output_dir, val_batch=None, num_summary_videos=4, fps=4):
        super().__init__()
        self.manager = manager
        self.step = int(initial_step)
        self.max_steps = int(max_steps)
        self.summary_freq = summary_freq
        self.image_summary_freq = image_summary_freq
        self.save_freq = save_freq
        self.val_batch = val_batch
        self.num_summary_videos = num_summary_videos
        self.fps = fps
        self.train_writer = tf.summary.create_file_writer(os.path.join(output_dir, "train"))
        self.val_writer = tf.summary.create_file_writer(os.path.join(output_dir, "val"))
        self.last_saved_step = None
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
        if self.save_freq and self.step % self.save_freq == 0:
            self.save()
        if self.step >= self.max_steps:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.last_saved_step != self.step:
            self.save()
        self.train_writer.flush()
        self.val_writer.flush()

    def save(self):
        self.manager.save(checkpoint_number=self.step)
        self.last_saved_step = self.step

    def write_scalar_summaries(self, logs):
        now = time.time()
        steps_per_sec = (self.step - self._window_start_step) / max(now - self._window_start, 1e-9)
        self._window_start, self._window_start_step = now, self.step
        with self.train_writer.as_default(step=self.step):
            for name, value in (logs or {}).items():
                tf.summary.scalar(name, float(value))
            model = self.model
            tf.summary.scalar("learning_rate", float(model.current_learning_rate()))
            if hasattr(model, "current_kl_weight"):
                tf.summary.scalar("kl_weight", float(model.current_kl_weight()))
            tf.summary.scalar("steps_per_sec", steps_per_sec)
        if self.val_batch is not None:
            with self.val_writer.as_default(step=self.step):
                for name, value in self.validation_losses().items():
                    tf.summary.scalar(name, float(value))

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
          strategy_name="mirrored", jit_compile=False, verbose="auto"):
    """Train (or resume) a run in ``output_dir``; returns the trained model.

    If ``output_dir`` already holds a checkpoint the run resumes from it with its
    recorded hparams (step, optimizers and schedules restored).  Otherwise a
    ``checkpoint`` given here initialises the weights, step and optimizers and
    supplies dataset/model names and hparams that are not given explicitly.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    resume_prefix = latest_checkpoint(output_dir) if os.path.isdir(output_dir) else None
    init_prefix = None
    if resume_prefix is not None:
        options, saved_dataset_hparams, saved_model_hparams = read_run_config(output_dir)
        _check_resume_consistent(output_dir, options, dataset_name, model_name)
        dataset_name, model_name = options["dataset"], options["model"]
        dataset_hparams_dict = saved_dataset_hparams
        model_hparams_dict = saved_model_hparams
        input_dir = input_dir or options.get("input_dir")
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

    train_dataset = build_dataset(dataset_name, input_dir, "train", dataset_hparams_dict, dataset_hparams, seed=seed)
    val_dataset = None
    try:
        val_dataset = build_dataset(dataset_name, val_input_dir or input_dir, "val", dataset_hparams_dict,
                                    dataset_hparams, seed=seed)
    except ValueError as e:
        if val_input_dir:
            raise
        print(f"no validation summaries: {e}")

    strategy = make_strategy(strategy_name)
    with strategy.scope():
        model = build_model(model_name, train_dataset, model_hparams_dict, model_hparams)
    if not model.trainable_model:
        raise RunError(f"model {model_name!r} has no weights to train")
    batch_size = model.hparams.batch_size
    max_steps = int(max_steps if max_steps is not None else model.hparams.max_steps)
    image_shape = list(train_dataset.image_shape)
    if resume_prefix is not None:
        check_image_shape(options.get("image_shape"), train_dataset, f"the run in {output_dir!r}")

    options = dict(
        dataset=dataset_name, model=model_name, input_dir=os.path.abspath(input_dir), image_shape=image_shape,
        seed=seed, batch_size=batch_size, max_steps=max_steps, strategy=strategy_name,
        num_replicas=strategy.num_replicas_in_sync,
    )
    write_run_config(output_dir, options, train_dataset.hparams.values(), model.hparams.values())

    sample = first_batch(train_dataset, batch_size)
    with strategy.scope():
        model.build_from_batch(sample)
        model.make_optimizers(jit_compile=jit_compile)
        model.build_optimizers()
        ckpt = tf.train.Checkpoint(model=model, **model.optimizers_by_name())
    check_checkpoint_covers(ckpt, model)
    manager = tf.train.CheckpointManager(ckpt, output_dir, max_to_keep=keep_checkpoints)
    if resume_prefix is not None:
        _restore(ckpt, resume_prefix, f"model {model_name!r} of {output_dir!r}", partial=False)
        print(f"resumed from {resume_prefix} at step {int(model.global_step.numpy())}")
    elif init_prefix is not None:
        _restore(ckpt, init_prefix, f"model {model_name!r}", partial=True)
        print(f"initialised from {init_prefix} at step {int(model.global_step.numpy())}")

    print(f"{model_name}: {model.count_params():,} parameters")
    initial_step = int(model.global_step.numpy())
    remaining = max_steps - initial_step
    if remaining <= 0:
        print(f"nothing to do: step {initial_step} >= max_steps {max_steps}")
        return model

    val_batch = None
    if val_dataset is not None:
        val_batch = {k: v for k, v in first_batch(val_dataset, min(batch_size, 8)).items()}
    monitor = TrainingMonitor(
        manager, initial_step, max_steps, summary_freq, image_summary_freq, save_freq, output_dir,
        val_batch=val_batch,
    )
    # One Keras "epoch" per summary period, so the progress bar and logged means
    # cover exactly the steps between two summaries.
    steps_per_epoch = min(summary_freq or remaining, remaining)
    epochs = math.ceil(remaining / steps_per_epoch)
    model.fit(
        train_dataset.make_dataset(batch_size),
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        callbacks=[monitor],
        verbose=verbose,
        shuffle=False,  # the dataset shuffles itself
    )
    return model


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
