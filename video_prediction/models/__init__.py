"""Model registry: ``get_model_class(name)``."""

from video_prediction.registry import available, lookup

# name -> "module:Class"; modules are imported on first use so that a missing
# optional piece of one family never breaks the others.
_MODELS = {
    "ground_truth": "video_prediction.models.non_trainable:GroundTruthVideoPredictionModel",
    "repeat": "video_prediction.models.non_trainable:RepeatVideoPredictionModel",
    "blank": "video_prediction.models.non_trainable:BlankVideoPredictionModel",
    "savp": "video_prediction.models.savp:SAVPVideoPredictionModel",
    "mspred": "video_prediction.models.mspred:MSPredVideoPredictionModel",
    "sv2p": "video_prediction.models.sv2p:SV2PVideoPredictionModel",
    "sna": "video_prediction.models.sna:SNAVideoPredictionModel",
    "epva": "video_prediction.models.epva:EPVAVideoPredictionModel",
    "pose_lstm": "video_prediction.models.pose_lstm:PoseLSTMVideoPredictionModel",
    "pose_analogy": "video_prediction.models.pose_analogy:PoseAnalogyVideoPredictionModel",
    "hierarchical_pose": "video_prediction.models.hierarchical_pose:HierarchicalPoseVideoPredictionModel",
    "vqvae": "video_prediction.models.vqvae:VQVAEVideoPredictionModel",
    "vqvae_transformer": "video_prediction.models.vqvae_transformer:VQVAETransformerVideoPredictionModel",
}


def available_models():
    return available(_MODELS)


def get_model_class(name):
    """The model class registered as ``name``; ``ValueError`` listing valid names otherwise."""
    return lookup(_MODELS, name, "model")
