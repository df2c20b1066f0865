"""One pose_lstm train step on one device vs two logical CPU devices gives the same weights (DESIGN.md).

The step clips the WHOLE batch's gradient by its global norm (25), which needs the replicas' gradients
summed before clipping; the targets are pushed far away so that the clipping acts.  TF1 RMSProp with its
slot at 1 updates in proportion to the gradient, so a wrong scale would show.  Subprocess: the logical
devices must be configured before TensorFlow initialises.
"""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from video_prediction.models.pose_lstm import PoseLSTMVideoPredictionModel

    rng = np.random.default_rng(0)
    batch = {"images": np.zeros((4, 7, 16, 16, 3), np.float32),
             "poses": rng.uniform(0, 16, (4, 7, 3, 2)).astype(np.float32),
             "pose_visibility": (rng.uniform(size=(4, 7, 3)) > 0.3).astype(np.float32)}
    batch["poses"][:, 3:] *= 200.0  # far-off targets: clipping acts
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    hparams = dict(context_frames=3, sequence_length=7, batch_size=4, lstm_units=8, lm_enc_units=4,
                   num_landmarks=3, lr=0.01)

    def one_step(devices, initial=None):
        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = PoseLSTMVideoPredictionModel(hparams=hparams)
            model.build_from_batch({k: v[:1] for k, v in batch.items()})
            model.make_optimizers()
            model.build_optimizers()
            if initial is not None:
                model.set_weights(initial)
        before = [w.copy() for w in model.get_weights()]
        model.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0)
        return model, before

    one, initial = one_step(["/cpu:0"])
    two, _ = one_step(["/cpu:0", "/cpu:1"], initial)
    report = {"replicas": two.distribute_strategy.num_replicas_in_sync, "mismatch": [], "changed": 0}
    for w0, v1, v2 in zip(initial, one.weights, two.weights):
        a, b = np.asarray(v1.numpy()), np.asarray(v2.numpy())
        report["changed"] += int(not np.array_equal(a, w0))
        if not np.allclose(a, b, rtol=1e-5, atol=1e-7):
            report["mismatch"].append([v1.path, float(np.abs(a - b).max())])
    print("REPORT" + json.dumps(report))
    """
)


def test_one_vs_two_devices_same_weights_with_clipping():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT")]
    assert lines, result.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT"):])
    assert report["replicas"] == 2
    assert report["changed"] >= 6  # every trainable weight moved (and the step counter)
    assert not report["mismatch"], report["mismatch"]
