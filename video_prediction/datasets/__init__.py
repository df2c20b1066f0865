"""Dataset registry: ``get_dataset_class(name)``."""

import importlib

# name -> "module:Class", imported on first use.
_DATASETS = {
    "moving_mnist": "video_prediction.datasets.moving_mnist:MovingMNISTVideoDataset",
    "mspred_moving_mnist": "video_prediction.datasets.mspred_moving_mnist:MSPredMovingMNISTVideoDataset",
}


def available_datasets():
    return sorted(_DATASETS)


def get_dataset_class(name):
    """The dataset class registered as ``name``; ``ValueError`` listing valid names otherwise."""
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(available_datasets())}")
    module_name, class_name = _DATASETS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)
