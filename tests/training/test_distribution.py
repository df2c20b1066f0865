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

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from video_prediction.models.savp import SAVPVideoPredictionModel

    hparams = json.loads(sys.argv[1])
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(4, 5, 32, 32, 1)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensors({"images": images}).repeat()

    def one_step(devices, initial_weights=None):
        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = SAVPVideoPredictionModel(hparams=hparams)
            model.build_from_batch({"images": images[:1]})
            model.make_optimizers()
            model.compile(optimizer=keras.optimizers.SGD(hparams["lr"]))
            if model.discriminator_optimizer is not None:
                model.discriminator_optimizer = keras.optimizers.SGD(hparams["lr"])
            model.build_optimizers()
            if initial_weights is not None:
                model.set_weights(initial_weights)
        weights_before = [w.copy() for w in model.get_weights()]
        history = model.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0)
        return model, weights_before, history.history

    one, initial, logs_one = one_step(["/cpu:0"])
    two, _, logs_two = one_step(["/cpu:0", "/cpu:1"], initial)
    assert two.distribute_strategy.num_replicas_in_sync == 2
    report = {"losses_one": {k: v[0] for k, v in logs_one.items()},
              "losses_two": {k: v[0] for k, v in logs_two.items()}, "mismatch": [], "changed": 0}
    for w_init, v1, v2 in zip(initial, one.weights, two.weights):
        a, b = np.asarray(v1.numpy()), np.asarray(v2.numpy())
        report["changed"] += int(not np.array_equal(a, w_init))
        if not np.allclose(a, b, rtol=1e-5, atol=1e-7):
            report["mismatch"].append([v1.path, float(np.abs(a - b).max()), float(np.abs(a - w_init).max())])
    print("REPORT" + json.dumps(report))
    """
)

TINY = dict(context_frames=2, sequence_length=5, ngf=8, ndf=4, nef=8, nz=0, schedule_sampling="none",
            batch_size=4, lr=0.1)


@pytest.mark.parametrize("extra", [
    dict(l1_weight=1.0),  # ours_deterministic_l1
    # a GAN variant: D step, spectral-norm u update, then G step against the updated D
    dict(l1_weight=100.0, video_sn_gan_weight=0.1, gan_feature_cdist_weight=10.0, clip_length=4, lr=1e-3),
])
def test_one_vs_two_devices_same_weights(extra):
    hparams = dict(TINY, **extra)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(hparams)], capture_output=True, text=True,
                            env=env, timeout=600)
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT"):])
    assert report["changed"] > 10  # the step did update the weights
    assert report["mismatch"] == [], report
    for key, value in report["losses_one"].items():
        assert value == pytest.approx(report["losses_two"][key], rel=1e-5), key
