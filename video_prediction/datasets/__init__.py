"""Dataset registry: ``get_dataset_class(name)``."""

from video_prediction.registry import available, lookup

# name -> "module:Class", imported on first use.
_DATASETS = {
    "moving_mnist": "video_prediction.datasets.moving_mnist:MovingMNISTVideoDataset",
    "mspred_moving_mnist": "video_prediction.datasets.mspred_moving_mnist:MSPredMovingMNISTVideoDataset",
    "kth_mspred": "video_prediction.datasets.kth_keypoints:KTHKeypointsVideoDataset",
    "synpick": "video_prediction.datasets.synpick:SynpickVideoDataset",
}


def available_datasets():
    return available(_DATASETS)


def get_dataset_class(name):
    """The dataset class registered as ``name``; ``ValueError`` listing valid names otherwise."""
    return lookup(_DATASETS, name, "dataset")
