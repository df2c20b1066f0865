"""The sv2p and sna baselines (specs/savp.md §3.1): shapes, parameter counts, latents, schedules, training, errors."""

import os

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.models import get_model_class
from video_prediction.models.sna import SNAVideoPredictionModel
from video_prediction.models.sv2p import SV2PVideoPredictionModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 16x16 frames (the smallest size: three stride-2 convs), 4 frames, 2 context frames.
LENGTHS = dict(context_frames=2, sequence_length=4)


def tiny_batch(batch_size=2, length=4, size=16, channels=3, actions=True, seed=0, square=4, background=0.0):
    """A bright ``square``-pixel square moving one pixel per frame, on black or (``background`` > 0) on uniform
    noise in [0, background); BAIR-sized actions (4) and states (3)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((batch_size, length, size, size, channels), np.float32)
    for b in range(batch_size):
        if background:
            images[b] = rng.uniform(0.0, background, images[b].shape)
        y, x = rng.integers(2, size - 8, size=2)
        for t in range(length):
            images[b, t, y : y + square, x + t : x + t + square] = 1.0
    batch = {"images": tf.constant(images)}
    if actions:
        batch["actions"] = tf.constant(rng.normal(size=(batch_size, length - 1, 4)).astype(np.float32))
        batch["states"] = tf.constant(rng.normal(size=(batch_size, length, 3)).astype(np.float32))
    return batch


# -- parameter counts derived from the originals' layer shapes ----------------------------------
# slim conv/deconv/fully_connected: kernel + bias, except when a normalizer follows (no bias).
# Finn's basic_conv_lstm_cell: one 5x5 'Gates' conv over [inputs, h] to 4F channels, with bias.
# contrib layer_norm: beta and gamma per channel.


def conv_lstm(in_channels, filters):
    return 5 * 5 * (in_channels + filters) * 4 * filters + 4 * filters


def layer_norm(channels):
    return 2 * channels


def cdna_params(height, width, bottleneck, num_masks, kernel=5):
    """Dense from the flattened 1/8-resolution bottleneck to kernel^2 * num_masks."""
    outputs = kernel * kernel * num_masks
    return (height // 8) * (width // 8) * bottleneck * outputs + outputs


def sv2p_param_count(height, width, channels, length, action_dim=4, state_dim=3, conditioned=False,
                     latent_channels=1, num_masks=10):
    """sv2p_model.py's construct_model + construct_latent_tower, layer by layer."""
    n = 5 * 5 * channels * 32 + layer_norm(32)  # scale1_conv1 (no bias) + layer_norm1
    n += conv_lstm(32, 32) + layer_norm(32)  # state1 + layer_norm2
    n += conv_lstm(32, 32) + layer_norm(32)  # state2 + layer_norm3
    n += 3 * 3 * 32 * 32 + 32  # conv2 (channels of hidden2)
    n += conv_lstm(32, 64) + layer_norm(64)  # state3 + layer_norm4
    n += conv_lstm(64, 64) + layer_norm(64)  # state4 + layer_norm5
    n += 3 * 3 * 64 * 64 + 64  # conv3
    smear = action_dim + state_dim if conditioned else 0
    n += (64 + smear + latent_channels) * 64 + 64  # conv4 1x1 on [enc2, smear, latent]
    n += conv_lstm(64, 128) + layer_norm(128)  # state5 + layer_norm6
    n += 3 * 3 * 128 * 128 + 128  # convt1
    n += conv_lstm(128, 64) + layer_norm(64)  # state6 + layer_norm7
    n += 3 * 3 * 96 * 96 + 96  # convt2 on [hidden6 64, enc1 32]
    n += conv_lstm(96, 32) + layer_norm(32)  # state7 + layer_norm8
    n += 3 * 3 * 64 * 64 + layer_norm(64)  # convt3 on [hidden7 32, enc0 32] (no bias) + layer_norm9
    n += 64 * channels + channels  # convt4: scratch image
    n += cdna_params(height, width, 128, num_masks)  # cdna_params
    n += 64 * (num_masks + 1) + num_masks + 1  # convt7: masks
    n += (action_dim + state_dim) * state_dim + state_dim  # state_pred
    if latent_channels:  # latent tower on all frames stacked on channels
        n += 3 * 3 * length * channels * 32 + layer_norm(32)  # latent_conv1 + latent_norm1
        n += 3 * 3 * 32 * 64 + layer_norm(64)  # latent_conv2 + latent_norm2
        n += 3 * 3 * 64 * 64 + layer_norm(64)  # latent_conv3 + latent_norm3
        n += 2 * (3 * 3 * 64 * latent_channels + layer_norm(latent_channels))  # latent_mean, latent_std + norms
    return n


def sna_param_count(height, width, channels, action_dim=4, state_dim=3, ngf=16, num_masks=10):
    """sna_model.py's Prediction_Model.build with gen_pix and 1stimg_bckgd (CDNA), layer by layer."""
    n = 5 * 5 * channels * 32 + layer_norm(32)  # scale1_conv1 + layer_norm1
    n += conv_lstm(32, ngf) + layer_norm(ngf)  # state1 + layer_norm2
    n += 3 * 3 * ngf * ngf + ngf  # conv2
    n += conv_lstm(ngf, 2 * ngf) + layer_norm(2 * ngf)  # state3 + layer_norm4
    n += 3 * 3 * (2 * ngf) ** 2 + 2 * ngf  # conv3
    n += (2 * ngf + action_dim + state_dim) * 2 * ngf + 2 * ngf  # conv4 on [enc2, smear]
    n += conv_lstm(2 * ngf, 4 * ngf) + layer_norm(4 * ngf)  # state5 + layer_norm6
    n += 3 * 3 * (4 * ngf) ** 2 + 4 * ngf  # convt1
    n += conv_lstm(4 * ngf, 2 * ngf) + layer_norm(2 * ngf)  # state6 + layer_norm7
    n += 3 * 3 * (3 * ngf) ** 2 + 3 * ngf  # convt2 on [hidden6 2ngf, enc1 ngf]
    n += conv_lstm(3 * ngf, ngf) + layer_norm(ngf)  # state7 + layer_norm8
    top = ngf + 32
    n += 3 * 3 * top * top + layer_norm(top)  # convt3 on [hidden7, enc0] + layer_norm9
    n += top * channels + channels  # convt4: scratch image
    n += cdna_params(height, width, 4 * ngf, num_masks)  # cdna_params
    n += top * (num_masks + 2) + num_masks + 2  # convt7_cam2: [first image, scratch, 10 CDNA]
    n += (action_dim + state_dim) * state_dim + state_dim  # state_pred
    return n


def num_trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def test_registered():
    assert get_model_class("sv2p") is SV2PVideoPredictionModel
    assert get_model_class("sna") is SNAVideoPredictionModel


@pytest.mark.parametrize("size,length,conditioned", [(16, 4, False), (64, 3, False), (64, 3, True)])
def test_sv2p_parameter_count(size, length, conditioned):
    # 64x64 RGB with the published sizes: BAIR action-free (e.g. 12 frames: 8,378,500 weights with
    # the frame-count-dependent latent_conv1) and action-conditioned.
    model = SV2PVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=length, batch_size=1))
    batch = tiny_batch(batch_size=1, length=length, size=size, actions=conditioned)
    model.build_from_batch(batch)
    assert num_trainable(model) == sv2p_param_count(size, size, 3, length, conditioned=conditioned)


@pytest.mark.parametrize("size", [16, 64])
def test_sna_parameter_count(size):
    model = SNAVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=3, batch_size=1))
    model.build_from_batch(tiny_batch(batch_size=1, length=3, size=size))
    assert num_trainable(model) == sna_param_count(size, size, 3)


@pytest.mark.parametrize("multi_latent", [False, True])
def test_sv2p_shapes_and_latents(multi_latent):
    model = SV2PVideoPredictionModel(hparams=dict(LENGTHS, multi_latent=multi_latent))
    outputs = model(tiny_batch(actions=False), training=False)
    assert outputs["gen_images"].shape == (2, 3, 16, 16, 3)
    assert outputs["gen_images_enc"].shape == (2, 3, 16, 16, 3)
    assert outputs["masks"].shape == (2, 3, 16, 16, 1, 11)  # num_masks + 1
    assert outputs["transformed_images"].shape == (2, 3, 16, 16, 3, 11)
    np.testing.assert_allclose(tf.reduce_sum(outputs["masks"], -1).numpy(), 1.0, atol=1e-5)
    # the posterior: one mean / log variance map per video (1/8 resolution, latent_channels=1)
    assert outputs["zs_mu"].shape == outputs["zs_log_sigma_sq"].shape == (2, 2, 2, 1)
    assert np.all(outputs["zs_log_sigma_sq"].numpy() >= -5.0 - 1e-6)  # latent_std_min
    # the latents fed to the tower: one per video (time-invariant) or one per step (time-variant)
    expected = (2, 3, 2, 2, 1) if multi_latent else (2, 2, 2, 1)
    assert outputs["zs"].shape == outputs["zs_enc"].shape == expected
    if multi_latent:
        assert np.abs((outputs["zs"][:, 0] - outputs["zs"][:, 1]).numpy()).max() > 0
    assert model.stochastic and model.latent_tower is not None


def test_sv2p_training_stages():
    """Stage 1 (< num_iterations_1st_stage): the posterior path gets N(0, I) noise; then the posterior
    sample; the KL weight ramps linearly over kl_anneal_steps (100k -> 120k)."""
    # A negligible posterior variance makes the posterior sample equal to its mean.
    model = SV2PVideoPredictionModel(hparams=dict(LENGTHS, latent_std_min=-60.0, num_iterations_1st_stage=10))
    batch = tiny_batch(actions=False)
    first = model(batch, training=True)
    assert np.abs((first["zs_enc"] - first["zs_mu"]).numpy()).max() > 0.1
    model.global_step.assign(10)
    second = model(batch, training=True)
    np.testing.assert_allclose(second["zs_enc"].numpy(), second["zs_mu"].numpy(), atol=1e-5)
    for step, weight in ((0, 0.0), (100000, 0.0), (110000, 0.04), (120000, 0.08), (150000, 0.08)):
        model.global_step.assign(step)
        np.testing.assert_allclose(float(model.current_kl_weight()), weight, rtol=1e-5, atol=1e-9)
    hp = SV2PVideoPredictionModel.default_hparams()
    assert (hp["num_iterations_1st_stage"], hp["kl_anneal_steps"], hp["max_steps"], hp["decay_steps"]) == (
        50000, (100000, 120000), 200000, (0, 0))


def test_sv2p_action_conditioned_and_deterministic():
    model = SV2PVideoPredictionModel(hparams=dict(LENGTHS, state_weight=1e-4))
    batch = tiny_batch()
    outputs = model(batch, training=False)
    assert outputs["gen_states"].shape == outputs["gen_states_enc"].shape == (2, 3, 3)
    assert "gen_state_loss" in model.generator_losses(batch, outputs)
    assert model.cell.condition_on_state_action
    with pytest.raises(ValueError, match="needs 'actions'"):
        model({"images": batch["images"]}, training=False)

    deterministic = SV2PVideoPredictionModel(hparams=dict(LENGTHS, stochastic_model=False, kl_weight=0.0))
    outputs = deterministic(tiny_batch(actions=False), training=False)
    assert not deterministic.stochastic and deterministic.latent_tower is None
    assert "gen_images_enc" not in outputs and "zs" not in outputs
    with pytest.raises(ValueError, match="stochastic_model"):
        SV2PVideoPredictionModel(hparams=dict(LENGTHS, stochastic_model=False))  # default kl_weight 0.08


def test_sna_shapes_first_image_background_and_dna():
    model = SNAVideoPredictionModel(hparams=LENGTHS)
    batch = tiny_batch()
    outputs = model(batch, training=False)
    assert outputs["gen_images"].shape == (2, 3, 16, 16, 3)
    assert outputs["gen_states"].shape == (2, 3, 3)
    assert outputs["masks"].shape == (2, 3, 16, 16, 1, 12)  # num_masks + background + scratch
    # the background candidate is the first frame at every step
    for t in range(3):
        np.testing.assert_array_equal(outputs["transformed_images"][:, t, ..., 0], batch["images"][:, 0])
    assert not model.stochastic
    dna = SNAVideoPredictionModel(hparams=dict(LENGTHS, transformation="dna", num_masks=1))
    outputs = dna(batch, training=False)
    assert outputs["masks"].shape == (2, 3, 16, 16, 1, 2)  # background + the DNA image
    assert dna.cell.convt4_cam2.kernel.shape == (1, 1, 25, 48)


def test_sna_needs_actions_and_states():
    batch = tiny_batch()
    with pytest.raises(ValueError, match="needs 'actions' and 'states'.*the batch has: images"):
        SNAVideoPredictionModel(hparams=LENGTHS)({"images": batch["images"]})
    with pytest.raises(ValueError, match="needs 'states'"):
        SNAVideoPredictionModel(hparams=LENGTHS)({"images": batch["images"], "actions": batch["actions"]})
    built = SNAVideoPredictionModel(hparams=LENGTHS)
    built.build_from_batch(batch)
    with pytest.raises(ValueError, match="needs 'actions' and 'states'"):
        built.generate({"images": batch["images"]}, num_samples=1)


def test_bad_hparams():
    with pytest.raises(ValueError, match="video_sn_gan_weight must be 0"):
        SV2PVideoPredictionModel(hparams=dict(LENGTHS, video_sn_gan_weight=0.1))
    with pytest.raises(ValueError, match="num_masks=1"):
        SNAVideoPredictionModel(hparams=dict(LENGTHS, transformation="dna"))(tiny_batch())
    with pytest.raises(ValueError, match="unknown transformation 'stp'"):
        SV2PVideoPredictionModel(hparams=dict(LENGTHS, transformation="stp"))(tiny_batch())
    with pytest.raises(ValueError, match="multiples of 8"):
        SNAVideoPredictionModel(hparams=LENGTHS)(tiny_batch(size=20))
    with pytest.raises(ValueError, match="unknown hparam 'nz'"):
        SV2PVideoPredictionModel(hparams=dict(LENGTHS, nz=8))
    # keys the original sv2p dropped from old files
    assert "gan_weight" not in SV2PVideoPredictionModel(hparams=dict(LENGTHS, gan_weight=1.0)).hparams


def test_schedule_sampling_counts():
    """Exactly round(B * k / (k + exp(step / k))) ground-truth frames per step after the context."""
    model = SNAVideoPredictionModel(hparams=LENGTHS)
    model.global_step.assign(6122)  # k ln k for k = 900: probability 1/2
    mask = model.ground_truth_mask(6, 8, training=True).numpy()
    assert mask[:2].all() and (mask[2:].sum(axis=1) == 4).all()
    assert not model.ground_truth_mask(6, 8, training=False).numpy()[2:].any()
    model.global_step.assign(0)
    assert model.ground_truth_mask(6, 8, training=True).numpy().all()
    never = SNAVideoPredictionModel(hparams=dict(LENGTHS, schedule_sampling_k=-1.0))
    assert not never.ground_truth_mask(6, 8, training=True).numpy()[2:].any()


@pytest.mark.parametrize("model_class", [SV2PVideoPredictionModel, SNAVideoPredictionModel])
def test_train_step_reduces_loss_and_checkpoints(model_class, tmp_path):
    # Action-conditioned here; the pipeline test below trains an action-free sv2p (in tf.function).
    tf.random.set_seed(3)
    batch = tiny_batch()
    model = model_class(hparams=dict(LENGTHS, batch_size=2, state_weight=1e-4))
    model.build_from_batch(batch)
    model.make_optimizers()
    model.build_optimizers()
    losses = [float(model.train_step(batch)["loss"]) for _ in range(6)]  # eager: cheaper than tracing here
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    logs = model.train_step(batch)
    assert set(logs) == set(model.loss_names())
    assert int(model.global_step.numpy()) == 7
    # every weight is saved and restored
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    restored = model_class(hparams=dict(LENGTHS, batch_size=2))
    restored.build_from_batch(batch)
    tf.train.Checkpoint(model=restored).restore(path).assert_existing_objects_matched()
    for a, b in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_generate_beyond_training_length():
    batch = tiny_batch()
    sv2p = SV2PVideoPredictionModel(hparams=LENGTHS)
    sv2p.build_from_batch({"images": batch["images"]})
    samples = sv2p.generate({"images": batch["images"]}, num_samples=2, horizon=5).numpy()
    assert samples.shape == (2, 2, 5, 16, 16, 3) and np.all((samples >= 0) & (samples <= 1 + 1e-5))
    assert np.abs(samples[:, 0] - samples[:, 1]).max() > 1e-6  # stochastic
    sna = SNAVideoPredictionModel(hparams=LENGTHS)
    sna.build_from_batch(batch)
    long_batch = tiny_batch(length=5)
    samples = sna.generate(long_batch, num_samples=2, horizon=3).numpy()
    assert samples.shape == (2, 2, 3, 16, 16, 3)
    assert np.abs(samples[:, 0] - samples[:, 1]).max() < 1e-5  # deterministic (up to float summation order)
    with pytest.raises(ValueError, match="needs 4 actions"):
        sna.generate(batch, num_samples=1, horizon=3)  # 2 + 3 frames need 4 actions


def test_sv2p_trains_generates_and_evaluates_through_the_pipeline(tmp_path):
    """What scripts/train.py, generate.py and evaluate.py call, on a tiny 32x32 Moving MNIST."""
    from video_prediction.inference import evaluation, generation
    from video_prediction.training.building import load_model_and_dataset
    from video_prediction.training.loop import train
    from video_prediction.datasets.moving_mnist import write_moving_mnist

    data = str(tmp_path / "mm32")
    write_moving_mnist(data, {"train": 4, "val": 2, "test": 2}, sequence_length=4, canvas_size=32, progress=False)
    run = str(tmp_path / "run")
    train(data, "moving_mnist", "sv2p", run, dataset_hparams="context_frames=2,sequence_length=4",
          model_hparams_dict=os.path.join(ROOT, "hparams/kth/sv2p_time_variant/model_hparams.json"),
          model_hparams="batch_size=2", max_steps=2, summary_freq=2, image_summary_freq=0, save_freq=2,
          seed=1, strategy_name="one_device", verbose=0)
    model, dataset, options = load_model_and_dataset(run)
    assert options["model"] == "sv2p" and model.hparams.multi_latent and int(model.global_step.numpy()) == 2
    written = generation.generate_from_dataset(model, dataset, str(tmp_path / "gen"), num_videos=2,
                                               num_stochastic_samples=2, batch_size=2)
    assert written == 2 and any(name.endswith(".gif") for name in os.listdir(tmp_path / "gen"))
    accumulator = evaluation.evaluate(model, dataset, ("psnr",), num_stochastic_samples=2, batch_size=2,
                                      num_videos=2)
    results = evaluation.write_results(accumulator, str(tmp_path / "eval"), model.context_frames)
    assert results


def test_zero_padded_cdna_and_dna_match_plain_convolutions():
    """Finn's transformations pad with zeros: CDNA = per-sample depthwise conv 'SAME', DNA = per-pixel sum
    over zero-padded shifted copies (the kernel's row index is the vertical shift)."""
    from video_prediction.layers.transformations import apply_cdna_kernels, apply_dna_kernels

    rng = np.random.default_rng(0)
    image = rng.uniform(size=(2, 6, 7, 3)).astype(np.float32)
    kernels = rng.uniform(size=(2, 5, 5, 4)).astype(np.float32)
    for m, out in enumerate(apply_cdna_kernels(tf.constant(image), tf.constant(kernels), padding="CONSTANT")):
        for b in range(2):
            kernel = np.tile(kernels[b, :, :, m, None, None], (1, 1, 3, 1))  # the same kernel for every channel
            expected = tf.nn.depthwise_conv2d(image[b : b + 1], kernel, [1, 1, 1, 1], "SAME")
            np.testing.assert_allclose(out[b : b + 1].numpy(), expected.numpy(), atol=1e-5)
    per_pixel = rng.uniform(size=(2, 6, 7, 5, 5, 1)).astype(np.float32)
    (out,) = apply_dna_kernels(tf.constant(image), tf.constant(per_pixel), padding="CONSTANT")
    padded = np.pad(image, [(0, 0), (2, 2), (2, 2), (0, 0)])
    expected = sum(per_pixel[..., dy, dx, :] * padded[:, dy : dy + 6, dx : dx + 7]
                   for dy in range(5) for dx in range(5))
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)
