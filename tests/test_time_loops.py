"""Symbolic time loops (issue 18): the ``time_loop`` hparam of the recurrent families.

``time_loop="while"`` (the default) runs the time loop as one ``tf.while_loop`` over a tensor length, so one
trace serves every rollout length and the graph does not grow with T; ``"python"`` unrolls it at trace time.
Both must give the same outputs, losses and gradients from the same weights and random draws.
"""

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.models.base import check_time_loop
from video_prediction.models.savp import SAVPVideoPredictionModel
from video_prediction.models.sna import SNAVideoPredictionModel
from video_prediction.models.sv2p import SV2PVideoPredictionModel

# Tiny ours_vae_l1-like generator (32x32 is its smallest spec): prior and posterior paths, KL.  (The
# discriminators of ours_savp run after the time loop; leaving them out keeps the test fast.)
SAVP_TINY = dict(context_frames=2, sequence_length=5, ngf=4, nef=4, nz=2, batch_size=2, kl_weight=0.01,
                 kl_anneal="none")


def moving_square(batch_size, length, size, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    images = np.zeros((batch_size, length, size, size, channels), np.float32)
    for b in range(batch_size):
        y, x = rng.integers(2, size // 2, size=2)
        for t in range(length):
            images[b, t, y : y + 4, x + t : x + t + 4] = 1.0
    return images


def savp_batch(length, batch_size=2):
    return {"images": tf.constant(moving_square(batch_size, length, 32))}


def relaxed_specs(batch):
    return {k: tf.TensorSpec([None, None, *v.shape[2:]], v.dtype) for k, v in batch.items()}


def count_ops(concrete):
    return len(concrete.graph.get_operations())


def built(model_class, batch, **hparams):
    model = model_class(hparams=hparams)
    model.build_from_batch(batch)
    model.make_optimizers()
    model.build_optimizers()
    return model


def test_bad_time_loop_is_one_clear_error():
    with pytest.raises(ValueError, match="time_loop must be one of while, python; got 'scan'"):
        SAVPVideoPredictionModel(hparams=dict(SAVP_TINY, time_loop="scan"))
    with pytest.raises(ValueError, match="time_loop must be one of"):
        SV2PVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=4, time_loop="unrolled"))
    assert check_time_loop("python") == "python"
    assert SAVPVideoPredictionModel.default_hparams()["time_loop"] == "while"


def test_xla_train_steps_unroll_in_python():
    """XLA cannot compile the while loop's gradient with a dynamic batch (ours_savp: a Tile's gradient needs a
    constant shape), so an XLA-compiled train step unrolls; evaluation and generation keep the while loop."""
    model = SAVPVideoPredictionModel(hparams=SAVP_TINY)
    assert model.time_loop_for(training=True) == "while"
    model.make_optimizers(jit_compile=True)
    assert model.time_loop_for(training=True) == "python" and model.time_loop_for(training=False) == "while"
    model.make_optimizers(jit_compile=False)
    assert model.time_loop_for(training=True) == "while"


def test_savp_one_trace_serves_every_length_and_the_graph_does_not_grow():
    tf.random.set_seed(0)
    model = built(SAVPVideoPredictionModel, savp_batch(5), **SAVP_TINY)
    # A train step traced once with a free time axis runs 5- and 8-frame batches.
    train_step = tf.function(model.train_step, input_signature=[relaxed_specs(savp_batch(5))])
    for length in (5, 8):
        logs = train_step(savp_batch(length))
        assert np.isfinite(float(logs["g_loss"])) and np.isfinite(float(logs["gen_kl_loss"]))
    assert train_step.experimental_get_tracing_count() == 1
    # generate: one trace for any horizon and batch (here 3 and 7 frames, 1 and 2 samples).
    for horizon, samples in ((3, 1), (7, 2)):
        assert model.generate(savp_batch(5), num_samples=samples, horizon=horizon).shape == (2, samples, horizon,
                                                                                              32, 32, 1)
    assert model._generate_sample_fn.experimental_get_tracing_count() == 1
    # The traced forward graph (static shapes) is the same size for 5 and 9 frames with the while loop; it
    # grows with the Python unroll, so the count is what tells the two apart.
    def graph_size(m, length):
        return count_ops(tf.function(lambda b: m(b, training=False)).get_concrete_function(savp_batch(length)))

    assert graph_size(model, 5) == graph_size(model, 9)
    small = dict(SAVP_TINY, nz=0, kl_weight=0.0)
    python = SAVPVideoPredictionModel(hparams=dict(small, time_loop="python"))
    assert graph_size(python, 9) > graph_size(python, 5) + 500


def same_weights(source, target):
    target.set_weights(source.get_weights())


@pytest.mark.usefixtures("without_grappler")  # conftest.py: both forms run without Grappler
def test_savp_while_and_python_loops_agree():
    """Outputs, losses and gradients (training) of both loop forms from the same weights and draws.

    No discriminator (its random clips are drawn after the loop, where the two graphs' op-derived random
    seeds differ) and schedule_sampling="none" (the mask no longer depends on a draw)."""
    hp = dict(SAVP_TINY, schedule_sampling="none")
    batch = savp_batch(4)  # 3 steps: step 0 before the loop, 2 in it
    results = {}
    reference = None
    for loop in ("while", "python"):
        tf.random.set_seed(1)
        model = SAVPVideoPredictionModel(hparams=dict(hp, time_loop=loop))
        model.build_from_batch(batch)
        if reference is None:
            reference = model
        else:
            same_weights(reference, model)

        @tf.function
        def run(batch):
            tf.random.set_seed(5)  # same op seeds in both graphs (the draws come before the loop)
            with tf.GradientTape() as tape:
                outputs = model(batch, training=True)
                losses = model.generator_losses(batch, outputs)
                loss = tf.add_n(list(losses.values()))
            return outputs, loss, tape.gradient(loss, model.generator_variables())

        results[loop] = run(batch)
    (out_w, loss_w, grad_w), (out_p, loss_p, grad_p) = results["while"], results["python"]
    for key in ("gen_images", "gen_images_enc", "masks"):
        np.testing.assert_allclose(out_w[key], out_p[key], atol=1e-5, err_msg=key)
    np.testing.assert_allclose(loss_w, loss_p, rtol=1e-5)
    for a, b in zip(grad_w, grad_p):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)
    # meaningful: another input moves the compared outputs by far more than the tolerance
    other = run({"images": batch["images"][::-1]})
    assert np.abs(other[0]["gen_images"].numpy() - out_p["gen_images"].numpy()).max() > 1e-2


def conditioned_batch(length, extra=0, size=16):
    rng = np.random.default_rng(0)
    return {"images": tf.constant(moving_square(2, length, size, channels=3)),
            "actions": tf.constant(rng.normal(size=(2, length - 1 + extra, 4)).astype(np.float32)),
            "states": tf.constant(rng.normal(size=(2, length + extra, 3)).astype(np.float32))}


@pytest.mark.usefixtures("without_grappler")  # conftest.py: both forms run without Grappler
def test_sna_while_and_python_loops_agree():
    """sv2p and sna share ConvLSTMCDNAModel.run_tower; sna (deterministic) compares both loop forms."""
    batch = conditioned_batch(5)
    hp = dict(context_frames=2, sequence_length=5, batch_size=2, schedule_sampling_k=-1.0)
    results = {}
    reference = None
    for loop in ("while", "python"):
        model = built(SNAVideoPredictionModel, batch, **dict(hp, time_loop=loop))
        if reference is None:
            reference = model
        else:
            same_weights(reference, model)

        @tf.function
        def run(batch):
            with tf.GradientTape() as tape:
                outputs = model(batch, training=True)
                loss = tf.add_n(list(model.generator_losses(batch, outputs).values()))
            return outputs["gen_images"], loss, tape.gradient(loss, model.trainable_variables)

        results[loop] = run(batch)
    (images_w, loss_w, grads_w), (images_p, loss_p, grads_p) = results["while"], results["python"]
    np.testing.assert_allclose(images_w, images_p, atol=1e-5)
    np.testing.assert_allclose(loss_w, loss_p, rtol=1e-5)
    for a, b in zip(grads_w, grads_p):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)
    other = run({**batch, "images": batch["images"][::-1]})
    assert np.abs(other[0].numpy() - images_p.numpy()).max() > 1e-2


def test_sv2p_generate_traces_once_for_every_horizon():
    batch = conditioned_batch(4, extra=6)
    train_batch = {"images": batch["images"][:, :4], "actions": batch["actions"][:, :3],
                   "states": batch["states"][:, :4]}
    assert SV2PVideoPredictionModel.default_hparams()["time_loop"] == "while"
    model = SV2PVideoPredictionModel(hparams=dict(context_frames=2, sequence_length=4, time_loop="while"))
    model.build_from_batch(train_batch)
    for horizon, samples in ((3, 1), (8, 2)):
        assert model.generate(batch, num_samples=samples, horizon=horizon).shape == (2, samples, horizon, 16, 16, 3)
    assert model._generate_function().experimental_get_tracing_count() == 1


MSPRED_TINY = dict(context_frames=3, sequence_length=8, num_preds=2, periods=[1, 2, 4], num_filters=4, dim=32,
                   hidden_dim=4, num_layers=[1, 1, 1], latent_dim=2, prior_hidden_dim=4, posterior_hidden_dim=4,
                   num_channels=1, batch_size=2, latent_mode="mean")


@pytest.mark.usefixtures("without_grappler")  # conftest.py: both forms run without Grappler
def test_mspred_while_and_python_loops_agree_and_generate_traces_once():
    """Every output of ``call`` (frames, heads, per-level KL statistics kept at their ticks) of both forms,
    latents at their means; then one generate trace for two horizons."""
    from video_prediction.models.mspred import MSPredVideoPredictionModel

    rng = np.random.default_rng(0)
    batch = {"images": tf.constant(rng.uniform(size=(2, 8, 16, 16, 1)), tf.float32)}
    outputs, reference = {}, None
    for loop in ("while", "python"):
        model = MSPredVideoPredictionModel(hparams_dict=dict(MSPRED_TINY, time_loop=loop))
        model.build_from_batch(batch)
        if reference is None:
            reference = model
        else:
            same_weights(reference, model)
        outputs[loop] = tf.function(lambda b: model(b, training=False))(batch)
    assert sorted(outputs["while"]) == sorted(outputs["python"])
    assert "gen_heatmaps_level2" in outputs["while"] and "mu_prior_level1" in outputs["while"]
    for key, value in outputs["python"].items():
        np.testing.assert_allclose(outputs["while"][key], value, atol=1e-4, err_msg=key)
    other = model({"images": batch["images"][::-1]}, training=False)["gen_images"]
    assert np.abs(other.numpy() - outputs["python"]["gen_images"].numpy()).max() > 1e-2
    for horizon, samples in ((5, 1), (9, 2)):
        assert reference.generate(batch, num_samples=samples, horizon=horizon).shape == (2, samples, horizon,
                                                                                           16, 16, 1)
    assert reference._generate_fn.experimental_get_tracing_count() == 1


def _while_body_graphs(concrete):
    """Every forward ``tf.while_loop`` body graph reachable from ``concrete`` (not the gradient loops)."""
    found, stack = {}, [concrete.graph]
    while stack:
        for name, function in getattr(stack.pop(), "_functions", {}).items():
            graph = getattr(function, "graph", None)
            if name in found or graph is None:
                continue
            found[name] = graph
            stack.append(graph)
    return [graph for name, graph in found.items() if "body" in name and "grad" not in name]


def _reaches_a_variable_read(tensor):
    """Whether ``tensor`` is a variable read inside the loop body, possibly through casts/identities."""
    op = tensor.op
    while op.type in ("Cast", "Identity") and op.inputs:
        op = op.inputs[0].op
    return op.type == "ReadVariableOp"


@pytest.mark.parametrize("family", ["savp", "sv2p"])
def test_while_loop_gradient_stores_no_per_step_copy_of_the_weights(family):
    """Issue 18: the gradient of a training step's tf.while_loop stores, per iteration, the body tensors its
    backward pass needs; a weight read inside the body was one (ours_vae_l1 kept ~25 of its 87 MiB per step
    in copies of the cell's kernels).  The step reads its weights before the loop (with_weights_read_once)."""
    if family == "savp":
        batch = savp_batch(5)
        model = built(SAVPVideoPredictionModel, batch, **SAVP_TINY)
    else:
        batch = {"images": tf.constant(moving_square(2, 5, 64, channels=3))}
        model = built(SV2PVideoPredictionModel, batch, context_frames=2, sequence_length=5, batch_size=2)
    concrete = tf.function(model.train_step).get_concrete_function(
        {k: tf.TensorSpec(v.shape, v.dtype) for k, v in batch.items()})
    bodies = _while_body_graphs(concrete)
    stored = [op.inputs[1] for graph in bodies for op in graph.get_operations() if op.type == "TensorListPushBack"]
    assert stored, "no tf.while_loop gradient accumulator found: the check would pass vacuously"
    weight_copies = [t.name for t in stored if _reaches_a_variable_read(t)]
    assert not weight_copies, weight_copies
