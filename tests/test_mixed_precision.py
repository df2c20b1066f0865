"""``mixed_precision`` (float32 | bfloat16 | float16) for every trainable family (issue 18, precision.py).

For each family: one train step in bfloat16 from the same weights (and the same random draws: eager, seeds
reset) gives the float32 step's losses within a tolerance (measured difference in the comments; a different
input batch changes the loss by far more); variables stay float32 while the layers compute in bfloat16;
float16 wraps every optimizer in a LossScaleOptimizer, and a float16 step runs for the families with their own
loss scaling, clipping or gating.  hierarchical_pose has no training (it chains trained pose_lstm and
pose_analogy runs, each with its own precision).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from test_baselines_sv2p_sna import tiny_batch
from video_prediction.models import get_model_class
from video_prediction.models import precision as vp_precision


def _moving_square(batch_size, length, size, channels, seed, actions=False):
    """A bright 5-px square moving one pixel per frame on a dim noisy background (the tolerances were measured
    on these inputs)."""
    return tiny_batch(batch_size, length, size, channels, actions=actions, seed=seed, square=5, background=0.2)


def _poses(seed, length, size=16, joints=3):
    rng = np.random.default_rng(seed)
    return {"images": tf.constant(rng.uniform(size=(2, length, size, size, 3)), tf.float32),
            "poses": tf.constant(rng.uniform(2, size - 2, (2, length, joints, 2)), tf.float32),
            "pose_visibility": tf.ones((2, length, joints), tf.float32)}


def _mspred_batch(seed):
    rng = np.random.default_rng(seed)
    batch = _moving_square(2, 11, 16, 1, seed)
    batch.update({f"heatmaps_level{i}": tf.constant(rng.uniform(size=(2, 11, 16, 16, 1)), tf.float32)
                  for i in (1, 2)})
    return batch


# family -> (model name, hparams, batch(seed)); tiny shapes, every loss term of the family switched on where
# it is cheap (KL, GAN).
CASES = {
    "savp": ("savp", dict(context_frames=2, sequence_length=5, ngf=8, ndf=4, nef=8, nz=4, clip_length=4,
                          batch_size=2, kl_weight=0.01, kl_anneal="none", l1_weight=1.0, l2_weight=0.0,
                          video_sn_vae_gan_weight=0.1),
             lambda seed: _moving_square(2, 5, 32, 1, seed)),
    "sv2p": ("sv2p", dict(context_frames=2, sequence_length=4, batch_size=2),
             lambda seed: _moving_square(2, 4, 16, 3, seed, actions=True)),
    "sna": ("sna", dict(context_frames=2, sequence_length=4, batch_size=2),
            lambda seed: _moving_square(2, 4, 16, 3, seed, actions=True)),
    "mspred": ("mspred", dict(context_frames=3, sequence_length=11, num_preds=2, periods=[1, 2, 4], num_filters=4,
                              dim=32, hidden_dim=8, num_layers=[1, 1, 1], latent_dim=2, prior_hidden_dim=4,
                              posterior_hidden_dim=4, num_channels=1, steps_per_epoch=2, num_epochs=3,
                              batch_size=2),
               _mspred_batch),
    "epva": ("epva", dict(context_frames=2, sequence_length=3, batch_size=1, enc_size=8),
             lambda seed: _moving_square(1, 3, 32, 1, seed)),
    "pose_lstm": ("pose_lstm", dict(context_frames=3, sequence_length=7, batch_size=2, lstm_units=8,
                                    lm_enc_units=4, num_landmarks=3),
                  lambda seed: _poses(seed, 7)),
    "pose_analogy": ("pose_analogy", dict(context_frames=2, sequence_length=5, batch_size=2, alpha=0.0, beta=0.0,
                                          gf_dim=4, df_dim=4, num_joints=3),
                     lambda seed: _poses(seed, 5)),
    "vqvae": ("vqvae", dict(context_frames=2, sequence_length=4, ch=8, ch_mult=[1, 2], num_res_blocks=1,
                            attn_resolutions=[8], resolution=16, z_channels=8, embed_dim=4, n_embed=16, num_groups=4,
                            batch_size=2, grad_updates_per_step=1, perceptual_weight_2d=0.0, input_mean=[0.5],
                            input_std=[0.25]),
              lambda seed: _moving_square(2, 4, 16, 1, seed)),
}


STAGE1 = dict(context_frames=2, sequence_length=4, ch=8, ch_mult=[1, 2, 2], num_res_blocks=1, attn_resolutions=[],
              resolution=16, z_channels=8, embed_dim=4, n_embed=16, num_groups=4, batch_size=4,
              grad_updates_per_step=1, perceptual_weight_2d=0.0, input_mean=[0.5], input_std=[0.25])
CASES["vqvae_transformer"] = ("vqvae_transformer", dict(context_frames=2, sequence_length=4, d_model=16, num_layers=2,
                                                        num_heads=2, dropout=0.0, batch_size=2),
                              lambda seed: _moving_square(2, 4, 16, 1, seed))


@pytest.fixture(scope="module")
def first_stage_dir(tmp_path_factory):
    """A tiny float32 vqvae run directory (the frozen first stage of vqvae_transformer)."""
    from video_prediction.conversion.bookkeeping import write_run_directory

    directory = tmp_path_factory.mktemp("stage1")
    keras.utils.set_random_seed(0)
    model = get_model_class("vqvae")(hparams=STAGE1)
    model.build_from_batch({"images": tf.zeros([1, 4, 16, 16, 1])})
    model.quantize.embedding.assign(tf.random.stateless_normal([16, 4], seed=[0, 1]) * 0.5)
    write_run_directory(str(directory), model, dict(dataset="moving_mnist", model="vqvae", image_shape=[16, 16, 1]),
                        dict(context_frames=2, sequence_length=4))
    return str(directory)


def make_model(family, precision, weights=None, first_stage=None):
    name, hparams, batch_fn = CASES[family]
    hparams = dict(hparams, mixed_precision=precision)
    if family == "vqvae_transformer":
        hparams["first_stage_checkpoint"] = first_stage
    keras.utils.set_random_seed(0)
    model = get_model_class(name)(hparams=hparams)
    batch = batch_fn(0)
    model.build_from_batch(batch)
    model.make_optimizers()
    model.build_optimizers()
    if weights is not None:
        model.set_weights(weights)
    return model, batch


def one_step(model, batch):
    """The losses of one eager train step, with every random draw reset."""
    keras.utils.set_random_seed(1)
    logs = model.train_step(batch)
    return {k: float(v) for k, v in logs.items()}


def other_batch(family):
    """A clearly different input: every frame independent uniform noise (the other keys from another seed)."""
    batch = dict(CASES[family][2](1))
    batch["images"] = tf.random.stateless_uniform(batch["images"].shape, seed=[3, 4])
    return batch


# Relative tolerance of the bfloat16 step's total loss against float32's, a few times the difference measured
# (in parentheses, with the other input's relative change) with these shapes and weights; the loss of the other
# input differs by more than 5x the tolerance.
RTOL = {"savp": 1.5e-3,  # (3.2e-4; the other input: 31%)
        "sv2p": 3e-3,  # (8.2e-4; 104%)
        "sna": 3e-3,  # (7.7e-4; 72%)
        "mspred": 6e-4,  # (1.5e-4; 8.9%)
        "epva": 1e-2,  # (2.5e-3: 13 VGG convs and 21 stacked LSTMs; 51%)
        "pose_lstm": 3e-4,  # (7.1e-5; 11%)
        "pose_analogy": 4e-4,  # (9.5e-5; 0.87%)
        "vqvae": 2e-3,  # (4.4e-4; 20%)
        "vqvae_transformer": 6e-3}  # (2.6e-3 with the sharpened logits; 3.5%)

# family -> (a layer that must compute in bfloat16, a layer that must stay float32 or None)
LAYERS = {"savp": lambda m: (m.cell.h0, None),
          "sv2p": lambda m: (m.cell.scale1_conv1, None),
          "sna": lambda m: (m.cell.scale1_conv1, None),
          "mspred": lambda m: (m.encoder, None),
          "epva": lambda m: (m.encoder.vgg, None),
          "pose_lstm": lambda m: (m.cell, None),
          "pose_analogy": lambda m: (m.decoder, None),
          "vqvae": lambda m: (m.encoder.conv_in, m.quantize),  # distances and codebook stay float32
          "vqvae_transformer": lambda m: (m.transformer, None)}


def _sharpen(model, family):
    """Larger weights where the original's initialisers make the output nearly constant, so that the loss
    depends on the computation (its rounding and its input): pose_lstm's predictions are ~1e-4, pose_analogy's
    decoder output ~0 (seven narrow glorot layers), vqvae_transformer's logits nearly uniform."""
    if family == "pose_lstm":
        for layer in (model.lm_enc, model.decoder):
            layer.kernel.assign(layer.kernel * 30.0)
    elif family == "pose_analogy":
        for _, layer in model.decoder.deconvs:
            layer.kernel.assign(layer.kernel * 2.0)
    elif family == "vqvae_transformer":
        model.transformer.head.kernel.assign(model.transformer.head.kernel * 10.0)


@pytest.mark.parametrize("family", list(CASES))
def test_bfloat16_step_matches_float32(family, first_stage_dir):
    reference, batch = make_model(family, "float32", first_stage=first_stage_dir)
    _sharpen(reference, family)
    weights = reference.get_weights()
    mixed, _ = make_model(family, "bfloat16", weights, first_stage=first_stage_dir)
    assert keras.config.dtype_policy().name == "float32"  # the model's policy did not leak
    assert mixed.precision == "bfloat16" and mixed.dtype_policy.name == "float32"  # the model object itself
    low, high = LAYERS[family](mixed)
    assert low.compute_dtype == "bfloat16"
    assert high is None or high.compute_dtype == "float32"
    assert all(v.dtype == "float32" for v in mixed.weights if "float" in str(v.dtype))  # checkpoints unchanged
    assert [v.dtype for v in mixed.weights] == [v.dtype for v in reference.weights]

    expected, actual = one_step(reference, batch), one_step(mixed, batch)
    tolerance = RTOL[family] * abs(expected["loss"])
    difference = abs(actual["loss"] - expected["loss"])
    reference.set_weights(weights)
    other = one_step(reference, other_batch(family))
    print(f"{family}: float32 {expected['loss']:.6g}, bfloat16 {actual['loss']:.6g} (relative "
          f"{difference / abs(expected['loss']):.2g}), other input {other['loss']:.6g}")
    assert difference <= tolerance
    assert abs(other["loss"] - expected["loss"]) > 5 * tolerance  # the comparison can fail
    assert all(np.isfinite(v) for v in actual.values())


@pytest.mark.parametrize("family", list(CASES))
def test_float16_wraps_every_optimizer_in_a_loss_scale_optimizer(family, first_stage_dir):
    name, hparams, _ = CASES[family]
    hparams = dict(hparams, mixed_precision="float16")
    if family == "vqvae_transformer":
        hparams["first_stage_checkpoint"] = first_stage_dir
    model = get_model_class(name)(hparams=hparams)
    model.make_optimizers()
    optimizers = model.optimizers_by_name()
    assert optimizers and all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in optimizers.values())


# A float16 train step (CPU float16 kernels are emulated and slow): the families whose steps scale, clip or
# gate several optimizers (savp's D and G, epva's per-tensor clipping over several optimizers, pose_lstm's
# global-norm clipping, pose_analogy's gated Adams) and the shared SAVP-family step (sv2p).
@pytest.mark.parametrize("family", ["savp", "sv2p", "epva", "pose_lstm", "pose_analogy"])
def test_float16_step_runs(family):
    model, batch = make_model(family, "float16")
    optimizers = model.optimizers_by_name()
    before = [v.numpy() for v in model.trainable_variables]
    scales = [float(o.dynamic_scale) for o in optimizers.values()]
    logs = one_step(model, batch)
    assert all(np.isfinite(v) for v in logs.values())
    changed = any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))
    halved = [float(o.dynamic_scale) == s / 2 for o, s in zip(optimizers.values(), scales)]
    # Either an update was applied, or (float16 overflow of the scaled gradients: epva's, at the initial
    # scale 2^15) the step was skipped and the scale halved, as the dynamic loss scale must.
    assert changed or all(halved)
    assert all(v.dtype == "float32" for v in model.trainable_variables)


def test_bad_value_is_one_line_error():
    name, hparams, _ = CASES["pose_lstm"]
    with pytest.raises(ValueError, match=r"^mixed_precision must be one of float32, bfloat16, float16; "
                                         r"got 'fp8'$"):
        get_model_class(name)(hparams=dict(hparams, mixed_precision="fp8"))
    assert keras.config.dtype_policy().name == "float32"


def test_mixed_float16_is_a_deprecated_alias():
    model = get_model_class("vqvae")(hparams=dict(CASES["vqvae"][1], mixed_float16=True))
    assert model.precision == "float16"
    assert isinstance(model.wrap_optimizer(keras.optimizers.Adam()), keras.optimizers.LossScaleOptimizer)
    with pytest.raises(ValueError, match="contradicts mixed_precision=bfloat16"):
        get_model_class("vqvae")(hparams=dict(CASES["vqvae"][1], mixed_float16=True, mixed_precision="bfloat16"))
    assert get_model_class("vqvae")(hparams=CASES["vqvae"][1]).precision == "float32"
    assert vp_precision.wrap_optimizer(keras.optimizers.Adam(), "bfloat16").__class__ is keras.optimizers.Adam


def test_hierarchical_pose_passes_its_precision_to_the_runs_it_chains(tmp_path):
    from video_prediction.conversion.bookkeeping import write_run_directory

    batch = _poses(0, 6)
    common = dict(context_frames=3, sequence_length=6, batch_size=2)
    runs = {"pose_lstm": dict(common, lstm_units=8, num_landmarks=3),
            "pose_analogy": dict(common, gf_dim=4, df_dim=4, alpha=0.0, beta=0.0, num_joints=3)}
    for name, hparams in runs.items():
        model = get_model_class(name)(hparams=hparams)
        model.build_from_batch(batch)
        write_run_directory(str(tmp_path / name), model, dict(dataset="moving_mnist_pose", input_dir=None,
                                                              image_shape=[16, 16, 3], model=name), {})
    outputs = {}
    for precision in ("float32", "bfloat16"):
        model = get_model_class("hierarchical_pose")(hparams=dict(
            context_frames=3, sequence_length=6, pose_checkpoint=str(tmp_path / "pose_lstm"),
            image_checkpoint=str(tmp_path / "pose_analogy"), heatmap_sigma=2.0, mixed_precision=precision))
        assert model.pose_model.precision == model.image_model.precision == precision
        outputs[precision] = model(batch)["gen_images"]
    assert outputs["bfloat16"].dtype == tf.float32
    np.testing.assert_allclose(outputs["bfloat16"].numpy(), outputs["float32"].numpy(), atol=2e-2)
