"""Two-stage video prediction: a causal Transformer over the tokens of a frozen FEVD VQ-VAE.

Beyond the original (which stops at stage 1; specs/vqvae.md §5 sketches stage 2):

* stage 1 (``first_stage_checkpoint``: a ``vqvae`` run directory, frozen, never in
  training mode) turns every frame into an ``h x w`` grid of code indices;
* the clip's tokens are read in (time, row, column) order; a GPT-style causal
  Transformer (:mod:`video_prediction.layers.token_transformer`, Keras
  ``MultiHeadAttention``) predicts each next token.  Its input at position i is
  the token embedding plus a factorised space-time position embedding
  (``time[frame(i)] + space[i mod h*w]``) plus, optionally, a projection of the
  action (``use_actions``) and state (``use_states``) that lead to the frame of the
  token being predicted (for RoboNet-style conditioning);
* training: cross-entropy of the tokens of frames 1..T-1 (teacher forcing);
* ``generate``: the context frames are encoded, one causal pass caches every layer's
  keys/values (prefill), then the future tokens are sampled one at a time
  (temperature, top-k) with single-query attention against the cache, so the cost
  is linear in the number of generated tokens; the stage-1 decoder maps the
  predicted tokens back to frames (the 3D decoder sees the whole predicted clip).

``call`` follows the model contract: ``gen_images`` ``[B, T-1, ...]`` are the
decoded arg-max tokens of frames 1..T-1 predicted with the ground-truth tokens
before them (teacher forcing, as the ground truth is fed during the context).
"""

import keras
import tensorflow as tf

from video_prediction.layers.token_transformer import CausalTransformer, sample_logits
from video_prediction.models.base import BaseVideoPredictionModel, LatentModeMixin, VideoPredictionModel, num_replicas


class VQVAETransformerVideoPredictionModel(LatentModeMixin, VideoPredictionModel):
    """Stage 2 over a frozen ``vqvae`` (``--model vqvae_transformer``); see the module docstring."""

    stochastic = True

    @classmethod
    def default_hparams(cls):
        hparams = BaseVideoPredictionModel.default_hparams()
        hparams.update(
            first_stage_checkpoint="",  # run directory of a trained vqvae (required)
            d_model=256,
            num_layers=4,
            num_heads=4,
            mlp_ratio=4,
            dropout=0.1,
            max_frames=0,  # frames the time embedding covers; 0 = sequence_length
            use_actions=False,
            use_states=False,
            # Ours: add to the input of the position that predicts token t embeddings of the tokens at t's
            # grid cell in the previous_frame_tokens frames before t's frame (0 = off): a direct path from
            # where a patch was to what it becomes, which attention alone learns slowly.
            previous_frame_tokens=0,
            # Ours: with previous_frame_tokens > 0, also the tokens of the cells within this many rows/columns
            # of t's cell in those frames (0 = only t's cell), each offset with its own embedding: where a
            # moving object can come from in one frame step (a token of 4x4 pixels, a digit moving up to a
            # few pixels per frame: radius 1), so the next token is a local function of its inputs.
            previous_frame_radius=0,
            temperature=1.0,  # sampling; <= 0 takes the arg-max token
            top_k=0,  # 0 = sample from the whole vocabulary
            lr=3e-4,
            # Ours: 0 = constant lr; N > 0 = cosine decay of the lr from lr to 0 over the first N steps (then 0).
            lr_decay_steps=0,
            beta1=0.9,
            beta2=0.95,
            batch_size=16,
            max_steps=20000,
        )
        return hparams

    def __init__(self, hparams_dict=None, hparams=None, name=None, **kwargs):
        super().__init__(hparams_dict=hparams_dict, hparams=hparams, name=name, **kwargs)
        hp = self.hparams
        if not hp.first_stage_checkpoint:
            raise ValueError("vqvae_transformer needs first_stage_checkpoint=DIR (a trained vqvae run directory)")
        from video_prediction.training.building import load_model

        # The loss networks of stage 1 are not needed here: weights 0 keep LPIPS/I3D unloaded.
        first, options, _ = load_model(hp.first_stage_checkpoint,
                                       model_hparams="perceptual_weight_2d=0.0,fvd_mu_weight=0.0,fvd_cov_weight=0.0")
        if options["model"] != "vqvae":
            raise ValueError(f"first_stage_checkpoint {hp.first_stage_checkpoint!r} holds a {options['model']!r} "
                             "model, not a vqvae")
        first.trainable = False
        self.first_stage = first
        self.image_shape = list(options["image_shape"])
        fh = first.hparams
        factor = 2 ** (len(fh.ch_mult) - 1)
        self.grid = (fh.resolution // factor, fh.resolution // factor)
        self.tokens_per_frame = self.grid[0] * self.grid[1]
        self.vocab_size = fh.n_embed
        self.max_frames = hp.max_frames or hp.sequence_length
        self.token_embedding = keras.layers.Embedding(self.vocab_size, hp.d_model, name="token_embedding")
        self.time_embedding = keras.layers.Embedding(self.max_frames, hp.d_model, name="time_embedding")
        self.space_embedding = keras.layers.Embedding(self.tokens_per_frame, hp.d_model, name="space_embedding")
        if hp.lr_decay_steps < 0:
            raise ValueError(f"lr_decay_steps must be >= 0, got {hp.lr_decay_steps}")
        if hp.previous_frame_tokens < 0:
            raise ValueError(f"previous_frame_tokens must be >= 0, got {hp.previous_frame_tokens}")
        if hp.previous_frame_radius < 0:
            raise ValueError(f"previous_frame_radius must be >= 0, got {hp.previous_frame_radius}")
        if hp.previous_frame_radius > 0 and hp.previous_frame_tokens == 0:
            raise ValueError("previous_frame_radius > 0 needs previous_frame_tokens > 0 (the frames it looks back at)")
        # (frames back k, row offset, column offset) of every earlier-frame input; one extra index (vocab_size)
        # for "before the clip or outside the grid"
        r = hp.previous_frame_radius
        self.previous_offsets = [(k, dy, dx) for k in range(1, hp.previous_frame_tokens + 1)
                                 for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
        self.previous_embeddings = []
        for k, dy, dx in self.previous_offsets:
            # the centre keeps the name it had before previous_frame_radius existed (checkpoints)
            name = f"previous_embedding{k}" if dy == dx == 0 else f"previous_embedding{k}_{dy}_{dx}".replace("-", "m")
            layer = keras.layers.Embedding(self.vocab_size + 1, hp.d_model, name=name)
            self.previous_embeddings.append(layer)
            setattr(self, name, layer)  # named attribute: tracked by tf.train.Checkpoint
        self.action_projection = keras.layers.Dense(hp.d_model, name="action_projection") if hp.use_actions else None
        self.state_projection = keras.layers.Dense(hp.d_model, name="state_projection") if hp.use_states else None
        self.transformer = CausalTransformer(self.vocab_size, hp.d_model, hp.num_layers, hp.num_heads,
                                             hp.mlp_ratio, hp.dropout, name="transformer")

    # -- tokens -----------------------------------------------------------------------------------

    def encode_tokens(self, images):
        """Frames ``[B, T, H, W, C]`` in [0, 1] -> tokens ``[B, T * h * w]`` (int32) with the frozen stage 1."""
        first = self.first_stage
        images = first._check_frames(images)
        _, _, codes = first.encode(first.normalize(images), training=False)
        return tf.reshape(codes, [tf.shape(codes)[0], -1])

    def decode_tokens(self, tokens, frames):
        """Tokens ``[B, frames * h * w]`` -> frames in [0, 1] (one stage-1 decoder call over the clip)."""
        first = self.first_stage
        codes = tf.reshape(tokens, [-1, frames, self.grid[0], self.grid[1]])
        return tf.clip_by_value(first.unnormalize(first.decode_codes(codes, training=False)), 0.0, 1.0)

    def _conditioning(self, batch, start, count):
        """``[B, count, d]`` conditioning of input positions start..start+count-1 (or None).

        Position i predicts a token of frame f = (i + 1) // (h*w); it sees the action and
        state at time f - 1 (the step leading to frame f).
        """
        projections = []
        if self.action_projection is not None:
            if "actions" not in batch:
                raise ValueError("use_actions=True needs 'actions' in the batch")
            projections.append((self.action_projection, batch["actions"]))
        if self.state_projection is not None:
            if "states" not in batch:
                raise ValueError("use_states=True needs 'states' in the batch")
            projections.append((self.state_projection, batch["states"]))
        if not projections:
            return None
        positions = tf.range(start, start + count)
        frame = tf.maximum((positions + 1) // self.tokens_per_frame - 1, 0)
        total = 0.0
        for layer, values in projections:
            values = tf.cast(tf.convert_to_tensor(values), tf.float32)
            index = tf.minimum(frame, tf.shape(values)[1] - 1)
            total += layer(tf.gather(values, index, axis=1))
        return total

    def embed(self, tokens, start, batch, history=None):
        """Embedded inputs of ``tokens`` ``[B, n]`` occupying positions start..start+n-1.

        ``history`` ``[B, L]``: the clip's tokens from position 0 on (at least up to start+n-1),
        needed when ``previous_frame_tokens`` > 0.
        """
        count = tf.shape(tokens)[1]
        positions = tf.range(start, start + count)
        x = self.token_embedding(tokens)
        frame = positions // self.tokens_per_frame
        x += (self.time_embedding(frame) + self.space_embedding(positions % self.tokens_per_frame))[None]
        if self.previous_embeddings:
            target = positions + 1  # position i predicts token i + 1
            row, col = (target % self.tokens_per_frame) // self.grid[1], target % self.grid[1]
        for (k, dy, dx), layer in zip(self.previous_offsets, self.previous_embeddings):
            # the cell (row + dy, col + dx) k frames earlier is at i + 1 - k*p + dy*w + dx (<= i: causal)
            source = target - k * self.tokens_per_frame + dy * self.grid[1] + dx
            valid = ((target - k * self.tokens_per_frame >= 0) & (row + dy >= 0) & (row + dy < self.grid[0])
                     & (col + dx >= 0) & (col + dx < self.grid[1]))
            previous = tf.gather(history, tf.maximum(source, 0), axis=1)
            x += layer(tf.where(valid[None], previous, self.vocab_size))
        conditioning = self._conditioning(batch, start, count)
        if conditioning is not None:
            x += conditioning
        return x

    # -- forward / losses ---------------------------------------------------------------------------

    def _check_length(self, frames):
        if frames > self.max_frames:
            raise ValueError(f"vqvae_transformer: {frames} frames exceed max_frames={self.max_frames} "
                             "(the time embedding's length)")

    def token_logits(self, batch, training=False):
        """``(logits [B, N-1, V], tokens [B, N])`` with teacher forcing over the clip's N tokens."""
        images = tf.convert_to_tensor(batch["images"])
        self._check_length(images.shape[1])
        tokens = self.encode_tokens(images)
        x = self.embed(tokens[:, :-1], 0, batch, history=tokens)
        # float32 logits whatever the compute dtype (mixed precision): the cross-entropy's log-softmax over the
        # codebook in float32.
        return tf.cast(self.transformer(x, training=training), tf.float32), tokens

    def call(self, batch, training=False):
        logits, tokens = self.token_logits(batch, training=training)
        frames = tf.convert_to_tensor(batch["images"]).shape[1]
        p = self.tokens_per_frame
        predicted = tf.argmax(logits[:, p - 1:], axis=-1, output_type=tf.int32)  # tokens of frames 1..T-1
        return {"gen_images": self.decode_tokens(predicted, frames - 1), "logits": logits, "tokens": tokens}

    def token_loss(self, logits, tokens):
        """Mean cross-entropy of the tokens of frames 1..T-1."""
        p = self.tokens_per_frame
        losses = keras.losses.sparse_categorical_crossentropy(tokens[:, p:], logits[:, p - 1:], from_logits=True)
        return tf.reduce_mean(losses)

    def generator_losses(self, batch, outputs):
        return {"token_loss": self.token_loss(outputs["logits"], outputs["tokens"])}

    def loss_names(self):
        return ["loss", "token_loss", "token_accuracy"]

    def make_optimizer(self):
        hp = self.hparams
        return keras.optimizers.Adam(learning_rate=self.learning_rate_schedule(), beta_1=hp.beta1, beta_2=hp.beta2,
                                     epsilon=1e-8)

    def learning_rate_schedule(self):
        hp = self.hparams
        if hp.lr_decay_steps > 0:
            return keras.optimizers.schedules.CosineDecay(hp.lr, hp.lr_decay_steps, alpha=0.0)
        return hp.lr

    def current_learning_rate(self):
        schedule = self.learning_rate_schedule()
        if callable(schedule):
            return tf.cast(schedule(self.global_step), tf.float32)
        return tf.constant(schedule)

    def _accuracy(self, logits, tokens):
        p = self.tokens_per_frame
        hits = tf.equal(tf.argmax(logits[:, p - 1:], axis=-1, output_type=tf.int32), tokens[:, p:])
        return tf.reduce_mean(tf.cast(hits, tf.float32))

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            logits, tokens = self.token_logits(batch, training=True)
            loss = self.token_loss(logits, tokens)
            scaled = loss / num_replicas()  # hand-reduced mean -> global-batch mean (DESIGN.md)
            scaled = self.optimizer.scale_loss(scaled)  # float16: times the dynamic loss scale
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self.global_step.assign_add(1)
        return self.report({"loss": loss, "token_loss": loss, "token_accuracy": self._accuracy(logits, tokens)})

    def test_step(self, batch):
        logits, tokens = self.token_logits(batch)
        loss = self.token_loss(logits, tokens)
        return self.report({"loss": loss, "token_loss": loss, "token_accuracy": self._accuracy(logits, tokens)})

    # -- sampling -----------------------------------------------------------------------------------

    def sample_tokens(self, batch, context, horizon, greedy=False):
        """Sample the tokens of ``horizon`` frames after ``context`` frames: ``[B, horizon * h * w]``.

        One prefill pass over the context tokens, then one cached single-token step per
        generated token (a ``tf.while_loop``).  ``greedy`` takes the arg-max token (temperature 0).
        """
        hp = self.hparams
        temperature = 0.0 if greedy else hp.temperature
        p = self.tokens_per_frame
        images = tf.convert_to_tensor(batch["images"])[:, :context]
        context_tokens = self.encode_tokens(images)
        start, total = context * p, (context + horizon) * p
        logits, caches = self.transformer.prefill(self.embed(context_tokens, 0, batch, history=context_tokens), total)
        generated = tf.TensorArray(tf.int32, size=horizon * p)
        # every token so far at its position (for previous_frame_tokens), zeros after
        history = tf.pad(context_tokens, [[0, 0], [0, total - start]])

        def body(position, logits, caches, generated, history):
            token = sample_logits(logits, temperature, hp.top_k)
            generated = generated.write(position - start, token)
            history += token[:, None] * tf.one_hot(position, total, dtype=tf.int32)[None]
            x = self.embed(token[:, None], position, batch, history=history)
            logits, caches = self.transformer.step(x, caches, position)
            return position + 1, logits, caches, generated, history

        position, logits, caches, generated, history = tf.while_loop(
            lambda position, *_: position < total - 1, body,
            (tf.constant(start), logits, caches, generated, history))
        generated = generated.write(total - 1 - start, sample_logits(logits, temperature, hp.top_k))
        return tf.transpose(generated.stack())

    def generate(self, batch, num_samples=1, horizon=None):
        context = self.context_frames
        horizon = self.sequence_length - context if horizon is None else int(horizon)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self._check_length(context + horizon)
        images = tf.convert_to_tensor(batch["images"])
        if images.shape[1] is not None and images.shape[1] < context:
            raise ValueError(f"generate needs at least {context} context frames, got {images.shape[1]}")
        inputs = {"images": images[:, :context]}
        for key in ("actions", "states"):
            if key in batch:
                inputs[key] = batch[key]
        inputs = {k: tf.repeat(tf.convert_to_tensor(v), num_samples, axis=0) for k, v in inputs.items()}
        # latent_mode "mean": the most likely token at every step (a Python bool: one trace per mode)
        frames = self._generate_fn(inputs, context, horizon, self.latent_mode == "mean")
        shape = tf.shape(frames)
        return tf.reshape(frames, tf.concat([[-1, num_samples], shape[1:]], 0))

    @tf.function(reduce_retracing=True)
    def _generate_fn(self, inputs, context, horizon, greedy=False):
        tokens = self.sample_tokens(inputs, context, horizon, greedy)
        return self.decode_tokens(tokens, horizon)
