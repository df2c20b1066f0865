"""One pose_lstm train step on one device vs two logical CPU devices gives the same weights (DESIGN.md).

The step clips the WHOLE batch's gradient by its global norm (25), which needs the replicas' gradients
summed before clipping; the targets are pushed far away so that the clipping acts.  TF1 RMSProp with its
slot at 1 updates in proportion to the gradient, so a wrong scale would show.  Subprocess: the logical
devices must be configured before TensorFlow initialises.
"""

from two_replica_step import one_vs_two_devices


def test_one_vs_two_devices_same_weights_with_clipping():
    hparams = dict(context_frames=3, sequence_length=7, batch_size=4, lstm_units=8, lm_enc_units=4,
                   num_landmarks=3, lr=0.01)
    report = one_vs_two_devices("video_prediction.models.pose_lstm:PoseLSTMVideoPredictionModel", hparams, """
        batch = {"images": np.zeros((4, 7, 16, 16, 3), np.float32),
                 "poses": rng.uniform(0, 16, (4, 7, 3, 2)).astype(np.float32),
                 "pose_visibility": (rng.uniform(size=(4, 7, 3)) > 0.3).astype(np.float32)}
        batch["poses"][:, 3:] *= 200.0  # far-off targets: clipping acts""")
    assert report["changed"] >= 6  # every trainable weight moved (and the step counter)
    assert not report["mismatch"], report["mismatch"]
