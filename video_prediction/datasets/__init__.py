"""Dataset registry: ``get_dataset_class(name)``."""

from video_prediction.registry import available, lookup

# name -> "module:Class", imported on first use.
_DATASETS = {
    "moving_mnist": "video_prediction.datasets.moving_mnist:MovingMNISTVideoDataset",
    "mspred_moving_mnist": "video_prediction.datasets.mspred_moving_mnist:MSPredMovingMNISTVideoDataset",
    "kth_mspred": "video_prediction.datasets.kth_keypoints:KTHKeypointsVideoDataset",
    "synpick": "video_prediction.datasets.synpick:SynpickVideoDataset",
    # EPVA's flat image_{i}/state_{i}/action_{i}/joint_positions_{i} records (specs/epva.md §2.1)
    "epva_human36m": "video_prediction.datasets.epva:EPVAHuman36MVideoDataset",
    "epva_robot": "video_prediction.datasets.epva:EPVARobotVideoDataset",
    # RoboNet camera views as prepared for the VQ-VAE first stage (specs/vqvae.md §2)
    "robonet": "video_prediction.datasets.robonet:RoboNetVideoDataset",
    # pose records (datasets/pose.py)
    "moving_mnist_pose": "video_prediction.datasets.moving_mnist_pose:MovingMNISTPoseVideoDataset",
    "human36m": "video_prediction.datasets.human36m:Human36MVideoDataset",
    "penn_action": "video_prediction.datasets.penn_action:PennActionVideoDataset",
    # the original SAVP record formats (specs/savp.md §2)
    "bair": "video_prediction.datasets.bair:SoftmotionVideoDataset",
    "softmotion": "video_prediction.datasets.bair:SoftmotionVideoDataset",
    "kth": "video_prediction.datasets.kth:KTHVideoDataset",
    "google_robot": "video_prediction.datasets.google_robot:GoogleRobotVideoDataset",
    "sv2p": "video_prediction.datasets.sv2p:SV2PVideoDataset",
    "ucf101": "video_prediction.datasets.ucf101:UCF101VideoDataset",
    "cartgripper": "video_prediction.datasets.cartgripper:CartgripperVideoDataset",
}


def available_datasets():
    return available(_DATASETS)


def get_dataset_class(name):
    """The dataset class registered as ``name``; ``ValueError`` listing valid names otherwise."""
    return lookup(_DATASETS, name, "dataset")
