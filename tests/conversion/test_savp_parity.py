"""SAVP against the original's own graph: random weights converted by name give the same outputs.

``tests/data/savp/reference.npz`` holds what the original ``SAVPVideoPredictionModel`` (alexlee-gk/video_prediction,
run under tf.compat.v1 by ``tests/data/savp/make_reference.py``; see the README there) computed for the
bair_action_free ``ours_savp`` and ``ours_vae_l1`` hparams at a small width (32x32, batch 2, 5 frames) with
weights ``original_weight(name, shape, seed)`` and fixed latent noise.  Here the same weights are written to a
TF1 checkpoint under the original's names, converted by ``video_prediction/conversion/savp.py`` and run with
the same noise: generated frames (both paths), posterior means and log-variances, discriminator logits
(real/fake, both paths), every weighted loss term and the gradient norms must agree.  No TF1 code of the
original runs here.
"""

import importlib.util
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.conversion.savp import convert_checkpoint, original_variable_names

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "savp")
_spec = importlib.util.spec_from_file_location("savp_make_reference", os.path.join(DATA, "make_reference.py"))
make_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_reference)

# Each output is compared within ATOL + RTOL * (its largest magnitude): outputs range from ~1e-3 (the KL term of
# ours_vae_l1, discriminator logits ~1e-2) to ~30 (the L1 term x 100).  The original run with oneDNN on vs off
# differs by up to 8e-6 of an output's magnitude (the fake logits; 1.4e-6 absolute on frames); ours differs from
# it by at most 2e-6 of it (4.8e-6 absolute, on the generator's gradient norm of 11.7); see tests/data/savp/README.md.
ATOL, RTOL = 1e-7, 1e-5
# Changed frames and noise must move every compared output by this many tolerances at least.
SENSITIVITY = 20


def tolerance(reference_value):
    return ATOL + RTOL * float(np.max(np.abs(reference_value)))


@pytest.fixture(scope="module")
def reference():
    with np.load(os.path.join(DATA, "reference.npz"), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def write_original_checkpoint(directory, variables, hparams, seed, global_step):
    """The original's run directory: a TF1 name-based checkpoint plus its three JSON files."""
    os.makedirs(directory, exist_ok=True)
    with tf.Graph().as_default():
        var_list = {name: tf.compat.v1.Variable(make_reference.original_weight(name, tuple(shape), seed), name=f"v{i}")
                    for i, (name, shape) in enumerate(sorted(variables.items()))}
        var_list["global_step"] = tf.compat.v1.Variable(np.int64(global_step), name="step")
        saver = tf.compat.v1.train.Saver(var_list=var_list)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, os.path.join(directory, "model"), global_step=global_step)
    files = {"options.json": dict(dataset="bair", model="savp"),
             "dataset_hparams.json": dict(context_frames=hparams["context_frames"],
                                          sequence_length=hparams["sequence_length"], use_state=False),
             "model_hparams.json": hparams}
    for name, content in files.items():
        with open(os.path.join(directory, name), "w") as f:
            json.dump(content, f)


class FedNormal:
    """Stands in for ``tf.random.normal``: returns the queued arrays in order (the latent noise)."""

    def __init__(self, *arrays):
        self.queue = [tf.constant(a) for a in arrays]

    def __call__(self, shape, *args, **kwargs):
        value = self.queue.pop(0)
        assert list(value.shape) == [int(d) for d in tf.unstack(shape)], (value.shape, shape)
        return value


def run_ours(model, frames, eps_posterior, zs_prior, monkeypatch):
    """Our outputs, keyed as the reference, for uint8 ``frames`` and the original's time-major noise."""
    context = make_reference.SMALL["context_frames"]
    # Ours draws the prior noise for all T-1 steps and keeps it after the first C-1 (posterior) ones.
    prior = np.concatenate([np.zeros_like(eps_posterior[: context - 1]), zs_prior])
    fed = FedNormal(eps_posterior, prior)
    monkeypatch.setattr(tf.random, "normal", fed)
    batch = {"images": tf.constant(frames, tf.float32) / 255.0}
    with tf.GradientTape(persistent=True) as tape:
        outputs = model(batch, training=False)
        losses = model.generator_losses(batch, outputs)
        d_losses = {}
        if model.has_gan:
            discrim = model._discriminate(batch, outputs, training=False)
            d_losses = model.discriminator_losses(discrim)
            # G's adversarial terms as the train step computes them: fake clips alone, real ones only for
            # feature matching (the joint batch above gives the logits and the D losses).
            generator_side = model._discriminate(batch, outputs, training=False, generator_side=True)
            losses.update(model.adversarial_generator_losses(generator_side))
        g_loss = tf.add_n(list(losses.values()))
        d_loss = tf.add_n(list(d_losses.values())) if d_losses else tf.constant(0.0)
    monkeypatch.undo()
    assert not fed.queue
    result = {key: outputs[key] for key in ("gen_images", "gen_images_enc")}
    result.update(zs_mu_enc=outputs["zs_mu"], zs_log_sigma_sq_enc=outputs["zs_log_sigma_sq"])
    if model.has_gan:
        for (path, kind), (real, fake, _, _) in discrim.items():
            infix = "_enc" if path == "vae_gan" else ""
            result[f"discrim_{kind}_logits{infix}_real"], result[f"discrim_{kind}_logits{infix}_fake"] = real, fake
    result.update({f"loss_{name}": value for name, value in {**losses, **d_losses}.items()})
    result.update(g_loss=g_loss, d_loss=d_loss)
    result["g_grad_norm"] = tf.linalg.global_norm(tape.gradient(g_loss, model.generator_variables()))
    if d_losses:
        result["d_grad_norm"] = tf.linalg.global_norm(tape.gradient(d_loss, model.discriminator_variables()))
    return {key: np.asarray(value) for key, value in result.items()}


@pytest.mark.parametrize("variant", make_reference.VARIANTS)
def test_converted_savp_matches_the_original_graph(tmp_path, reference, variant, monkeypatch):
    variables = json.loads(str(reference[f"{variant}/variables"]))
    hparams = json.loads(str(reference[f"{variant}/hparams"]))
    # The stored run used the original's hparams file of this variant, which ours mirrors.
    with open(os.path.join(ROOT, "hparams", "bair_action_free", variant, "model_hparams.json")) as f:
        ours = json.load(f)
    assert {key: hparams[key] for key in ours} == ours
    seed, step = int(reference["seed"]), int(reference["global_step"])
    write_original_checkpoint(tmp_path / "original", variables, hparams, seed, step)
    image_shape = reference["frames"].shape[2:]
    model = convert_checkpoint(str(tmp_path / "original"), str(tmp_path / "run"), image_shape=image_shape)
    # every variable of the original graph has its place in ours and nothing else exists (converter's map)
    assert set(original_variable_names(model)) == set(variables) | {"global_step"}
    assert int(model.global_step.numpy()) == step

    frames, eps, zs_prior = reference["frames"], reference["eps_posterior"], reference["zs_prior"]
    ours = run_ours(model, frames, eps, zs_prior, monkeypatch)
    expected = {key.split("/", 1)[1]: value for key, value in reference.items() if key.startswith(f"{variant}/")
                and key.split("/", 1)[1] not in ("variables", "hparams")}
    assert set(ours) == set(expected)
    for key, want in expected.items():
        np.testing.assert_allclose(ours[key].reshape(want.shape), want, rtol=0, atol=tolerance(want), err_msg=key)
    if not model.has_gan:  # ours_vae_l1: no discriminator loss on either side
        assert float(expected.pop("d_loss")) == 0.0

    # Meaningful: other frames (darker, reversed in time) and other noise move every compared output by far
    # more than its tolerance (the posterior-path GAN terms least: ~200x; the KL term of ours_vae_l1: ~23x).
    other = run_ours(model, frames[:, ::-1] // 4, eps[::-1], -zs_prior, monkeypatch)
    for key, want in expected.items():
        change = np.max(np.abs(other[key].reshape(want.shape) - want))
        assert change > SENSITIVITY * tolerance(want), (key, change, tolerance(want))
