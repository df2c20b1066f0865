"""FEVD VQ-VAE inference extras: the original's reconstruction outputs and protocol (specs/vqvae.md §3.11, §4).

``generate.py`` (into ``<results>/reconstruction``): for each of the first videos an
``input | reconstruction`` GIF of the whole clip (the original's side-by-side logging videos),
and over those videos a codebook-usage histogram (``codebook_usage.png``, counts per code
sorted by frequency) with ``codebook_usage.json`` (counts, codes used, perplexity).

``evaluate.py`` (into ``<output>/reconstruction``): the original's evaluation -- every frame of
every clip reconstructed (not only the frames after the context), PSNR / SSIM (valid 11x11
Gaussian windows, which our ``ssim`` is; the parity test checks it against the original's) /
LPIPS-VGG per frame, mean over frames per video, mean over videos; FVD between the real and
reconstructed clips of the split (I3D, clips of >= 9 frames, when the I3D weights are present);
and the codebook usage over the split.  Reconstructions are clamped to [0, 1] first (the
original forgets to; ours need [0, 1]).
"""

import json
import os

import numpy as np
import tensorflow as tf

from video_prediction.inference import visualization
from video_prediction.inference.extras import InferenceExtras
from video_prediction.inference.video_batches import first_videos
from video_prediction.layers.vector_quantizer import codebook_usage


def input_reconstruction_frames(images, reconstructions):
    """GIF frames ``[T, H, 2W + 1, 3]``: input | reconstruction (grey inputs shown as RGB)."""
    images, reconstructions = np.asarray(images, np.float32), np.asarray(reconstructions, np.float32)
    if images.shape[-1] == 1:
        images, reconstructions = np.repeat(images, 3, -1), np.repeat(reconstructions, 3, -1)
    gap = np.ones(images.shape[:2] + (1, 3), np.float32)
    return np.concatenate([images, gap, reconstructions], axis=2)


def write_codebook_usage(codes, n_embed, output_dir):
    """``codebook_usage.json`` and ``codebook_usage.png`` of integer ``codes``; returns the summary dict."""
    counts, perplexity = codebook_usage(tf.constant(np.asarray(codes, np.int32)), n_embed)
    counts = counts.numpy().astype(np.int64)
    summary = {"n_embed": int(n_embed), "codes_used": int((counts > 0).sum()), "perplexity": float(perplexity),
               "total": int(counts.sum()), "counts": counts.tolist()}
    with open(os.path.join(output_dir, "codebook_usage.json"), "w") as f:
        json.dump(summary, f, indent=1)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3))
    axis.bar(np.arange(n_embed), np.sort(counts)[::-1], width=1.0)
    axis.set_xlabel("code (sorted by frequency)")
    axis.set_ylabel("count")
    axis.set_title(f"{summary['codes_used']} of {n_embed} codes used, perplexity {summary['perplexity']:.1f}")
    figure.tight_layout()
    figure.savefig(os.path.join(output_dir, "codebook_usage.png"))
    plt.close(figure)
    return summary


class VQVAEInferenceExtras(InferenceExtras):
    """Input | reconstruction GIFs and codebook usage (generate), the original's reconstruction metrics (evaluate)."""

    subdirectory = "reconstruction"

    def _reconstruct(self, images):
        outputs = self.model({"images": tf.convert_to_tensor(images)}, training=False)
        return outputs["reconstructions"].numpy(), outputs["codes"].numpy()

    def _write_gifs(self, videos, results_dir, settings):
        output_dir = os.path.join(results_dir, self.subdirectory)
        os.makedirs(output_dir, exist_ok=True)
        codes, index = [], 0
        for images in videos:
            reconstructions, batch_codes = self._reconstruct(images)
            codes.append(batch_codes)
            for i in range(len(images)):
                visualization.save_gif(os.path.join(output_dir, f"input_reconstruction_{index:05d}.gif"),
                                       input_reconstruction_frames(images[i], reconstructions[i]), fps=settings.fps)
                index += 1
        summary = write_codebook_usage(np.concatenate(codes), self.model.hparams.n_embed, output_dir)
        return (f"wrote {index} input|reconstruction GIFs and the codebook usage ({summary['codes_used']} codes "
                f"used, perplexity {summary['perplexity']:.1f}) to {output_dir}")

    def write_dataset_outputs(self, dataset, results_dir, settings):
        videos = (np.asarray(batch["images"]) for batch in
                  first_videos(dataset, settings.batch_size, settings.num_videos or 8))
        return self._write_gifs(videos, results_dir, settings)

    def write_video_outputs(self, video, results_dir, settings):
        return self._write_gifs([np.asarray(video)[None]], results_dir, settings)

    def evaluate(self, dataset, output_dir, settings, metric_names=("psnr", "ssim", "lpips"), with_fvd=True):
        from video_prediction.metrics import get_metric

        metrics = {}
        for name in metric_names:
            metrics[name] = get_metric(name, net="vgg") if name == "lpips" else get_metric(name)
        fvd = None
        if with_fvd and dataset.sequence_length >= 9:
            from video_prediction.metrics import weights_cache
            from video_prediction.metrics.fvd import FrechetVideoDistance

            if os.path.exists(weights_cache.weights_path("i3d")):
                fvd = FrechetVideoDistance(half_pixel_centers=True)  # the original's torchvision resize
        per_video = {name: [] for name in metrics}
        codes = []
        for batch in first_videos(dataset, settings.batch_size, settings.num_videos, desc="reconstruct"):
            images = np.asarray(batch["images"], np.float32)
            reconstructions, batch_codes = self._reconstruct(images)
            codes.append(batch_codes)
            for name, metric in metrics.items():
                per_video[name].append(metric(images, reconstructions).numpy().mean(axis=1))
            if fvd is not None:
                fvd.update(images, reconstructions)
        results = {name: float(np.mean(np.concatenate(values))) for name, values in per_video.items()}
        results["num_videos"] = int(sum(len(v) for v in next(iter(per_video.values()))))
        if fvd is not None:
            results["fvd"] = float(fvd.result())
        output_dir = os.path.join(output_dir, self.subdirectory)
        os.makedirs(output_dir, exist_ok=True)
        usage = write_codebook_usage(np.concatenate(codes), self.model.hparams.n_embed, output_dir)
        results.update(codes_used=usage["codes_used"], codebook_perplexity=usage["perplexity"])
        with open(os.path.join(output_dir, "reconstruction_metrics.json"), "w") as f:
            json.dump(results, f, indent=2)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in results.items() if isinstance(v, float))
        return f"reconstruction of every frame ({results['num_videos']} videos): {shown}; wrote {output_dir}"
