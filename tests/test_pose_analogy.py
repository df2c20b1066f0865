"""The visual-analogy generator (specs/hierarchical_lstm.md §3.2-3.4, §4.2) and its perceptual networks."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import hierarchical_pose_fixtures as fx
from video_prediction.layers import perceptual
from video_prediction.models.pose_analogy import (PoseAnalogyVideoPredictionModel, straight_through_clip,
                                                  unpool_zero_filled)


def small_model(**extra):
    hparams = dict(context_frames=2, sequence_length=5, batch_size=2, alpha=0.0, beta=0.0, gf_dim=4, df_dim=4)
    hparams.update(extra)
    return PoseAnalogyVideoPredictionModel(hparams=hparams)


def clip_batch(rng, length=5, size=16, joints=3):
    return {"images": rng.uniform(size=(2, length, size, size, 3)).astype(np.float32),
            "poses": rng.uniform(0, size, (2, length, joints, 2)).astype(np.float32),
            "pose_visibility": np.ones((2, length, joints), np.float32)}


@pytest.mark.parametrize("joints,generator,discriminator", [(48, 5_232_131, 4_417_921), (32, 5_222_915, 4_392_321)])
def test_parameter_counts_match_the_original(joints, generator, discriminator):
    model = PoseAnalogyVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=4, alpha=0.0, beta=0.0))
    frames = tf.zeros((1, 128, 128, 3))
    maps = tf.zeros((1, 128, 128, joints))
    model.generate_frame(frames, maps, maps)
    model.discriminate(frames, maps)
    assert sum(int(np.prod(v.shape)) for v in model.generator_variables()) == generator
    assert sum(int(np.prod(v.shape)) for v in model.discriminator_variables()) == discriminator


def test_zero_fill_unpooling():
    x = tf.reshape(tf.range(1.0, 5.0), [1, 2, 2, 1])
    out = unpool_zero_filled(x).numpy()[0, :, :, 0]
    np.testing.assert_array_equal(out, [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]])


def test_call_follows_the_test_protocol_and_the_contract():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model = small_model()
    batch = clip_batch(rng)
    out = model(batch)["gen_images"].numpy()
    assert out.shape == (2, 4, 16, 16, 3)
    np.testing.assert_array_equal(out[:, 0], batch["images"][:, 1])  # context frames passed through
    # every future frame from the LAST context frame and its pose: the earlier frames do not matter
    changed = dict(batch, images=batch["images"].copy())
    changed["images"][:, 0] = 0.0
    changed["images"][:, 2:] = 0.0  # nor does the ground truth of the future
    np.testing.assert_allclose(model(changed)["gen_images"].numpy()[:, 1:], out[:, 1:], atol=1e-6)
    # frame k depends on the pose of frame k
    moved = dict(batch, poses=batch["poses"].copy())
    moved["poses"][:, 3] += 4.0
    other = model(moved)["gen_images"].numpy()
    assert np.abs(other[:, 2] - out[:, 2]).max() > 1e-6  # tiny random net: small but real dependence
    np.testing.assert_array_equal(other[:, 3], out[:, 3])
    assert model.generate(batch, horizon=3).shape == (2, 1, 3, 16, 16, 3)


def test_building_and_generating_raise_no_keras_build_warning():
    """generate.py and evaluate.py build a model with build_from_batch and then call it in a tf.function;
    Keras must not warn that a default build() left sub-layers unbuilt (the discriminator is not reached)."""
    import warnings

    batch = clip_batch(np.random.default_rng(1))
    model = small_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.build_from_batch(batch)
        assert model.generate(batch, horizon=2).shape == (2, 1, 2, 16, 16, 3)
    assert model.built and model.discriminator_variables()


def test_clip_output_option_keeps_black_black_and_bright_pixels_learning():
    """output_activation='clip' (not the original's): clip forward, identity gradient; 'tanh' is the default."""
    z = tf.constant([-3.0, -3.0, -0.5, 2.0])
    target = tf.constant([-1.0, 1.0, -1.0, 1.0])
    with tf.GradientTape() as tape:
        tape.watch(z)
        out = straight_through_clip(z)
        loss = 0.5 * tf.reduce_sum(tf.square(out - target))
    np.testing.assert_array_equal(out.numpy(), [-1.0, -1.0, -0.5, 1.0])
    # black pixel below -1: no error, no gradient; bright target below -1: the full error passes (tanh: ~0)
    np.testing.assert_allclose(tape.gradient(loss, z).numpy(), [0.0, -2.0, 0.5, 0.0])
    assert PoseAnalogyVideoPredictionModel.default_hparams()["output_activation"] == "tanh"
    keras.utils.set_random_seed(0)
    batch = clip_batch(np.random.default_rng(0))
    tanh_model, clip_model = small_model(), small_model(output_activation="clip")
    tanh_model(batch)
    clip_model(batch)
    clip_model.set_weights(tanh_model.get_weights())
    for model in (tanh_model, clip_model):  # large pre-activations: where tanh and the clip differ
        model.decoder.deconv1_1.kernel.assign(model.decoder.deconv1_1.kernel * 1e6)
    tanh_out = tanh_model(batch)["gen_images"].numpy()[:, 1:]
    clip_out = clip_model(batch)["gen_images"].numpy()[:, 1:]
    assert clip_out.min() == 0.0 and clip_out.max() == 1.0 and ((clip_out == 0) | (clip_out == 1)).mean() > 0.5
    assert np.abs(clip_out - tanh_out).max() > 1e-3
    np.testing.assert_array_equal(clip_out > 0.5, tanh_out > 0.5)  # same weights, same signs


def test_hysteresis_flags_follow_the_original():
    rng = np.random.default_rng(1)
    model = small_model(margin=0.3)
    batch = clip_batch(rng)
    model.build_from_batch(batch)
    model.make_optimizers()
    model.build_optimizers()
    step = model.train_on_pair  # eager: tracing costs more than these tiny steps
    pair = model.sample_pair(batch)
    for _ in range(3):
        g_before, d_before = bool(model.update_g.numpy()), bool(model.update_d.numpy())
        weights_g = [v.numpy() for v in model.generator_variables()]
        weights_d = [v.numpy() for v in model.discriminator_variables()]
        report = step(*pair)
        fake, real = float(report["errD_fake"]), float(report["errD_real"])
        moved_g = any(np.any(a != v.numpy()) for a, v in zip(weights_g, model.generator_variables()))
        moved_d = any(np.any(a != v.numpy()) for a, v in zip(weights_d, model.discriminator_variables()))
        assert moved_g == g_before and moved_d == d_before
        update_d = d_before and not (fake < 0.3 or real < 0.3)
        update_g = g_before and not (fake > 0.7 or real > 0.7)
        if not update_d and not update_g:
            update_d = update_g = True
        assert (bool(model.update_g.numpy()), bool(model.update_d.numpy())) == (update_g, update_d)
    # a flag switched off stays off while the other network trains
    model.update_g.assign(False)
    model.update_d.assign(True)
    weights_g = [v.numpy() for v in model.generator_variables()]
    step(*pair)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(weights_g, model.generator_variables()))


def test_pair_sampling_stays_inside_the_clip():
    rng = np.random.default_rng(2)
    model = small_model()
    batch = clip_batch(rng, length=6)
    batch["images"] = np.broadcast_to(np.arange(6, dtype=np.float32)[None, :, None, None, None] / 10,
                                      (2, 6, 16, 16, 3)).copy()
    gaps = []
    for _ in range(20):
        xt, xtpn, _, _ = model.sample_pair(batch)
        t = np.round((xt.numpy()[:, 0, 0, 0] + 1) / 2 * 10).astype(int)
        tpn = np.round((xtpn.numpy()[:, 0, 0, 0] + 1) / 2 * 10).astype(int)
        assert np.all(tpn > t) and np.all(tpn <= 5) and np.all(t >= 0)
        gaps += list(tpn - t)
    assert set(gaps) >= {1, 2, 3}
    short = small_model(steps=3)  # the original's --steps: gaps n ~ U{1..steps-1}
    gaps = set()
    for _ in range(10):
        xt, xtpn, _, _ = short.sample_pair(batch)
        t = np.round((xt.numpy()[:, 0, 0, 0] + 1) / 2 * 10).astype(int)
        gaps |= set(np.round((xtpn.numpy()[:, 0, 0, 0] + 1) / 2 * 10).astype(int) - t)
    assert gaps == {1, 2}


def test_perceptual_networks_from_files_in_the_original_layout(tmp_path):
    path = fx.write_alexnet_file(str(tmp_path / "alexnet" / "bvlc_alexnet.npy"))
    weights = perceptual.read_alexnet_file(path)
    assert weights["conv2"][0].shape == (5, 5, 48, 256)
    directory = fx.write_hourglass_dir(str(tmp_path / "hourglass"))
    params = perceptual.read_hourglass_dir(directory)
    assert len(params) == 414 and params[0].shape == (7, 7, 3, 64)
    # the Torch [O, I, H, W] -> [H, W, I, O] conversion
    raw = np.load(os.path.join(directory, "hourglass_weights_1.npy"))
    np.testing.assert_array_equal(params[0][2, 3, 1, 5], raw[5, 1, 2, 3])
    net = perceptual.HourglassFeatures(params)
    layers = net(tf.random.uniform((1, 32, 32, 3)))
    assert [tuple(l.shape) for l in layers] == [(1, 8, 8, 512), (1, 16, 16, 512), (1, 32, 32, 512), (1, 64, 64, 512)]
    conv5 = perceptual.AlexNetConv5(weights)(perceptual.alexnet_input(tf.random.uniform((1, 64, 64, 3))))
    assert conv5.shape == (1, 3, 3, 256)
    # grouped convolution = split + concat
    x = tf.random.normal((1, 5, 5, 4))
    k = tf.random.normal((3, 3, 2, 6))
    ref = tf.concat([tf.nn.conv2d(x[..., :2], k[..., :3], 1, "SAME"), tf.nn.conv2d(x[..., 2:], k[..., 3:], 1, "SAME")], 3)
    np.testing.assert_allclose(perceptual.grouped_conv(x, k, 1, 2).numpy(), ref.numpy(), atol=1e-5)


def test_perceptual_files_bad_input_is_named(tmp_path):
    directory = fx.write_hourglass_dir(str(tmp_path / "hourglass"))
    np.save(os.path.join(directory, "hourglass_weights_9.npy"), np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="hourglass_weights_9.npy has shape"):
        perceptual.read_hourglass_dir(directory)
    os.remove(os.path.join(directory, "hourglass_weights_800.npy"))
    with pytest.raises(ValueError, match="lacks 1 of the 800"):
        perceptual.read_hourglass_dir(directory)
    np.save(str(tmp_path / "plain.npy"), np.zeros(3))
    with pytest.raises(ValueError, match="plain"):
        perceptual.read_alexnet_file(str(tmp_path / "plain.npy"))
    bad = {"conv1": [np.zeros((11, 11, 3, 95), np.float32), np.zeros(96, np.float32)]}
    np.save(str(tmp_path / "bad.npy"), np.array(bad, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="conv1"):
        perceptual.read_alexnet_file(str(tmp_path / "bad.npy"))


def test_missing_perceptual_files_stop_training_with_one_line(tmp_path):
    model = small_model(alpha=1.0, beta=0.0, perceptual_models_dir=str(tmp_path))
    model.build_from_batch(clip_batch(np.random.default_rng(3)))  # generation still works
    with pytest.raises(ValueError) as info:
        model.make_optimizers()
    message = str(info.value)
    assert "\n" not in message and "download_perceptual_models.py" in message and "alpha=0,beta=0" in message
    small_model(alpha=0.0, beta=0.0, perceptual_models_dir=str(tmp_path)).make_optimizers()


def test_bad_hparams_and_inputs():
    with pytest.raises(ValueError, match="channel_order"):
        small_model(channel_order="grb")
    with pytest.raises(ValueError, match="layer"):
        small_model(layer=4)
    with pytest.raises(ValueError, match="output_activation"):
        small_model(output_activation="sigmoid")
    with pytest.raises(ValueError, match="'heatmaps'"):
        small_model()({"images": np.zeros((1, 5, 16, 16, 3), np.float32)})


def test_download_perceptual_models_resumes_verifies_and_checks(tmp_path):
    import io
    import tarfile

    from local_http_server import FileServer

    source = tmp_path / "source"
    fx.write_alexnet_file(str(source / "alexnet" / "bvlc_alexnet.npy"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(str(source / "alexnet"), arcname="alexnet")
    data = buffer.getvalue()
    with FileServer({"/alex.gz": data}, cut_once={"/alex.gz"}) as server:
        downloads = {"alexnet": (f"{server.url}/alex.gz", "alexnet.tar.gz", "alexnet/bvlc_alexnet.npy")}
        out = tmp_path / "models"
        checked = perceptual.download_perceptual_models(str(out), ("alexnet",), downloads=downloads, progress=False)
        assert checked["alexnet"]["conv5"][0].shape == (3, 3, 192, 256)
        assert [r for r in server.requests][1][1] is not None  # the dropped connection was resumed
        perceptual.download_perceptual_models(str(out), ("alexnet",), downloads=downloads, progress=False)
        assert len(server.requests) == 2  # already there: nothing fetched again
    model = small_model(alpha=1.0, perceptual_models_dir=str(out))
    model.make_optimizers()  # the files are found
