"""Stage 2 (``--model vqvae_transformer``): token transformer over a frozen tiny vqvae."""

import numpy as np
import pytest
import tensorflow as tf

from video_prediction.conversion.bookkeeping import write_run_directory
from video_prediction.models import get_model_class
from video_prediction.models.vqvae import VQVAEVideoPredictionModel
from video_prediction.models.vqvae_transformer import VQVAETransformerVideoPredictionModel

STAGE1 = dict(context_frames=2, sequence_length=4, ch=8, ch_mult=[1, 2, 2], num_res_blocks=1, attn_resolutions=[],
              resolution=16, z_channels=8, embed_dim=4, n_embed=16, num_groups=4, batch_size=4,
              grad_updates_per_step=1, perceptual_weight_2d=0.0, input_mean=[0.5], input_std=[0.25])
STAGE2 = dict(context_frames=2, sequence_length=4, d_model=16, num_layers=2, num_heads=2, dropout=0.0,
              batch_size=4)


@pytest.fixture(scope="module")
def first_stage_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("stage1")
    model = VQVAEVideoPredictionModel(hparams=STAGE1)
    model.build_from_batch({"images": tf.zeros([1, 4, 16, 16, 1])})
    # A codebook spread like the latents, so that frames map to several different tokens.
    model.quantize.embedding.assign(tf.random.stateless_normal([16, 4], seed=[0, 1]) * 0.5)
    write_run_directory(str(directory), model, dict(dataset="moving_mnist", model="vqvae", image_shape=[16, 16, 1]),
                        dict(context_frames=2, sequence_length=4))
    return str(directory)


@pytest.fixture(scope="module")
def model(first_stage_dir):
    stage2 = VQVAETransformerVideoPredictionModel(hparams=dict(STAGE2, first_stage_checkpoint=first_stage_dir))
    stage2.build_from_batch({"images": tf.zeros([1, 4, 16, 16, 1])})
    stage2.make_optimizers()
    return stage2


def _clips(seed):
    return tf.random.stateless_uniform([4, 4, 16, 16, 1], seed=[seed, 0])


def test_training_reduces_token_loss_and_only_stage2_trains(model):
    frozen = [w.numpy().copy() for w in model.first_stage.weights]
    assert model.first_stage.trainable is False
    assert not any(v.path.startswith(model.first_stage.name) for v in model.trainable_variables)
    batch = {"images": _clips(1)}
    step = tf.function(model.train_step)
    first = float(step(batch)["token_loss"])
    for _ in range(15):
        logs = step(batch)
    assert float(logs["token_loss"]) < first - 0.1
    for before, after in zip(frozen, model.first_stage.weights):
        np.testing.assert_array_equal(before, after.numpy())
    outputs = model(batch)
    assert outputs["gen_images"].shape == (4, 3, 16, 16, 1)
    assert get_model_class("vqvae_transformer") is VQVAETransformerVideoPredictionModel


def test_cached_sampling_matches_full_forward_and_is_linear(model):
    """Greedy cached sampling = arg-max of the full causal forward; attention queries grow linearly."""
    hp = dict(model.hparams.values(), temperature=0.0)
    greedy = VQVAETransformerVideoPredictionModel(hparams=hp)
    greedy.build_from_batch({"images": tf.zeros([1, 4, 16, 16, 1])})
    greedy.set_weights(model.get_weights())
    batch = {"images": _clips(2)}
    p = greedy.tokens_per_frame
    counter = greedy.transformer.attention_queries
    counts = {}
    for horizon in (1, 2):
        counter.assign(0)
        tokens = greedy.sample_tokens(batch, 2, horizon)
        counts[horizon] = int(counter.numpy())
        assert tokens.shape == (4, horizon * p)
    # prefill of the 2 context frames + one single-query step per generated token but the last, per layer
    layers = greedy.hparams.num_layers
    assert counts[1] == layers * (2 * p + p - 1) and counts[2] - counts[1] == layers * p
    context = greedy.encode_tokens(batch["images"][:, :2])
    sequence = tf.concat([context, tokens], axis=1)
    full = greedy.transformer(greedy.embed(sequence[:, :-1], 0, batch))
    np.testing.assert_array_equal(tf.argmax(full[:, 2 * p - 1:], -1, output_type=tf.int32).numpy(), tokens.numpy())
    frames = greedy.generate(batch, num_samples=2, horizon=2)
    assert frames.shape == (4, 2, 2, 16, 16, 1)
    np.testing.assert_allclose(frames[:, 0].numpy(), frames[:, 1].numpy())  # greedy: samples agree


def test_sampling_is_stochastic_and_top_k(model):
    batch = {"images": _clips(3)}
    a = model.sample_tokens(batch, 2, 1).numpy()
    b = model.sample_tokens(batch, 2, 1).numpy()
    assert (a != b).any()
    from video_prediction.layers.token_transformer import sample_logits
    logits = tf.constant([[0.0, 5.0, 4.0, -1.0]] * 200)
    drawn = sample_logits(logits, temperature=1.0, top_k=2).numpy()
    assert set(drawn.tolist()) == {1, 2}


def test_action_conditioning_and_errors(first_stage_dir, model):
    with pytest.raises(ValueError, match="first_stage_checkpoint"):
        VQVAETransformerVideoPredictionModel(hparams=STAGE2)
    cond = VQVAETransformerVideoPredictionModel(hparams=dict(STAGE2, first_stage_checkpoint=first_stage_dir,
                                                             use_actions=True))
    with pytest.raises(ValueError, match="needs 'actions'"):
        cond.build_from_batch({"images": tf.zeros([1, 4, 16, 16, 1])})
    batch = {"images": _clips(4), "actions": tf.random.normal([4, 3, 2])}
    cond.build_from_batch(batch)
    changed = dict(batch, actions=batch["actions"] + 1.0)
    assert np.abs(cond(batch)["logits"].numpy() - cond(changed)["logits"].numpy()).max() > 1e-3
    with pytest.raises(ValueError, match="max_frames"):
        model.generate({"images": _clips(5)}, horizon=5)


def test_latent_mode_mean_decodes_the_most_likely_tokens(model):
    """--latent_mode mean: the arg-max token at every step (= temperature 0), identical over samples; sample
    mode (temperature 1 in these hparams) keeps drawing different futures."""
    from video_prediction.cli import apply_latent_mode

    batch = {"images": _clips(4)}
    apply_latent_mode(model, "mean")
    try:
        frames = model.generate(batch, num_samples=2, horizon=1).numpy()
        np.testing.assert_allclose(frames[:, 0], frames[:, 1])
        greedy = model.sample_tokens(batch, 2, 1, greedy=True)
        expected = model.decode_tokens(greedy, 1).numpy()
        np.testing.assert_allclose(frames[:, 0], expected, atol=1e-5)
    finally:
        apply_latent_mode(model, "sample")
    a, b = model.sample_tokens(batch, 2, 1).numpy(), model.sample_tokens(batch, 2, 1).numpy()
    assert (a != b).any()


def test_previous_frame_tokens_cached_sampling_matches_full_forward(first_stage_dir, model):
    """previous_frame_tokens=2: the cached sampler feeds the same earlier-frame tokens as the full forward,
    and those inputs matter (changing a token of frame 0 changes the logits of frame 2's first position)."""
    with pytest.raises(ValueError, match="previous_frame_tokens"):
        VQVAETransformerVideoPredictionModel(hparams=dict(STAGE2, first_stage_checkpoint=first_stage_dir,
                                                          previous_frame_tokens=-1))
    greedy = VQVAETransformerVideoPredictionModel(hparams=dict(STAGE2, first_stage_checkpoint=first_stage_dir,
                                                               previous_frame_tokens=2, temperature=0.0))
    batch = {"images": _clips(6)}
    greedy.build_from_batch(batch)
    p = greedy.tokens_per_frame
    tokens = greedy.sample_tokens(batch, 2, 2)
    sequence = tf.concat([greedy.encode_tokens(batch["images"][:, :2]), tokens], axis=1)
    full = greedy.transformer(greedy.embed(sequence[:, :-1], 0, batch, history=sequence))
    np.testing.assert_array_equal(tf.argmax(full[:, 2 * p - 1:], -1, output_type=tf.int32).numpy(), tokens.numpy())
    # position 2p - 1 predicts token 2p (frame 2, cell 0), whose cell two frames back is token 0
    changed = tf.concat([(sequence[:, :1] + 1) % greedy.vocab_size, sequence[:, 1:]], axis=1)
    x, y = (greedy.embed(s[:, :-1], 0, batch, history=s)[:, 2 * p - 1] for s in (sequence, changed))
    assert np.abs(x.numpy() - y.numpy()).max() > 1e-3


def test_previous_frame_radius_feeds_the_neighbouring_cells(first_stage_dir):
    """previous_frame_radius=1: the position predicting cell (0, 0) of frame 2 sees cells (0..1, 0..1) of frame 1
    (and its cached sampler feeds the same inputs as the full forward); cell (0, 2) is outside its window."""
    for bad, match in ((dict(previous_frame_tokens=1, previous_frame_radius=-1), "previous_frame_radius must"),
                       (dict(previous_frame_radius=1), "needs previous_frame_tokens")):
        with pytest.raises(ValueError, match=match):
            VQVAETransformerVideoPredictionModel(hparams=dict(STAGE2, first_stage_checkpoint=first_stage_dir, **bad))
    greedy = VQVAETransformerVideoPredictionModel(hparams=dict(STAGE2, first_stage_checkpoint=first_stage_dir,
                                                               previous_frame_tokens=1, previous_frame_radius=1,
                                                               temperature=0.0))
    batch = {"images": _clips(7)}
    greedy.build_from_batch(batch)
    assert len(greedy.previous_embeddings) == 9 and greedy.previous_embedding1 is greedy.previous_embeddings[4]
    p, w = greedy.tokens_per_frame, greedy.grid[1]
    tokens = greedy.sample_tokens(batch, 2, 2)
    sequence = tf.concat([greedy.encode_tokens(batch["images"][:, :2]), tokens], axis=1)
    full = greedy.transformer(greedy.embed(sequence[:, :-1], 0, batch, history=sequence))
    np.testing.assert_array_equal(tf.argmax(full[:, 2 * p - 1:], -1, output_type=tf.int32).numpy(), tokens.numpy())

    def changed_embedding(cell):  # position 2p - 1 predicts frame 2's cell 0; change frame 1's token at `cell`
        index = p + cell
        changed = tf.concat([sequence[:, :index], (sequence[:, index:index + 1] + 1) % greedy.vocab_size,
                             sequence[:, index + 1:]], axis=1)
        x, y = (greedy.embed(s[:, :-1], 0, batch, history=s)[:, 2 * p - 1] for s in (sequence, changed))
        return np.abs(x.numpy() - y.numpy()).max()

    for cell in (0, 1, w, w + 1):
        assert changed_embedding(cell) > 1e-3
    assert changed_embedding(2) == 0.0 and changed_embedding(2 * w) == 0.0


def test_lr_decay_steps_cosine(first_stage_dir):
    """lr_decay_steps=N: the optimizer's lr falls from lr to 0 along a cosine over N steps; 0 keeps it constant."""
    with pytest.raises(ValueError, match="lr_decay_steps"):
        VQVAETransformerVideoPredictionModel(hparams=dict(STAGE2, first_stage_checkpoint=first_stage_dir,
                                                          lr_decay_steps=-1))
    decayed = VQVAETransformerVideoPredictionModel(hparams=dict(STAGE2, first_stage_checkpoint=first_stage_dir,
                                                                lr=1e-3, lr_decay_steps=10))
    decayed.build_from_batch({"images": _clips(8)})
    decayed.make_optimizers()
    rates = []
    for step in (0, 5, 10, 20):
        decayed.global_step.assign(step)
        decayed.optimizer.iterations.assign(step)
        rates.append((float(decayed.current_learning_rate()), float(decayed.optimizer.learning_rate)))
    np.testing.assert_allclose(rates, [(1e-3, 1e-3), (5e-4, 5e-4), (0.0, 0.0), (0.0, 0.0)], atol=1e-9)
    constant = VQVAETransformerVideoPredictionModel(hparams=dict(STAGE2, first_stage_checkpoint=first_stage_dir,
                                                                 lr=1e-3))
    assert float(constant.current_learning_rate()) == pytest.approx(1e-3)
