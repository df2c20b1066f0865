"""A causal (GPT-style) Transformer over discrete tokens with key/value caching for sampling.

Pre-LayerNorm blocks: ``x + Dropout(MHA(LN(x)))`` with a causal mask, then
``x + Dropout(MLP(LN(x)))`` (Dense -> GELU -> Dense).  The attention is Keras'
``MultiHeadAttention``; the cached single-token path (:meth:`CausalTransformer.step`)
reuses its query/key/value/output projections and computes the same scaled
dot-product attention against the cached keys and values, so sampling N tokens
runs N single-query attention calls per layer instead of re-running the prefix.

``attention_queries`` counts the query positions every attention call processed
(a plain, untracked variable), which lets a test check that sampling cost is
linear in the number of generated tokens.
"""

import math

import keras
import tensorflow as tf


class Float32SoftmaxAttention(keras.layers.MultiHeadAttention):
    """Keras' ``MultiHeadAttention`` whose (masked) softmax runs in float32 under a mixed policy (issue 18):
    Keras computes it in the compute dtype, where bfloat16 keeps 8 significant bits of probabilities that
    must sum to 1 over hundreds of positions.  Masked positions get -1e9 before the softmax, as Keras'
    ``Softmax`` layer does.  In float32 it is the parent's."""

    def _masked_softmax(self, attention_scores, attention_mask=None):
        if self.compute_dtype == "float32":
            return super()._masked_softmax(attention_scores, attention_mask)
        scores = tf.cast(attention_scores, tf.float32)
        if attention_mask is not None:
            # Keras' expansion of the mask over the head axis (MultiHeadAttention._masked_softmax).
            expansion_axis = -len(self._attention_axes) * 2 - 1
            for _ in range(len(scores.shape) - len(attention_mask.shape)):
                attention_mask = tf.expand_dims(attention_mask, axis=expansion_axis)
            scores = scores + (1.0 - tf.cast(attention_mask, tf.float32)) * -1e9
        probabilities = tf.exp(scores - tf.reduce_max(scores, axis=self._softmax.axis, keepdims=True))
        probabilities /= tf.reduce_sum(probabilities, axis=self._softmax.axis, keepdims=True)
        return tf.cast(probabilities, self.compute_dtype)


class TransformerBlock(keras.layers.Layer):
    """One pre-LN block: causal multi-head self-attention and an MLP, each residual."""

    def __init__(self, d_model, num_heads, mlp_ratio=4, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} must be a multiple of num_heads={num_heads}")
        self.d_model, self.num_heads = d_model, num_heads
        self.key_dim = d_model // num_heads
        self.ln1 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln1")
        self.attn = Float32SoftmaxAttention(num_heads, self.key_dim, dropout=dropout, name="attn")
        self.ln2 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln2")
        self.mlp_in = keras.layers.Dense(mlp_ratio * d_model, activation="gelu", name="mlp_in")
        self.mlp_out = keras.layers.Dense(d_model, name="mlp_out")
        self.drop = keras.layers.Dropout(dropout)

    def call(self, x, training=False, return_cache=False):
        h = self.ln1(x)
        attended = self.attn(h, h, use_causal_mask=True, training=training)
        x = x + self.drop(attended, training=training)
        x = x + self.drop(self.mlp_out(self.mlp_in(self.ln2(x))), training=training)
        if return_cache:  # keys/values of every position [B, T, heads, key_dim] for later single-token steps
            return x, (self.attn.key_dense(h), self.attn.value_dense(h))
        return x

    def step(self, x, keys, values, position):
        """One new position: ``x`` [B, 1, d] at index ``position``; caches ``[B, L, heads, key_dim]``.

        Returns ``(output [B, 1, d], keys, values)`` with the new key/value written at ``position``
        and attention restricted to cached positions <= ``position``.
        """
        h = self.ln1(x)
        query = self.attn.query_dense(h) * (1.0 / math.sqrt(self.key_dim))
        length = tf.shape(keys)[1]
        slot = tf.one_hot(position, length, dtype=keys.dtype)[None, :, None, None]
        keys = keys * (1.0 - slot) + self.attn.key_dense(h) * slot
        values = values * (1.0 - slot) + self.attn.value_dense(h) * slot
        scores = tf.einsum("bqhd,bkhd->bhqk", query, keys)
        visible = tf.range(length) <= position
        scores = tf.where(visible[None, None, None, :], scores, tf.constant(-1e9, scores.dtype))
        # float32 softmax (mixed precision), as Float32SoftmaxAttention in call.
        weights = tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32), axis=-1), values.dtype)
        attended = self.attn.output_dense(tf.einsum("bhqk,bkhd->bqhd", weights, values))
        x = x + attended
        x = x + self.mlp_out(self.mlp_in(self.ln2(x)))
        return x, keys, values


class CausalTransformer(keras.layers.Layer):
    """Stack of :class:`TransformerBlock` + final LayerNorm + vocabulary head, on embedded inputs ``[B, T, d]``."""

    def __init__(self, vocab_size, d_model, num_layers, num_heads, mlp_ratio=4, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.blocks = []
        for index in range(num_layers):
            block = TransformerBlock(d_model, num_heads, mlp_ratio, dropout, name=f"block{index}")
            setattr(self, f"block{index}", block)  # named attribute: tracked by tf.train.Checkpoint
            self.blocks.append(block)
        self.ln_f = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_f")
        self.head = keras.layers.Dense(vocab_size, name="head")
        # Untracked counter of attention query positions (for the caching test).
        object.__setattr__(self, "attention_queries", tf.Variable(
            0, dtype=tf.int64, trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA))

    def _count(self, queries):
        self.attention_queries.assign_add(tf.cast(queries, tf.int64) * len(self.blocks))

    def call(self, x, training=False):
        self._count(tf.shape(x)[1])
        for block in self.blocks:
            x = block(x, training=training)
        return self.head(self.ln_f(x))

    def prefill(self, x, max_length):
        """Logits of the last position of ``x`` ``[B, T, d]`` and per-layer caches padded to ``max_length``."""
        self._count(tf.shape(x)[1])
        caches = []
        pad = [[0, 0], [0, max_length - tf.shape(x)[1]], [0, 0], [0, 0]]
        for block in self.blocks:
            x, (keys, values) = block(x, return_cache=True)
            caches.append((tf.pad(keys, pad), tf.pad(values, pad)))
        return self.head(self.ln_f(x[:, -1:]))[:, 0], caches

    def step(self, x, caches, position):
        """Logits ``[B, vocab]`` for one new embedded position ``x`` ``[B, 1, d]``; updated caches."""
        self._count(1)
        new_caches = []
        for block, (keys, values) in zip(self.blocks, caches):
            x, keys, values = block.step(x, keys, values, position)
            new_caches.append((keys, values))
        return self.head(self.ln_f(x))[:, 0], new_caches


def sample_logits(logits, temperature=1.0, top_k=0, seed=None):
    """One token per row of ``logits`` ``[B, V]``: softmax(logits / temperature) over the ``top_k`` best (0 = all).

    ``temperature <= 0`` takes the arg-max.
    """
    if temperature <= 0:
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    logits = tf.cast(logits, tf.float32) / temperature  # the sampling softmax in float32 (mixed precision)
    if top_k and top_k < logits.shape[-1]:
        threshold = tf.math.top_k(logits, k=top_k).values[:, -1:]
        logits = tf.where(logits < threshold, tf.constant(-1e9, logits.dtype), logits)
    return tf.cast(tf.random.categorical(logits, 1, seed=seed)[:, 0], tf.int32)
