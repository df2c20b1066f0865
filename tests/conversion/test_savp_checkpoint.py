"""SAVP pretrained models: TF1 checkpoint conversion and download_model.sh.

The fixtures are TF1-format checkpoints written with ``tf.compat.v1`` in graph
mode (``tf.compat.v1.train.Saver``) under the original's variable names and
shapes for tiny configurations (32x32, ngf 4), with distinct random values.
The names are listed here independently of the converter, from the original's
variable scopes (TF1 names an RNN cell's scope after its snake-cased class name:
``BasicConv2DLSTMCell`` -> ``basic_conv2dlstm_cell``).
"""

import json
import os
import re
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from local_http_server import FileServer
from video_prediction.conversion import published
from video_prediction.inference import generation
from video_prediction.training.building import first_batch, load_model, load_model_and_dataset
from video_prediction.training.run_directory import latest_checkpoint, read_run_config
from video_prediction.conversion.bookkeeping import ConversionError
from video_prediction.datasets.video_dataset import per_timestep_example
from video_prediction.conversion.savp import FORGET_BIAS, convert_checkpoint, translate_hparams

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
NGF, NEF, NDF, CHANNELS, SIZE = 4, 4, 2, 3, 32
CELL = "generator/rnn/savp_cell"
# A tiny run of the original: hparams as its train.py writes them (only the non-default ones matter here).
BASE_HPARAMS = dict(ngf=NGF, nef=NEF, ndf=NDF, clip_length=4, context_frames=2, sequence_length=6, batch_size=16,
                    l1_weight=1.0, l2_weight=0.0, kl_weight=0.0, video_sn_gan_weight=0.0,
                    video_sn_vae_gan_weight=0.0, lr=0.001, max_steps=300000)
VARIANTS = {
    "ours_savp": dict(nz=3, kl_weight=0.1, l1_weight=100.0, video_sn_gan_weight=0.1, video_sn_vae_gan_weight=0.1,
                      vae_gan_feature_cdist_weight=10.0, beta1=0.5, lr=0.0002),
    "ours_vae": dict(nz=3, kl_weight=0.001),
    "ours_gan": dict(nz=3, l1_weight=100.0, video_sn_gan_weight=0.1, gan_feature_cdist_weight=10.0),
    "ours_deterministic": dict(nz=0),
}
DATASET_HPARAMS = dict(context_frames=2, sequence_length=6, scale_size=SIZE, time_shift=2, use_state=False)


# -- the original's variables, written down from its scopes ---------------------------------------


def original_shapes(nz, encoder=True, gan=False, vae_gan=False, cell=CELL, old_discriminators=False,
                    action_dim=0, state_dim=0, layer_norm=False, encoder_rnn=False, learned_prior=False,
                    image_discriminators=()):
    """{name: shape} of a tiny SAVP (32x32 frames, 3 channels) as the original names its variables."""
    shapes = {"global_step": ()}
    cond = action_dim + state_dim + nz  # tiled into every conv and conv-LSTM input
    norm_scope = "LayerNorm" if layer_norm else "InstanceNorm"  # contrib layer_norm / fused_instance_norm

    def conv(scope, op, k, cin, cout, norm=True, prefix=cell):
        shapes[f"{prefix}/{scope}/{op}/kernel"] = (k, k, cin, cout)
        shapes[f"{prefix}/{scope}/{op}/bias"] = (cout,)
        if norm:
            shapes[f"{prefix}/{scope}/{norm_scope}/gamma"] = (cout,)
            shapes[f"{prefix}/{scope}/{norm_scope}/beta"] = (cout,)

    def conv_lstm(scope, cin, filters):
        p = f"{cell}/{scope}/basic_conv2dlstm_cell"
        shapes[f"{p}/kernel"] = (5, 5, cin + filters, 4 * filters)  # no bias: normalised gates
        # layer norm: one norm per gate (separate_norms); instance norm: one over the 4F gates
        gates = [("input", filters), ("transform", filters), ("forget", filters), ("output", filters)] \
            if layer_norm else [("input_transform_forget_output", 4 * filters)]
        for norm, units in gates + [("state", filters)]:
            shapes[f"{p}/{norm}/gamma"] = shapes[f"{p}/{norm}/beta"] = (units,)

    if nz:
        shapes[f"{cell}/lstm_z/basic_lstm_cell/kernel"] = (2 * nz, 4 * nz)
        shapes[f"{cell}/lstm_z/basic_lstm_cell/bias"] = (4 * nz,)
    # 32x32: encoder (ngf, lstm), (2ngf, lstm); decoder (ngf, lstm), (ngf, -)
    conv("h0", "conv_pool2d", 5, 2 * CHANNELS + cond, NGF)
    conv_lstm("lstm_h0", NGF + cond, NGF)
    conv("h1", "conv_pool2d", 3, NGF + cond, 2 * NGF)
    conv_lstm("lstm_h1", 2 * NGF + cond, 2 * NGF)
    conv("h2", "upsample_conv2d", 3, 2 * NGF + cond, NGF)
    conv_lstm("lstm_h2", NGF + cond, NGF)
    conv("h3", "upsample_conv2d", 3, 2 * NGF + cond, NGF)
    shapes[f"{cell}/cdna_kernels/dense/kernel"] = (8 * 8 * 2 * NGF, 5 * 5 * 4)
    shapes[f"{cell}/cdna_kernels/dense/bias"] = (100,)
    conv("h4_scratch", "conv2d", 3, NGF, NGF)
    conv("scratch_image", "conv2d", 3, NGF, CHANNELS, norm=False)
    conv("h4_masks", "conv2d", 3, NGF, NGF)
    conv("masks", "conv2d", 3, NGF + 7 * CHANNELS, 7, norm=False)
    if state_dim:
        shapes[f"{cell}/state_pred/dense/kernel"] = (action_dim + state_dim, state_dim)
        shapes[f"{cell}/state_pred/dense/bias"] = (state_dim,)
    # posterior_fn (generator/encoder: [layer_4 dense + LSTM with use_e_rnn]) and prior_fn (learn_prior)
    for wanted, enc, with_rnn in ((nz and encoder, "generator/encoder", encoder_rnn),
                                  (nz and learned_prior, "generator/prior", True)):
        if not wanted:
            continue
        conv("layer_1", "conv2d", 4, 2 * CHANNELS + action_dim, NEF, norm=False, prefix=enc)
        conv("layer_2", "conv2d", 4, NEF, 2 * NEF, prefix=enc)
        conv("layer_3", "conv2d", 4, 2 * NEF, 4 * NEF, prefix=enc)
        if with_rnn:
            shapes[f"{enc}/layer_4/dense/kernel"] = (4 * NEF, 4 * NEF)
            shapes[f"{enc}/layer_4/dense/bias"] = (4 * NEF,)
            shapes[f"{enc}/lstm/rnn/basic_lstm_cell/kernel"] = (8 * NEF, 16 * NEF)  # contrib BasicLSTMCell
            shapes[f"{enc}/lstm/rnn/basic_lstm_cell/bias"] = (16 * NEF,)
        for head in ("z_mu", "z_log_sigma_sq"):
            shapes[f"{enc}/{head}/dense/kernel"] = (4 * NEF, nz)
            shapes[f"{enc}/{head}/dense/bias"] = (nz,)
    discriminators = [(scope, "video", old) for wanted, scope, old in (
        (gan, "discriminator/video", "discriminator/video_"),
        (vae_gan, "discriminator/encoder/video", "discriminator_encoder/video_")) if wanted]
    discriminators += [(scope, "image", None) for scope in image_discriminators]
    for scope, kind, old in discriminators:
        channels = [CHANNELS, NDF, 2 * NDF, 2 * NDF, 4 * NDF, 4 * NDF, 8 * NDF, 8 * NDF]
        kernels = [3, 4, 3, 4, 3, 4, 3]
        names = ["sn_conv0_0", "sn_conv0_1", "sn_conv1_0", "sn_conv1_1", "sn_conv2_0", "sn_conv2_1", "sn_conv3_0"]
        old = old if old_discriminators else None
        for i, name in enumerate(names):
            k, cin, cout = kernels[i], channels[i], channels[i + 1]
            if kind == "image":  # ops.conv2d keeps its bias inside the conv2d scope
                base = f"{scope}/{name}/conv2d"
                shapes[f"{base}/kernel"] = (k, k, cin, cout)
                shapes[f"{base}/bias"] = (cout,)
            else:  # HEAD's ops.conv3d creates its bias outside the conv3d scope, the April 2018 one inside
                base = f"{old}{name}/conv3d" if old else f"{scope}/{name}/conv3d"
                shapes[f"{base}/kernel"] = (k, k, k, cin, cout)
                shapes[f"{base}/bias" if old else f"{scope}/{name}/bias"] = (cout,)
            shapes[f"{base}/u"] = (1, cout)
        # a 4-frame 32x32 clip ends as 1 x 4 x 4 x 8ndf, a 32x32 frame as 4 x 4 x 8ndf
        fc = f"{old}sn_fc4/dense" if old else f"{scope}/sn_fc4/dense"
        shapes[f"{fc}/kernel"] = (4 * 4 * 8 * NDF, 1)
        shapes[f"{fc}/u"] = (1, 1)
        shapes[f"{fc}/bias"] = (1,)
    return shapes


def random_values(shapes, seed):
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in shapes.items():
        values[name] = np.int64(1234) if name == "global_step" else rng.normal(0, 0.3, shape).astype(np.float32)
    return values


def with_adam_slots(values, seed):
    """Adam slots for every trainable variable and both optimizers' beta powers, as the original saves them."""
    rng = np.random.default_rng(seed)
    slots = {}
    for name, value in values.items():
        if name != "global_step" and not name.endswith("/u"):
            slots[f"{name}/Adam"] = rng.normal(size=value.shape).astype(np.float32)
            slots[f"{name}/Adam_1"] = rng.random(value.shape).astype(np.float32)
    for power in ("beta1_power", "beta2_power", "beta1_power_1", "beta2_power_1"):
        slots[power] = np.float32(0.5)
    return dict(values, **slots)


def write_original_run(directory, values, model_hparams, dataset="bair", dataset_hparams=DATASET_HPARAMS):
    """A TF1 checkpoint (``tf.compat.v1.train.Saver`` in graph mode) plus the JSON files of the original's train.py."""
    os.makedirs(directory, exist_ok=True)
    with tf.Graph().as_default():
        var_list = {name: tf.compat.v1.Variable(value, name=f"v{i}") for i, (name, value) in
                    enumerate(sorted(values.items()))}
        saver = tf.compat.v1.train.Saver(var_list=var_list)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, os.path.join(directory, "model"), global_step=1234)
    for name, content in (("options.json", dict(dataset=dataset, model="savp")),
                          ("dataset_hparams.json", dataset_hparams), ("model_hparams.json", model_hparams)):
        with open(os.path.join(directory, name), "w") as f:
            json.dump(content, f)


def variant_run(directory, variant, seed=0, cell=CELL, extra=None, use_state=False, dataset="bair", **overrides):
    """An original run of ``variant``; ``use_state``: action-conditioned BAIR (4-d actions, 3-d states)."""
    hparams = dict(BASE_HPARAMS, **VARIANTS[variant], **overrides)
    shapes = original_shapes(hparams["nz"], encoder=hparams.get("e_net") != "none",
                             gan=bool(hparams["video_sn_gan_weight"]), vae_gan=bool(hparams["video_sn_vae_gan_weight"]),
                             cell=cell, old_discriminators="d_net" in hparams,
                             action_dim=4 if use_state else 0, state_dim=3 if use_state else 0)
    values = random_values(shapes, seed)
    write_original_run(directory, dict(with_adam_slots(values, seed + 1), **(extra or {})), hparams,
                       dataset=dataset, dataset_hparams=dict(DATASET_HPARAMS, use_state=use_state))
    return values


# Where each original variable belongs in our model, written as rewrites of its name into the Keras
# weight path (independently of the converter, which walks the model's layers instead).
KERAS_PATH_REWRITES = [
    (r"^generator/rnn/(savp|dna)_cell/", "savp_cell/"),
    (r"^generator/(encoder|prior)/(layer_[123])/", r"\1/conv_encoder/\2/"),
    (r"^generator/(encoder|prior)/(z_mu|z_log_sigma_sq)/", r"\1/heads/\2/"),
    (r"^generator/", ""),
    (r"^discriminator_encoder/video_(sn_)", r"encoder_video_sn_discriminator/\1"),  # 2018 layout
    (r"^discriminator/video_(sn_)", r"video_sn_discriminator/\1"),
    (r"^discriminator/encoder/(video|image|images)/", r"encoder_\1_sn_discriminator/"),
    (r"^discriminator/(video|image|images)/", r"\1_sn_discriminator/"),
    (r"/(InstanceNorm|LayerNorm)/", "_norm/"),
    (r"/(conv2d|conv3d|dense|rnn|basic_conv2dlstm_cell|basic_lstm_cell)/", "/"),
    (r"/(conv2d|conv3d|dense|rnn|basic_conv2dlstm_cell|basic_lstm_cell)/", "/"),  # lstm/rnn/basic_lstm_cell
]


def keras_path(name):
    for pattern, replacement in KERAS_PATH_REWRITES:
        name = re.sub(pattern, replacement, name)
    return name


def assert_every_value_landed_once(values, model):
    """Each original value sits in exactly one model weight, the one its name says; every weight got one."""
    by_content = {}
    for weight in model.weights:
        path = weight.path.removeprefix(f"{model.name}/")
        by_content.setdefault(np.asarray(weight.numpy()).tobytes(), []).append(path)
    placed = set()
    for name, value in values.items():
        holders = by_content.get(np.asarray(value).tobytes(), [])
        assert holders == [keras_path(name)], f"{name} found in {holders}"
        placed.add(holders[0])
    assert placed == {w.path.removeprefix(f"{model.name}/") for w in model.weights}


# -- conversion -----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["ours_savp", "ours_vae", "ours_gan", "ours_deterministic"])
def test_every_variable_lands_in_its_weight(tmp_path, variant):
    use_state = variant == "ours_vae"  # one action-conditioned case: actions in the encoder, state_pred
    values = variant_run(tmp_path / "original", variant, use_state=use_state)
    model = convert_checkpoint(tmp_path / "original", tmp_path / "run")
    assert_every_value_landed_once(values, model)
    assert int(model.global_step.numpy()) == 1234
    cell = model.cell
    np.testing.assert_array_equal(cell.h0.conv.kernel.numpy(), values[f"{CELL}/h0/conv_pool2d/kernel"])
    np.testing.assert_array_equal(cell.h2.conv.kernel.numpy(), values[f"{CELL}/h2/upsample_conv2d/kernel"])
    lstm = f"{CELL}/lstm_h1/basic_conv2dlstm_cell"
    np.testing.assert_array_equal(cell.lstm_h1.kernel.numpy(), values[f"{lstm}/kernel"])
    np.testing.assert_array_equal(cell.lstm_h1.norm_input_transform_forget_output.gamma.numpy(),
                                  values[f"{lstm}/input_transform_forget_output/gamma"])
    np.testing.assert_array_equal(cell.lstm_h1.state_norm.beta.numpy(), values[f"{lstm}/state/beta"])
    np.testing.assert_array_equal(cell.cdna_kernels.kernel.numpy(), values[f"{CELL}/cdna_kernels/dense/kernel"])
    np.testing.assert_array_equal(cell.masks.kernel.numpy(), values[f"{CELL}/masks/conv2d/kernel"])
    if variant == "ours_savp":
        # the prior-path (GAN) and posterior-path (VAE-GAN) discriminators keep their own weights and u
        np.testing.assert_array_equal(model.video_sn_discriminator.sn_conv0_0.u.numpy(),
                                      values["discriminator/video/sn_conv0_0/conv3d/u"])
        np.testing.assert_array_equal(model.encoder_video_sn_discriminator.sn_fc4.kernel.numpy(),
                                      values["discriminator/encoder/video/sn_fc4/dense/kernel"])
        np.testing.assert_array_equal(model.encoder.conv_encoder.layer_2_norm.gamma.numpy(),
                                      values["generator/encoder/layer_2/InstanceNorm/gamma"])
    if use_state:
        np.testing.assert_array_equal(cell.state_pred.kernel.numpy(), values[f"{CELL}/state_pred/dense/kernel"])
    options, dataset_hparams, model_hparams = read_run_config(str(tmp_path / "run"))
    assert options["model"] == "savp" and options["image_shape"] == [SIZE, SIZE, CHANNELS]
    assert model_hparams["nz"] == VARIANTS[variant]["nz"]
    assert dataset_hparams["use_state"] == use_state


def test_layer_norm_learned_prior_encoder_rnn_and_image_discriminators(tmp_path):
    """norm_layer='layer' (LayerNorm scopes, one conv-LSTM norm per gate), learn_prior, use_e_rnn, and the
    2-D spectral-norm discriminators (image_sn on the prior path, images_sn on the posterior path)."""
    nz = 3
    hparams = dict(BASE_HPARAMS, nz=nz, kl_weight=0.001, norm_layer="layer", conv_rnn_norm_layer="layer",
                   learn_prior=True, use_e_rnn=True, image_sn_gan_weight=0.1, images_sn_vae_gan_weight=0.1)
    values = random_values(original_shapes(nz, layer_norm=True, encoder_rnn=True, learned_prior=True,
                                           image_discriminators=("discriminator/image",
                                                                 "discriminator/encoder/images")), 6)
    write_original_run(tmp_path / "original", values, hparams)
    model = convert_checkpoint(tmp_path / "original", tmp_path / "run")
    assert_every_value_landed_once(values, model)
    np.testing.assert_array_equal(model.cell.lstm_h0.norm_forget.gamma.numpy(),
                                  values[f"{CELL}/lstm_h0/basic_conv2dlstm_cell/forget/gamma"])
    np.testing.assert_array_equal(model.cell.h1_norm.beta.numpy(), values[f"{CELL}/h1/LayerNorm/beta"])
    np.testing.assert_array_equal(model.prior.rnn.kernel.numpy(),
                                  values["generator/prior/lstm/rnn/basic_lstm_cell/kernel"])
    np.testing.assert_array_equal(model.encoder.e_dense.kernel.numpy(),
                                  values["generator/encoder/layer_4/dense/kernel"])


def test_old_checkpoint_names_and_deprecated_hparams(tmp_path, caplog):
    """2018 KTH ours_gan: dna_cell, discriminator/video_sn_*, e_net='none', legacy discriminator keys, the
    metrics' VGG16 in the checkpoint, and RGB frames (the 2018 KTH preprocessing kept 3 channels)."""
    old_keys = dict(e_net="none", d_net="legacy", gan_weight=0.0, vae_gan_weight=0.0, num_gpus=1)
    metric_network = {"vgg/block1_conv1/kernel": np.ones((3, 3, 3, 2), np.float32)}  # built for vgg_* metrics
    values = variant_run(tmp_path / "original", "ours_gan", cell="generator/rnn/dna_cell", extra=metric_network,
                         dataset="kth", **old_keys)
    with caplog.at_level("WARNING"):
        model = convert_checkpoint(tmp_path / "original", tmp_path / "run")
    assert_every_value_landed_once(values, model)
    assert model.encoder is None and not model.hparams.use_encoder
    np.testing.assert_array_equal(model.video_sn_discriminator.sn_conv2_1.bias.numpy(),
                                  values["discriminator/video_sn_conv2_1/conv3d/bias"])
    for key in ("e_net", "d_net", "gan_weight", "num_gpus", "vgg/", "3-channel"):
        assert key in caplog.text
    options, dataset_hparams = read_run_config(str(tmp_path / "run"))[:2]
    assert options["dataset"] == "kth" and options["image_shape"] == [SIZE, SIZE, CHANNELS]
    assert dataset_hparams["num_channels"] == 3  # grey kth records are read as 3 channels for this model
    with pytest.raises(ConversionError, match="video_gan_weight"):
        translate_hparams(dict(video_gan_weight=1.0))
    with pytest.raises(ConversionError, match="e_net='legacy'"):
        translate_hparams(dict(e_net="legacy"))


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def test_gate_order_and_forget_bias_match_tf1(tmp_path):
    """The converted latent LSTM and conv-LSTM compute TF1's equations on the checkpoint's arrays:
    gates [i, j, f, o] along the kernel's last axis, forget bias 1.0 added at run time (not stored)."""
    values = variant_run(tmp_path / "original", "ours_vae", seed=3)
    model = convert_checkpoint(tmp_path / "original", tmp_path / "run")
    rng = np.random.default_rng(4)

    # TF1 LSTMCell (lstm_z): [i, j, f, o] = [x, h] @ kernel + bias
    nz = VARIANTS["ours_vae"]["nz"]
    z, c, h = (rng.normal(size=(2, nz)).astype(np.float32) for _ in range(3))
    lstm = f"{CELL}/lstm_z/basic_lstm_cell"
    i, j, f, o = np.split(np.concatenate([z, h], -1) @ values[f"{lstm}/kernel"] + values[f"{lstm}/bias"], 4, -1)
    new_c = c * _sigmoid(f + FORGET_BIAS) + _sigmoid(i) * np.tanh(j)
    ours, (ours_c, _) = model.cell.rnn_z(tf.constant(z), (tf.constant(c), tf.constant(h)))
    np.testing.assert_allclose(ours_c.numpy(), new_c, atol=1e-5)
    np.testing.assert_allclose(ours.numpy(), np.tanh(new_c) * _sigmoid(o), atol=1e-5)

    # TF1 BasicConv2DLSTMCell (lstm_h0): one conv over [x, h], instance norm over the 4F gates and over c'
    lstm = f"{CELL}/lstm_h0/basic_conv2dlstm_cell"
    x = rng.normal(size=(2, 16, 16, NGF + nz)).astype(np.float32)
    c, h = (rng.normal(size=(2, 16, 16, NGF)).astype(np.float32) for _ in range(2))

    def instance_norm(v, name):
        mean, var = v.mean(axis=(1, 2), keepdims=True), v.var(axis=(1, 2), keepdims=True)
        return (v - mean) / np.sqrt(var + 1e-6) * values[f"{lstm}/{name}/gamma"] + values[f"{lstm}/{name}/beta"]

    gates = tf.nn.conv2d(np.concatenate([x, h], -1), values[f"{lstm}/kernel"], 1, "SAME").numpy()
    i, j, f, o = np.split(instance_norm(gates, "input_transform_forget_output"), 4, axis=-1)
    new_c = instance_norm(c * _sigmoid(f + FORGET_BIAS) + _sigmoid(i) * np.tanh(j), "state")
    ours, _ = model.cell.lstm_h0(tf.constant(x), (tf.constant(c), tf.constant(h)))
    np.testing.assert_allclose(ours.numpy(), np.tanh(new_c) * _sigmoid(o), atol=1e-4)


def test_converted_run_generates(tmp_path):
    variant_run(tmp_path / "original", "ours_vae")
    script = os.path.join(ROOT, "pretrained_models", "convert_savp_checkpoint.py")
    result = subprocess.run([sys.executable, script, "--checkpoint", str(tmp_path / "original" / "model-1234"),
                             "--output_dir", str(tmp_path / "run"), "--image_shape", f"{SIZE},{SIZE},{CHANNELS}"],
                            capture_output=True, text=True, timeout=120)  # a prefix works as well as a directory
    assert result.returncode == 0, result.stderr
    assert "step 1234" in result.stdout
    model, options, _ = load_model(str(tmp_path / "run"))
    video = np.random.default_rng(0).random((3, SIZE, SIZE, CHANNELS)).astype(np.float32)
    generation.generate_from_video(model, video, str(tmp_path / "results"), num_stochastic_samples=2, horizon=3)
    written = sorted(os.listdir(tmp_path / "results"))
    assert any(name.endswith(".gif") for name in written), written


def test_unmapped_missing_and_misshaped_variables_are_named(tmp_path):
    values = random_values(original_shapes(0), 5)
    hparams = dict(BASE_HPARAMS, **VARIANTS["ours_deterministic"])
    extra = f"{CELL}/h9/conv2d/kernel"
    write_original_run(tmp_path / "extra", dict(values, **{extra: np.zeros(3, np.float32)}), hparams)
    with pytest.raises(ConversionError, match=extra):
        convert_checkpoint(tmp_path / "extra", tmp_path / "a")
    missing = f"{CELL}/h4_masks/InstanceNorm/gamma"
    write_original_run(tmp_path / "missing", {k: v for k, v in values.items() if k != missing}, hparams)
    with pytest.raises(ConversionError, match=missing):
        convert_checkpoint(tmp_path / "missing", tmp_path / "b")
    misshaped = f"{CELL}/masks/conv2d/kernel"
    write_original_run(tmp_path / "bad", dict(values, **{misshaped: np.zeros((3, 3, 2, 7), np.float32)}), hparams)
    with pytest.raises(ConversionError, match=misshaped):
        convert_checkpoint(tmp_path / "bad", tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="no TF1 checkpoint"):
        convert_checkpoint(tmp_path / "nowhere", tmp_path / "d")


# -- download_model.sh ----------------------------------------------------------------------------


def _download(*args):
    return subprocess.run(["bash", os.path.join(ROOT, "pretrained_models", "download_model.sh"), *args],
                          capture_output=True, text=True, timeout=120)


def _bair_test_records(directory, steps=6):
    """Two BAIR-layout videos (raw 64x64 frames per timestep, states, actions) in ``<directory>/test``."""
    rng = np.random.default_rng(0)
    os.makedirs(directory / "test")
    with tf.io.TFRecordWriter(str(directory / "test" / "traj_0_to_1.tfrecords")) as writer:
        for _ in range(2):
            frames = rng.integers(0, 256, (steps, 64, 64, 3), dtype=np.uint8)
            writer.write(per_timestep_example({
                "%d/image_aux1/encoded": [frame.tobytes() for frame in frames],
                "%d/endeffector_pos": rng.normal(size=(steps, 3)).astype(np.float32),
                "%d/action": rng.normal(size=(steps - 1, 4)).astype(np.float32),
            }).SerializeToString())


def test_download_model_sh_downloads_extracts_and_converts(tmp_path, capsys):
    variant_run(tmp_path / "original", "ours_deterministic")
    archive = tmp_path / "archive.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in sorted(os.listdir(tmp_path / "original")):
            tar.add(tmp_path / "original" / name, arcname=name)
    path = "/bair_action_free_ours_deterministic_l1.tar.gz"  # ours_deterministic is the original's alias of _l1
    out = tmp_path / "pretrained"
    model_dir = out / "bair_action_free" / "ours_deterministic"
    with FileServer({path: archive.read_bytes()}, cut_once={path}) as server:  # the first transfer drops
        result = _download("bair_action_free", "ours_deterministic", "--output_dir", str(out),
                           "--base_url", server.url)
        assert result.returncode == 0, result.stderr
        assert [rng for _, rng in server.requests][-1] is not None  # resumed with a Range request
        assert (model_dir / "tf1" / "model-1234.index").exists()
        assert not (model_dir / "bair_action_free_ours_deterministic_l1.tar.gz").exists()
        assert latest_checkpoint(str(model_dir)).endswith("ckpt-1234")
        # without conversion: the command to run is printed instead
        other = published.download_model("bair_action_free", "ours_deterministic_l1", str(tmp_path / "other"),
                                         base_url=server.url, convert=False, progress=False)
        assert latest_checkpoint(other) is None
        assert "convert_savp_checkpoint.py --checkpoint" in capsys.readouterr().out
        requests = len(server.requests)
        # a second run finds both steps done and fetches nothing
        published.download_model("bair_action_free", "ours_deterministic", str(out), base_url=server.url,
                                 progress=False)
        assert "already holds the converted checkpoint" in capsys.readouterr().out
        assert len(server.requests) == requests
        missing = _download("kth", "ours_savp", "--output_dir", str(out), "--base_url", server.url)
        assert missing.returncode == 1 and "kth_ours_savp.tar.gz: HTTP 404" in missing.stderr
    # evaluate.py / generate.py --checkpoint: the run loads with BAIR records (frames scaled to 32x32)
    _bair_test_records(tmp_path / "bair")
    model, dataset, options = load_model_and_dataset(str(model_dir), input_dir=str(tmp_path / "bair"))
    assert options["dataset"] == "bair" and dataset.hparams.scale_size == SIZE
    batch = first_batch(dataset, 1)
    assert model.generate(batch, num_samples=1).shape == (1, 1, 4, SIZE, SIZE, CHANNELS)
    bad = _download("bair_action_free", "ours_vea")
    assert bad.returncode != 0 and "ours_vae_l1" in bad.stderr and "ours_vea" in bad.stderr
    bad = _download("bair_free", "ours_savp")
    assert bad.returncode != 0 and "bair_action_free" in bad.stderr
