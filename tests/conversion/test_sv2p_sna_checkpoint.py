"""Conversion of the original's sv2p / sna TF1 checkpoints.

Fixtures are TF1-format checkpoints (``tf.compat.v1.train.Saver`` in graph mode)
under the names and shapes the original's slim layers give (listed here from
sv2p_model.py / sna_model.py's scopes, independently of the converter), for
16x16 RGB frames, with distinct random values and Adam slots.
"""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from test_savp_checkpoint import write_original_run as write_tf1_run
from video_prediction.conversion.bookkeeping import ConversionError
from video_prediction.conversion.conv_lstm_cdna import convert_checkpoint

SIZE, CHANNELS, LENGTH = 16, 3, 4
HPARAMS = dict(context_frames=2, sequence_length=LENGTH, batch_size=32)


def slim(scope, kernel_shape, bias=True, norm=None):
    """slim layer variables: weights (+ biases, or its normalizer's beta/gamma inside the scope)."""
    shapes = {f"generator/{scope}/weights": kernel_shape}
    if norm:
        channels = kernel_shape[-2] if "convt" in scope else kernel_shape[-1]  # transposed: [k, k, out, in]
        shapes.update({f"generator/{scope}/{norm}/beta": (channels,), f"generator/{scope}/{norm}/gamma": (channels,)})
    elif bias:
        out = kernel_shape[-2] if "convt" in scope else kernel_shape[-1]
        shapes[f"generator/{scope}/biases"] = (out,)
    return shapes


def lstm(index, in_channels, filters):
    return {f"generator/state{index}/Gates/weights": (5, 5, in_channels + filters, 4 * filters),
            f"generator/state{index}/Gates/biases": (4 * filters,),
            f"generator/layer_norm{index + 1}/beta": (filters,), f"generator/layer_norm{index + 1}/gamma": (filters,)}


def sv2p_shapes(smear=0, state_dim=3, action_dim=4, masks=10):
    s = 16 // 8
    shapes = {**slim("scale1_conv1", (5, 5, CHANNELS, 32), norm="layer_norm1"), **lstm(1, 32, 32), **lstm(2, 32, 32),
              **slim("conv2", (3, 3, 32, 32)), **lstm(3, 32, 64), **lstm(4, 64, 64), **slim("conv3", (3, 3, 64, 64)),
              **slim("conv4", (1, 1, 64 + smear + 1, 64)), **lstm(5, 64, 128), **slim("convt1", (3, 3, 128, 128)),
              **lstm(6, 128, 64), **slim("convt2", (3, 3, 96, 96)), **lstm(7, 96, 32),
              **slim("convt3", (3, 3, 64, 64), norm="layer_norm9"), **slim("convt4", (1, 1, CHANNELS, 64)),
              **slim("cdna_params", (s * s * 128, 25 * masks)), **slim("convt7", (1, 1, masks + 1, 64)),
              **slim("state_pred", (action_dim + state_dim, state_dim)),
              **slim("latent_conv1", (3, 3, LENGTH * CHANNELS, 32), norm="latent_norm1"),
              **slim("latent_conv2", (3, 3, 32, 64), norm="latent_norm2"),
              **slim("latent_conv3", (3, 3, 64, 64), norm="latent_norm3"),
              **slim("latent_mean", (3, 3, 64, 1), norm="latent_norm_mean"),
              **slim("latent_std", (3, 3, 64, 1), norm="latent_std_norm")}
    return shapes


def sna_shapes(ngf=4, state_dim=3, action_dim=4, masks=10, size=SIZE):
    s, top = size // 8, ngf + 32
    return {**slim("scale1_conv1", (5, 5, CHANNELS, 32), norm="layer_norm1"), **lstm(1, 32, ngf),
            **slim("conv2", (3, 3, ngf, ngf)), **lstm(3, ngf, 2 * ngf), **slim("conv3", (3, 3, 2 * ngf, 2 * ngf)),
            **slim("conv4", (1, 1, 2 * ngf + action_dim + state_dim, 2 * ngf)), **lstm(5, 2 * ngf, 4 * ngf),
            **slim("convt1", (3, 3, 4 * ngf, 4 * ngf)), **lstm(6, 4 * ngf, 2 * ngf),
            **slim("convt2", (3, 3, 3 * ngf, 3 * ngf)), **lstm(7, 3 * ngf, ngf),
            **slim("convt3", (3, 3, top, top), norm="layer_norm9"), **slim("convt4", (1, 1, CHANNELS, top)),
            **slim("cdna_params", (s * s * 4 * ngf, 25 * masks)), **slim("convt7_cam2", (1, 1, masks + 2, top)),
            **slim("state_pred", (action_dim + state_dim, state_dim))}


def seeded_values(shapes, seed):
    """N(0, 0.2) values drawn in the order of the sorted names (as for tests/data/sv2p_sna_reference.npz)."""
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0, 0.2, shapes[name]).astype(np.float32) for name in sorted(shapes)}


def write_original_run(directory, shapes, model, model_hparams, use_state, seed=0, size=SIZE):
    """Random values under ``shapes`` (+ Adam slots) as a TF1 checkpoint with the original's JSON files."""
    values = seeded_values(shapes, seed)
    saved = dict(values, global_step=np.int64(777), beta1_power=np.float32(0.5), beta2_power=np.float32(0.5))
    for name, value in values.items():  # Adam slots, skipped by the converter
        saved[f"{name}/Adam"] = saved[f"{name}/Adam_1"] = np.zeros_like(value)
    dataset_hparams = dict(context_frames=2, sequence_length=model_hparams["sequence_length"], use_state=use_state,
                           scale_size=size)
    write_tf1_run(directory, saved, model_hparams, dataset="softmotion", dataset_hparams=dataset_hparams)
    with open(os.path.join(directory, "options.json"), "w") as f:
        json.dump(dict(dataset="softmotion", model=model), f)
    return values


# Original name -> our Keras weight path, as rewrites (independent of the converter's walk over layers).
KERAS_PATH_REWRITES = [
    (r"^generator/latent_\w+?/(latent_\w+)/", r"latent_tower/\1/"),  # a slim normalizer inside its conv's scope
    (r"^generator/(latent_\w+)/", r"latent_tower/\1/"),
    (r"^generator/\w+/(layer_norm\d)/", r"cell/\1/"),
    (r"^generator/(state\d)/Gates/", r"cell/\1/"),
    (r"^generator/", "cell/"),
    (r"/weights$", "/kernel"),
    (r"/biases$", "/bias"),
]


def keras_path(name):
    for pattern, replacement in KERAS_PATH_REWRITES:
        name = re.sub(pattern, replacement, name)
    return name


def assert_every_value_landed(values, model):
    weights = {w.path.removeprefix(f"{model.name}/"): w for w in model.weights}
    for name, value in values.items():
        np.testing.assert_array_equal(weights[keras_path(name)].numpy(), value, err_msg=name)
    assert set(weights) == {keras_path(name) for name in values} | {"global_step"}
    assert int(model.global_step.numpy()) == 777


@pytest.mark.parametrize("model,use_state,multi_latent", [("sv2p", False, False), ("sv2p", True, True),
                                                          ("sna", True, False)])
def test_every_variable_lands_in_its_weight(tmp_path, model, use_state, multi_latent):
    if model == "sv2p":
        shapes = sv2p_shapes(smear=7 if use_state else 0)
        hparams = dict(HPARAMS, multi_latent=multi_latent, kl_weight=0.008, num_gpus=1)  # a key sv2p drops
    else:
        shapes, hparams = sna_shapes(), dict(HPARAMS, ngf=4)
    values = write_original_run(tmp_path / "original", shapes, model, hparams, use_state)
    converted = convert_checkpoint(tmp_path / "original", tmp_path / "run")
    assert_every_value_landed(values, converted)
    assert converted.hparams.multi_latent == multi_latent if model == "sv2p" else converted.hparams.ngf == 4
    options = json.load(open(tmp_path / "run" / "options.json"))
    assert (options["model"], options["dataset"], options["image_shape"]) == (model, "bair", [SIZE, SIZE, CHANNELS])
    assert tf.train.latest_checkpoint(str(tmp_path / "run")).endswith("ckpt-777")


def test_errors_name_the_problem(tmp_path):
    shapes = sna_shapes()
    write_original_run(tmp_path / "no_state", shapes, "sna", dict(HPARAMS, ngf=4), use_state=False)
    with pytest.raises(ConversionError, match="needs 'actions' and 'states'"):
        convert_checkpoint(tmp_path / "no_state", tmp_path / "run1")
    extra = dict(shapes, **{"generator/not_in_sna/weights": (3, 3)})
    write_original_run(tmp_path / "extra", extra, "sna", dict(HPARAMS, ngf=4), use_state=True)
    with pytest.raises(ConversionError, match="generator/not_in_sna/weights"):
        convert_checkpoint(tmp_path / "extra", tmp_path / "run2")
    write_original_run(tmp_path / "savp", shapes, "savp", dict(HPARAMS, ngf=4), use_state=True)
    with pytest.raises(ConversionError, match="'savp' run"):
        convert_checkpoint(tmp_path / "savp", tmp_path / "run3")


REFERENCE = os.path.join(os.path.dirname(__file__), "..", "data", "sv2p_sna_reference.npz")


def test_converted_models_reproduce_the_original_outputs(tmp_path, monkeypatch):
    """Outputs of the original sv2p_model.py / sna_model.py (TF1 graph, tf_slim) on these weights, stored in
    tests/data/sv2p_sna_reference.npz (how: tests/data/README.md): the converted models give the same frames."""
    ref = np.load(REFERENCE)
    # sv2p, action-conditioned, prior path with the original's noise; and the latent tower's mean / log variance
    write_original_run(tmp_path / "sv2p", sv2p_shapes(smear=7), "sv2p", dict(HPARAMS, kl_weight=0.008),
                       use_state=True, seed=0)
    sv2p = convert_checkpoint(tmp_path / "sv2p", tmp_path / "sv2p_run")
    batch = dict(images=tf.constant(ref["sv2p_images"] / np.float32(255)), actions=ref["sv2p_actions"],
                 states=ref["sv2p_states"])
    monkeypatch.setattr(tf.random, "normal", lambda shape, *args, **kwargs: tf.constant(ref["sv2p_noise"]))
    outputs = sv2p(batch, training=False)
    monkeypatch.undo()
    for key in ("gen_images", "gen_states", "zs_mu", "zs_log_sigma_sq"):
        np.testing.assert_allclose(outputs[key].numpy(), ref[f"sv2p_{key}"], atol=1e-5, err_msg=key)
    # sna at 64x64 (the original's mask reshape is hard-coded to 64x64), ngf 4
    write_original_run(tmp_path / "sna", sna_shapes(size=64), "sna", dict(HPARAMS, ngf=4, sequence_length=3),
                       use_state=True, seed=1, size=64)
    sna = convert_checkpoint(tmp_path / "sna", tmp_path / "sna_run")
    outputs = sna(dict(images=tf.constant(ref["sna_images"] / np.float32(255)), actions=ref["sna_actions"],
                       states=ref["sna_states"]), training=False)
    for key in ("gen_images", "gen_states"):
        np.testing.assert_allclose(outputs[key].numpy(), ref[f"sna_{key}"], atol=1e-5, err_msg=key)


def test_convert_script_and_download_pick_the_converter_from_options(tmp_path):
    """convert_savp_checkpoint.py (and download_model.sh) convert sv2p/sna runs too, by options.json's model."""
    import subprocess
    import sys

    from video_prediction.conversion.published import convert_original_checkpoint

    write_original_run(tmp_path / "sna", sna_shapes(), "sna", dict(HPARAMS, ngf=4), use_state=True)
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    result = subprocess.run([sys.executable, os.path.join(root, "pretrained_models", "convert_savp_checkpoint.py"),
                             "--checkpoint", str(tmp_path / "sna"), "--output_dir", str(tmp_path / "run")],
                            capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    options = json.load(open(tmp_path / "run" / "options.json"))
    assert options["model"] == "sna" and "step 777" in result.stdout
    with open(tmp_path / "sna" / "options.json", "w") as f:
        json.dump(dict(dataset="softmotion", model="dna"), f)
    with pytest.raises(ValueError, match="model 'dna' has no converter"):
        convert_original_checkpoint(tmp_path / "sna", tmp_path / "run2")
