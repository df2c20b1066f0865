"""EPVA's inference extras: the VAN's masks and its reconstructions from the encoder (``van_on_enc``).

``generate.py`` writes, into ``<results>/van``, per video ``masks_<v>.gif`` (the VAN's mask for every
predicted frame, divided by its per-example maximum as the original showed it) and
``van_on_enc_<v>.gif`` (ground truth | frames decoded from the encoder's encodings of the true
frames, i.e. the VAN alone, without the predictor); with ``save_arrays`` ``van_<v>.npz``.
For a single video (``--video``) only the masks exist (no future frames to encode).
"""

import os

import numpy as np
import tensorflow as tf

from video_prediction.inference import visualization
from video_prediction.inference.extras import InferenceExtras
from video_prediction.inference.video_batches import first_videos


def _rgb(frames):
    frames = np.asarray(frames, np.float32)
    return np.repeat(frames, 3, axis=-1) if frames.shape[-1] == 1 else frames


def write_van_outputs(model, batch, results_dir, first_index=0, fps=4, save_arrays=False, reconstructions=True):
    """Run ``model`` on ``batch`` and write the mask (and reconstruction) GIFs of every video; returns the count."""
    os.makedirs(results_dir, exist_ok=True)
    outputs = model(batch, training=False)
    images = np.asarray(batch["images"])
    masks = outputs["masks"].numpy()
    recon = outputs["van_on_enc"].numpy() if reconstructions and "van_on_enc" in outputs else None
    for i in range(images.shape[0]):
        index = first_index + i
        visualization.save_gif(os.path.join(results_dir, f"masks_{index:05d}.gif"), _rgb(masks[i]), fps=fps)
        arrays = {"masks": masks[i], "gen_images": outputs["gen_images"].numpy()[i]}
        if recon is not None:
            panel = np.concatenate([_rgb(images[i, 1:]), np.ones_like(_rgb(images[i, 1:]))[:, :, :1],
                                    _rgb(np.clip(recon[i], 0.0, 1.0))], axis=2)
            visualization.save_gif(os.path.join(results_dir, f"van_on_enc_{index:05d}.gif"), panel, fps=fps)
            arrays["van_on_enc"] = recon[i]
        if save_arrays:
            np.savez_compressed(os.path.join(results_dir, f"van_{index:05d}.npz"), **arrays)
    return images.shape[0]


class EPVAInferenceExtras(InferenceExtras):
    """VAN masks and ``van_on_enc`` GIFs from ``generate.py``."""

    subdirectory = "van"

    def write_dataset_outputs(self, dataset, results_dir, settings):
        output_dir = os.path.join(results_dir, self.subdirectory)
        written = 0
        for batch in first_videos(dataset, settings.batch_size, settings.num_videos or 8):
            batch = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
            written += write_van_outputs(self.model, batch, output_dir, written, settings.fps, settings.save_arrays)
        return f"wrote VAN masks and van_on_enc GIFs of {written} videos to {output_dir}"

    def write_video_outputs(self, video, results_dir, settings):
        model = self.model
        context = model.context_frames
        length = context + (settings.horizon or (model.sequence_length - context))
        images = np.zeros((1, length) + tuple(video.shape[1:]), np.float32)
        images[0, :context] = np.asarray(video)[:context]
        output_dir = os.path.join(results_dir, self.subdirectory)
        write_van_outputs(model, {"images": tf.constant(images)}, output_dir, 0, settings.fps, settings.save_arrays,
                          reconstructions=False)
        return f"wrote VAN mask GIFs to {output_dir}"
