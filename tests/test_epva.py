"""EPVA family: parity with the original TF1 graph (stored reference), sizes, losses, training, errors.

``tests/data/epva/epva_reference.*`` hold outputs of the original ``prediction_model.py`` run under
``tf.compat.v1`` with the weights :func:`seeded_values` gives (tests/data/epva/README.md).
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.models.epva import EPVAVideoPredictionModel, quaternion_from_pose_angles

DATA = os.path.join(os.path.dirname(__file__), "data", "epva")


def seeded_values(shapes, seed):
    """Random weights by sorted TF1 name: kernels N(0, 1/fan_in), gammas 1 + N(0, 0.1²), other vectors N(0, 0.1²)."""
    rng = np.random.default_rng(seed)
    values = {}
    for name in sorted(shapes):
        shape = tuple(shapes[name])
        noise = rng.standard_normal(shape).astype(np.float32)
        if name.endswith("gamma"):
            values[name] = 1.0 + 0.1 * noise
        elif len(shape) >= 2:
            values[name] = noise / np.sqrt(np.prod(shape[:-1])).astype(np.float32)
        else:
            values[name] = 0.1 * noise
    return values


def make_inputs(seed, batch=2, frames=4):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch, frames, 64, 64, 3), dtype=np.uint8)
    actions = rng.standard_normal((batch, frames, 5)).astype(np.float32)
    poses = rng.standard_normal((batch, frames, 12)).astype(np.float32)
    return {"images": images.astype(np.float32) / 255.0, "actions": actions, "joint_poses": poses}


# The original's flags (parity.py) -> our hparams.
FLAG_TO_HPARAM = ("model_mode", "enc_size", "enc_pred_loss_scale", "enc_pred_loss_scale_delay", "enc_pred_use_l2norm",
                  "pred_noise_std", "use_legacy_vars")


def hparams_for(flags):
    hparams = dict(context_frames=2, sequence_length=4, batch_size=2, clip_gradient_norm=0.01)
    hparams.update({k: v for k, v in flags.items() if k in FLAG_TO_HPARAM})
    return hparams


@pytest.fixture(scope="module")
def reference():
    with open(os.path.join(DATA, "epva_reference.json")) as f:
        meta = json.load(f)
    return meta, dict(np.load(os.path.join(DATA, "epva_reference.npz")))


def converted_model(meta, config, batch):
    """Our model with the reference run's random weights assigned by the original's TF1 names."""
    info = meta[config]
    model = EPVAVideoPredictionModel(hparams=hparams_for(info["flags"]))
    model.build_from_batch(batch)
    names = model.tf1_variables()
    assert sorted(names) == sorted(info["shapes"])  # every original variable has exactly one counterpart
    for name, value in seeded_values(info["shapes"], info["seed"]).items():
        assert tuple(names[name].shape) == value.shape, name
        names[name].assign(value)
    model.global_step.assign(info["global_step"])
    return model


def _sampled(value):
    flat = np.asarray(value).reshape(-1)
    return flat[np.random.default_rng(0).choice(flat.size, 1024, replace=False)]


OUTPUTS = {"enc_out": "encodings", "pred_out": "predictions", "van_out": "gen_images", "masks": "masks",
           "van_on_enc": "van_on_enc", "pred_on_pose_out": "pred_on_pose", "van_on_pose": "van_on_pose"}


def compare_outputs(ref, config, outputs):
    """Max abs diff of every stored output of ``config``."""
    diffs = {}
    for key, ours_key in OUTPUTS.items():
        ours = np.asarray(outputs[ours_key]) if ours_key in outputs else None
        if f"{config}/{key}" in ref:
            diffs[key] = float(np.abs(ours - ref[f"{config}/{key}"]).max())
        elif f"{config}/{key}/sampled" in ref:
            diffs[key] = max(float(np.abs(_sampled(ours) - ref[f"{config}/{key}/sampled"]).max()),
                             float(np.abs(ours.mean(axis=(2, 3, 4)) - ref[f"{config}/{key}/frame_mean"]).max()))
    return diffs


LOSS_NAMES = {"van_loss": "van_loss", "van_on_enc_loss": "van_on_enc_loss", "enc_pred_loss": "enc_pred_loss",
              "pose_from_enc_loss_quant": "pose_from_enc_loss", "pose_from_pred_loss_quant": "pose_from_pred_loss",
              "pose_from_pred_on_pose_loss_quant": "pose_from_pred_on_pose_loss", "van_on_pose_loss": "van_on_pose_loss"}


def check_training_objectives(model, meta, ref, config, batch, alpha=None):
    """Losses and per-variable gradient norms of every optimizer against the original's train ops."""
    tf1_names = {id(v): name for name, v in model.tf1_variables().items()}
    with tf.GradientTape(persistent=True) as tape:
        outputs, losses, objectives = model.compute_objectives(batch, training=True, alpha=alpha)
    for original, ours in LOSS_NAMES.items():
        key = f"{config}/loss/{original}"
        if key in ref and ours in losses:
            assert float(losses[ours]) == pytest.approx(float(ref[key]), rel=1e-4, abs=1e-7), original
    train_ops = meta[config]["train_ops"]
    matched = 0
    for name in model.optimizers_needed():
        variables = model.optimizer_variables(name)
        names = sorted(tf1_names[id(v)] for v in variables)
        k = [i for i, op in enumerate(train_ops) if sorted(op["variables"]) == names and
             op["lr"] == pytest.approx(model.learning_rate(name))]
        assert len(k) == 1, (name, [sorted(op["variables"])[:3] for op in train_ops])
        k = k[0]
        assert (train_ops[k]["clip"] or 0) == (0 if name == "discrim" else model.hparams.clip_gradient_norm) or (
            name == "discrim")
        objective = objectives[name] if name != "discrim" else losses["discrim_total_loss"]
        assert float(objective) == pytest.approx(float(ref[f"{config}/train_op{k}/loss"]), rel=1e-4), name
        gradients = tape.gradient(objective, variables)
        for variable, gradient in zip(variables, gradients):
            key = f"{config}/train_op{k}/grad_norm/{tf1_names[id(variable)]}"
            expected = float(ref[key])
            # measured: <= 1.1e-4 relative with oneDNN on (as the reference), <= 4.6e-3 with TF_ENABLE_ONEDNN_OPTS=0
            assert float(tf.norm(gradient)) == pytest.approx(expected, rel=1e-2, abs=1e-6), key
        matched += 1
    assert matched == len(train_ops)
    return outputs, losses


@pytest.mark.parametrize("config", ["e2e", "epva", "individual"])
def test_parity_with_original(reference, config):
    meta, ref = reference
    batch = make_inputs(meta[config]["seed"])
    model = converted_model(meta, config, batch)
    outputs = model(batch, training=False)
    diffs = compare_outputs(ref, config, outputs)
    assert set(diffs) >= {"enc_out", "pred_out", "van_out", "masks", "van_on_enc"}
    assert max(diffs.values()) < 1e-4, diffs
    # meaningful: another input moves every compared output far beyond the tolerance
    other = dict(batch, images=batch["images"][::-1].copy(), joint_poses=batch["joint_poses"][::-1].copy())
    moved = compare_outputs(ref, config, model(other, training=False))
    assert min(moved.values()) > 1e-2, moved
    check_training_objectives(model, meta, ref, config, batch)


def test_gan_parity_with_original(reference):
    meta, ref = reference
    config = "epva_gan"
    batch = make_inputs(meta[config]["seed"])
    model = converted_model(meta, config, batch)
    alpha = tf.constant(np.linspace(0.2, 0.8, 2).reshape(2, 1, 1), tf.float32)
    outputs, losses = check_training_objectives(model, meta, ref, config, batch, alpha=alpha)
    for name in ("enc_pred_loss_gan", "enc_pred_loss_total", "discrim_total_loss"):
        assert float(losses[name]) == pytest.approx(float(ref[f"{config}/summary/{name}"]), rel=1e-4), name
    assert max(compare_outputs(ref, config, outputs).values()) < 1e-4


def test_parameter_counts_match_the_original(reference):
    meta, _ = reference
    # spec §3.5: counts of the original graph built under tf.compat.v1 (E=64 / E=12)
    for config, expected in (("epva_gan", dict(encoder=14845824, predict=1149466, van=7599192,
                                               Discriminator=2325313)),
                             ("individual", dict(encoder=14739276, predict=71922, van=7545944))):
        counts = {}
        for name, shape in meta[config]["shapes"].items():
            scope = name.split("/")[0] if name.startswith("Discriminator") else name.split("/")[1]
            counts[scope] = counts.get(scope, 0) + int(np.prod(shape))
        assert counts == expected


def test_quaternion_is_unit_and_matches_formula():
    angles = tf.constant([[0.3, -1.2], [2.0, 0.5]])
    q = quaternion_from_pose_angles(angles).numpy()
    np.testing.assert_allclose(np.sum(q ** 2, axis=1), 1.0, rtol=1e-6)
    b, c = 0.15, -0.6
    np.testing.assert_allclose(q[0], [-np.sin(b) * np.sin(c), np.sin(b) * np.cos(c), np.cos(b) * np.sin(c),
                                      np.cos(b) * np.cos(c)], rtol=1e-6)


def test_epva_loss_scale_ramp():
    model = EPVAVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=4, model_mode="epva",
                                                  enc_pred_loss_scale=0.1, enc_pred_loss_scale_delay=2e4))
    for step, expected in ((0, 0.1 * 4.5398e-5), (2e4, 0.05), (4e4, 0.1 * (1 - 4.5398e-5))):
        model.global_step.assign(int(step))
        assert float(model.enc_pred_loss_scale()) == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("hparams, message", [
    (dict(model_mode="epev"), "unknown model_mode"),
    (dict(model_mode="individual"), "needs enc_size == 12"),
    (dict(enc_keep_prob=0.0), "enc_keep_prob"),
    (dict(discrim_context=0), "discrim_context"),
    (dict(van_output_activation="sigmoid"), "van_output_activation must be one of linear, clip"),
    (dict(van_penultimate_activation="tanh"), "van_penultimate_activation must be one of relu, linear"),
    (dict(van_pixel_loss="huber"), "van_pixel_loss must be one of l2, l1"),
    (dict(model_mode="epva", epva_freeze_step=-1), "epva_freeze_step must be >= 0"),
    (dict(model_mode="e2e", epva_freeze_step=10), "epva_freeze_step is an option of model_mode 'epva'"),
    (dict(model_mode="epva", epva_freeze_step=10, epva_pred_decay_steps=-1), "epva_pred_decay_steps must be >= 0"),
    (dict(model_mode="epva", epva_pred_decay_steps=10), "decays the predictor's rate after epva_freeze_step"),
    (dict(pose_size=-1), "pose_size must be >= 0"),
    (dict(model_mode="individual", pose_size=2, enc_size=12), "needs enc_size == 2"),
])
def test_bad_hparams(hparams, message):
    with pytest.raises(ValueError, match=message):
        EPVAVideoPredictionModel(hparams=dict(dict(context_frames=2, sequence_length=4), **hparams))


def test_van_output_clip_is_straight_through():
    """van_output_activation='clip' (an option, not the original's): the composite clipped to [0, 1] forward,
    the linear output's gradient backward; the default ('linear') stays unclipped."""
    rng = np.random.default_rng(3)
    batch = {"images": rng.uniform(size=(2, 4, 32, 32, 1)).astype(np.float32)}
    models = {}
    for activation in ("linear", "clip"):
        model = EPVAVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=4, enc_size=8,
                                                      van_output_activation=activation))
        model.build_from_batch(batch)
        models[activation] = model
    last = models["linear"].van.decoder.deconvs[-1]
    last.kernel.assign(last.kernel * 50.0)  # colours far outside [0, 1]
    models["clip"].set_weights(models["linear"].get_weights())
    weights = tf.constant(rng.standard_normal((2, 3, 32, 32, 1)), tf.float32)
    grads, outputs = {}, {}
    for activation, model in models.items():
        with tf.GradientTape() as tape:
            outputs[activation] = model(batch)["gen_images"]
            loss = tf.reduce_sum(outputs[activation] * weights)
        grads[activation] = tape.gradient(loss, model.van.decoder.deconvs[-1].kernel)
    linear, clipped = outputs["linear"].numpy(), outputs["clip"].numpy()
    assert linear.min() < -0.5 and linear.max() > 1.5  # the test means something: the clip acts
    np.testing.assert_allclose(clipped, np.clip(linear, 0.0, 1.0), atol=1e-6)
    np.testing.assert_allclose(grads["clip"].numpy(), grads["linear"].numpy(), rtol=1e-4, atol=1e-6)
    assert np.abs(grads["linear"].numpy()).max() > 1e-3


def test_van_penultimate_activation():
    """The VAN decoder's (C+1)-channel layer before its output: ReLU by default (the original's), whose death (all
    pre-activations negative) leaves an output that ignores the encoding; 'linear' (an option) keeps it alive."""
    rng = np.random.default_rng(4)
    batch = {"images": rng.uniform(size=(2, 4, 32, 32, 1)).astype(np.float32)}
    spread = {}
    for activation in ("relu", "linear"):
        model = EPVAVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=4, enc_size=8,
                                                      van_penultimate_activation=activation))
        model.build_from_batch(batch)
        layer = model.van.decoder.deconvs[5]
        assert layer.activation.__name__ == activation
        layer.bias.assign(layer.bias - 1e3)  # every pre-activation negative: a dead ReLU layer
        output_layer = model.van.decoder.deconvs[6]
        output_layer.kernel.assign(output_layer.kernel * 1e-4)  # the mask's sigmoid not saturated by the shift
        first_enc = model.encoder(batch["images"][:, 0])
        images = [model.van(first_enc, batch["images"][:, 0], tf.constant(rng.standard_normal((2, 8)), tf.float32))[0]
                  for _ in range(2)]
        spread[activation] = float(np.abs(images[0].numpy() - images[1].numpy()).max())
    assert spread["relu"] == 0.0  # dead: the output is the same for any encoding
    assert spread["linear"] > 1e-5  # (the output layer scaled by 1e-4; the dead case is exactly 0)


def test_van_pixel_loss():
    """van_pixel_loss: 'l2' (the original's) is the mean squared error of the VAN's frames, 'l1' (an option) the mean
    absolute error, for van_loss and van_on_enc_loss alike; enc_pred_loss does not change."""
    rng = np.random.default_rng(5)
    batch = {"images": rng.uniform(size=(2, 4, 32, 32, 1)).astype(np.float32)}
    losses, outputs = {}, None
    for kind in ("l2", "l1"):
        model = EPVAVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=4, enc_size=8,
                                                      van_pixel_loss=kind))
        model.build_from_batch(batch)
        if outputs is None:
            weights = model.get_weights()
            outputs = model(batch)
        model.set_weights(weights)
        losses[kind] = {k: float(v) for k, v in model.named_losses(batch, outputs).items()}
    errors = {name: outputs[name].numpy() - batch["images"][:, 1:] for name in ("gen_images", "van_on_enc")}
    for name, loss in (("gen_images", "van_loss"), ("van_on_enc", "van_on_enc_loss")):
        assert losses["l2"][loss] == pytest.approx(np.mean(errors[name] ** 2), rel=1e-5)
        assert losses["l1"][loss] == pytest.approx(np.mean(np.abs(errors[name])), rel=1e-5)
        assert abs(losses["l1"][loss] - losses["l2"][loss]) > 0.05 * losses["l2"][loss]  # far more than rel 1e-5
    assert losses["l1"]["enc_pred_loss"] == losses["l2"]["enc_pred_loss"]


def test_epva_van_loss_weight():
    """epva_van_loss_weight (an option, default 0 = the original's epva objective): adds weight * van_loss."""
    losses = {"enc_pred_loss": tf.constant(2.0), "van_on_enc_loss": tf.constant(0.5), "van_loss": tf.constant(0.25)}
    objectives = {}
    for weight in (0.0, 3.0):
        model = EPVAVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=4, model_mode="epva",
                                                      enc_pred_loss_scale=0.1, epva_van_loss_weight=weight))
        scale = float(model.enc_pred_loss_scale())
        objectives[weight] = float(model.objectives(losses)["all"])
        assert objectives[weight] == pytest.approx(2.0 * scale + 0.5 + weight * 0.25, rel=1e-6)
    assert objectives[3.0] - objectives[0.0] == pytest.approx(0.75, rel=1e-5)


def test_epva_freeze_step():
    """epva_freeze_step (an option; 0 = the original's one optimizer): the predictor has its own Adam
    (pred_learning_rate); before the freeze step encoder, predictor and VAN all move, from it on only the predictor.
    Run as the training loop runs it (strategy.run inside a tf.function): the optimizers' cross-replica sums must
    stay outside the tf.cond that skips the frozen gradients.  epva_pred_decay_steps=2: the predictor's rate falls
    from the freeze step to 0 over 2 steps (cosine: 1e-3, then 5e-4, then 0)."""
    from video_prediction.training.fault_tolerance import RunState, make_train_function

    rng = np.random.default_rng(3)
    batch = {"images": rng.uniform(0, 1, (2, 4, 32, 32, 1)).astype(np.float32)}
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = EPVAVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=4, model_mode="epva",
                                                      enc_size=8, pred_depth=2, enc_pred_loss_scale=1.0,
                                                      epva_freeze_step=1, pred_learning_rate=1e-3,
                                                      epva_pred_decay_steps=2,
                                                      all_learning_rate=1e-4))
        model.build_from_batch(batch)
        model.make_optimizers()
        model.build_optimizers()
        run_state = RunState(0)
    assert set(model.optimizers) == {"all", "pred"}
    assert model.optimizers["pred"].learning_rate.numpy() == pytest.approx(1e-3)
    assert model.optimizers["all"].learning_rate.numpy() == pytest.approx(1e-4)
    all_ids = {id(v) for v in model.optimizer_variables("all")}
    assert all_ids == {id(v) for v in model.encoder.trainable_variables + model.van.trainable_variables}
    assert not all_ids & {id(v) for v in model.optimizer_variables("pred")}
    train_function = make_train_function(model, strategy, run_state)
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    groups = {"enc": model.encoder, "pred": model.predictor, "van": model.van}
    for expected_moving, pred_rate in (({"enc", "pred", "van"}, 1e-3), ({"pred"}, 1e-3), ({"pred"}, 5e-4)):
        assert model.optimizers["pred"].learning_rate.numpy() == pytest.approx(pred_rate)
        before = {k: [v.numpy() for v in layer.trainable_variables] for k, layer in groups.items()}
        train_function(iterator)
        moved = {k for k, layer in groups.items()
                 if any(np.abs(v.numpy() - b).max() > 0 for v, b in zip(layer.trainable_variables, before[k]))}
        assert moved == expected_moving
    assert int(model.global_step.numpy()) == 3
    assert model.optimizers["all"].learning_rate.numpy() == 0.0
    assert model.optimizers["pred"].learning_rate.numpy() == pytest.approx(0.0, abs=1e-12)


def test_pose_key_and_size():
    """pose_key / pose_size (options; the original's pose is the robot's 12 values in joint_poses): `individual` on
    Moving MNIST's digit centres [B, T, 1, 2], flattened to 2 values; the pose losses are then plain MSEs, the
    pose pass and van_on_pose run, a rollout sees the context poses only, and a size mismatch is one clear line."""
    rng = np.random.default_rng(6)
    poses = rng.uniform(0.2, 0.8, (2, 4, 1, 2)).astype(np.float32)
    batch = {"images": rng.uniform(size=(2, 4, 32, 32, 1)).astype(np.float32), "poses": poses}
    model = EPVAVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=4, model_mode="individual",
                                                  enc_size=2, pose_size=2, pose_key="poses", pred_depth=2))
    model.build_from_batch(batch)
    assert model.has_pose_pass and model.pose_size == 2
    outputs = model(batch)
    assert outputs["pred_on_pose"].shape == (2, 3, 2) and outputs["van_on_pose"].shape == (2, 3, 32, 32, 1)
    losses = model.named_losses(batch, outputs)
    flat = poses.reshape(2, 4, 2)
    assert float(losses["pose_from_enc_loss"]) == pytest.approx(np.mean((outputs["encodings"].numpy() - flat) ** 2),
                                                                rel=1e-5)
    assert float(losses["pose_from_pred_on_pose_loss"]) == pytest.approx(
        np.mean((outputs["pred_on_pose"].numpy() - flat[:, 1:]) ** 2), rel=1e-5)
    assert set(model.objectives(losses)) == {"enc", "pred", "van"}
    inputs = model.rollout_inputs(batch, 2)
    np.testing.assert_array_equal(inputs["poses"][:, :2], poses[:, :2])
    assert not np.asarray(inputs["poses"][:, 2:]).any()  # the future poses are zeroed
    with pytest.raises(ValueError, match=r"the batch's poses have 4 values per frame .* pose size is 2"):
        model(dict(batch, poses=np.zeros((2, 4, 2, 2), np.float32)))


def test_bad_frame_size():
    model = EPVAVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=4))
    with pytest.raises(ValueError, match="multiple of 32"):
        model.build_from_batch({"images": np.zeros((1, 4, 48, 48, 3), np.float32)})


# ------------------------------------------------------------------------------------------------
# Checkpoint conversion and warm starts
# ------------------------------------------------------------------------------------------------


def write_tf1_checkpoint(prefix, values):
    """A TF1 (Saver) checkpoint holding ``values`` under their names, written with tf.compat.v1."""
    with tf.Graph().as_default():
        variables = [tf.compat.v1.Variable(value, name=name) for name, value in values.items()]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, prefix)


def test_name_map_covers_every_original_variable(reference):
    """Noise dense and the critic (EPVA-GAN with pred_noise_std) are named exactly as in the original graph."""
    meta, _ = reference
    info = meta["names_noise_l2"]
    model = EPVAVideoPredictionModel(hparams=hparams_for(info["flags"]))
    model.build_from_batch(make_inputs(0, batch=1))
    names = model.tf1_variables()
    assert sorted(names) == sorted(info["shapes"])
    assert all(tuple(names[n].shape) == tuple(s) for n, s in info["shapes"].items())


def test_convert_legacy_e2e_checkpoint(reference, tmp_path):
    """e2e_human layout: E=32, unnamed back-connection variable, Adam slots, counters, global step."""
    from video_prediction.conversion.bookkeeping import ConversionError
    from video_prediction.conversion.epva import convert_checkpoint
    from video_prediction.training.building import load_model

    meta, _ = reference
    info = meta["names_legacy_e32"]
    values = seeded_values(info["shapes"], 7)
    legacy = [n for n in info["shapes"] if "predict/Variable" in n]
    assert len(legacy) == 1  # the original graph's unnamed back-connection
    extras = {name: np.zeros(shape, np.float32) for name, (shape, dtype) in info["other"].items()
              if dtype == "float32" and shape}
    extras.update({"timestep/predict/dense/kernel/Adam": np.ones_like(values["timestep/predict/dense/kernel"]),
                   "global_step": np.int64(1234), "Variable": np.int32(3), "beta1_power": np.float32(0.9)})
    original = tmp_path / "e2e_human"
    original.mkdir()
    write_tf1_checkpoint(str(original / "model.ckpt-1234"), dict(values, **extras))
    model = convert_checkpoint(str(original), str(tmp_path / "converted"),
                               model_hparams=dict(model_mode="e2e", use_legacy_vars=True))
    assert model.hparams.enc_size == 32 and int(model.global_step.numpy()) == 1234
    names = model.tf1_variables()
    names[legacy[0]] = names.pop("timestep/predict/Variable")
    for name, value in values.items():
        np.testing.assert_array_equal(names[name].numpy(), value, err_msg=name)
    loaded, options, _ = load_model(str(tmp_path / "converted"))
    assert options["model"] == "epva" and loaded.hparams.enc_size == 32
    np.testing.assert_array_equal(loaded.predictor.stack.back_connect_init.numpy(), values[legacy[0]])
    # a variable the model cannot place is named
    write_tf1_checkpoint(str(original / "model.ckpt-1235"), dict(values, **{"timestep/van/extra/kernel":
                                                                           np.zeros((2, 2), np.float32)}))
    with pytest.raises(ConversionError, match="timestep/van/extra/kernel"):
        convert_checkpoint(str(original), str(tmp_path / "converted2"), model_hparams=dict(model_mode="e2e"))


def test_warm_start_from_original_epva_checkpoint(reference, tmp_path):
    """epv_pretrain_ckpt: encoder/predictor/VAN copied by name; noise_dense, back_connect_init, critic fresh."""
    from video_prediction.conversion.epva import load_warm_start

    meta, _ = reference
    shapes = {n: s for n, s in meta["names_noise_l2"]["shapes"].items()
              if not n.startswith("Discriminator") and "noise_dense" not in n}
    values = seeded_values(shapes, 3)
    write_tf1_checkpoint(str(tmp_path / "model.ckpt-5"), values)
    model = EPVAVideoPredictionModel(hparams=hparams_for(meta["names_noise_l2"]["flags"]))
    model.build_from_batch(make_inputs(0, batch=1))
    names = model.tf1_variables()
    before = {n: v.numpy().copy() for n, v in names.items()}
    copied = load_warm_start(model, str(tmp_path))
    assert "timestep/predict/back_connect_init" not in copied
    for name, variable in names.items():
        if name in copied:
            np.testing.assert_array_equal(variable.numpy(), values[name])
        else:
            assert "noise_dense" in name or "back_connect_init" in name or name.startswith("Discriminator"), name
            np.testing.assert_array_equal(variable.numpy(), before[name])


def test_imagenet_vgg_loaders(tmp_path):
    """slim vgg_16.ckpt by name (fc layers skipped); torchvision weights with the normalisation folded in."""
    from video_prediction.layers.vgg import VGG16Trunk
    from video_prediction.models.epva import VGG_MEANS
    from video_prediction.models.epva_pretrained import (TORCHVISION_MEAN, TORCHVISION_STD, load_slim_vgg16,
                                                         load_torchvision_vgg16)

    vgg = VGG16Trunk()
    vgg(tf.zeros((1, 32, 32, 3)))
    shapes = {name: tuple(v.shape) for name, v in vgg.tf1_variables().items()}
    values = seeded_values(shapes, 5)
    prefix = write_tf1_checkpoint(str(tmp_path / "vgg_16.ckpt"),
                                  dict(values, **{"vgg_16/fc8/weights": np.zeros((1, 1, 4, 2), np.float32)}))
    load_slim_vgg16(vgg, prefix)
    for name, variable in vgg.tf1_variables().items():
        np.testing.assert_array_equal(variable.numpy(), values[name])
    # torchvision: the folded first layer on 256 x - mean equals the original layer on (x - mu) / sigma
    arrays = {f"{name.split('/')[2]}/{'kernel' if name.endswith('weights') else 'bias'}": value
              for name, value in values.items()}
    np.savez(tmp_path / "lpips_vgg.npz", **arrays)
    load_torchvision_vgg16(vgg, str(tmp_path / "lpips_vgg.npz"))
    x = np.random.default_rng(0).uniform(size=(1, 8, 8, 3)).astype(np.float32)
    conv = vgg.convs[0]
    ours = conv(x * 256.0 - np.array(VGG_MEANS, np.float32)).numpy()
    torch_input = (x - TORCHVISION_MEAN) / TORCHVISION_STD
    expected = tf.nn.relu(tf.nn.conv2d(torch_input, arrays["conv1_1/kernel"], 1, "SAME")
                          + arrays["conv1_1/bias"]).numpy()
    np.testing.assert_allclose(ours[:, 1:-1, 1:-1], expected[:, 1:-1, 1:-1], atol=1e-4)  # exact off the border
    assert np.abs(ours[:, 0] - expected[:, 0]).max() > 1e-4  # the documented border difference


# ------------------------------------------------------------------------------------------------
# Training: one device vs two logical CPUs after an EPVA-GAN step (DESIGN.md's distribution rule)
# ------------------------------------------------------------------------------------------------

@pytest.mark.slow  # ~3 min idle (two VGG-16 GAN graphs traced, one per strategy); 8 min at load 10
def test_gan_step_one_vs_two_devices():
    """1 generator step (two optimizers) + 2 critic steps: same weights on one device and two replicas.

    The gradient penalty is off (its per-example alpha is drawn per replica, a different stream).
    Measured: <= 7.6e-6 abs on critic weights that moved by 0.07-0.3 (two SGD critic steps of float noise).
    """
    from two_replica_step import one_vs_two_devices

    hparams = dict(context_frames=2, sequence_length=3, batch_size=4, model_mode="epva_gan", enc_size=8,
                   discrim_steps_per_pred=2, gradient_penalty_weight=0.0, clip_gradient_norm=0.05)
    report = one_vs_two_devices(
        "video_prediction.models.epva:EPVAVideoPredictionModel", hparams,
        make_batch='batch = {"images": rng.uniform(size=(4, 3, 32, 32, 3)).astype(np.float32)}',
        # the model clips each tensor after the cross-replica sum
        swap_optimizers="""
            model.optimizers = {name: keras.optimizers.SGD(0.1) for name in model.optimizers}
            model.compile(optimizer=model.optimizers["pred"])""",
        rtol=1e-4, atol=2e-5, timeout=900)
    assert report["steps"] == [1, 1]  # the global step counts generator steps
    assert report["changed"] > 50
    assert report["mismatch"] == [], report
    for key, value in report["losses_one"].items():
        assert value == pytest.approx(report["losses_two"][key], rel=1e-4, abs=1e-6), key


def test_long_rollout_and_inference_extras(tmp_path):
    """Length-agnostic: trained length 4, generate 12 frames; VAN masks / van_on_enc GIFs through the family hook."""
    from video_prediction.inference.extras import InferenceSettings, extras_for

    model = EPVAVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=4, enc_size=8, pred_noise_std=1.0))
    rng = np.random.default_rng(0)
    batch = {"images": rng.uniform(size=(2, 4, 32, 32, 1)).astype(np.float32)}
    model.build_from_batch(batch)
    samples = model.generate(batch, num_samples=2, horizon=12)
    assert samples.shape == (2, 2, 12, 32, 32, 1)
    assert np.isfinite(np.asarray(samples)).all()
    samples = np.asarray(samples)
    assert np.abs(samples[:, 0] - samples[:, 1]).max() > 0  # pred_noise_std: stochastic samples
    extras = extras_for(model)
    message = extras.write_video_outputs(batch["images"][0], str(tmp_path), InferenceSettings(horizon=6))
    assert "mask" in message and os.path.exists(tmp_path / "van" / "masks_00000.gif")

    from video_prediction.inference.extras.epva import write_van_outputs

    assert write_van_outputs(model, batch, str(tmp_path / "ds"), save_arrays=True) == 2
    with np.load(tmp_path / "ds" / "van_00001.npz") as arrays:
        assert arrays["masks"].shape == (3, 32, 32, 1) and arrays["van_on_enc"].shape == (3, 32, 32, 1)
        assert arrays["masks"].max() == pytest.approx(1.0)  # divided by the per-example maximum
    assert os.path.exists(tmp_path / "ds" / "van_on_enc_00000.gif")


EPVA_RECIPES = ("human36m/e2e", "human36m/epva", "human36m/epva_gan", "human36m/epva_single_gpu", "robot_push/e2e",
                "robot_push/epva", "robot_push/individual", "moving_mnist/epva_quickstart")


@pytest.mark.parametrize("recipe", EPVA_RECIPES)
def test_recipe_files_resolve(recipe):
    """Every recipe's hparams are valid for the model (no unknown key or wrong type) and the model accepts them."""
    root = os.path.join(os.path.dirname(__file__), "..", "hparams", recipe)
    with open(os.path.join(root, "dataset_hparams.json")) as f:
        lengths = json.load(f)
    model = EPVAVideoPredictionModel(os.path.join(root, "model_hparams.json"),
                                     hparams={k: lengths[k] for k in ("context_frames", "sequence_length")})
    assert model.hparams.model_mode in recipe or recipe.endswith(("epva_single_gpu", "epva_quickstart"))
    assert model.hparams.epv_pretrain_ckpt in ("", "pretrained_models/human36m/epva")


def test_latent_mode_mean_takes_the_predictor_noise_at_its_mean():
    """--latent_mode mean: the noise input is 0 (only noise_dense's bias remains): identical samples, equal to a
    rollout whose noise is zeroed by hand; switching back samples again."""
    from video_prediction.cli import apply_latent_mode

    model = EPVAVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=4, enc_size=8, pred_noise_std=1.0))
    rng = np.random.default_rng(1)
    batch = {"images": rng.uniform(size=(2, 4, 32, 32, 1)).astype(np.float32)}
    model.build_from_batch(batch)
    spread = lambda samples: float(np.abs(np.asarray(samples) - np.asarray(samples)[:, :1]).max())
    assert spread(model.generate(batch, num_samples=3)) > 1e-3
    apply_latent_mode(model, "mean")
    mean = np.asarray(model.generate(batch, num_samples=3))
    assert spread(mean) < 5e-5  # float reordering between the tiled copies only (measured 4e-6)
    model.predictor.noise_at_mean = True  # the same rollout eagerly, noise zeroed by hand
    expected = model._generated_frames(model.rollout_inputs(batch, 2)).numpy()
    model.predictor.noise_at_mean = False
    np.testing.assert_allclose(mean[:, 0], expected[:, 1:3], atol=1e-5)
    apply_latent_mode(model, "sample")
    assert spread(model.generate(batch, num_samples=3)) > 1e-3
