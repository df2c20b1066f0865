"""Models and datasets from registry names, hparams and run directories (training and inference share these)."""

import os

import tensorflow as tf

from video_prediction.datasets import get_dataset_class
from video_prediction.datasets.base import BaseVideoDataset, explain_read_error, record_check_of
from video_prediction.hparams import resolve_hparams
from video_prediction.models import get_model_class
from video_prediction.training.run_directory import (RunError, check_checkpoint_covers, checkpoint_directory,
                                                     read_run_config, require_checkpoint, restore_checkpoint)


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
        raise explain_input_error(dataset, e) from None


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
        restore_checkpoint(checkpoint, prefix, f"model {model_name!r}", partial=True)
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


def explain_input_error(dataset, error):
    """A one-line error naming the corrupt file/record behind a read error, else ``error`` itself."""
    if isinstance(error, (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.UnknownError)):
        explained = explain_read_error(getattr(dataset, "filenames", []), error, record_check_of(dataset))
        if explained is not None:
            return explained
    return error


def report_corrupt_records(dataset):
    for record in getattr(dataset, "corrupt_records", []) if dataset is not None else []:
        lost = "its remaining records" if record.lost is None else f"{record.lost} record(s)"
        print(f"skipping corrupt TFRecord {record.path} from record {record.index} ({lost}): {record.reason}")
    if dataset is not None and getattr(dataset, "corrupt_records", None):
        print(f"{dataset.mode}: skipped {dataset.num_skipped_records} corrupt or unreachable records in "
              f"{len(dataset.corrupt_records)} files")
