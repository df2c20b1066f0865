"""Run the original SAVP graph (alexlee-gk/video_prediction) on fixed weights, inputs and noise; save its outputs.

Needs the original's checkout (``--checkout``) and tf-slim 1.1.0 (``--tf_slim``, a ``pip install --target``
directory); see README.md here for the exact commands.  The original is imported through
``original_tf1.py`` (stand-ins for the TF1 pieces TF 2.21 lacks; nothing of the original is copied).
``original_weight``, ``SMALL`` and ``VARIANTS`` (numpy only) are imported by
``tests/conversion/test_savp_parity.py`` to rebuild the same weights and inputs.
"""

import argparse
import json
import os
import sys
import zlib

import numpy as np

# The stored configuration: the bair_action_free hparams of each variant, at a small width and length that
# keep every part of the architecture (the 32x32 U-Net: two conv-LSTM encoder levels, a conv-LSTM and a plain
# decoder level; CDNA + scratch + masks; posterior encoder with 3 conv layers; the 7-conv video discriminator).
SMALL = dict(context_frames=2, sequence_length=5, ngf=8, nef=8, ndf=4, nz=8,
             # clip_length = the T-1 predicted frames: the discriminators' random clip start is always 0
             clip_length=4)
BATCH, SIZE, CHANNELS = 2, 32, 3
VARIANTS = ("ours_savp", "ours_vae_l1")
# Global step the graphs run at: schedule sampling's probability k / (k + exp(step / k)) is < 1e-3, so both
# implementations feed their own predictions after the context, and the linear KL annealing (50k -> 100k)
# has reached the full kl_weight.
GLOBAL_STEP = 100000


def original_weight(name, shape, seed):
    """Deterministic value of an original variable, seeded by (seed, crc32(name)), at scales where every part
    of the network matters: kernels N(0, 1/sqrt(fan_in)) (so activations stay O(1) through the U-Net),
    biases and norm offsets N(0, 0.1), norm scales N(1, 0.1), spectral-norm ``u`` N(0, 1)."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    leaf = name.split("/")[-1]
    if leaf == "u":
        return rng.normal(0.0, 1.0, shape).astype(np.float32)
    if leaf == "gamma":
        return rng.normal(1.0, 0.1, shape).astype(np.float32)
    if leaf in ("beta", "bias") or len(shape) < 2:
        return rng.normal(0.0, 0.1, shape).astype(np.float32)
    fan_in = int(np.prod(shape[:-1]))
    return rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape).astype(np.float32)


def variant_hparams(checkout, variant):
    """The checkout's bair_action_free hparams of ``variant`` with the small sizes."""
    with open(os.path.join(checkout, "hparams", "bair_action_free", variant, "model_hparams.json")) as f:
        hparams = json.load(f)
    hparams.update(SMALL)
    return hparams


def inputs(seed=0):
    """uint8 frames [B, T, H, W, C] (uniform) and the latent noise fed to both implementations."""
    rng = np.random.default_rng(seed)
    T, C, nz = SMALL["sequence_length"], SMALL["context_frames"], SMALL["nz"]
    frames = rng.integers(0, 256, (BATCH, T, SIZE, SIZE, CHANNELS), dtype=np.uint8)
    eps_posterior = rng.normal(size=(T - 1, BATCH, nz)).astype(np.float32)  # time-major, as the original draws
    zs_prior = rng.normal(size=(T - C, BATCH, nz)).astype(np.float32)  # N(0, I) prior after the context
    return frames, eps_posterior, zs_prior


def build_original(models, tf, hparams, batch_size, length, size, mode="train"):
    """The original's SAVPVideoPredictionModel with its whole training graph (build_graph) on a placeholder."""
    model = models.SAVPVideoPredictionModel(mode=mode, hparams_dict=dict(hparams))
    images = tf.placeholder(tf.float32, [batch_size, length, size, size, CHANNELS], name="images")
    model.build_graph({"images": images})
    return model, images


def run_variant(original_tf1, models, checkout, variant, seed):
    tf = original_tf1.v1
    hparams = variant_hparams(checkout, variant)
    frames, eps_posterior, zs_prior = inputs(seed)
    with tf.Graph().as_default():
        original_tf1.feed_random_normal(eps_posterior, zs_prior)
        model, images = build_original(models, tf, hparams, BATCH, SMALL["sequence_length"], SIZE)
        assert not original_tf1._FED_NORMALS, "the fed noise was not used"
        variables = [v for v in tf.global_variables() if v.name.split("/")[0] in ("generator", "discriminator")
                     and "Adam" not in v.name]
        shapes = {v.op.name: v.shape.as_list() for v in variables}
        outputs = {name: model.outputs[name] for name in (
            "gen_images", "gen_images_enc", "zs_mu_enc", "zs_log_sigma_sq_enc") if name in model.outputs}
        outputs.update({name: model.outputs[name] for name in model.outputs if "logits" in name})
        for name, (loss, weight) in list(model.g_losses.items()) + list(model.d_losses.items()):
            outputs[f"loss_{name}"] = loss * weight  # our models report the weighted terms
        outputs["g_loss"], outputs["d_loss"] = model.g_loss, model.d_loss
        g_grads = tf.gradients(model.g_loss, model.g_vars)
        outputs["g_grad_norm"] = tf.global_norm(g_grads)
        if model.d_vars and model.d_losses:
            outputs["d_grad_norm"] = tf.global_norm(tf.gradients(model.d_loss, model.d_vars))
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for v in variables:
                v.load(original_weight(v.op.name, v.shape.as_list(), seed), sess)
            tf.train.get_or_create_global_step().load(GLOBAL_STEP, sess)
            values = sess.run(outputs, {images: frames.astype(np.float32) / 255.0})
    result = {f"{variant}/{k}": np.asarray(v, np.float32) for k, v in values.items()}
    result[f"{variant}/variables"] = np.array(json.dumps(shapes, sort_keys=True))
    result[f"{variant}/hparams"] = np.array(json.dumps(hparams, sort_keys=True))
    return result, frames, eps_posterior, zs_prior


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", required=True, help="a checkout of alexlee-gk/video_prediction")
    parser.add_argument("--tf_slim", default=None, help="directory holding tf_slim 1.1.0 (pip install --target)")
    parser.add_argument("--output", required=True, help="the .npz to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import original_tf1

    models = original_tf1.load_original(args.checkout, args.tf_slim)
    stored = {}
    for variant in VARIANTS:
        result, frames, eps_posterior, zs_prior = run_variant(original_tf1, models, args.checkout, variant, args.seed)
        stored.update(result)
    stored.update(frames=frames, eps_posterior=eps_posterior, zs_prior=zs_prior, seed=np.int64(args.seed),
                  global_step=np.int64(GLOBAL_STEP))
    np.savez_compressed(args.output, **stored)
    for key, value in sorted(stored.items()):
        if value.dtype.kind == "f" and value.size <= 4:
            print(key, value.ravel())


if __name__ == "__main__":
    main()
