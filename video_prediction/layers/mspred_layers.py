"""Building blocks of MSPred (specs/mspred.md §3.2-§3.6, §3.8), channels-last.

Every block is stateless: recurrent states and the period gating live in the
model's unrolled loop.  Each block lists its parametrised sublayers under the
names the original PyTorch modules have (``torch_layers(prefix)``), which is
what the checkpoint converter maps.
"""

import keras
import tensorflow as tf


def weight_init():
    """N(0, 0.02) for every conv / deconv kernel (§3.8, ``init_weights``)."""
    return keras.initializers.RandomNormal(0.0, 0.02)


def conv2d(filters, kernel_size, strides=1, name=None):
    """Conv with the original's init and padding (k3 s1 p1, k4 s2 p1 and k1 p0 all equal "same" here)."""
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                               kernel_initializer=weight_init(), bias_initializer="zeros", name=name)


def deconv2d(filters, kernel_size, strides=1, name=None):
    """ConvTranspose (k4 s2 p1 -> 2x size, k3 s1 p1 -> same size), original init."""
    return keras.layers.Conv2DTranspose(filters, kernel_size, strides=strides, padding="same",
                                        kernel_initializer=weight_init(), bias_initializer="zeros", name=name)


class MSPredBatchNorm(keras.layers.BatchNormalization):
    """BatchNorm as the original uses it: eps 1e-5, gamma ~ N(1, 0.02) (§3.8).

    ``batch_stats=True`` (the original, ``track_running_stats=False``) always
    normalises with the current batch statistics, at test time too (§7.2 item 1).
    With ``False`` the usual moving averages (torch momentum 0.1) are used at test time.
    """

    def __init__(self, batch_stats=True, **kwargs):
        kwargs.setdefault("epsilon", 1e-5)
        kwargs.setdefault("momentum", 0.9)
        kwargs.setdefault("gamma_initializer", keras.initializers.RandomNormal(1.0, 0.02))
        super().__init__(**kwargs)
        self.batch_stats = batch_stats

    def call(self, inputs, training=None):
        if self.batch_stats:
            # Moments computed here rather than via training=True so that no moving
            # statistics are updated (there are none in the original).
            # In float32 under mixed precision (issue 18; Keras' own BatchNormalization does the same): bfloat16
            # sums over B x H x W values keep 8 significant bits.
            x = tf.cast(inputs, tf.float32)
            mean, variance = tf.nn.moments(x, axes=[0, 1, 2], keepdims=False)
            outputs = tf.nn.batch_normalization(x, mean, variance, self.beta, self.gamma, self.epsilon)
            return tf.cast(outputs, self.compute_dtype)
        return super().call(inputs, training=training)


def register(owner, name, layers):
    """Set each layer of ``layers`` as attribute ``<name>_<i>`` of ``owner`` and return the list.

    tf.train.Checkpoint follows a Keras layer's attributes but not layers held only
    in Python lists, so every sublayer must also be an attribute.
    """
    for i, layer in enumerate(layers):
        setattr(owner, f"{name}_{i}", layer)
    return list(layers)


def leaky_relu(x):
    return tf.nn.leaky_relu(x, alpha=0.2)  # Keras' default slope is 0.3; the original's is 0.2


class ConvBlock(keras.layers.Layer):
    """conv -> BN -> activation; ``kind`` "dcgan" (k4 s2) or "vgg" (k3 s1) as the original's blocks."""

    def __init__(self, filters, kind, activation=leaky_relu, transpose=False, batch_stats=True, **kwargs):
        super().__init__(**kwargs)
        kernel, strides = (4, 2) if kind == "dcgan" else (3, 1)
        make = deconv2d if transpose else conv2d
        self.conv = make(filters, kernel, strides, name="conv")
        self.norm = MSPredBatchNorm(batch_stats=batch_stats, name="norm")
        self.activation = activation

    def call(self, x, training=None):
        return self.activation(self.norm(self.conv(x), training=training))

    def torch_layers(self, prefix):
        return {f"{prefix}.0": self.conv, f"{prefix}.1": self.norm}


class DCGANEncoder(keras.layers.Layer):
    """DCGAN_Conv encoder (§3.2): h1..h3 conv blocks, h4 conv-BN-tanh; returns (h4, [h1, h2, h3])."""

    def __init__(self, dim=512, num_filters=64, batch_stats=True, **kwargs):
        super().__init__(**kwargs)
        nf = num_filters
        self.blocks = register(self, "block", [ConvBlock(nf * m, "dcgan", batch_stats=batch_stats,
                                                         name=f"c{i + 1}") for i, m in enumerate((1, 2, 4))])
        self.c4 = ConvBlock(dim, "dcgan", activation=tf.tanh, batch_stats=batch_stats, name="c4")

    def call(self, x, training=None):
        skips = []
        for block in self.blocks:
            x = block(x, training=training)
            skips.append(x)
        return self.c4(x, training=training), skips

    def torch_layers(self, prefix):
        names = {}
        for i, block in enumerate(self.blocks):
            names.update(block.torch_layers(f"{prefix}.c{i + 1}.main"))
        names.update(self.c4.torch_layers(f"{prefix}.c4"))
        return names


class DCGANDecoder(keras.layers.Layer):
    """DCGAN_Conv decoder (§3.3): returns (frame, [d1, d2, d3])."""

    def __init__(self, num_channels, num_filters=64, batch_stats=True, **kwargs):
        super().__init__(**kwargs)
        nf = num_filters
        self.blocks = register(self, "block", [ConvBlock(nf * m, "dcgan", transpose=True, batch_stats=batch_stats,
                                                         name=f"upc{i + 1}") for i, m in enumerate((4, 2, 1))])
        self.out = deconv2d(num_channels, 4, 2, name="upc4")

    def call(self, vec, skips, training=None):
        activations = []
        x = vec
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = tf.concat([x, skips[-i]], axis=-1)
            x = block(x, training=training)
            activations.append(x)
        out = tf.sigmoid(self.out(tf.concat([x, skips[-3]], axis=-1)))
        return out, activations

    def torch_layers(self, prefix):
        names = {}
        for i, block in enumerate(self.blocks):
            names.update(block.torch_layers(f"{prefix}.upc{i + 1}.main"))
        names[f"{prefix}.upc4.0"] = self.out
        return names


def _vgg_stack(owner, widths, batch_stats, name):
    return register(owner, name, [ConvBlock(w, "vgg", batch_stats=batch_stats, name=f"{name}_{i}")
                                  for i, w in enumerate(widths)])


class VGGEncoder(keras.layers.Layer):
    """VGG_Conv encoder (§3.2): widths hard-coded as in the original; returns (h4, [h1, h2, h3])."""

    def __init__(self, dim=512, extra_deep=False, batch_stats=True, **kwargs):
        super().__init__(**kwargs)
        depths = (3, 4, 5) if extra_deep else (2, 2, 3)
        self.stages = [_vgg_stack(self, [w] * n, batch_stats, f"c{i + 1}")
                       for i, (w, n) in enumerate(zip((64, 128, 256), depths))]
        self.out_conv = conv2d(dim, 3, name="out_conv")

    def call(self, x, training=None):
        skips = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")
            for layer in stage:
                x = layer(x, training=training)
            skips.append(x)
        return self.out_conv(tf.nn.max_pool2d(x, 2, 2, "VALID")), skips

    def torch_layers(self, prefix):
        names = {}
        for i, stage in enumerate(self.stages):
            for j, layer in enumerate(stage):
                names.update(layer.torch_layers(f"{prefix}.c{i + 1}.{j}.main"))
        names[f"{prefix}.out_conv"] = self.out_conv
        return names


def upsample_nearest(x, factor):
    """Nearest-neighbour upsampling by an integer factor (torch ``interpolate`` / ``UpsamplingNearest2d``)."""
    if factor == 1:
        return x
    return tf.repeat(tf.repeat(x, factor, axis=1), factor, axis=2)


class VGGDecoder(keras.layers.Layer):
    """VGG_Conv decoder (§3.3): returns (frame, [d1, d2, d3])."""

    def __init__(self, num_channels, extra_deep=False, batch_stats=True, **kwargs):
        super().__init__(**kwargs)
        extra = (3, 2, 1) if extra_deep else (1, 0, 0)
        self.in_conv = conv2d(256, 3, name="in_conv")
        self.upc1 = _vgg_stack(self, [256] * (1 + extra[0]) + [128], batch_stats, "upc1")
        self.upc2 = _vgg_stack(self, [128] * (1 + extra[1]) + [64], batch_stats, "upc2")
        self.upc3 = _vgg_stack(self, [64] * (1 + extra[2]), batch_stats, "upc3")
        self.out = deconv2d(num_channels, 3, 1, name="upc3_out")

    def call(self, vec, skips, training=None):
        d1 = self.in_conv(vec)
        activations = [d1]
        x = d1
        for i, stage in enumerate((self.upc1, self.upc2, self.upc3)):
            x = tf.concat([upsample_nearest(x, 2), skips[-(i + 1)]], axis=-1)
            for layer in stage:
                x = layer(x, training=training)
            if i < 2:
                activations.append(x)
        return tf.sigmoid(self.out(x)), activations

    def torch_layers(self, prefix):
        names = {f"{prefix}.in_conv": self.in_conv}
        for name, stage in (("upc1", self.upc1), ("upc2", self.upc2), ("upc3", self.upc3)):
            for j, layer in enumerate(stage):
                names.update(layer.torch_layers(f"{prefix}.{name}.{j}.main"))
        names[f"{prefix}.upc3.{len(self.upc3)}"] = self.out
        return names


class ConvLSTMCell(keras.layers.Layer):
    """One conv over concat[x, h] into 4F gates ordered i, f, o, g; no peepholes, no forget bias (§3.4)."""

    def __init__(self, filters, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv = conv2d(4 * filters, kernel_size, name="conv")
        self._convert_input_args = False  # Keras would cast the float32 cell state c to the compute dtype

    def call(self, x, state):
        h, c = state
        gates = self.conv(tf.concat([x, h], axis=-1))
        # The gates' element-wise math and the cell state in float32 under mixed precision (issue 18): TF's
        # bfloat16 Sigmoid/Tanh kernels are ~4x slower than float32's on CPU (MSPred's bfloat16 step spent
        # 0.23 s in Sigmoid against 0.06 s in float32), and c accumulates over the sequence.
        i, f, o, g = tf.split(tf.cast(gates, tf.float32), 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.cast(tf.sigmoid(o) * tf.tanh(c), self.compute_dtype)
        return h, (h, c)


class ConvLSTMStack(keras.layers.Layer):
    """input_conv, then ``num_layers`` ConvLSTM cells (shared by the predictor and the Gaussian LSTMs)."""

    def __init__(self, hidden_dim, num_layers, **kwargs):
        super().__init__(**kwargs)
        self._convert_input_args = False  # keeps the cells' float32 c (ConvLSTMCell); x is cast by input_conv
        self.hidden_dim = hidden_dim
        self.input_conv = conv2d(hidden_dim, 3, name="input_conv")
        self.cells = register(self, "cell", [ConvLSTMCell(hidden_dim, name=f"cell_{i}") for i in range(num_layers)])

    def zero_state(self, batch_size, height, width):
        zeros = tf.zeros([batch_size, height, width, self.hidden_dim], self.compute_dtype)
        cell_zeros = tf.zeros([batch_size, height, width, self.hidden_dim], tf.float32)  # c: see ConvLSTMCell
        return [(zeros, cell_zeros) for _ in self.cells]

    def run_cells(self, x, states):
        x = self.input_conv(x)
        new_states = []
        for cell, state in zip(self.cells, states):
            x, state = cell(x, state)
            new_states.append(state)
        return x, new_states

    def torch_layers(self, prefix):
        names = {f"{prefix}.input_conv": self.input_conv}
        for i, cell in enumerate(self.cells):
            names[f"{prefix}.cell_list.{i}.conv"] = cell.conv
        return names


class ConvLSTMPredictor(ConvLSTMStack):
    """The level predictor (class ConvLSTM, §3.4): stack -> out_proj conv -> tanh."""

    def __init__(self, output_dim, hidden_dim=128, num_layers=4, **kwargs):
        super().__init__(hidden_dim, num_layers, **kwargs)
        self.out_proj = conv2d(output_dim, 3, name="out_proj")

    def call(self, x, states):
        h, states = self.run_cells(x, states)
        return tf.tanh(self.out_proj(h)), states

    def torch_layers(self, prefix):
        names = super().torch_layers(prefix)
        names[f"{prefix}.out_proj.0"] = self.out_proj
        return names


class GaussianConvLSTM(ConvLSTMStack):
    """Prior / posterior (class GaussianConvLSTM, §3.5): stack -> conv to (mu, logvar)."""

    def __init__(self, latent_dim, hidden_dim=64, num_layers=1, **kwargs):
        super().__init__(hidden_dim, num_layers, **kwargs)
        self.latent_dim = latent_dim
        self.mu_var = conv2d(2 * latent_dim, 3, name="mu_var_net")

    def call(self, x, states):
        h, states = self.run_cells(x, states)
        mu, logvar = tf.split(self.mu_var(h), 2, axis=-1)  # first half mu, as torch.chunk
        # The Gaussian's parameters in float32 (mixed precision): sampled with exp(logvar / 2), KL with exp(logvar).
        return tf.cast(mu, tf.float32), tf.cast(logvar, tf.float32), states

    def torch_layers(self, prefix):
        names = super().torch_layers(prefix)
        names[f"{prefix}.mu_var_net"] = self.mu_var
        return names


class DeconvHead(keras.layers.Layer):
    """High-level head (class DeconvHead, §3.6): ``num_layers`` x (deconv k4 s2 -> BN -> ReLU), 1x1 conv, sigmoid."""

    def __init__(self, out_channels, num_filters=64, num_layers=2, batch_stats=True, **kwargs):
        super().__init__(**kwargs)
        self.blocks = register(self, "block", [ConvBlock(num_filters, "dcgan", activation=tf.nn.relu, transpose=True,
                                                         batch_stats=batch_stats, name=f"upc_{i}")
                                               for i in range(num_layers)])
        self.out = conv2d(out_channels, 1, name="out")

    def call(self, x, training=None):
        for block in self.blocks:
            x = block(x, training=training)
        return tf.sigmoid(self.out(x))

    def torch_layers(self, prefix):
        names = {}
        for i, block in enumerate(self.blocks):
            names[f"{prefix}.upc_layers.{3 * i}"] = block.conv
            names[f"{prefix}.upc_layers.{3 * i + 1}"] = block.norm
        names[f"{prefix}.upc_layers.{3 * len(self.blocks)}"] = self.out
        return names
