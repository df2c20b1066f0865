"""Vector quantiser of VQ-VAE / VQGAN: taming-transformers' ``VectorQuantizer2`` (specs/vqvae.md §3.3).

A plain learned codebook ``[n_embed, embed_dim]`` (no EMA, no code reset, no
l2-normalisation, no index remap), initialised uniform(-1/n_embed, 1/n_embed)
as in the original.  Each latent vector (the last axis of the input) is
replaced by its nearest code in squared Euclidean distance
``||z||^2 + ||e||^2 - 2 z.e``; the gradient passes straight through to ``z``.

Loss, the "legacy" taming variant that the original keeps (beta 0.25 hard-coded
in its ``VQModel``)::

    q_loss = mean((sg[z_q] - z)^2) + beta * mean((z_q - sg[z])^2)

i.e. the commitment term (gradient to the encoder) has weight 1 and the
codebook term weight ``beta`` -- swapped relative to the VQ-VAE paper; kept
for parity.  Distances, the loss and the straight-through output are computed
in float32 whatever the compute dtype of the surrounding model (mixed
precision keeps the quantiser exact).
"""

import keras
import tensorflow as tf


class VectorQuantizer(keras.layers.Layer):
    """Nearest-code quantisation of ``[..., embed_dim]`` latents.

    ``call(z)`` returns ``(z_q, q_loss, indices)``: ``z_q`` float32 like ``z``
    (straight-through), ``q_loss`` a float32 scalar, ``indices`` int32 ``z.shape[:-1]``.
    """

    def __init__(self, n_embed, embed_dim, beta=0.25, **kwargs):
        kwargs.setdefault("dtype", "float32")  # never autocast: distances and losses stay float32
        super().__init__(**kwargs)
        self.n_embed = int(n_embed)
        self.embed_dim = int(embed_dim)
        self.beta = float(beta)
        bound = 1.0 / self.n_embed  # taming: embedding.weight.uniform_(-1/n_e, 1/n_e)
        self.embedding = self.add_weight(
            name="embedding", shape=(self.n_embed, self.embed_dim),
            initializer=keras.initializers.RandomUniform(-bound, bound))

    def nearest_codes(self, z):
        """Indices ``z.shape[:-1]`` (int32) of the nearest code to each latent vector of ``z``."""
        z = tf.cast(z, tf.float32)
        flat = tf.reshape(z, [-1, self.embed_dim])
        codebook = tf.convert_to_tensor(self.embedding)
        distances = (tf.reduce_sum(tf.square(flat), axis=1, keepdims=True)
                     + tf.reduce_sum(tf.square(codebook), axis=1)[None, :]
                     - 2.0 * tf.matmul(flat, codebook, transpose_b=True))
        indices = tf.argmin(distances, axis=1, output_type=tf.int32)  # first minimum, as torch.argmin
        return tf.reshape(indices, tf.shape(z)[:-1])

    def lookup(self, indices):
        """Code vectors ``indices.shape + [embed_dim]`` (float32) for integer ``indices``."""
        return tf.gather(tf.convert_to_tensor(self.embedding), indices)

    def call(self, z):
        z = tf.cast(z, tf.float32)
        indices = self.nearest_codes(z)
        z_q = self.lookup(indices)
        commitment = tf.reduce_mean(tf.square(tf.stop_gradient(z_q) - z))
        codebook = tf.reduce_mean(tf.square(z_q - tf.stop_gradient(z)))
        q_loss = commitment + self.beta * codebook  # legacy beta placement (see module docstring)
        z_q = z + tf.stop_gradient(z_q - z)  # straight-through estimator
        return z_q, q_loss, indices

    def compute_output_spec(self, z):
        return (keras.KerasTensor(z.shape, "float32"), keras.KerasTensor((), "float32"),
                keras.KerasTensor(z.shape[:-1], "int32"))

    def get_config(self):
        config = super().get_config()
        config.update(n_embed=self.n_embed, embed_dim=self.embed_dim, beta=self.beta)
        return config


def codebook_usage(indices, n_embed):
    """``(counts [n_embed], perplexity)`` of a batch of code indices.

    Perplexity = exp(entropy of the empirical code distribution): 1 when one code is
    used, ``n_embed`` when all are used equally.  The original does not compute it
    (its quantiser returns None); it is logged here to watch for codebook collapse.
    """
    flat = tf.reshape(indices, [-1])
    counts = tf.math.bincount(flat, minlength=n_embed, maxlength=n_embed, dtype=tf.float32)
    probs = counts / tf.maximum(tf.reduce_sum(counts), 1.0)
    entropy = -tf.reduce_sum(tf.where(probs > 0, probs * tf.math.log(tf.maximum(probs, 1e-30)), 0.0))
    return counts, tf.exp(entropy)
