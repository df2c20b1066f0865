"""Family-specific outputs of ``generate.py`` / ``evaluate.py``: one small hook on the model family.

:mod:`~video_prediction.inference.generation` and :mod:`~video_prediction.inference.evaluation`
write what every model has: GIFs and PNG frames of its predictions, best / average / worst
tables of the per-frame metrics.  A family with more to show (MSPred's per-level maps, masks,
drawn skeletons, codebook usage) subclasses :class:`InferenceExtras` in
``video_prediction/inference/extras/<family>.py`` and names it in its model class::

    class MyModel(VideoPredictionModel):
        inference_extras = "video_prediction.inference.extras.my_family:MyFamilyExtras"

Generation and evaluation call the hooks through :func:`extras_for` without naming any family,
so adding one touches neither of them.  The string is imported only when a model has extras.
"""

import dataclasses
import importlib
from typing import Optional


@dataclasses.dataclass
class InferenceSettings:
    """What the user asked ``generate.py`` / ``evaluate.py`` for, as the hooks see it."""

    num_videos: Optional[int] = None  # None: every video of the split
    num_stochastic_samples: int = 1
    batch_size: int = 8
    horizon: Optional[int] = None  # frames to predict from a single video (None: the training length)
    fps: int = 4
    save_arrays: bool = False
    lpips_normalize_inputs: Optional[bool] = None  # None: the family's own default


class InferenceExtras:
    """Hooks of one model family; each writes into ``<results>/<subdirectory>`` and returns a message or None."""

    #: sub-directory of the results directory that receives this family's files
    subdirectory = "extras"

    def __init__(self, model):
        self.model = model

    def write_dataset_outputs(self, dataset, results_dir, settings):
        """After the shared GIFs of ``dataset``'s first videos: the family's own files."""
        return None

    def write_video_outputs(self, video, results_dir, settings):
        """After the shared GIFs of one video ``[T, H, W, C]`` (``generate.py --video``)."""
        return None

    def evaluate(self, dataset, output_dir, settings):
        """After the shared metrics of ``dataset``: the family's own metrics."""
        return None


def extras_for(model):
    """The :class:`InferenceExtras` of ``model``'s family, or ``None`` when it has none."""
    spec = getattr(model, "inference_extras", None)
    if not spec:
        return None
    module_name, class_name = spec.split(":")
    return getattr(importlib.import_module(module_name), class_name)(model)
