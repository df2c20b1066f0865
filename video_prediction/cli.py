"""Shared plumbing of the command-line scripts: quiet TF start-up logs and one-line errors for bad input.

Every script imports this module before anything that imports TensorFlow. Importing it makes TensorFlow's
start-up quiet: ``TF_CPP_MIN_LOG_LEVEL`` defaults to 3 (hides the C++ ``E``/``W``/``I`` lines such as
"failed call to cuInit" on machines without a GPU), and the first ``import tensorflow`` runs with file
descriptor 2 captured, because the lines TensorFlow's C++ libraries print while they load ("All log
messages before absl::InitializeLog() is called ...", the oneDNN and CUDA-driver notes) ignore that
variable. Captured lines that are not glog-style log lines (Python warnings, tracebacks) are passed on.
``VIDEO_PREDICTION_TF_LOGS=1`` turns all of this off and shows TensorFlow's own logging.
"""

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

#: Environment variable that brings TensorFlow's start-up and C++ log lines back.
TF_LOGS_ENV = "VIDEO_PREDICTION_TF_LOGS"

# glog-style lines of TF's C++ libraries ("I0000 00:00:1796512730.358730    6119 port.cc:153] ...") and
# absl's notice before its log initialisation; fatal (F) lines are kept.
_STARTUP_NOISE = re.compile(r"^([IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] |"
                            r"WARNING: All log messages before absl::InitializeLog\(\) is called)")


def is_tf_startup_noise(line):
    """Whether ``line`` is one of TensorFlow's C++ log lines (or absl's pre-initialisation notice)."""
    return bool(_STARTUP_NOISE.match(line))


class _QuietLoader(importlib.abc.Loader):
    """Wraps TensorFlow's package loader: runs its ``__init__`` with fd 2 captured, then replays the
    captured lines that are not start-up noise."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self.loader  # the module keeps its real loader
        sys.stderr.flush()
        saved_fd = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                self.loader.exec_module(module)
            finally:
                sys.stderr.flush()
                os.dup2(saved_fd, 2)
                os.close(saved_fd)
                captured.seek(0)
                text = captured.read().decode(errors="replace")
                kept = [line for line in text.splitlines() if not is_tf_startup_noise(line)]
                if kept:
                    print("\n".join(kept), file=sys.stderr)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that hands the first ``import tensorflow`` to ``_QuietLoader`` (and then retires)."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow_startup():
    """Hide TensorFlow's start-up lines for this process (unless ``VIDEO_PREDICTION_TF_LOGS`` is set).

    Must run before TensorFlow is imported; later it only sets the log level, which TF reads when it loads.
    """
    if os.environ.get(TF_LOGS_ENV, "0") not in ("", "0"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


quiet_tensorflow_startup()


def run_main(main, argv):
    """Run an absl ``main``; a ``ValueError`` from bad input exits 1 with one line naming the problem."""
    from absl import app

    def wrapped(args):
        from absl import flags, logging

        if not flags.FLAGS["verbosity"].present:
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
                      "latents at inference: their means or samples (models with a latent_mode, e.g. mspred)")


def apply_latent_mode(model, latent_mode):
    """Set ``model.latent_mode`` from ``--latent_mode`` (``None`` keeps the model's default)."""
    if latent_mode is None:
        return
    if not hasattr(model, "latent_mode"):
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
