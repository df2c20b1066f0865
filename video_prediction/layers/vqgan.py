"""Convolutional encoder/decoder blocks of taming-transformers' VQGAN, channels-last (specs/vqvae.md §3.1-3.5).

As used by the FEVD VQ-VAE (``fevd_vqvae/models/model_modules.py``):

* norm: GroupNorm with 32 groups and epsilon 1e-6 (Keras' default epsilon is 1e-3);
  non-linearity swish ``x * sigmoid(x)``; every conv has a bias.
* :class:`ResnetBlock`: GN -> swish -> 3x3 conv -> GN -> swish -> dropout -> 3x3 conv,
  plus the input (through a 1x1 conv when the channel count changes).
* :class:`AttnBlock`: GN, 1x1 q/k/v, single-head softmax attention over all H*W
  positions with scale C^-0.5, 1x1 output projection, residual.
* :class:`Downsample`: zero-pad right and bottom by one, 3x3 conv stride 2 "valid".
* :class:`Upsample`: nearest-neighbour x2, 3x3 conv stride 1 "same".
* :class:`Encoder`, :class:`Decoder2D` (per frame) and :class:`Decoder3D` (Decoder2D
  per frame, then two pixel-space Conv3D, 5^3 then 3^3, no activation).

Initialisation follows PyTorch's defaults (kaiming-uniform with a = sqrt(5) for
kernels, uniform(+-1/sqrt(fan_in)) for biases), so a freshly built model has the
original's weight scales.  Every layer knows its original parameter name
(``torch_layers()``: ``{torch module path: keras layer}``) for checkpoint conversion.
"""

import math

import keras
import tensorflow as tf


def swish(x):
    return x * tf.sigmoid(x)


def torch_conv(filters, kernel_size, in_channels, strides=1, padding="same", rank=2, name=None, dtype=None):
    """A Conv2D/Conv3D with bias and PyTorch's default initialisation for ``in_channels`` inputs."""
    fan_in = in_channels * kernel_size ** rank
    bound = 1.0 / math.sqrt(fan_in)
    layer = keras.layers.Conv2D if rank == 2 else keras.layers.Conv3D
    return layer(filters, kernel_size, strides=strides, padding=padding, name=name, dtype=dtype,
                 # kaiming_uniform(a=sqrt(5)): bound sqrt(6 / ((1 + 5) fan_in)) = 1/sqrt(fan_in)
                 kernel_initializer=keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
                 bias_initializer=keras.initializers.RandomUniform(-bound, bound))


def group_norm(num_groups, name=None, dtype=None):
    """taming's ``Normalize``: GroupNorm(num_groups, eps 1e-6, affine)."""
    return keras.layers.GroupNormalization(groups=num_groups, epsilon=1e-6, name=name, dtype=dtype)


class _TorchNamed(keras.layers.Layer):
    """A layer whose sub-layers are listed under their original PyTorch names."""

    def _named(self):
        return {}

    def _track(self, layers):
        # Named attributes: tf.train.Checkpoint does not follow layers kept only in lists/dicts.
        for layer in layers:
            setattr(self, layer.name, layer)

    def torch_layers(self, prefix=""):
        """``{"prefix.name": layer}`` of every leaf layer with parameters, by its original name."""
        layers = {}
        for name, layer in self._named().items():
            path = f"{prefix}{name}"
            if isinstance(layer, _TorchNamed):
                layers.update(layer.torch_layers(path + "."))
            else:
                layers[path] = layer
        return layers


class ResnetBlock(_TorchNamed):
    """taming ``ResnetBlock`` without timestep embedding (temb channels 0)."""

    def __init__(self, in_channels, out_channels, dropout=0.0, num_groups=32, **kwargs):
        super().__init__(**kwargs)
        dtype = kwargs.get("dtype")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = group_norm(num_groups, "norm1", dtype)
        self.conv1 = torch_conv(out_channels, 3, in_channels, name="conv1", dtype=dtype)
        self.norm2 = group_norm(num_groups, "norm2", dtype)
        self.dropout = keras.layers.Dropout(dropout, dtype=dtype)
        self.conv2 = torch_conv(out_channels, 3, out_channels, name="conv2", dtype=dtype)
        self.nin_shortcut = (torch_conv(out_channels, 1, in_channels, name="nin_shortcut", dtype=dtype)
                             if in_channels != out_channels else None)

    def _named(self):
        named = dict(norm1=self.norm1, conv1=self.conv1, norm2=self.norm2, conv2=self.conv2)
        if self.nin_shortcut is not None:
            named["nin_shortcut"] = self.nin_shortcut
        return named

    def call(self, x, training=False):
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(self.dropout(swish(self.norm2(h)), training=training))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(_TorchNamed):
    """taming ``AttnBlock``: single-head self-attention over the H*W positions of a feature map."""

    def __init__(self, channels, num_groups=32, **kwargs):
        super().__init__(**kwargs)
        dtype = kwargs.get("dtype")
        self.channels = channels
        self.norm = group_norm(num_groups, "norm", dtype)
        self.q, self.k, self.v, self.proj_out = (torch_conv(channels, 1, channels, name=n, dtype=dtype)
                                                 for n in ("q", "k", "v", "proj_out"))

    def _named(self):
        return dict(norm=self.norm, q=self.q, k=self.k, v=self.v, proj_out=self.proj_out)

    def call(self, x):
        h = self.norm(x)
        shape = tf.shape(x)
        flat = [shape[0], shape[1] * shape[2], self.channels]
        q, k, v = (tf.reshape(layer(h), flat) for layer in (self.q, self.k, self.v))
        weights = tf.matmul(q, k, transpose_b=True) * tf.cast(self.channels ** -0.5, q.dtype)
        # over the key positions; in float32 (mixed precision): probabilities over H*W positions
        weights = tf.cast(tf.nn.softmax(tf.cast(weights, tf.float32), axis=-1), q.dtype)
        h = tf.reshape(tf.matmul(weights, v), tf.concat([shape[:3], [self.channels]], 0))
        return x + self.proj_out(h)


class Downsample(_TorchNamed):
    """Zero-pad right/bottom by 1, then a 3x3 stride-2 "valid" conv (64 -> 32 etc.)."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        dtype = kwargs.get("dtype")
        self.pad = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), dtype=dtype)
        self.conv = torch_conv(channels, 3, channels, strides=2, padding="valid", name="conv", dtype=dtype)

    def _named(self):
        return dict(conv=self.conv)

    def call(self, x):
        return self.conv(self.pad(x))


class Upsample(_TorchNamed):
    """Nearest-neighbour x2, then a 3x3 "same" conv."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        dtype = kwargs.get("dtype")
        self.up = keras.layers.UpSampling2D(2, interpolation="nearest", dtype=dtype)
        self.conv = torch_conv(channels, 3, channels, name="conv", dtype=dtype)

    def _named(self):
        return dict(conv=self.conv)

    def call(self, x):
        return self.conv(self.up(x))


def _check_divisible(channels, num_groups):
    if channels % num_groups:
        raise ValueError(f"GroupNorm needs channels divisible by num_groups={num_groups}; got {channels} channels "
                         "(choose ch and ch_mult so that every ch * mult is a multiple of num_groups)")


class Encoder(_TorchNamed):
    """taming ``Encoder`` (double_z False): ``[N, H, W, in_channels]`` -> ``[N, H/2^(L-1), W/2^(L-1), z_channels]``."""

    def __init__(self, ch=128, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, attn_resolutions=(16,), dropout=0.0,
                 in_channels=3, resolution=64, z_channels=256, num_groups=32, **kwargs):
        super().__init__(**kwargs)
        dtype = kwargs.get("dtype")
        for mult in ch_mult:
            _check_divisible(ch * mult, num_groups)
        block_args = dict(dropout=dropout, num_groups=num_groups, dtype=dtype)
        self.conv_in = torch_conv(ch, 3, in_channels, name="conv_in", dtype=dtype)
        self.levels = []  # (blocks, attns, downsample or None)
        current_res = resolution
        block_in = ch
        in_ch_mult = (1,) + tuple(ch_mult)
        for level, mult in enumerate(ch_mult):
            block_in = ch * in_ch_mult[level]
            block_out = ch * mult
            blocks, attns = [], []
            for index in range(num_res_blocks):
                blocks.append(ResnetBlock(block_in, block_out, name=f"down{level}_block{index}", **block_args))
                block_in = block_out
                if current_res in attn_resolutions:  # attention where the map is attn_resolutions px
                    attns.append(AttnBlock(block_in, num_groups, name=f"down{level}_attn{index}", dtype=dtype))
            downsample = None
            if level != len(ch_mult) - 1:
                downsample = Downsample(block_in, name=f"down{level}_downsample", dtype=dtype)
                current_res //= 2
            self.levels.append((blocks, attns, downsample))
            self._track(blocks + attns + ([downsample] if downsample else []))
        self.mid_block_1 = ResnetBlock(block_in, block_in, name="mid_block_1", **block_args)
        self.mid_attn_1 = AttnBlock(block_in, num_groups, name="mid_attn_1", dtype=dtype)
        self.mid_block_2 = ResnetBlock(block_in, block_in, name="mid_block_2", **block_args)
        self.norm_out = group_norm(num_groups, "norm_out", dtype)
        self.conv_out = torch_conv(z_channels, 3, block_in, name="conv_out", dtype=dtype)

    def _named(self):
        named = {"conv_in": self.conv_in}
        for level, (blocks, attns, downsample) in enumerate(self.levels):
            named.update({f"down.{level}.block.{i}": b for i, b in enumerate(blocks)})
            named.update({f"down.{level}.attn.{i}": a for i, a in enumerate(attns)})
            if downsample is not None:
                named[f"down.{level}.downsample"] = downsample
        named.update({"mid.block_1": self.mid_block_1, "mid.attn_1": self.mid_attn_1,
                      "mid.block_2": self.mid_block_2, "norm_out": self.norm_out, "conv_out": self.conv_out})
        return named

    def call(self, x, training=False):
        h = self.conv_in(x)
        for blocks, attns, downsample in self.levels:
            for index, block in enumerate(blocks):
                h = block(h, training=training)
                if attns:
                    h = attns[index](h)
            if downsample is not None:
                h = downsample(h)
        h = self.mid_block_2(self.mid_attn_1(self.mid_block_1(h, training=training)), training=training)
        return self.conv_out(swish(self.norm_out(h)))


class Decoder2D(_TorchNamed):
    """taming ``Decoder`` (mirror of the encoder, ``num_res_blocks + 1`` ResBlocks per level), per frame."""

    def __init__(self, ch=128, out_ch=3, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, attn_resolutions=(16,),
                 dropout=0.0, resolution=64, z_channels=256, num_groups=32, **kwargs):
        super().__init__(**kwargs)
        dtype = kwargs.get("dtype")
        for mult in ch_mult:
            _check_divisible(ch * mult, num_groups)
        block_args = dict(dropout=dropout, num_groups=num_groups, dtype=dtype)
        num_levels = len(ch_mult)
        block_in = ch * ch_mult[-1]
        current_res = resolution // 2 ** (num_levels - 1)
        self.conv_in = torch_conv(block_in, 3, z_channels, name="conv_in", dtype=dtype)
        self.mid_block_1 = ResnetBlock(block_in, block_in, name="mid_block_1", **block_args)
        self.mid_attn_1 = AttnBlock(block_in, num_groups, name="mid_attn_1", dtype=dtype)
        self.mid_block_2 = ResnetBlock(block_in, block_in, name="mid_block_2", **block_args)
        self.levels = {}  # level index -> (blocks, attns, upsample or None); run from the last level down
        for level in reversed(range(num_levels)):
            block_out = ch * ch_mult[level]
            blocks, attns = [], []
            for index in range(num_res_blocks + 1):
                blocks.append(ResnetBlock(block_in, block_out, name=f"up{level}_block{index}", **block_args))
                block_in = block_out
                if current_res in attn_resolutions:
                    attns.append(AttnBlock(block_in, num_groups, name=f"up{level}_attn{index}", dtype=dtype))
            upsample = None
            if level != 0:
                upsample = Upsample(block_in, name=f"up{level}_upsample", dtype=dtype)
                current_res *= 2
            self.levels[level] = (blocks, attns, upsample)
            self._track(blocks + attns + ([upsample] if upsample else []))
        self._level_order = list(reversed(range(num_levels)))
        self.norm_out = group_norm(num_groups, "norm_out", dtype)
        self.conv_out = torch_conv(out_ch, 3, block_in, name="conv_out", dtype=dtype)

    def _named(self):
        named = {"conv_in": self.conv_in, "mid.block_1": self.mid_block_1, "mid.attn_1": self.mid_attn_1,
                 "mid.block_2": self.mid_block_2}
        for level in self._level_order:
            blocks, attns, upsample = self.levels[level]
            named.update({f"up.{level}.block.{i}": b for i, b in enumerate(blocks)})
            named.update({f"up.{level}.attn.{i}": a for i, a in enumerate(attns)})
            if upsample is not None:
                named[f"up.{level}.upsample"] = upsample
        named.update({"norm_out": self.norm_out, "conv_out": self.conv_out})
        return named

    def call(self, z, training=False):
        h = self.conv_in(z)
        h = self.mid_block_2(self.mid_attn_1(self.mid_block_1(h, training=training)), training=training)
        for level in self._level_order:
            blocks, attns, upsample = self.levels[level]
            for index, block in enumerate(blocks):
                h = block(h, training=training)
                if attns:
                    h = attns[index](h)
            if upsample is not None:
                h = upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


class Decoder3D(_TorchNamed):
    """The FEVD ``Decoder3D``: Decoder2D per frame, then Conv3D 5^3 and Conv3D 3^3 over the pixel clip.

    ``call(z)`` takes ``[B, T, h, w, z_channels]`` and returns ``[B, T, H, W, out_ch]``.
    The two convs (out_ch -> out_ch, bias, "same", no activation) are the model's
    only temporal mixing (§3.5).
    """

    def __init__(self, out_ch=3, **decoder_kwargs):
        dtype = decoder_kwargs.get("dtype")
        name = decoder_kwargs.pop("name", None)
        super().__init__(name=name, dtype=dtype)
        self.decoder_2d = Decoder2D(out_ch=out_ch, name="decoder_2d", **decoder_kwargs)
        self.out_conv1 = torch_conv(out_ch, 5, out_ch, rank=3, name="out_conv1", dtype=dtype)
        self.out_conv2 = torch_conv(out_ch, 3, out_ch, rank=3, name="out_conv2", dtype=dtype)

    def _named(self):
        return {"_2d_decoder": self.decoder_2d, "_out_conv1": self.out_conv1, "_out_conv2": self.out_conv2}

    def call(self, z, training=False):
        shape = tf.shape(z)
        frames = tf.reshape(z, tf.concat([[shape[0] * shape[1]], shape[2:]], 0))
        h = self.decoder_2d(frames, training=training)
        out = tf.shape(h)
        h = tf.reshape(h, tf.concat([shape[:2], out[1:]], 0))
        return self.out_conv2(self.out_conv1(h))
