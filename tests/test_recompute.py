"""``recompute_steps`` (issue 18, "Memory at the published batch sizes"): each step of the time loop wrapped in
``tf.recompute_grad`` (models/base.py ``recompute_step``) must give the same losses and gradients as the plain
loop, in both loop forms, for every recurrent family, stochastic ones included (latents, schedule sampling,
MSPred's per-step latent draws).  Memory itself is measured by the benchmark (README, "Performance").

The random draws of the two graphs must be the same for the comparison: TF derives an op's seed from the number
of ops created before it, which recomputation changes, so ``tf.random.normal`` / ``uniform`` are replaced here by
stateless draws keyed on the order of the calls (the same in both graphs: no recomputed step draws statefully).
"""

import numpy as np
import pytest
import tensorflow as tf

from test_time_loops import MSPRED_TINY, SAVP_TINY, conditioned_batch, savp_batch
from video_prediction.hparams import resolve_hparams
from video_prediction.models.mspred import MSPredVideoPredictionModel
from video_prediction.models.savp import SAVPVideoPredictionModel
from video_prediction.models.sna import SNAVideoPredictionModel
from video_prediction.models.sv2p import SV2PVideoPredictionModel


@pytest.fixture
def ordered_draws(monkeypatch):
    """tf.random.normal / uniform -> stateless draws keyed on the call's rank in the trace."""
    calls = [0]
    normal, uniform = tf.random.stateless_normal, tf.random.stateless_uniform

    def next_seed():
        calls[0] += 1
        return [calls[0], 11]

    def fake_normal(shape, mean=0.0, stddev=1.0, dtype=tf.float32, seed=None, name=None):
        return normal(shape, seed=next_seed(), mean=mean, stddev=stddev, dtype=dtype)

    def fake_uniform(shape, minval=0, maxval=None, dtype=tf.float32, seed=None, name=None):
        return uniform(shape, seed=next_seed(), minval=minval, maxval=1.0 if maxval is None else maxval, dtype=dtype)

    monkeypatch.setattr(tf.random, "normal", fake_normal)
    monkeypatch.setattr(tf.random, "uniform", fake_uniform)
    return calls


def with_hparams(model, **updates):
    """The same model (same weights) with other hparams for the next trace."""
    model.hparams = resolve_hparams(model.default_hparams(), model.hparams.values(), updates,
                                    deprecated=model.deprecated_hparams)
    return model


def traced_losses_and_gradients(model, calls, variables):
    """A traced training forward pass + gradient of ``model`` with its current hparams."""

    @tf.function
    def run(batch):
        calls[0] = 0  # the same draws in every trace
        with tf.GradientTape() as tape:
            outputs = model(batch, training=True)
            losses = model.generator_losses(batch, outputs)
            loss = tf.add_n(list(losses.values()))
        return losses, tape.gradient(loss, variables)

    def call(batch):
        losses, grads = run(batch)
        # A variable the loss does not reach (MSPred's heads without heatmap targets) has no gradient in the
        # plain Python unroll and a zero one through recompute_grad; both are zeros here.
        return ({k: float(v) for k, v in losses.items()},
                [np.zeros(v.shape, np.float32) if g is None else g.numpy() for v, g in zip(variables, grads)])

    return call


def check_same(model, batch, calls, variables, other_batch, grad_atol=1e-5, loss_rtol=1e-6, switch="recompute_steps"):
    """Plain (hparam ``switch`` false) vs ``switch`` true (recomputed): every loss (``loss_rtol``) and every
    gradient (rtol 1e-5, atol ``grad_atol`` x the largest gradient); another input moves a loss and a gradient
    by > 100 x those tolerances."""
    with_hparams(model, **{switch: False})
    plain_losses, plain_grads = traced_losses_and_gradients(model, calls, variables)(batch)
    with_hparams(model, **{switch: True})
    recomputed = traced_losses_and_gradients(model, calls, variables)
    losses, grads = recomputed(batch)
    assert sorted(losses) == sorted(plain_losses)
    for key, value in plain_losses.items():
        np.testing.assert_allclose(losses[key], value, rtol=loss_rtol, atol=1e-9, err_msg=key)
    scale = max(np.abs(g).max() for g in plain_grads)
    assert scale > 0 and len(grads) == len(plain_grads)
    for a, b in zip(grads, plain_grads):
        np.testing.assert_allclose(a, b, atol=grad_atol * scale, rtol=1e-5)
    other_losses, other_grads = recomputed(other_batch)
    assert max(abs(other_losses[k] - v) / abs(v) for k, v in plain_losses.items() if v) > 100 * loss_rtol
    assert max(np.abs(a - b).max() for a, b in zip(other_grads, plain_grads)) > 100 * grad_atol * scale


@pytest.mark.usefixtures("without_grappler")  # conftest.py: both forms run without Grappler
def test_savp_gradients_equal_with_recompute(ordered_draws):
    """ours_vae_l1-like (latents from the posterior, KL) with schedule sampling drawn, in training mode; the
    default while loop (sv2p below and MSPred test the Python unroll)."""
    batch = savp_batch(5)
    model = SAVPVideoPredictionModel(hparams=dict(SAVP_TINY, schedule_sampling_k=2.0))
    model.build_from_batch(batch)
    # another input: the videos played backwards (reversing the batch order barely moves a batch-mean loss:
    # measured 8e-5 relative in one CI run, under the 1e-4 this check asks for)
    check_same(model, batch, ordered_draws, model.generator_variables(), {"images": batch["images"][:, ::-1]})


@pytest.mark.usefixtures("without_grappler")  # conftest.py: both forms run without Grappler
def test_sv2p_gradients_equal_with_recompute(ordered_draws):
    """sv2p (its default Python unroll): time-variant latents, posterior path past the first stage, KL."""
    batch = conditioned_batch(5)
    model = SV2PVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=5, batch_size=2,
                                                  multi_latent=True, num_iterations_1st_stage=0,
                                                  schedule_sampling_k=2.0))
    model.build_from_batch(batch)
    check_same(model, batch, ordered_draws, model.trainable_variables, {**batch, "images": batch["images"][::-1]})


@pytest.mark.usefixtures("without_grappler")  # conftest.py: both forms run without Grappler
def test_sna_gradients_equal_with_recompute(ordered_draws):
    """sna (deterministic; schedule sampling drawn) in the while loop."""
    batch = conditioned_batch(5)
    model = SNAVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=5, batch_size=2,
                                                 schedule_sampling_k=2.0, time_loop="while"))
    model.build_from_batch(batch)
    check_same(model, batch, ordered_draws, model.trainable_variables, {**batch, "images": batch["images"][::-1]})


@pytest.mark.usefixtures("without_grappler")  # conftest.py: both forms run without Grappler
def test_mspred_gradients_equal_with_recompute(ordered_draws):
    """Training samples the latents in every step after the context: with recompute_steps they are drawn
    statelessly from per-step seeds (the recomputation draws them again); the plain model is set to draw the
    same way for the comparison."""
    rng = np.random.default_rng(0)
    batch = {"images": tf.constant(rng.uniform(size=(2, 8, 16, 16, 1)), tf.float32)}
    model = MSPredVideoPredictionModel(hparams_dict=dict(MSPRED_TINY, time_loop="while", latent_mode="sample"))
    model.build_from_batch(batch)
    model.stateless_latent_draws = True
    # The while form (the default) only.  With time_loop="python", recompute_steps runs the while loop's step
    # function unrolled, not call()'s own unroll: the same computation in another order, and its last bits
    # vary from run to run in one process (measured: gradients equal to 2e-5 of the largest in one run, ~1e-4
    # in another, one failure in six runs at 1e-3), so no tight comparison of that form is stable enough to
    # be a test; it is left out rather than checked at a tolerance that could hide a wrong draw.
    check_same(model, batch, ordered_draws, model.trainable_variables, {"images": batch["images"] * 0.3})


def test_bad_recompute_steps_is_one_clear_error():
    with pytest.raises(ValueError, match="hparam 'recompute_steps' expects a value of type bool"):
        SAVPVideoPredictionModel(hparams=dict(SAVP_TINY, recompute_steps="sometimes"))
    with pytest.raises(ValueError, match="recompute_steps=true needs batch_norm_batch_stats=true"):
        MSPredVideoPredictionModel(hparams_dict=dict(MSPRED_TINY, recompute_steps=True,
                                                     batch_norm_batch_stats=False))
    for model_class in (SAVPVideoPredictionModel, SV2PVideoPredictionModel, SNAVideoPredictionModel,
                        MSPredVideoPredictionModel):
        assert model_class.default_hparams()["recompute_steps"] is False
