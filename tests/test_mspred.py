"""MSPred: schedule, schedules of lr/beta, losses, checkpoint conversion and parity with the original."""

import importlib.util
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from test_recompute import ordered_draws  # noqa: F401 (a fixture)
from torch_pth_writer import save_pth
from video_prediction.models import get_model_class
from video_prediction.models.mspred import (
    epoch_beta_table, epoch_lr_table, gaussian_kl_sum, level_target_frames, reconstruction_loss,
)
from video_prediction.conversion.mspred import ConversionError, convert_checkpoint
from video_prediction.training.building import load_model

DATA = os.path.join(os.path.dirname(__file__), "data", "mspred")
_spec = importlib.util.spec_from_file_location("make_reference", os.path.join(DATA, "make_reference.py"))
make_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_reference)

TINY = dict(context_frames=3, sequence_length=11, num_preds=2, periods=[1, 2, 4], num_filters=4, dim=32,
            hidden_dim=8, num_layers=[1, 1, 1], latent_dim=2, prior_hidden_dim=4, posterior_hidden_dim=4,
            num_channels=1, steps_per_epoch=2, num_epochs=3, batch_size=2)


def tiny_batch(length=11, size=16, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    return {"images": tf.constant(rng.uniform(size=(2, length, size, size, channels)), tf.float32),
            "heatmaps_level1": tf.constant(rng.uniform(size=(2, length, size, size, 1)), tf.float32),
            "heatmaps_level2": tf.constant(rng.uniform(size=(2, length, size, size, 1)), tf.float32)}


def test_target_frames_of_the_shipped_configs():
    # spec §3.7
    assert level_target_frames(17, 5, [1, 4, 8], 57) == [
        [17, 18, 19, 20, 21], [20, 24, 28, 32, 36], [24, 32, 40, 48, 56]]
    assert level_target_frames(9, 5, [1, 4, 8], 49) == [
        [9, 10, 11, 12, 13], [12, 16, 20, 24, 28], [16, 24, 32, 40, 48]]
    assert level_target_frames(9, 5, [1, 2, 4], 29) == [
        [9, 10, 11, 12, 13], [10, 12, 14, 16, 18], [12, 16, 20, 24, 28]]


def test_epoch_schedules_follow_the_original():
    lr = epoch_lr_table(1e-4, 300, 0, [250], 0.5)
    assert lr[0] == lr[250] == 1e-4 and lr[251] == 5e-5  # decayed by the step after epoch 250
    warm = epoch_lr_table(1e-3, 20, 10, [50], 0.1)
    assert warm[0] == 1e-3 and warm[1] == 1e-6 and warm[6] == pytest.approx(5e-4)
    assert epoch_beta_table(1e-4, 1e-4, 0, 5) == [1e-4] * 6
    beta = epoch_beta_table(1e-5, 1e-4, 23, 30)
    assert beta[0] == 1e-5 and beta[2] == pytest.approx(1e-5) and beta[24] == pytest.approx(1e-4)
    assert beta[30] == pytest.approx(1e-4)


def test_forward_outputs_and_train_step():
    model = get_model_class("mspred")(hparams_dict=TINY)
    batch = tiny_batch()
    outputs = model(batch, training=True)
    assert outputs["gen_images"].shape == (2, 10, 16, 16, 1)
    assert outputs["gen_level0"].shape == (2, 2, 16, 16, 1)
    assert outputs["gen_heatmaps_level1"].shape == (2, 2, 16, 16, 1)
    assert outputs["mu_post_level2"].shape == (2, 2, 1, 1, 2)
    model.make_optimizers()
    logs = model.train_step(batch)
    assert np.isfinite(float(logs["loss"])) and float(logs["kl_loss"]) >= 0
    model.latent_mode = "mean"
    a = model(batch, training=False)["gen_images"].numpy()
    b = model(batch, training=False)["gen_images"].numpy()
    np.testing.assert_allclose(a, b)  # deterministic with latents at their means


def test_gradient_horizons_of_the_shipped_config_and_where_nothing_is_pruned():
    """Moving MNIST (C=17, N=5, periods 1/4/8, T=57): level 0's last supervised frame is predicted at step 20,
    level 1's last head call and kept KL tick are at step 32, level 2's at 48 (the original's autograd
    differentiates the same steps: 84 = 21 x 4 backward calls of level 0's predictor convolution per step)."""
    root = os.path.join(os.path.dirname(__file__), "..", "hparams", "moving_mnist", "mspred")
    hparams = {**json.load(open(os.path.join(root, "model_hparams.json"))),
               **json.load(open(os.path.join(root, "dataset_hparams.json")))}
    model = get_model_class("mspred")(hparams_dict=hparams)
    assert model.gradient_horizons(57) == [20, 32, 48]
    assert model.gradient_horizons(None) is None  # a symbolic length: one loop, every step differentiated
    for updates in (dict(prune_backward=False), dict(autoreg_mode="LAST_PRED_FRAME")):
        assert get_model_class("mspred")(hparams_dict={**hparams, **updates}).gradient_horizons(57) is None


@pytest.mark.parametrize("time_loop", ["while", "python"])
@pytest.mark.usefixtures("without_grappler")  # conftest.py: both forms run without Grappler
def test_prune_backward_gives_the_same_losses_and_gradients(ordered_draws, monkeypatch, time_loop):
    """prune_backward (default) only leaves out backward work whose gradients are zeros: losses and gradients
    equal those of the fully differentiated step (heads and KL of every level supervised); the while form
    runs one loop per run of steps with the same live levels (here 4: step 3 all levels, 4 levels 1-2, 5-8
    level 2, 9-10 none) instead of one."""
    from test_recompute import check_same

    loops, while_loop = [], tf.while_loop
    monkeypatch.setattr(tf, "while_loop", lambda *args, **kwargs: loops.append(1) or while_loop(*args, **kwargs))
    batch = tiny_batch(length=12)
    model = get_model_class("mspred")(hparams_dict=dict(TINY, sequence_length=12, time_loop=time_loop))
    model.build_from_batch(batch)
    model.stateless_latent_draws = True
    assert model.gradient_horizons(12) == [3, 4, 8]
    loops.clear()
    check_same(model, batch, ordered_draws, model.trainable_variables, tiny_batch(length=12, seed=5),
               switch="prune_backward")
    assert len(loops) == (1 + 4 if time_loop == "while" else 0)  # one trace each: unpruned, pruned


def test_prior_double_gating_flag_changes_eval_predictions():
    batch = tiny_batch(seed=1)
    outs = []
    for gating in (True, False):
        model = get_model_class("mspred")(hparams_dict=dict(TINY, prior_double_gating=gating, latent_mode="mean"))
        tf.keras.utils.set_random_seed(3)
        model.build_from_batch(batch)
        outs.append(model(batch)["gen_heatmaps_level2"].numpy())
    assert np.abs(outs[0] - outs[1]).max() > 0


def test_losses_reductions():
    zeros = tf.zeros([2, 3, 4, 4, 2])
    ones = tf.ones([2, 3, 4, 4, 2])
    assert float(gaussian_kl_sum(zeros, zeros, zeros, zeros)) == 0.0
    # KL of N(1,1) vs N(0,1) is 0.5 per element, summed over all but batch
    assert float(gaussian_kl_sum(ones, zeros, zeros, zeros)) == pytest.approx(0.5 * 3 * 4 * 4 * 2)
    target = np.zeros([1, 1, 4, 4, 2], np.float32)
    target[0, 0, 1, 1, 0] = 1.0  # channel 1 empty -> skipped by the keypoint loss
    preds = np.full_like(target, 0.5)
    loss = reconstruction_loss("weighted_kpoint_loss", tf.constant(preds), tf.constant(target), {})
    expected = np.mean((preds[..., 0] - target[..., 0]) ** 2)
    assert float(loss) == pytest.approx(expected)
    onehot = tf.one_hot(tf.zeros([1, 1, 2, 2], tf.int32), 3)
    ce = reconstruction_loss("cross_entropy", onehot, onehot, {})
    assert float(ce) == pytest.approx(-np.log(np.e / (np.e + 2)), rel=1e-5)


def _write_original_checkpoint(name, path):
    shapes = json.load(open(os.path.join(DATA, name, "parameters.json")))
    state = {k: make_reference.numpy_weight(k, tuple(s), 7) for k, s in shapes.items()}
    save_pth({"epoch": 0, "model_state_dict": state, "optimizer_state_dict": {}, "scheduler_state_dict": ""}, path)
    return state


@pytest.mark.parametrize("name", ["tiny_mmnist", "tiny_kth"])
def test_parity_with_the_original(tmp_path, name):
    _write_original_checkpoint(name, tmp_path / "checkpoint.pth")
    run_dir = str(tmp_path / "run")
    convert_checkpoint(tmp_path / "checkpoint.pth", os.path.join(DATA, name, "experiment_params.json"), run_dir)
    ref = np.load(os.path.join(DATA, name, "reference.npz"))
    images = ref["images"].astype(np.float32) / 255.0
    model, options, _ = load_model(run_dir, model_hparams="latent_mode=mean",
                                   example_batch={"images": tf.zeros((1,) + images.shape[1:])})
    outputs = model({"images": tf.constant(images)}, training=False)
    for level, key in enumerate(["gen_level0", "gen_heatmaps_level1", "gen_heatmaps_level2"]):
        np.testing.assert_array_equal(np.nonzero(ref[f"mask{level}"])[0], model.level_target_frames()[level])
        np.testing.assert_allclose(outputs[key].numpy(), ref[f"level{level}"], atol=1e-4, rtol=0)


def test_converter_names_unmapped_and_misshaped_parameters(tmp_path):
    state = _write_original_checkpoint("tiny_mmnist", tmp_path / "ok.pth")
    params = os.path.join(DATA, "tiny_mmnist", "experiment_params.json")
    extra = dict(state, **{"predictor.0.extra.weight": np.zeros(3, np.float32)})
    save_pth({"model_state_dict": extra}, tmp_path / "extra.pth")
    with pytest.raises(ConversionError, match="predictor.0.extra.weight"):
        convert_checkpoint(tmp_path / "extra.pth", params, str(tmp_path / "a"))
    bad = dict(state, **{"decoder.upc4.0.weight": np.zeros((1, 2, 3, 3), np.float32)})
    save_pth({"model_state_dict": bad}, tmp_path / "bad.pth")
    with pytest.raises(ConversionError, match="decoder.upc4.0.weight"):
        convert_checkpoint(tmp_path / "bad.pth", params, str(tmp_path / "b"))
    missing = {k: v for k, v in state.items() if k != "prior.1.mu_var_net.bias"}
    save_pth({"model_state_dict": missing}, tmp_path / "missing.pth")
    with pytest.raises(ConversionError, match="prior.1.mu_var_net.bias"):
        convert_checkpoint(tmp_path / "missing.pth", params, str(tmp_path / "c"))


@pytest.mark.parametrize("dataset,config", [("moving_mnist", "mmnist"), ("kth", "kth"), ("synpick", "synpick")])
def test_published_hparams_match_the_converter_reading_of_the_original_configs(dataset, config):
    root = os.path.join(os.path.dirname(__file__), "..", "hparams", dataset, "mspred")
    model_hparams = json.load(open(os.path.join(root, "model_hparams.json")))
    dataset_hparams = json.load(open(os.path.join(root, "dataset_hparams.json")))
    model_class = get_model_class("mspred")
    from video_prediction.hparams import resolve_hparams

    resolved = resolve_hparams(model_class.default_hparams(), dict(model_hparams, **dataset_hparams)).values()
    periods, num_preds = resolved["periods"], resolved["num_preds"]
    assert dataset_hparams["sequence_length"] == dataset_hparams["context_frames"] + num_preds * max(periods)
    expected = {"mmnist": dict(enc_dec_type="dcgan", latent_dim=10, alphas=[0.2, 0.5, 0.5], lr=1e-4, beta=1e-4),
                "kth": dict(enc_dec_type="vgg", latent_dim=24, alphas=[0.5, 0.7, 0.1], lr=3e-4, beta=5e-7),
                "synpick": dict(enc_dec_type="vgg", latent_dim=32, alphas=[1.0, 2.0, 0.3], lr=1e-4, beta=1e-4,
                                extra_deep=True, beta0=1e-5, beta_warmup_steps=23)}[config]
    for key, value in expected.items():
        assert resolved[key] == value, key


def test_per_level_gifs_and_arrays(tmp_path):
    from video_prediction.inference.extras.mspred import write_level_outputs

    model = get_model_class("mspred")(hparams_dict=dict(TINY, latent_mode="mean"))
    batch = tiny_batch()
    write_level_outputs(model, batch, str(tmp_path), num_samples=2, save_arrays=True)
    names = sorted(os.listdir(tmp_path))
    assert "level0_00000_01.gif" in names and "level2_00001_00.gif" in names
    arrays = np.load(tmp_path / "levels_00001.npz")
    assert arrays["level1"].shape == (2, 2, 16, 16, 1)
    assert list(arrays["target_frames_level2"]) == [6, 10] and arrays["targets_level2"].shape == (2, 16, 16, 1)


def test_epoch_length_from_the_training_set():
    """steps_per_epoch=0: one pass over the training loader (ceil(videos / batch)); max_steps=0: num_epochs epochs."""
    from video_prediction.training.building import build_model

    class Videos:  # the dataset interface build_model reads
        mode, input_dir = "train", "fake"

        class hparams:
            context_frames, sequence_length, time_shift = 3, 11, 1

        def __init__(self, count):
            self.count = count

        def num_examples_per_epoch(self):
            return self.count

    tiny = {k: v for k, v in TINY.items() if k not in ("context_frames", "sequence_length", "steps_per_epoch")}
    model = build_model("mspred", Videos(37), dict(tiny, steps_per_epoch=0, max_steps=0, num_epochs=4, batch_size=8))
    assert model.hparams.steps_per_epoch == 5 and model.hparams.max_steps == 20
    model = build_model("mspred", Videos(37), dict(tiny, steps_per_epoch=0, max_steps=7), "steps_per_epoch=2")
    assert model.hparams.steps_per_epoch == 2 and model.hparams.max_steps == 7
    with pytest.raises(ValueError, match="needs training videos"):
        build_model("mspred", Videos(0), dict(tiny, steps_per_epoch=0))
    for dataset in ("kth", "synpick"):  # the original's epochs are full passes over their training sets
        path = os.path.join(os.path.dirname(__file__), "..", "hparams", dataset, "mspred", "model_hparams.json")
        assert json.load(open(path))["steps_per_epoch"] == 0
