"""One SAVP train step on one device vs two logical CPU devices gives the same weights (DESIGN.md).

Runs in a subprocess because the logical devices must be configured before
TensorFlow initialises.  The variants are made deterministic: ``nz=0``,
``schedule_sampling='none'`` and, for the GAN one, a discriminator clip as long
as the predicted video (a single possible clip offset).

The model's Adam optimizers are swapped for SGD here: Adam's first step is
``lr * g / (|g| + eps)``, blind to a wrong gradient scale (the bug this test
guards against: a per-replica loss not divided, or divided twice, by the
number of replicas) and sensitive to float noise in near-zero gradients.  SGD
makes the update proportional to the gradient, so the comparison is exact.
"""

import pytest

from two_replica_step import one_vs_two_devices

TINY = dict(context_frames=2, sequence_length=5, ngf=8, ndf=4, nef=8, nz=0, schedule_sampling="none",
            batch_size=4, lr=0.1)


@pytest.mark.parametrize("extra", [
    dict(l1_weight=1.0),  # ours_deterministic_l1
    # a GAN variant: D step, spectral-norm u update, then G step against the updated D
    dict(l1_weight=100.0, video_sn_gan_weight=0.1, gan_feature_cdist_weight=10.0, clip_length=4, lr=1e-3),
])
def test_one_vs_two_devices_same_weights(extra):
    report = one_vs_two_devices(
        "video_prediction.models.savp:SAVPVideoPredictionModel", dict(TINY, **extra),
        make_batch='batch = {"images": rng.uniform(size=(4, 5, 32, 32, 1)).astype(np.float32)}',
        swap_optimizers="""
            model.compile(optimizer=keras.optimizers.SGD(hparams["lr"]))
            if model.discriminator_optimizer is not None:
                model.discriminator_optimizer = keras.optimizers.SGD(hparams["lr"])""")
    assert report["changed"] > 10  # the step did update the weights
    assert report["mismatch"] == [], report
    for key, value in report["losses_one"].items():
        assert value == pytest.approx(report["losses_two"][key], rel=1e-5), key
