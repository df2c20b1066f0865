"""What the benchmark measures: model variants (registry name + hparams files) and the settings of a run."""

import dataclasses
import os
import statistics


REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


DEFAULT_HPARAMS_DIR = os.path.join(REPO_DIR, "hparams", "moving_mnist")


#: Dataset each model family trains on in the benchmark (default: ``moving_mnist``).
MODEL_DATASETS = {"mspred": "mspred_moving_mnist", "pose_lstm": "moving_mnist_pose",
                  "pose_analogy": "moving_mnist_pose"}

#: Families left out when no ``--models`` are given, and why (each can still be named explicitly).
NOT_BENCHMARKED_BY_DEFAULT = {
    "ground_truth": "only copies the targets",
    "hierarchical_pose": "has no weights of its own: it chains a trained pose_lstm and pose_analogy run",
    "vqvae_transformer": "needs a trained vqvae first stage (first_stage_checkpoint)",
    "pose_lstm": "needs pose records (moving_mnist_pose): give --input_dir of such records and --models pose_lstm",
    "pose_analogy": "needs pose records (moving_mnist_pose): give --input_dir of such records and --models pose_analogy",
}


#: Published variants of a family whose hparams directories are not named after it
#: (the original SAVP repository calls them ``ours_*``).
VARIANT_PREFIXES = {"savp": ("ours_",)}


class BenchmarkError(RuntimeError):
    """A configuration failed in its child process (the message holds the child's traceback)."""


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model configuration: registry name, hparams files and the dataset it trains on."""

    label: str
    model: str
    dataset: str
    model_hparams_dict: str = None
    dataset_hparams_dict: str = None


def default_models():
    """Every registered model family that trains on the benchmark's Moving MNIST records from its hparams
    alone (the others: :data:`NOT_BENCHMARKED_BY_DEFAULT`)."""
    from video_prediction.models import available_models

    return [name for name in available_models() if name not in NOT_BENCHMARKED_BY_DEFAULT]


def find_variants(names, hparams_dir=DEFAULT_HPARAMS_DIR):
    """The variants that ``names`` (e.g. ``["savp", "mspred:mspred", "repeat"]``) stand for.

    ``family`` means every published hparams set of that family in
    ``hparams_dir`` (``ours_*`` for SAVP; ``<family>`` and ``<family>_*`` for
    others, quickstart sets excluded) or the class defaults when there is
    none; ``family:directory`` picks one set.  Unknown models or directories
    raise ``ValueError`` naming them.
    """
    from video_prediction.models import get_model_class

    variants = []
    for name in names:
        family, _, chosen = name.partition(":")
        model_class = get_model_class(family)  # ValueError listing the valid names
        dataset = MODEL_DATASETS.get(family, "moving_mnist")
        if chosen:
            directories = [chosen]
            if not os.path.isdir(os.path.join(hparams_dir, chosen)):
                raise ValueError(f"no hparams directory {chosen!r} in {hparams_dir!r} (from {name!r})")
        elif not model_class.trainable_model:
            directories = []
        else:
            prefixes = VARIANT_PREFIXES.get(family, (family + "_",))
            directories = sorted(
                d for d in os.listdir(hparams_dir) if os.path.isdir(os.path.join(hparams_dir, d))
                and (d == family or d.startswith(prefixes)) and "quickstart" not in d)
        if not directories:
            variants.append(Variant(label=family, model=family, dataset=dataset))
        for directory in directories:
            path = os.path.join(hparams_dir, directory)
            model_file = os.path.join(path, "model_hparams.json")
            dataset_file = os.path.join(path, "dataset_hparams.json")
            variants.append(Variant(
                label=family if directory == family else f"{family}:{directory}", model=family, dataset=dataset,
                model_hparams_dict=model_file if os.path.exists(model_file) else None,
                dataset_hparams_dict=dataset_file if os.path.exists(dataset_file) else None))
    return variants


@dataclasses.dataclass(frozen=True)
class Settings:
    """How a configuration is built and measured (the same for every variant of a run)."""

    input_dir: str
    batch_size: int = 8
    image_size: int = 64
    context_frames: int = None  # None: the variant's / dataset's own
    sequence_length: int = None
    jit_compile: bool = False
    strategy: str = "mirrored"
    intra_op_threads: int = 2
    inter_op_threads: int = 0  # 0: TensorFlow's default
    seed: int = 7
    warmup_steps: int = 2
    model_hparams: str = None  # "k=v,..." applied to every variant after its hparams file (e.g. time_loop=python)

    def model_overrides(self):
        """The ``k=v`` model hparams string: the batch size, then :attr:`model_hparams`."""
        return ",".join([f"batch_size={self.batch_size}"] + ([self.model_hparams] if self.model_hparams else []))

    def dataset_overrides(self):
        """The ``k=v`` dataset hparams string of the length overrides (None without any)."""
        pairs = [f"{key}={value}" for key, value in (("context_frames", self.context_frames),
                                                     ("sequence_length", self.sequence_length)) if value is not None]
        return ",".join(pairs) or None


def summarize(times):
    """``{median, min, max, mean, n}`` of a list of seconds (None for an empty list)."""
    if not times:
        return None
    return dict(median=statistics.median(times), min=min(times), max=max(times), mean=statistics.fmean(times),
                n=len(times))
