"""SAVP model family: the six moving_mnist variants build, train, generate; hparam handling."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.models import get_model_class
from video_prediction.models.savp import SAVPVideoPredictionModel

HPARAMS_DIR = os.path.join(os.path.dirname(__file__), "..", "hparams", "moving_mnist")
VARIANTS = ["ours_savp", "ours_vae_l1", "ours_vae_l2", "ours_gan", "ours_deterministic_l1", "ours_deterministic_l2"]
# Tiny shapes: 32x32 (the smallest generator spec), 5 frames, 2 context frames, a 4-frame D clip.
TINY = dict(context_frames=2, sequence_length=5, ngf=8, ndf=4, nef=8, clip_length=4, batch_size=2,
            kl_anneal="none")


def load_variant(name, **overrides):
    with open(os.path.join(HPARAMS_DIR, name, "model_hparams.json")) as f:
        values = json.load(f)
    values.update(TINY)
    values.update(overrides)
    return SAVPVideoPredictionModel(hparams_dict=values)


def tiny_batch(batch_size=2, length=5, size=32, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    images = np.zeros((batch_size, length, size, size, channels), np.float32)
    for b in range(batch_size):  # a bright square moving one pixel per frame
        y, x = rng.integers(4, size - 12, size=2)
        for t in range(length):
            images[b, t, y : y + 6, x + t : x + t + 6] = 1.0
    return {"images": tf.constant(images)}


def build_for_training(variant, batch):
    """As the training library does: build every weight, the optimizer(s) and their slots."""
    model = load_variant(variant)  # with its own lr (2e-4 for the GAN variants)
    model.build_from_batch(batch)
    model.make_optimizers()
    model.build_optimizers()
    return model


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_trains_and_generates(variant, tmp_path):
    tf.random.set_seed(1)
    batch = tiny_batch()
    model = build_for_training(variant, batch)
    assert set(model.optimizers_by_name()) == (
        {"optimizer", "discriminator_optimizer"} if variant in ("ours_savp", "ours_gan") else {"optimizer"}
    )
    train_step = tf.function(model.train_step)
    g_losses, reconstruction = [], []
    # Learning is judged on the pixel reconstruction term: the adversarial terms need not fall in 5 steps (the
    # feature-matching distance reads a discriminator that moves every step; one CI run saw ours_savp's g_loss
    # go 29.1 -> 31.5 -> 30.1 while it fell in others).
    key = "gen_l1_loss" if model.hparams.l1_weight else "gen_l2_loss"
    for _ in range(5):
        logs = train_step(batch)
        g_losses.append(float(logs["g_loss"]))
        reconstruction.append(float(logs[key]))
    assert set(logs) == set(model.loss_names())
    assert int(model.global_step.numpy()) == 5
    assert np.all(np.isfinite(g_losses + reconstruction))
    assert reconstruction[-1] < reconstruction[0], reconstruction

    # Checkpoint round trip of the model and every optimizer into a freshly built model.
    path = tf.train.Checkpoint(model=model, **model.optimizers_by_name()).save(str(tmp_path / "model"))
    restored = build_for_training(variant, batch)
    checkpoint = tf.train.Checkpoint(model=restored, **restored.optimizers_by_name())
    checkpoint.restore(path).assert_existing_objects_matched()
    assert int(restored.global_step.numpy()) == 5 and int(restored.optimizer.iterations.numpy()) == 5
    # Every weight comes back (a layer or weight held only in a Python list/dict would be
    # missing from the checkpoint and keep its fresh random value, e.g. the spectral-norm u).
    assert len(model.weights) == len(restored.weights)
    for a, b in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)

    outputs = model(batch, training=False)
    assert outputs["gen_images"].shape == (2, 4, 32, 32, 1)
    assert outputs["masks"].shape == (2, 4, 32, 32, 1, 7)
    if model.stochastic and variant != "ours_gan":
        assert outputs["gen_images_enc"].shape == (2, 4, 32, 32, 1)
        assert outputs["zs_mu"].shape == (2, 4, 8)
    else:
        assert "gen_images_enc" not in outputs

    # Sample beyond the training length (5 frames -> 2 context + 6 predicted).
    samples = model.generate(batch, num_samples=2, horizon=6).numpy()
    assert samples.shape == (2, 2, 6, 32, 32, 1)
    assert np.all((samples >= 0) & (samples <= 1.0 + 1e-5))
    longer = model.generate({"images": batch["images"][:1]}, num_samples=3, horizon=9)  # other shapes
    assert longer.shape == (1, 3, 9, 32, 32, 1)
    spread = np.abs(samples[:, 0] - samples[:, 1]).max()
    if model.stochastic:
        assert spread > 1e-6
    else:
        assert spread == 0.0


def test_variants_flags():
    assert get_model_class("savp") is SAVPVideoPredictionModel
    savp = load_variant("ours_savp")
    assert savp.stochastic and savp.trainable_model and savp.has_posterior and savp.has_gan
    gan = load_variant("ours_gan")
    assert gan.stochastic and not gan.has_posterior  # the paper's ours_gan: no encoder
    det = load_variant("ours_deterministic_l1")
    assert not det.stochastic and not det.has_gan


def test_unknown_and_deprecated_hparams():
    with pytest.raises(ValueError, match="unknown hparam 'not_a_key'"):
        SAVPVideoPredictionModel(hparams=dict(TINY, not_a_key=1))
    # Keys the original dropped silently from old JSON files.
    model = SAVPVideoPredictionModel(hparams=dict(TINY, e_net="none", gan_weight=1.0, num_gpus=2))
    assert "e_net" not in model.hparams
    with pytest.raises(ValueError, match="transformation"):
        m = SAVPVideoPredictionModel(hparams=dict(TINY, transformation="affine"))
        m.build_from_batch(tiny_batch())
    with pytest.raises(ValueError, match="kl_weight"):
        SAVPVideoPredictionModel(hparams=dict(TINY, nz=0, kl_weight=1.0))
    with pytest.raises(ValueError, match="gan_loss_type"):
        SAVPVideoPredictionModel(hparams=dict(TINY, gan_loss_type="BOGUS"))


def test_defaults_match_spec():
    hp = SAVPVideoPredictionModel.default_hparams()
    expected = dict(l1_weight=1.0, l2_weight=0.0, n_layers=3, ndf=32, ngf=32, nef=64, nz=8, transformation="cdna",
                    kernel_size=(5, 5), num_transformed_images=4, schedule_sampling_k=900.0,
                    schedule_sampling_steps=(0, 100000), kl_anneal="linear", kl_anneal_steps=(50000, 100000),
                    gan_loss_type="LSGAN", decay_steps=(200000, 300000), max_steps=300000, clip_length=10,
                    use_encoder=True, where_add="all", use_tile_concat=True, dependent_mask=True)
    for key, value in expected.items():
        assert hp[key] == value, key


def test_deterministic_without_sampling_and_context_uses_ground_truth():
    model = load_variant("ours_deterministic_l1")
    batch = tiny_batch()
    first = model(batch, training=False)["gen_images"].numpy()
    second = model(batch, training=False)["gen_images"].numpy()
    np.testing.assert_array_equal(first, second)
    # Frames after the context are never looked at outside training (own predictions are fed back).
    images = batch["images"].numpy()
    images[:, 2:] = 0.5
    third = model({"images": tf.constant(images)}, training=False)["gen_images"].numpy()
    np.testing.assert_allclose(first, third, atol=1e-6)


def test_schedule_sampling_feeds_ground_truth_early_in_training():
    model = load_variant("ours_deterministic_l1")
    batch = tiny_batch()
    # Step 0: p = k / (k + 1) ~ 0.999 -> almost every post-context input is ground truth.
    mean = float(model(batch, training=True)["ground_truth_sampling_mean"])
    assert mean > 0.5
    assert float(model(batch, training=False)["ground_truth_sampling_mean"]) == 0.0


@pytest.mark.parametrize("overrides", [
    dict(transformation="dna", kernel_size=(3, 3)),
    dict(transformation="flow", tv_weight=0.001, use_tile_concat=False, conv_rnn="gru"),
    dict(learn_prior=True, kl_weight=1.0, conv_rnn_norm_layer="layer", last_context_image_background=True),
])
def test_generator_options_forward(overrides):
    model = SAVPVideoPredictionModel(hparams=dict(TINY, **overrides))
    batch = tiny_batch()
    outputs = model(batch, training=True)
    assert outputs["gen_images"].shape == (2, 4, 32, 32, 1)
    losses = model.generator_losses(batch, outputs)
    assert all(np.isfinite(float(v)) for v in losses.values())
    if overrides.get("transformation") == "flow":
        assert outputs["gen_flows"].shape == (2, 4, 32, 32, 2, 4)
        assert "gen_tv_loss" in losses
    if overrides.get("learn_prior"):
        assert outputs["zs_mu_prior"].shape == (2, 4, 8)


def test_action_conditioned_states():
    model = SAVPVideoPredictionModel(hparams=dict(TINY, state_weight=1e-4))
    batch = tiny_batch()
    batch["actions"] = tf.random.normal([2, 4, 3])
    batch["states"] = tf.random.normal([2, 5, 2])
    outputs = model(batch, training=True)
    assert outputs["gen_states"].shape == (2, 4, 2)
    assert "gen_state_loss" in model.generator_losses(batch, outputs)
    samples = model.generate(
        {"images": batch["images"], "actions": tf.random.normal([2, 6, 3]), "states": tf.random.normal([2, 7, 2])},
        num_samples=1, horizon=5,
    )
    assert samples.shape == (2, 1, 5, 32, 32, 1)


@pytest.mark.parametrize("overrides", [
    dict(where_add="input", use_e_rnn=True, learn_initial_state=True, last_frames=2, kl_weight=0.1,
         image_sn_gan_weight=0.1, images_sn_vae_gan_weight=0.1, gan_feature_l2_weight=1.0,
         gan_loss_type="SNGAN"),
    dict(where_add="middle", ablation_rnn=True, context_images_background=True, video_sn_gan_weight=0.1,
         video_sn_vae_gan_weight=0.1, use_same_discriminator=True, joint_gan_optimization=True,
         gan_loss_type="GAN"),
    dict(ablation_conv_rnn_norm=True, rnn="gru", generate_scratch_image=False, dependent_mask=False,
         downsample_layer="conv2d", upsample_layer="deconv2d", video_sn_gan_weight=0.1, nz=0,
         schedule_sampling="linear"),
])
def test_generator_and_discriminator_options_train(overrides):
    model = SAVPVideoPredictionModel(hparams=dict(TINY, **overrides))
    batch = tiny_batch()
    model.build_from_batch(batch)
    model.make_optimizers()
    model.build_optimizers()
    before = [v.numpy().copy() for v in model.discriminator_variables()]
    logs = model.train_step(batch)  # eager: no tracing cost for a one-off step
    assert set(logs) == set(model.loss_names())
    assert all(np.isfinite(float(v)) for v in logs.values())
    after = model.discriminator_variables()
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before, after))
    if overrides.get("use_same_discriminator"):
        assert model.discriminators["video_sn"] is model.discriminators_enc["video_sn"]
    assert model(batch)["gen_images"].shape == (2, 4, 32, 32, 1)



@pytest.mark.parametrize("overrides, unrolls", [
    (dict(nz=8, kl_weight=0.001), 1),  # ours_vae_*: losses on the posterior path only
    (dict(nz=8, kl_weight=0.001, video_sn_vae_gan_weight=0.1), 1),  # VAE-GAN only: D sees posterior frames
    (dict(nz=8, kl_weight=0.001, video_sn_gan_weight=0.1, video_sn_vae_gan_weight=0.1), 2),  # ours_savp
    (dict(nz=8, use_encoder=False, video_sn_gan_weight=0.1), 1),  # ours_gan without encoder: the prior path
])
def test_train_step_runs_the_prior_path_only_when_a_loss_uses_it(overrides, unrolls, monkeypatch):
    # As the original's TF1 train step, which never evaluated the prior path of ours_vae_l1 (issue 18).
    model = SAVPVideoPredictionModel(hparams=dict(TINY, l1_weight=1.0, **overrides))
    batch = tiny_batch()
    model.build_from_batch(batch)
    model.make_optimizers()
    model.build_optimizers()
    calls = []
    unroll = model._unroll
    monkeypatch.setattr(model, "_unroll", lambda *args: calls.append(args[1] is None) or unroll(*args))
    logs = model.train_step(batch)  # eager
    assert len(calls) == unrolls
    assert set(logs) == set(model.loss_names())
    assert all(np.isfinite(float(v)) for v in logs.values())
    calls.clear()
    assert "gen_images" in model(batch, training=False) and len(calls) == 1 + model.has_posterior  # inference: both
