"""Graph-mode training: no retracing across epochs, and XLA (jit_compile) gives the step eager-graph gives."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from video_prediction.training import loop as training_loop
from video_prediction.training.building import build_dataset, build_model, first_batch
from video_prediction.training.loop import train
from video_prediction.training.monitor import TrainingMonitor
from video_prediction.datasets.moving_mnist import write_moving_mnist
from video_prediction.models import get_model_class

HPARAMS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "hparams", "moving_mnist")
# Tiny versions of the published settings: 32x32 frames, a few steps.
TINY_SAVP = dict(ngf=4, nef=4, kl_anneal="none", batch_size=2)
TINY_MSPRED = dict(num_preds=2, periods=[1, 2, 2], num_filters=4, dim=32, hidden_dim=4, num_layers=[1, 1, 1],
                   latent_dim=2, prior_hidden_dim=4, posterior_hidden_dim=4, num_channels=1, batch_size=2)
CASES = {  # name: (model, dataset, hparams file, tiny overrides, dataset hparams)
    "savp": ("savp", "moving_mnist", "ours_deterministic_l1", TINY_SAVP, "context_frames=1,sequence_length=3"),
    "mspred": ("mspred", "mspred_moving_mnist", "mspred", TINY_MSPRED,
               "context_frames=2,sequence_length=4,num_channels=1"),
}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    # No val split: train then skips validation summaries (their function is traced once, but
    # tracing it here would only make the test slower).
    directory = str(tmp_path_factory.mktemp("moving_mnist"))
    write_moving_mnist(directory, {"train": 4, "test": 2}, sequence_length=6, canvas_size=32, progress=False)
    return directory


def tiny_hparams(tmp_path, case):
    model, dataset, hparams_dir, tiny, _ = CASES[case]
    with open(os.path.join(HPARAMS_DIR, hparams_dir, "model_hparams.json")) as f:
        values = json.load(f)
    values.update(tiny)
    path = tmp_path / "model_hparams.json"
    path.write_text(json.dumps(values))
    return str(path)


def tf_functions_in(fn, depth=4):
    """The ``tf.function`` objects reachable from ``fn`` through closures (Keras' train_function)."""
    found, stack, seen = [], [(fn, 0)], set()
    while stack:
        obj, level = stack.pop()
        if id(obj) in seen or level > depth:
            continue
        seen.add(id(obj))
        if hasattr(obj, "experimental_get_tracing_count"):
            found.append(obj)
            obj = getattr(obj, "_python_function", None)
        for cell in getattr(obj, "__closure__", None) or ():
            try:
                stack.append((cell.cell_contents, level + 1))
            except ValueError:  # empty cell
                pass
        wrapped = getattr(obj, "__wrapped__", None)
        if wrapped is not None:
            stack.append((wrapped, level + 1))
    return found


@pytest.mark.parametrize("case", sorted(CASES))
def test_second_epoch_triggers_no_new_trace(case, records, tmp_path, monkeypatch):
    """train for 2 Keras epochs (summary periods): every trace happens in the first one."""
    model_name, dataset_name, _, _, dataset_hparams = CASES[case]
    model_class = get_model_class(model_name)
    original_train_step = model_class.train_step
    traces, counts = [], []

    def counted_train_step(self, batch):  # runs in Python only while a train function is traced
        traces.append(1)
        return original_train_step(self, batch)

    class RecordingMonitor(TrainingMonitor):
        def on_epoch_end(self, epoch, logs=None):
            functions = tf_functions_in(self.model.train_function)
            assert functions, "found no tf.function behind model.train_function"
            counts.append((len(traces), [f.experimental_get_tracing_count() for f in functions]))

    monkeypatch.setattr(model_class, "train_step", counted_train_step)
    monkeypatch.setattr(training_loop, "TrainingMonitor", RecordingMonitor)
    train(records, dataset_name, model_name, str(tmp_path / "run"), dataset_hparams=dataset_hparams,
          model_hparams_dict=tiny_hparams(tmp_path, case), max_steps=4, summary_freq=2,
          image_summary_freq=0, save_freq=0, seed=1, verbose=0)
    assert len(counts) == 2
    assert counts[0][0] >= 1  # the first epoch traced the train step
    assert counts[1] == counts[0], counts


def one_step(model, batch, jit_compile):
    model.make_optimizers(jit_compile=jit_compile)
    # Keras quietly compiles without XLA when it thinks the model cannot take it (e.g. under op
    # determinism, which train(deterministic=True) used to leave enabled for the rest of the process).
    assert model.jit_compile is jit_compile
    model.build_optimizers()
    model.make_train_function()
    logs = model.train_function(iter(tf.data.Dataset.from_tensors(batch).repeat()))
    return {k: float(v) for k, v in logs.items()}


def test_a_deterministic_run_leaves_op_determinism_as_it_was(records, tmp_path):
    from tensorflow.python.framework import config as tf_config

    assert not tf_config.is_op_determinism_enabled()
    train(records, "moving_mnist", "savp", str(tmp_path / "run"), dataset_hparams=CASES["savp"][4],
          model_hparams_dict=tiny_hparams(tmp_path, "savp"), max_steps=1, seed=1, deterministic=True,
          verbose=0, strategy_name="one_device")
    assert not tf_config.is_op_determinism_enabled()
    with pytest.raises(Exception, match="--jit_compile and --deterministic cannot be combined"):
        train(records, "moving_mnist", "savp", str(tmp_path / "run2"), dataset_hparams=CASES["savp"][4],
              model_hparams_dict=tiny_hparams(tmp_path, "savp"), max_steps=1, seed=1, deterministic=True,
              jit_compile=True, verbose=0, strategy_name="one_device")


def test_jit_compile_gives_the_same_train_step(records, tmp_path):
    """One SAVP train step with and without XLA from the same weights: same losses, gradients and weights.

    Random draws differ between XLA and the TF kernels, so the deterministic
    variant is used with ground truth fed at every step (linear schedule
    sampling starts at 1).
    """
    case = "savp"
    model_name, dataset_name, _, _, dataset_hparams = CASES[case]
    deterministic = "schedule_sampling=linear"
    keras.utils.set_random_seed(3)
    dataset = build_dataset(dataset_name, records, "train", hparams=dataset_hparams, seed=1)
    batch = first_batch(dataset, 2)
    models = [build_model(model_name, dataset, tiny_hparams(tmp_path, case), deterministic)
              for _ in range(2)]
    for model in models:
        model.build_from_batch(batch)
    models[1].set_weights(models[0].get_weights())
    logs = [one_step(model, batch, jit) for model, jit in zip(models, (False, True))]
    assert logs[0].keys() == logs[1].keys()
    for key in logs[0]:
        np.testing.assert_allclose(logs[1][key], logs[0][key], rtol=1e-4, atol=1e-6, err_msg=key)
    for optimizer_name in models[0].optimizers_by_name():
        slots = [m.optimizers_by_name()[optimizer_name].variables for m in models]
        largest = max(float(np.max(np.abs(v.numpy()))) for v in slots[0])
        for reference, compiled in zip(*slots):  # after one Adam step m = (1 - beta1) * gradient
            value = reference.numpy()
            # gradients that are zero up to round-off (e.g. biases before instance norm) may differ in noise
            atol = max(2e-3 * float(np.max(np.abs(value))), 1e-6 * largest)
            np.testing.assert_allclose(compiled.numpy(), value, rtol=2e-3, atol=atol, err_msg=reference.path)
    lr = max(float(m.current_learning_rate()) for m in models)
    for w0, w1 in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(w1, w0, atol=2 * lr + 1e-6)  # an Adam step moves a weight by at most ~lr
