"""Model registry: ``get_model_class(name)``."""

import importlib

# name -> "module:Class"; modules are imported on first use so that a missing
# optional piece of one family never breaks the others.
_MODELS = {
    "ground_truth": "video_prediction.models.non_trainable:GroundTruthVideoPredictionModel",
    "repeat": "video_prediction.models.non_trainable:RepeatVideoPredictionModel",
    "savp": "video_prediction.models.savp:SAVPVideoPredictionModel",
    "mspred": "video_prediction.models.mspred:MSPredVideoPredictionModel",
}


def available_models():
    return sorted(_MODELS)


def get_model_class(name):
    """The model class registered as ``name``; ``ValueError`` listing valid names otherwise."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(available_models())}")
    module_name, class_name = _MODELS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)
