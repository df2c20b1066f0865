"""FEVD VQ-VAE (``--model vqvae``): sizes, parity with the original, conversion, loss and training step."""

import importlib.util
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from torch_pth_writer import save_pth
from video_prediction.conversion.bookkeeping import ConversionError
from video_prediction.layers.vector_quantizer import VectorQuantizer, codebook_usage
from video_prediction.models import get_model_class
from video_prediction.models.vqvae import VQVAEVideoPredictionModel, count_parameters
from video_prediction.conversion import vqvae as vqvae_conversion

DATA = os.path.join(os.path.dirname(__file__), "data", "vqvae")
_spec = importlib.util.spec_from_file_location("vqvae_make_reference", os.path.join(DATA, "make_reference.py"))
make_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_reference)

PARITY_ATOL = 1e-4  # the tolerance for reconstructions and loss terms
SEED = 3  # make_reference.py --seed (README)

# The small config of tests/data/vqvae (make_reference.SMALL_DDCONFIG), as the original's YAML.
SMALL_YAML = """\
model:
  key: {key}
  embed_dim: 16
  n_embed: 64
  ddconfig:
    double_z: False
    z_channels: 32
    resolution: 64
    in_channels: 3
    out_ch: 3
    ch: 32
    ch_mult: [ 1,1,1,1,2]
    num_res_blocks: 1
    attn_resolutions: [16]
    dropout: 0.0
  lossconfig:
    codebook_weight: 1.0
    pixelloss_weight: 1.0
    perceptual_weight_2d: 1.0
    fvd_mu_weight: 0.0
    fvd_cov_weight: 0.0
setup:
  total_steps: 7e4
  learning_rate: 5e-4
  grad_updates_per_step: 6
  train_dataloader:
    dataset_module: {module}
    batch_size: 10
"""

TINY = dict(context_frames=2, sequence_length=4, ch=8, ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[8],
            resolution=16, z_channels=8, embed_dim=4, n_embed=16, num_groups=4, batch_size=4,
            grad_updates_per_step=1, perceptual_weight_2d=0.0, input_mean=[0.5], input_std=[0.25])


@pytest.fixture(scope="module")
def reference():
    with np.load(os.path.join(DATA, "small", "reference.npz")) as data:
        return {name: data[name] for name in data.files}


def _write_original_checkpoint(reference, key, path):
    """The original's checkpoint layout with numpy_weight parameters (+ a ``loss.`` tensor to be skipped)."""
    with open(os.path.join(DATA, "small", f"parameters_{key}.json")) as f:
        shapes = json.load(f)
    state = {}
    for name, shape in shapes.items():
        if name == "quantize.embedding.weight":
            state[name] = reference["codebook"]
        else:
            state[name] = make_reference.numpy_weight(name.replace("decoder._2d_decoder.", "decoder."), tuple(shape),
                                                      SEED)
    state["loss.perceptual_loss_2d.lin0.model.1.weight"] = np.zeros((1, 64, 1, 1), np.float32)
    save_pth({"step": 10, "model_state_dict": state, "opt_state_dict": {}}, path)
    return state


def _convert(reference, key, tmp_path):
    ckpt = tmp_path / f"{key}.ckpt"
    _write_original_checkpoint(reference, key, ckpt)
    config = tmp_path / f"{key}.yaml"
    module = "RobonetImgDataset" if key == "2d" else "RobonetVideoDataset"
    config.write_text(SMALL_YAML.format(key=key, module=module))
    return vqvae_conversion.convert_checkpoint(str(ckpt), str(config), str(tmp_path / f"run_{key}"))


def _outputs(model, clips, key, quirk):
    images = tf.constant(clips.astype(np.float32) / 255.0)
    if key == "2d":  # the 2D model runs on frames: one clip per frame
        shape = images.shape
        images = tf.reshape(images, [-1, 1] + shape[2:].as_list())
    outputs = model({"images": images}, training=False)
    losses = model.vq_losses(outputs["normalized_inputs"], outputs["normalized_reconstructions"],
                             outputs["quant_loss"], normalized_input_quirk=quirk)
    rec = tf.reshape(outputs["normalized_reconstructions"], clips.shape).numpy()
    codes = tf.reshape(outputs["codes"], clips.shape[:2] + (4, 4)).numpy()
    return rec, codes, {k: float(v) for k, v in losses.items()}


@pytest.mark.parametrize("key", ["2d", "3d"])
def test_parity_with_original(key, reference, tmp_path, lpips_weights):
    """Converted random weights reproduce the original's reconstructions, codes and loss terms (eval mode)."""
    model = _convert(reference, key, tmp_path)
    assert not model.hparams.lpips_normalized_input_quirk
    clips = reference["clips"]
    # The original's training loss feeds LPIPS the normalised tensors: compare with the quirk on.
    rec, codes, losses = _outputs(model, clips, key, quirk=True)
    np.testing.assert_array_equal(codes, reference[f"indices_{key}"])
    np.testing.assert_allclose(rec, reference[f"reconstructions_{key}"], rtol=0, atol=PARITY_ATOL)
    for ours, theirs in (("loss", "total_loss"), ("quant_loss", "quant_loss"), ("pixel_loss", "pixel_loss"),
                         ("perc_2d_loss", "perc_2d_loss"), ("rec_loss", "rec_loss")):
        assert abs(losses[ours] - float(reference[f"{theirs}_{key}"])) < PARITY_ATOL, ours
    # Our default LPIPS input (un-normalised frames) = the original's LPIPS on un-normalised frames.
    _, _, default_losses = _outputs(model, clips, key, quirk=None)
    assert abs(default_losses["perc_2d_loss"] - float(reference[f"perc_2d_loss_unnormalized_{key}"])) < PARITY_ATOL
    # Meaningful: another input moves every compared output far beyond the tolerance.
    rec2, codes2, losses2 = _outputs(model, (np.roll(clips, 9, axis=3) * 0.6).astype(np.uint8), key, quirk=True)
    assert np.abs(rec2 - reference[f"reconstructions_{key}"]).max() > 100 * PARITY_ATOL
    assert (codes2 != reference[f"indices_{key}"]).mean() > 0.2
    for name in ("quant_loss", "pixel_loss", "perc_2d_loss"):
        assert abs(losses2[name] - losses[name]) > 10 * PARITY_ATOL, name


def test_metrics_match_the_originals(reference, lpips_weights):
    """Spec §4 PSNR / SSIM (valid 11x11 Gaussian windows) / LPIPS-VGG of the original's code on the same arrays."""
    from video_prediction.metrics import get_metric
    from video_prediction.models.vqvae import ROBONET_MEAN, ROBONET_STD

    real = reference["clips"].astype(np.float32) / 255.0
    fake = np.clip(reference["reconstructions_3d"] * np.float32(ROBONET_STD) + np.float32(ROBONET_MEAN), 0, 1)
    psnr = get_metric("psnr")(real, fake).numpy().mean(axis=1)
    ssim = get_metric("ssim")(real, fake).numpy().mean(axis=1)
    lpips = get_metric("lpips", net="vgg")(real, fake).numpy()
    np.testing.assert_allclose(psnr, reference["metric_psnr"], rtol=0, atol=PARITY_ATOL)
    np.testing.assert_allclose(ssim, reference["metric_ssim"], rtol=0, atol=PARITY_ATOL)
    np.testing.assert_allclose(lpips, reference["metric_lpips"], rtol=0, atol=PARITY_ATOL)


def test_parameter_counts_match_spec():
    """specs/vqvae.md §3.6: 68,103,491 (2D) and 68,104,865 (3D) trainable parameters."""
    counts = count_parameters({"perceptual_weight_2d": 0.0})
    assert counts == {"total": 68_103_491, "encoder": 27_722_240, "decoder": 40_085_891, "quant_conv": 49_344,
                      "post_quant_conv": 49_408, "quantize": 196_608}
    counts_3d = count_parameters({"perceptual_weight_2d": 0.0, "decoder": "3d", "train_on": "clips"})
    assert counts_3d["total"] == 68_104_865 and counts_3d["decoder"] == 40_085_891 + 1_374


def test_config_yaml_and_conversion_errors(reference, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(SMALL_YAML.format(key="3d", module="RobonetVideoDataset"))
    config = vqvae_conversion.load_config(str(path))
    assert config["setup"]["total_steps"] == 70000.0 and config["setup"]["learning_rate"] == 5e-4
    hparams, _, _ = vqvae_conversion.hparams_from_config(config)
    assert hparams["max_steps"] == 70000 and hparams["batch_size"] == 60 and hparams["train_on"] == "clips"
    model = vqvae_conversion.build_model(dict(hparams, perceptual_weight_2d=0.0), [64, 64, 3])
    state = _write_original_checkpoint(reference, "3d", tmp_path / "ok.ckpt")
    extra = dict(state, **{"decoder.extra.weight": np.zeros(3, np.float32)})
    with pytest.raises(ConversionError, match="decoder.extra.weight"):
        vqvae_conversion.assign_state_dict(model, extra)
    bad = dict(state, **{"encoder.conv_in.weight": np.zeros((32, 3, 5, 5), np.float32)})
    with pytest.raises(ConversionError, match="encoder.conv_in.weight"):
        vqvae_conversion.assign_state_dict(model, bad)
    missing = {k: v for k, v in state.items() if k != "decoder._out_conv2.bias"}
    with pytest.raises(ConversionError, match="decoder._out_conv2.bias"):
        vqvae_conversion.assign_state_dict(model, missing)


def test_quantizer_straight_through_and_legacy_beta():
    vq = VectorQuantizer(8, 3, beta=0.25)
    z = tf.random.normal([2, 2, 2, 3], seed=1)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        z_q, q_loss, codes = vq(z)
        out = tf.reduce_sum(z_q * tf.range(1.0, 4.0))
    codebook = vq.embedding.numpy()
    expected = codebook[codes.numpy()]
    np.testing.assert_allclose(z_q.numpy(), expected, atol=1e-6)
    # straight-through: d out / d z is the upstream gradient unchanged
    np.testing.assert_allclose(tape.gradient(out, z).numpy(), np.broadcast_to([1.0, 2.0, 3.0], z.shape))
    # legacy placement: commitment weight 1 (to z), codebook weight beta (to the codes)
    diff = expected - z.numpy()
    np.testing.assert_allclose(float(q_loss), 1.25 * np.mean(diff ** 2), rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(q_loss, z).numpy(), -2 * diff / diff.size, rtol=1e-4, atol=1e-7)
    grad_codebook = tf.convert_to_tensor(tape.gradient(q_loss, vq.embedding)).numpy()
    expected_grad = np.zeros_like(codebook)
    np.add.at(expected_grad, codes.numpy().reshape(-1), (0.25 * 2 * diff / diff.size).reshape(-1, 3))
    np.testing.assert_allclose(grad_codebook, expected_grad, rtol=1e-4, atol=1e-7)
    counts, perplexity = codebook_usage(tf.constant([0, 0, 1, 1]), 8)
    assert counts.numpy().tolist() == [2, 2, 0, 0, 0, 0, 0, 0] and abs(float(perplexity) - 2.0) < 1e-5


def _tiny(**overrides):
    model = VQVAEVideoPredictionModel(hparams=dict(TINY, **overrides))
    model.build_from_batch({"images": tf.zeros([1, 4, 16, 16, 1])})
    model.make_optimizers()
    model.build_optimizers()
    return model


def test_gradient_accumulation_equals_one_big_batch():
    """grad_updates_per_step=n: n micro-batches with loss/n = one update on the whole batch (clips, mean losses)."""
    clips = tf.random.stateless_uniform([4, 4, 16, 16, 1], seed=[1, 2])
    one = _tiny(train_on="clips", grad_updates_per_step=1)
    two = _tiny(train_on="clips", grad_updates_per_step=2)
    two.set_weights(one.get_weights())
    # Plain SGD (lr 1) so that the weight change is the accumulated gradient itself: Adam's first step
    # (about lr * sign(g)) would amplify rounding differences of near-zero gradients.
    for model in (one, two):
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
    before = [w.copy() for w in one.get_weights()]
    logs_one = tf.function(one.train_step)({"images": clips})
    logs_two = tf.function(two.train_step)({"images": clips})
    moved = max(np.abs(a - b).max() for a, b in zip(one.get_weights(), before))
    assert moved > 1e-3
    for a, b, c in zip(one.get_weights(), two.get_weights(), before):
        np.testing.assert_allclose(a - c, b - c, atol=1e-5)
    assert abs(float(logs_one["loss"]) - float(logs_two["loss"])) < 1e-5
    assert 0 < float(logs_two["codebook_usage"]) <= 1 and float(logs_two["codebook_perplexity"]) >= 1
    # pixel_loss: L1 (the original) or the squared error (option)
    x, rec = tf.constant([[1.0, -2.0]]), tf.constant([[0.0, 0.0]])
    assert float(one.vq_losses(x, rec, tf.constant(0.0))["pixel_loss"]) == 1.5
    l2 = VQVAEVideoPredictionModel(hparams=dict(TINY, pixel_loss="l2"))
    assert float(l2.vq_losses(x, rec, tf.constant(0.0))["pixel_loss"]) == 2.5


def test_train_on_frames_and_contract():
    # train_on='frames' draws one random frame per clip each step: seeded, so that the loss comparison below
    # is of the same draws in every run (unseeded, a run whose later draws were harder frames failed it).
    tf.random.set_seed(0)
    model = _tiny(grad_updates_per_step=2)
    assert model.optimizer.beta_1 == 0.5 and model.optimizer.beta_2 == 0.9 and model.optimizer.epsilon == 1e-8
    batch = {"images": tf.random.stateless_uniform([4, 4, 16, 16, 1], seed=[3, 4])}
    step = tf.function(model.train_step)
    first = float(step(batch)["loss"])
    for _ in range(5):
        logs = step(batch)
    assert float(logs["loss"]) < first
    outputs = model(batch)
    assert outputs["gen_images"].shape == (4, 3, 16, 16, 1) and outputs["codes"].shape == (4, 4, 8, 8)
    assert float(tf.reduce_min(outputs["gen_images"])) >= 0 and float(tf.reduce_max(outputs["gen_images"])) <= 1
    samples = model.generate(batch, num_samples=2, horizon=2)
    np.testing.assert_allclose(samples[:, 0].numpy(), outputs["reconstructions"][:, 2:].numpy(), atol=1e-5)
    assert get_model_class("vqvae") is VQVAEVideoPredictionModel


def test_codebook_init_from_data():
    """codebook_init='data' (ours, not the original's): codes = encoder outputs of the first batch, at step 0 only."""
    model = VQVAEVideoPredictionModel(hparams=dict(TINY, codebook_init="data"))
    clips = tf.random.stateless_uniform([2, 4, 16, 16, 1], seed=[7, 8])
    model.build_from_batch({"images": clips})
    codebook = model.quantize.embedding.numpy()
    x = model.normalize(clips)
    latents = model.quant_conv(model.encoder(tf.reshape(x, [-1, 16, 16, 1]))).numpy().reshape(-1, 4)
    distances = ((codebook[:, None, :] - latents[None]) ** 2).sum(-1).min(axis=1)
    assert distances.max() < 1e-8 and np.abs(codebook).max() > 2.0 / 16  # beyond uniform(+-1/16)
    model.global_step.assign(5)
    model.build_from_batch({"images": clips + 0.1})
    np.testing.assert_array_equal(model.quantize.embedding.numpy(), codebook)


def test_codebook_init_kmeans_plus_plus():
    """codebook_init='kmeans++' (ours): a latent that fills most of the batch gets one code, not most of them
    (uniform draws would give it ~96% of the codes); the codes are rows of the first batch's latents."""
    from video_prediction.models.vqvae import kmeans_plus_plus_picks

    tf.random.set_seed(3)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]], np.float32)
    noise = np.random.default_rng(0).normal(0.0, 1e-3, [1030, 2]).astype(np.float32)
    points = np.concatenate([np.repeat(centres[:1], 1000, 0), np.repeat(centres[1:], 10, 0)]) + noise
    picks = kmeans_plus_plus_picks(points, 4).numpy()
    assert sorted(np.abs(points[picks][:, None] - centres[None]).sum(-1).argmin(1).tolist()) == [0, 1, 2, 3]
    assert len(set(kmeans_plus_plus_picks(points[:3], 5).numpy().tolist())) == 3  # more codes than rows
    model = VQVAEVideoPredictionModel(hparams=dict(TINY, codebook_init="kmeans++"))
    clips = tf.random.stateless_uniform([2, 4, 16, 16, 1], seed=[7, 8])
    model.build_from_batch({"images": clips})
    codebook = model.quantize.embedding.numpy()
    latents = model.quant_conv(model.encoder(tf.reshape(model.normalize(clips), [-1, 16, 16, 1]))).numpy()
    distances = ((codebook[:, None, :] - latents.reshape(-1, 4)[None]) ** 2).sum(-1).min(axis=1)
    assert distances.max() < 1e-8 and len(np.unique(codebook, axis=0)) == len(codebook)


def test_mixed_float16_keeps_quantizer_and_losses_float32():
    model = _tiny(mixed_float16=True)
    assert model.encoder.conv_in.compute_dtype == "float16" and model.quantize.compute_dtype == "float32"
    batch = {"images": tf.random.stateless_uniform([4, 4, 16, 16, 1], seed=[5, 6])}
    logs = tf.function(model.train_step)(batch)
    assert all(np.isfinite(float(v)) for v in logs.values())
    outputs = model(batch)
    assert outputs["quant_loss"].dtype == tf.float32 and outputs["normalized_reconstructions"].dtype == tf.float32


def test_bad_input_and_hparams():
    model = _tiny()
    with pytest.raises(ValueError, match="frames must be 16x16"):
        model({"images": tf.zeros([1, 4, 32, 32, 1])})
    with pytest.raises(ValueError, match="pixel_loss must be"):
        VQVAEVideoPredictionModel(hparams=dict(TINY, pixel_loss="huber"))
    with pytest.raises(ValueError, match="codebook_init must be"):
        VQVAEVideoPredictionModel(hparams=dict(TINY, codebook_init="kmeans"))
    with pytest.raises(ValueError, match="decoder must be"):
        VQVAEVideoPredictionModel(hparams=dict(TINY, decoder="4d"))
    with pytest.raises(ValueError, match="train_on='clips'"):
        VQVAEVideoPredictionModel(hparams=dict(TINY, decoder="3d"))
    with pytest.raises(ValueError, match="multiple of grad_updates_per_step"):
        VQVAEVideoPredictionModel(hparams=dict(TINY, batch_size=5, grad_updates_per_step=2))
    with pytest.raises(ValueError, match="divisible by num_groups"):
        VQVAEVideoPredictionModel(hparams=dict(TINY, ch=6)).build_from_batch({"images": tf.zeros([1, 2, 16, 16, 1])})


def test_convert_script_reports_bad_yaml_in_one_line(tmp_path):
    import subprocess
    import sys

    config = tmp_path / "bad.yaml"
    config.write_text("model: [unclosed\n")
    ckpt = tmp_path / "x.ckpt"
    save_pth({"model_state_dict": {}}, ckpt)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, os.path.join(root, "pretrained_models", "convert_vqvae_checkpoint.py"),
                             "--checkpoint", str(ckpt), "--config", str(config), "--output_dir", str(tmp_path / "o")],
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=root))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "not valid YAML" in result.stderr


class _FakeDataset:
    """Enough of a dataset for the inference extras: 3 clips of 9 frames (16x16 grey)."""

    sequence_length = 9

    def __init__(self):
        self.images = tf.random.stateless_uniform([3, 9, 16, 16, 1], seed=[9, 9])

    def num_examples_per_epoch(self):
        return 3

    def make_dataset(self, batch_size, drop_remainder=False):
        return tf.data.Dataset.from_tensor_slices({"images": self.images}).batch(batch_size)


def test_inference_extras_gifs_histogram_and_reconstruction_metrics(tmp_path, lpips_weights):
    from video_prediction.inference.extras import InferenceSettings, extras_for
    from video_prediction.metrics import get_metric

    model = _tiny()
    extras = extras_for(model)
    settings = InferenceSettings(num_videos=3, batch_size=2)
    message = extras.write_dataset_outputs(_FakeDataset(), str(tmp_path), settings)
    out = tmp_path / "reconstruction"
    assert "3 input|reconstruction GIFs" in message
    assert sorted(p.name for p in out.glob("*.gif")) == [f"input_reconstruction_0000{i}.gif" for i in range(3)]
    usage = json.loads((out / "codebook_usage.json").read_text())
    assert usage["total"] == 3 * 9 * 8 * 8 and (out / "codebook_usage.png").stat().st_size > 1000
    extras.evaluate(_FakeDataset(), str(tmp_path / "eval"), settings, with_fvd=False)
    results = json.loads((tmp_path / "eval" / "reconstruction" / "reconstruction_metrics.json").read_text())
    images = _FakeDataset().images
    expected = get_metric("psnr")(images, model(({"images": images}))["reconstructions"]).numpy().mean()
    assert results["num_videos"] == 3 and abs(results["psnr"] - expected) < 1e-4
    assert {"ssim", "lpips", "codes_used", "codebook_perplexity"} <= set(results)
