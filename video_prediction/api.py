"""The notebook API: load a run (or a published model) and predict a clip in a few lines.

    import video_prediction
    model = video_prediction.load_model("logs/moving_mnist/ours_savp")   # or "bair_action_free/ours_savp"
    samples = model.predict("clip.gif", horizon=10, num_samples=3)      # [3, 10, H, W, C] in [0, 1]
    video_prediction.write_gif("prediction.gif", samples[0])

``import video_prediction`` stays light: these functions import TensorFlow only when called.
Inputs are checked and resized as ``generate.py --video`` does
(:func:`~video_prediction.inference.generation.load_video`,
:func:`~video_prediction.inference.generation.fit_video_to_shape`), and bad input raises a ``ValueError``
with the same one line as the scripts.
"""

import os

import numpy as np


def published_models():
    """``"<dataset>/<model>"`` names :func:`load_model` downloads (the original SAVP's pretrained models)."""
    from video_prediction.conversion.published import PRETRAINED_MODELS

    return [f"{dataset}/{model}" for dataset, models in PRETRAINED_MODELS.items() for model in sorted(models)]


def pretrained_root():
    """Where published models are downloaded and converted: ``<cache directory>/pretrained_models``
    (``$VIDEO_PREDICTION_CACHE``, default ``~/.cache/video_prediction``)."""
    from video_prediction.metrics.weights_cache import cache_dir

    return os.path.join(cache_dir(), "pretrained_models")


def _run_directory(name, base_url=None):
    if os.path.exists(name):
        return name
    names = published_models()
    if name not in names:
        raise ValueError(f"model {name!r} is neither a run directory nor a published model; "
                         f"published models: {', '.join(names)}")
    from video_prediction.conversion import published

    dataset, model = name.split("/")
    return published.download_model(dataset, model, output_root=pretrained_root(),
                                     base_url=base_url or published.BASE_URL, progress=False)


class Predictor:
    """A trained model with its settings and a numpy :meth:`predict`.

    Attributes: ``model`` (the Keras model), ``hparams`` (its hparams, a dict), ``options`` (the run's
    ``options.json``), ``run_dir``, ``image_shape`` (H, W, C), ``context_frames``.
    """

    def __init__(self, model, options, run_dir):
        self.model = model
        self.options = options
        self.run_dir = run_dir
        self.hparams = model.hparams.values()
        self.image_shape = tuple(int(d) for d in options["image_shape"])
        self.context_frames = model.context_frames

    def __getattr__(self, name):
        # Anything else (``stochastic``, ``sequence_length``, ``generate``...) is the Keras model's.
        model = self.__dict__.get("model")
        if model is None:
            raise AttributeError(name)
        return getattr(model, name)

    def __repr__(self):
        return (f"Predictor({self.options.get('model')!r} from {self.run_dir!r}, image_shape={self.image_shape}, "
                f"context_frames={self.context_frames})")

    @property
    def latent_mode(self):
        """``"sample"`` or ``"mean"`` (``None`` for a model without latents); see ``--latent_mode``."""
        return getattr(self.model, "latent_mode", None)

    @latent_mode.setter
    def latent_mode(self, value):
        from video_prediction.cli import apply_latent_mode

        apply_latent_mode(self.model, value)

    def predict(self, frames, horizon=None, num_samples=1, latent_mode=None, **conditioning):
        """Predict ``horizon`` frames after the first ``context_frames`` frames of ``frames``.

        ``frames``: a float array ``[T, H, W, C]`` or ``[B, T, H, W, C]`` in [0, 1], or a path to a GIF,
        MP4 (or other video file), a folder of PNG/JPEG frames or a ``.npy`` array; frames of another size
        or channel count are resized / converted to the model's.  ``horizon`` defaults to the training
        length minus the context; ``latent_mode`` (``"mean"`` | ``"sample"``) sets the model's for this
        call and after.  ``conditioning``: per-step inputs of action-conditioned models (``actions``,
        ``states``, ``[B, T, D]`` arrays covering the rollout).  Returns float32 samples
        ``[num_samples, horizon, H, W, C]`` for one video, ``[B, num_samples, horizon, H, W, C]`` for a batch
        (deterministic models repeat their one prediction).
        """
        import tensorflow as tf

        from video_prediction.inference.generation import fit_video_to_shape, load_video

        if latent_mode is not None:
            self.latent_mode = latent_mode
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        videos, single = _as_videos(load_video(os.fspath(frames)) if isinstance(frames, (str, os.PathLike))
                                    else frames)
        videos = np.stack([fit_video_to_shape(video, self.image_shape) for video in videos])
        context = self.context_frames
        if videos.shape[1] < context:
            raise ValueError(f"the video has {videos.shape[1]} frames; the model needs {context} context frames")
        batch = {"images": tf.constant(videos[:, :context])}
        batch.update({key: tf.constant(np.asarray(value, np.float32)) for key, value in conditioning.items()})
        draws = num_samples if self.model.stochastic else 1
        samples = self.model.generate(batch, num_samples=draws, horizon=horizon).numpy()
        if draws != num_samples:
            samples = np.repeat(samples, num_samples, axis=1)
        return samples[0] if single else samples


def _as_videos(frames):
    """``[B, T, H, W, C]`` float32 from a ``[T, H, W, C]`` or ``[B, T, H, W, C]`` array in [0, 1]; and
    whether it was one video."""
    frames = np.asarray(frames)
    if frames.ndim not in (4, 5):
        raise ValueError(f"frames must have shape [T, H, W, C] or [B, T, H, W, C], got shape {frames.shape}")
    if not np.issubdtype(frames.dtype, np.floating):
        raise ValueError(f"frames must be floats in [0, 1], got dtype {frames.dtype} (divide uint8 frames by 255)")
    if frames.size and (frames.min() < 0.0 or frames.max() > 1.0):
        raise ValueError(f"frames must be in [0, 1], got values from {frames.min():.3g} to {frames.max():.3g}")
    single = frames.ndim == 4
    return (frames[None] if single else frames).astype(np.float32), single


def load_model(name, latent_mode=None, base_url=None):
    """A :class:`Predictor` for a run directory (or checkpoint prefix), or a published model's name.

    ``name``: what ``--checkpoint`` takes, or ``"<dataset>/<model>"`` of the original SAVP's pretrained
    models (:func:`published_models`), which is downloaded and converted once into
    :func:`pretrained_root` (``base_url`` overrides where from).  ``latent_mode``: ``"mean"`` or
    ``"sample"`` (as ``--latent_mode``).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from video_prediction.training import building

    run_dir = _run_directory(os.fspath(name), base_url)
    model, options, _ = building.load_model(run_dir)
    predictor = Predictor(model, options, run_dir)
    if latent_mode is not None:
        predictor.latent_mode = latent_mode
    return predictor


def write_gif(path, frames, fps=4):
    """Write ``frames`` as a looping GIF; returns ``path``.

    ``frames``: ``[T, H, W, C]`` float in [0, 1] (or uint8), or ``[S, T, H, W, C]`` (e.g. the samples
    :meth:`Predictor.predict` returns for one video), shown side by side.
    """
    from video_prediction.inference import visualization

    frames = np.asarray(frames)
    if frames.ndim == 5:
        frames = np.concatenate(list(frames), axis=2)  # samples left to right
    if frames.ndim != 4:
        raise ValueError(f"frames must have shape [T, H, W, C] or [S, T, H, W, C], got shape {frames.shape}")
    return visualization.save_gif(os.fspath(path), frames, fps=fps)
