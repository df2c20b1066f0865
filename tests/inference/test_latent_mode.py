"""--latent_mode mean|sample for every model family (issue 19).

``mean`` must make the prediction a function of the context alone (identical over samples and calls) and
equal to a rollout with the latents set to their means; ``sample`` must keep drawing different futures.
"""

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.cli import apply_latent_mode
from video_prediction.models import get_model_class

SAVP_TINY = dict(context_frames=2, sequence_length=5, ngf=8, ndf=4, nef=8, clip_length=4, batch_size=2,
                 kl_anneal="none", nz=4)


def square_batch(size=32, channels=1, length=5, batch_size=2):
    images = np.zeros((batch_size, length, size, size, channels), np.float32)
    for b in range(batch_size):
        for t in range(length):
            images[b, t, 4 + 3 * b : 10 + 3 * b, 4 + t : 10 + t] = 1.0
    return {"images": tf.constant(images)}


def _spread(samples):
    """Largest difference between two samples of the same video."""
    samples = np.asarray(samples)
    return float(np.abs(samples - samples[:, :1]).max())


def test_savp_mean_latents_are_deterministic():
    model = get_model_class("savp")(hparams_dict=SAVP_TINY)
    batch = square_batch()
    model.build_from_batch(batch)
    assert model.latent_mode == "sample"
    sampled = model.generate(batch, num_samples=3).numpy()
    assert _spread(sampled) > 1e-3  # sampling draws different futures (far above the tolerance below)
    apply_latent_mode(model, "mean")
    first = model.generate(batch, num_samples=3).numpy()
    second = model.generate(batch, num_samples=2).numpy()
    assert _spread(first) < 1e-6
    np.testing.assert_allclose(first[:, :2], second, atol=1e-6)
    # The same rollout with the latents set by hand to their means.
    inputs = model.rollout_inputs(batch, 3)
    expected = model._forward(inputs, training=False, posterior_path=False, mean_latents=True)["gen_images"]
    np.testing.assert_allclose(first[:, 0], expected.numpy()[:, 1:4], atol=1e-5)
    apply_latent_mode(model, "sample")  # switching back samples again (not the cached mean trace)
    assert _spread(model.generate(batch, num_samples=3).numpy()) > 1e-3


def test_sv2p_mean_latents_are_zero():
    model = get_model_class("sv2p")(hparams_dict=dict(context_frames=2, sequence_length=4, batch_size=2))
    batch = square_batch(size=16, channels=3, length=4)
    model.build_from_batch(batch)
    assert _spread(model.generate(batch, num_samples=3).numpy()) > 1e-4
    apply_latent_mode(model, "mean")
    assert _spread(model.generate(batch, num_samples=3).numpy()) < 1e-6  # float reordering only


def test_deterministic_models_accept_mean_and_bad_values_are_refused():
    repeat = get_model_class("repeat")(hparams_dict=dict(context_frames=2, sequence_length=4))
    apply_latent_mode(repeat, "mean")  # a no-op
    deterministic = get_model_class("savp")(hparams_dict=dict(SAVP_TINY, nz=0))
    apply_latent_mode(deterministic, "mean")
    with pytest.raises(ValueError, match="latent_mode must be 'sample' or 'mean'"):
        deterministic.latent_mode = "median"
