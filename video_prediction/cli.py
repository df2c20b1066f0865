"""Shared plumbing of the command-line scripts: quiet TF logs and one-line errors for bad input."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_main(main, argv):
    """Run an absl ``main``; a ``ValueError`` from bad input exits 1 with one line naming the problem."""
    from absl import app

    def wrapped(args):
        from absl import logging

        logging.set_verbosity(logging.WARNING)  # TF's INFO lines (strategy, saver) drown the progress bar
        try:
            return main(args)
        except (ValueError, FileNotFoundError) as e:
            # Bad input (unknown names, missing files, mismatched shapes) is the
            # user's to fix: one clear line, no traceback (VIDEO_PREDICTION_DEBUG=1 shows it).
            if os.environ.get("VIDEO_PREDICTION_DEBUG"):
                raise
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)

    app.run(wrapped, argv)


def define_inference_flags(num_stochastic_samples):
    """The flags generate.py and evaluate.py share: which model, which data, how many videos and samples."""
    from absl import flags

    flags.DEFINE_string("checkpoint", None, "run directory or checkpoint prefix (not needed for ground_truth/repeat)")
    flags.DEFINE_string("input_dir", None, "directory with the dataset's TFRecords (default: the one used in training)")
    flags.DEFINE_enum("mode", "test", ["train", "val", "test"], "dataset split")
    flags.DEFINE_string("dataset", None, "dataset name (default: from the checkpoint)")
    flags.DEFINE_string("dataset_hparams", None, "dataset hparam overrides, e.g. sequence_length=30")
    flags.DEFINE_string("model", None, "model name (default: from the checkpoint)")
    flags.DEFINE_string("model_hparams", None, "model hparam overrides")
    flags.DEFINE_integer("batch_size", 8, "videos per batch")
    flags.DEFINE_integer("num_samples", None, "number of videos (default: all)")
    flags.DEFINE_integer("num_stochastic_samples", num_stochastic_samples,
                         "samples per video (deterministic models always give 1)")
    flags.DEFINE_integer("seed", 7, "seed for sampling")
    flags.DEFINE_enum("latent_mode", None, ["mean", "sample"],
                      "latents at inference: their means or samples (deterministic models: no effect)")


def apply_latent_mode(model, latent_mode):
    """Set ``model.latent_mode`` from ``--latent_mode`` (``None`` keeps the model's default)."""
    if latent_mode is None:
        return
    if not hasattr(model, "latent_mode"):
        if not getattr(model, "stochastic", False):
            return  # a deterministic model has no latents: both modes give its one prediction
        raise ValueError(f"--latent_mode: model {model.name!r} has no latent_mode to set")
    model.latent_mode = latent_mode


def call_reporting_bad_input(function, *errors):
    """``function()``; on bad input (``ValueError``, ``FileNotFoundError`` or ``errors``) print one
    ``error:`` line and return ``None`` instead (for the argparse preprocessing scripts' exit codes)."""
    try:
        return function()
    except (ValueError, FileNotFoundError, *errors) as e:
        print(f"error: {e}", file=sys.stderr)
        return None
