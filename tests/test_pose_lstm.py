"""The pose LSTM (specs/hierarchical_lstm.md §3.1, §4.1) and its TF1 RMSProp."""

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.layers import pose as pose_ops
from video_prediction.models import get_model_class
from video_prediction.models.pose_lstm import PoseLSTMVideoPredictionModel
from video_prediction.optimizers import GatedAdam, TF1RMSprop


def small_model(num_landmarks=3, **extra):
    hparams = dict(context_frames=3, sequence_length=7, batch_size=2, lstm_units=8, lm_enc_units=4,
                   num_landmarks=num_landmarks)
    hparams.update(extra)
    return PoseLSTMVideoPredictionModel(hparams=hparams)


def pose_batch(rng, batch=2, length=7, joints=3, size=16):
    return {
        "images": np.zeros((batch, length, size, size, 3), np.float32),
        "poses": rng.uniform(0, size, (batch, length, joints, 2)).astype(np.float32),
        "pose_visibility": (rng.uniform(size=(batch, length, joints)) > 0.3).astype(np.float32),
    }


@pytest.mark.parametrize("joints,expected", [(13, 4_356_986), (32, 4_397_152)])
def test_parameter_counts_match_the_original(joints, expected):
    """spec §3.1: Penn 864 + 4,329,472 + 26,650; Human3.6M 2,080 + 4,329,472 + 65,600."""
    model = PoseLSTMVideoPredictionModel(hparams=dict(context_frames=10, sequence_length=42))
    rng = np.random.default_rng(0)
    model(pose_batch(rng, batch=1, length=11, joints=joints))
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == expected
    assert get_model_class("pose_lstm") is PoseLSTMVideoPredictionModel


def numpy_reference(model, seq, mask, num_future):
    """The original's graph written out in NumPy with the model's weights."""
    w = {v.path.split("/", 1)[1]: v.numpy() for v in model.trainable_variables}
    masked = seq * mask
    sigmoid = lambda x: 1 / (1 + np.exp(-x))
    units = model.hparams.lstm_units
    c = np.zeros((seq.shape[0], units))
    h = np.zeros((seq.shape[0], units))

    def step(x, c, h):
        gates = np.concatenate([x, h], -1) @ w["basic_lstm_cell/kernel"] + w["basic_lstm_cell/bias"]
        i, j, f, o = np.split(gates, 4, -1)
        c = c * sigmoid(f + 1.0) + sigmoid(i) * np.tanh(j)
        return c, np.tanh(c) * sigmoid(o)

    for t in range(model.context_frames):
        e = np.maximum(masked[:, t] @ w["lm_enc/kernel"] + w["lm_enc/bias"], 0)
        c, h = step(e, c, h)
    outputs = [masked[:, t] for t in range(model.context_frames)]
    for _ in range(num_future):
        c, h = step(np.zeros((seq.shape[0], model.hparams.lm_enc_units)), c, h)
        outputs.append(np.tanh(h @ w["dec_fc2/kernel"] + w["dec_fc2/bias"]))
    return np.stack(outputs, 1)


def test_forward_matches_tf1_maths_and_rollout_length_is_free():
    rng = np.random.default_rng(1)
    model = small_model()
    batch = pose_batch(rng)
    out = model(batch)
    seq = pose_ops.poses_to_landmarks(batch["poses"], (16, 16)).numpy()
    mask = pose_ops.visibility_mask(batch["pose_visibility"]).numpy()
    np.testing.assert_allclose(out["gen_landmarks"].numpy(), numpy_reference(model, seq, mask, 4), atol=1e-5)
    assert out["gen_images"].shape == (2, 6, 16, 16, 3)
    # observed steps passed through (masked): invisible joints at the centre of the frame
    np.testing.assert_allclose(out["gen_poses"].numpy()[:, :3][batch["pose_visibility"][:, :3] == 0], 8.0)
    # a 12-step rollout with the same weights: the first 4 predictions agree (zero inputs, no peeking)
    long_batch = {k: np.concatenate([v, v[:, :1].repeat(5, 1)], 1) for k, v in batch.items()}
    long_batch["poses"][:, 7:] = 999.0
    long = model(long_batch)["gen_landmarks"].numpy()
    assert long.shape == (2, 12, 6)
    np.testing.assert_allclose(long[:, :7], out["gen_landmarks"].numpy(), atol=1e-6)
    # generate(): horizon is a call argument
    assert model.generate(batch, horizon=9).shape == (2, 1, 9, 16, 16, 3)


def test_loss_is_masked_mean_over_all_future_entries():
    rng = np.random.default_rng(2)
    model = small_model()
    batch = pose_batch(rng)
    out = model(batch)
    seq = pose_ops.poses_to_landmarks(batch["poses"], (16, 16)).numpy()
    mask = pose_ops.visibility_mask(batch["pose_visibility"]).numpy()
    expected = np.mean(mask[:, 3:] * (out["gen_landmarks"].numpy()[:, 3:] - seq[:, 3:]) ** 2)
    loss = model.generator_losses(batch, out)["loss"].numpy()
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # an invisible future joint does not count
    batch2 = dict(batch, poses=batch["poses"].copy())
    batch2["poses"][batch["pose_visibility"] == 0] += 5.0
    batch2["poses"][:, :3] = batch["poses"][:, :3]
    np.testing.assert_allclose(model.generator_losses(batch2, model(batch2))["loss"].numpy(), loss, rtol=1e-5)


def test_penn_axis_swap_normalisation():
    poses = np.array([[[10.0, 30.0]]], np.float32)  # x=10, y=30 in a 40 (H) x 20 (W) crop
    plain = pose_ops.poses_to_landmarks(poses, (40, 20)).numpy()
    swapped = pose_ops.poses_to_landmarks(poses, (40, 20), swap_xy_normalization=True).numpy()
    np.testing.assert_allclose(plain, [[2 * 10 / 20 - 1, 2 * 30 / 40 - 1]])
    np.testing.assert_allclose(swapped, [[2 * 10 / 40 - 1, 2 * 30 / 20 - 1]])
    back = pose_ops.landmarks_to_poses(swapped, (40, 20), swap_xy_normalization=True).numpy()
    np.testing.assert_allclose(back, poses, atol=1e-5)


def test_tf1_rmsprop_and_clipping():
    """TF1 RMSProp: ms starts at 1, eps inside the root; the update after global-norm clipping 25."""
    var = tf.Variable([1.0, -2.0])
    opt = TF1RMSprop(learning_rate=0.1)
    grad = tf.constant([3.0, 4.0])
    opt.apply([grad], [var])
    ms = 0.9 * 1.0 + 0.1 * np.array([9.0, 16.0])
    np.testing.assert_allclose(var.numpy(), [1.0, -2.0] - 0.1 * np.array([3.0, 4.0]) / np.sqrt(ms + 1e-10),
                               rtol=1e-6)

    rng = np.random.default_rng(3)
    model = small_model()
    batch = pose_batch(rng)
    batch["poses"] *= 1000.0  # huge errors -> huge gradients, clipped to norm 25
    model(batch)
    model.make_optimizers()
    model.build_optimizers()
    before = [v.numpy() for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        output, seq, mask = model.forward_landmarks(batch, training=True)
        loss = model.landmark_loss(output, seq, mask)
    grads = tape.gradient(loss, model.trainable_variables)
    clipped, norm = tf.clip_by_global_norm(grads, 25.0)
    assert norm.numpy() > 25.0
    model.train_step(batch)
    for b, g, v in zip(before, clipped, model.trainable_variables):
        expected = b - 0.001 * g.numpy() / np.sqrt(0.9 + 0.1 * g.numpy() ** 2 + 1e-10)
        np.testing.assert_allclose(v.numpy(), expected, atol=1e-6)


def test_gated_adam_matches_tf1_adam_and_skips_when_off():
    var = tf.Variable([1.0, -2.0])
    opt = GatedAdam(learning_rate=0.1, beta_1=0.5)
    opt.build([var])
    g1, g2 = np.array([1.0, 2.0]), np.array([-3.0, 0.5])
    opt.apply([tf.constant(g1, tf.float32)], [var])
    opt.enabled.assign(False)
    opt.apply([tf.constant([100.0, 100.0])], [var])  # skipped: nothing changes, not even the step count
    opt.enabled.assign(True)
    opt.apply([tf.constant(g2, tf.float32)], [var])
    m = v = 0.0
    x = np.array([1.0, -2.0])
    for t, g in enumerate((g1, g2), 1):
        m = 0.5 * m + 0.5 * g
        v = 0.999 * v + 0.001 * g * g
        lr_t = 0.1 * np.sqrt(1 - 0.999 ** t) / (1 - 0.5 ** t)
        x = x - lr_t * m / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(var.numpy(), x, rtol=1e-5)
    assert int(opt.applied_steps.numpy()) == 2


def test_bad_input_is_one_clear_error():
    model = small_model()
    with pytest.raises(ValueError, match="needs 'poses'"):
        model({"images": np.zeros((1, 7, 8, 8, 3), np.float32)})
    with pytest.raises(ValueError, match=r"\[B, T, K, 2\]"):
        model({"images": np.zeros((1, 7, 8, 8, 3), np.float32), "poses": np.zeros((1, 7, 3), np.float32)})
    with pytest.raises(ValueError, match="keep_prob"):
        small_model(keep_prob=0.0)


def test_penn_swap_uses_the_crop_box_as_the_original_did():
    """Stored 16x16 frames of a 20 (W) x 40 (H) crop: x_crop / crop_height and y_crop / crop_width (spec §2.3)."""
    model = small_model(num_landmarks=1, swap_xy_normalization=True)
    x_crop, y_crop = 5.0, 30.0
    batch = {"images": np.zeros((1, 7, 16, 16, 3), np.float32),
             "poses": np.tile(np.array([[[x_crop * 16 / 20, y_crop * 16 / 40]]], np.float32), (1, 7, 1, 1)),
             "crop_box": np.array([[100.0, 50.0, 120.0, 90.0]], np.float32)}
    seq, _ = model.landmarks(batch)
    np.testing.assert_allclose(seq.numpy()[0, 0], [2 * x_crop / 40 - 1, 2 * y_crop / 20 - 1], rtol=1e-6)
    out = model(batch)["gen_poses"].numpy()
    np.testing.assert_allclose(out[0, :3], batch["poses"][0, :3], rtol=1e-5)  # observed poses come back unchanged
