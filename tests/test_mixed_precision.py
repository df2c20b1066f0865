"""``mixed_precision`` (float32 | bfloat16 | float16) for every trainable family (issue 18, precision.py).

For each family: one train step in bfloat16 from the same weights (and the same random draws: eager, seeds
reset) gives the float32 step's losses within a tolerance (measured difference in the comments; a different
input batch changes the loss by far more); variables stay float32 while the layers compute in bfloat16;
float16 wraps every optimizer in a LossScaleOptimizer and a step runs.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from video_prediction.models import get_model_class
from video_prediction.models import precision as vp_precision


def _moving_square(batch_size, length, size, channels, seed, actions=False):
    rng = np.random.default_rng(seed)
    images = np.zeros((batch_size, length, size, size, channels), np.float32)
    for b in range(batch_size):  # a bright square moving one pixel per frame, on a dim noisy background
        images[b] = rng.uniform(0.0, 0.2, images[b].shape)
        y, x = rng.integers(2, size - 8, size=2)
        for t in range(length):
            images[b, t, y:y + 5, x + t:x + t + 5] = 1.0
    batch = {"images": tf.constant(images)}
    if actions:
        batch["actions"] = tf.constant(rng.normal(size=(batch_size, length - 1, 4)).astype(np.float32))
        batch["states"] = tf.constant(rng.normal(size=(batch_size, length, 3)).astype(np.float32))
    return batch


def _poses(seed, length, size=16, joints=3):
    rng = np.random.default_rng(seed)
    return {"images": tf.constant(rng.uniform(size=(2, length, size, size, 3)), tf.float32),
            "poses": tf.constant(rng.uniform(2, size - 2, (2, length, joints, 2)), tf.float32),
            "pose_visibility": tf.ones((2, length, joints), tf.float32)}


def _mspred_batch(seed):
    rng = np.random.default_rng(seed)
    batch = _moving_square(2, 11, 16, 1, seed)
    batch.update({f"heatmaps_level{i}": tf.constant(rng.uniform(size=(2, 11, 16, 16, 1)), tf.float32)
                  for i in (1, 2)})
    return batch


# family -> (model name, hparams, batch(seed)); tiny shapes, every loss term of the family switched on where
# it is cheap (KL, GAN).
CASES = {
    "savp": ("savp", dict(context_frames=2, sequence_length=5, ngf=8, ndf=4, nef=8, nz=4, clip_length=4,
                          batch_size=2, kl_weight=0.01, kl_anneal="none", l1_weight=1.0, l2_weight=0.0,
                          video_sn_vae_gan_weight=0.1, video_sn_gan_weight=0.1),
             lambda seed: _moving_square(2, 5, 32, 1, seed)),
    "sv2p": ("sv2p", dict(context_frames=2, sequence_length=4, batch_size=2),
             lambda seed: _moving_square(2, 4, 16, 3, seed, actions=True)),
    "sna": ("sna", dict(context_frames=2, sequence_length=4, batch_size=2),
            lambda seed: _moving_square(2, 4, 16, 3, seed, actions=True)),
    "mspred": ("mspred", dict(context_frames=3, sequence_length=11, num_preds=2, periods=[1, 2, 4], num_filters=4,
                              dim=32, hidden_dim=8, num_layers=[1, 1, 1], latent_dim=2, prior_hidden_dim=4,
                              posterior_hidden_dim=4, num_channels=1, steps_per_epoch=2, num_epochs=3,
                              batch_size=2),
               _mspred_batch),
    "epva": ("epva", dict(context_frames=2, sequence_length=4, batch_size=2, enc_size=8),
             lambda seed: _moving_square(2, 4, 32, 1, seed)),
    "pose_lstm": ("pose_lstm", dict(context_frames=3, sequence_length=7, batch_size=2, lstm_units=8,
                                    lm_enc_units=4, num_landmarks=3),
                  lambda seed: _poses(seed, 7)),
    "pose_analogy": ("pose_analogy", dict(context_frames=2, sequence_length=5, batch_size=2, alpha=0.0, beta=0.0,
                                          gf_dim=4, df_dim=4, num_joints=3),
                     lambda seed: _poses(seed, 5)),
    "vqvae": ("vqvae", dict(context_frames=2, sequence_length=4, ch=8, ch_mult=[1, 2], num_res_blocks=1,
                            attn_resolutions=[8], resolution=16, z_channels=8, embed_dim=4, n_embed=16, num_groups=4,
                            batch_size=2, grad_updates_per_step=1, perceptual_weight_2d=0.0, input_mean=[0.5],
                            input_std=[0.25], train_on="clips"),
              lambda seed: _moving_square(2, 4, 16, 1, seed)),
}


STAGE1 = dict(context_frames=2, sequence_length=4, ch=8, ch_mult=[1, 2, 2], num_res_blocks=1, attn_resolutions=[],
              resolution=16, z_channels=8, embed_dim=4, n_embed=16, num_groups=4, batch_size=4,
              grad_updates_per_step=1, perceptual_weight_2d=0.0, input_mean=[0.5], input_std=[0.25])
CASES["vqvae_transformer"] = ("vqvae_transformer", dict(context_frames=2, sequence_length=4, d_model=16, num_layers=2,
                                                        num_heads=2, dropout=0.0, batch_size=2),
                              lambda seed: _moving_square(2, 4, 16, 1, seed))


@pytest.fixture(scope="module")
def first_stage_dir(tmp_path_factory):
    """A tiny float32 vqvae run directory (the frozen first stage of vqvae_transformer)."""
    from video_prediction.conversion.bookkeeping import write_run_directory

    directory = tmp_path_factory.mktemp("stage1")
    model = get_model_class("vqvae")(hparams=STAGE1)
    model.build_from_batch({"images": tf.zeros([1, 4, 16, 16, 1])})
    model.quantize.embedding.assign(tf.random.stateless_normal([16, 4], seed=[0, 1]) * 0.5)
    write_run_directory(str(directory), model, dict(dataset="moving_mnist", model="vqvae", image_shape=[16, 16, 1]),
                        dict(context_frames=2, sequence_length=4))
    return str(directory)


def make_model(family, precision, weights=None, first_stage=None):
    name, hparams, batch_fn = CASES[family]
    hparams = dict(hparams, mixed_precision=precision)
    if family == "vqvae_transformer":
        hparams["first_stage_checkpoint"] = first_stage
    keras.utils.set_random_seed(0)
    model = get_model_class(name)(hparams=hparams)
    batch = batch_fn(0)
    model.build_from_batch(batch)
    model.make_optimizers()
    model.build_optimizers()
    if weights is not None:
        model.set_weights(weights)
    return model, batch


def one_step(model, batch):
    """The losses of one eager train step, with every random draw reset."""
    keras.utils.set_random_seed(1)
    logs = model.train_step(batch)
    return {k: float(v) for k, v in logs.items()}


if __name__ == "__main__":
    import sys
    import tempfile
    import time
    from video_prediction.conversion.bookkeeping import write_run_directory
    stage1 = tempfile.mkdtemp()
    m = get_model_class("vqvae")(hparams=STAGE1)
    m.build_from_batch({"images": tf.zeros([1, 4, 16, 16, 1])})
    write_run_directory(stage1, m, dict(dataset="moving_mnist", model="vqvae", image_shape=[16, 16, 1]),
                        dict(context_frames=2, sequence_length=4))
    for family in sys.argv[1:] or CASES:
        start = time.time()
        reference, batch = make_model(family, "float32", first_stage=stage1)
        weights = reference.get_weights()
        mixed, _ = make_model(family, "bfloat16", weights, first_stage=stage1)
        a, b = one_step(reference, batch), one_step(mixed, batch)
        reference.set_weights(weights)
        c = one_step(reference, CASES[family][2](1))
        t1 = time.time()
        half, _ = make_model(family, "float16", weights, first_stage=stage1)
        d = one_step(half, batch)
        print(family, round(t1 - start, 1), round(time.time() - t1, 1), "loss f32 %.6g bf16 %.6g other %.6g f16 %.6g" % (a["loss"], b["loss"], c["loss"], d["loss"]),
              "maxrel", max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-3) for k in a))
