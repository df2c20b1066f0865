"""EPVA / EPVA-GAN / E2E: hierarchical long-term prediction without supervision (Wichers et al., ICML 2018).

Port of ``prediction_model.py`` / ``tf_ops.py`` of
``brain-research/long-term-video-prediction-without-supervision`` (specs/epva.md §3, §4):

* :class:`EPVAEncoder` — VGG-16 to ``pool5`` on ``x * 256 - RGB means`` (§3.1, trap §8.2),
  dropout ``1 - enc_keep_prob``, linear head to ``enc_size`` (truncated-normal 1e-4), optional
  L2 norm;
* :class:`EPVAPredictor` — dense to ``S = enc_size + action_dim`` (+ ``noise_dense`` on 100-d
  noise), ReLU, the 21-cell residual peephole-LSTM stack with the back-connection from cell #18
  (:mod:`video_prediction.layers.peephole_lstm`), dense back to ``enc_size`` (§3.2, traps §8.3-5);
* :class:`VAN` — vector->map and image->map encoders, analogy, masked decoder composited on
  frame 0 (§3.3, trap §8.6);
* :class:`SequenceCritic` — the EPVA-GAN critic on the VAN's higher-level vectors (§3.5, §8.11).

Layer norm is TF1 contrib's (all non-batch axes, per-channel gain/shift, epsilon 1e-12, trap
§8.1).  Dropout keeps the original's rates and positions but, as Keras does, only acts with
``training=True`` (trap §8.7: the original applied it whenever a keep-prob flag was < 1 and
its recipes turned it off for evaluation by leaving the flags at 1.0; the same thing).

Deliberate, documented departures (README "EPVA"):

* frames with one channel are tiled to RGB for the VGG encoder (the original was RGB only) and
  the VAN's output has ``C`` colour channels + 1 mask channel (the original hard-coded 3 + 1;
  identical for RGB);
* image sizes other than 64x64 (multiples of 32) scale every spatial size of the VAN and critic
  by ``H / 64`` (the original hard-coded 64x64: 4x4 vector maps, 8x8 higher-level maps);
* the VAN's gt-image branch (``r_loss``, never in a loss: ``van_r_weight`` is a dead flag) is not
  computed;
* per-frame networks (encoder, VAN) run once on all frames stacked along the batch instead of
  once per timestep; only the predictor is recurrent.  Same weights and maths; the dropout
  masks are independent per call in both;
* ``individual`` with ``enc_size != 12`` raises a ValueError (the original crashes on an
  undefined name, spec §3.6);
* EPVA-GAN's critic steps (5 per generator step) are made inside the same ``train_step`` as the
  generator step, on the sequences of its forward pass (the original ran each critic step as a
  separate session run on a new batch); see :meth:`EPVAVideoPredictionModel.train_step`.
"""

import keras
import numpy as np
import tensorflow as tf

from video_prediction.layers.normalization import LayerNormalization
from video_prediction.layers.peephole_lstm import (PeepholeLSTMCell, ResidualPeepholeLSTMStack, tf1_auto_name,
                                                   track_as_attributes)
from video_prediction.layers.vgg import VGG16Trunk
from video_prediction.models.precision import gradient_scale, to_float32
from video_prediction.models.base import LatentModeMixin, VideoPredictionModel, num_replicas

MODEL_MODES = ("e2e", "epva", "epva_gan", "individual", "e2epose_oneop", "e2epose_sepop")
#: slim's VGG RGB means for inputs on a 0-255 scale (the original multiplies [0, 1] frames by 256, §3.1).
VGG_MEANS = (123.68, 116.78, 103.94)
#: VAN base depth (hard-coded in the original).
VAN_DEPTH = 64
#: Size of the predictor noise vector (``pred_noise_std``).
PRED_NOISE_SIZE = 100
#: Pose vector of the robot data: 7 joint positions, then 3 end-effector coordinates and 2 angles (§3.6).
JOINT_POS_DIM = 7


def _trunc(stddev):
    return keras.initializers.TruncatedNormal(stddev=stddev)


def _ln(index):
    return LayerNormalization(epsilon=1e-12, name=tf1_auto_name("LayerNorm", index))


def _dropout(keep_prob):
    return keras.layers.Dropout(1.0 - keep_prob) if keep_prob < 1.0 else None


def _apply_dropout(layer, x, training):
    return layer(x, training=training) if layer is not None else x


def _dense_vars(scope, layer):
    return {f"{scope}/kernel": layer.kernel, f"{scope}/bias": layer.bias}


def _ln_vars(scope, layer):
    return {f"{scope}/beta": layer.beta, f"{scope}/gamma": layer.gamma}


def _named_vars(scope, layers):
    """TF1 names of a list of dense/conv/deconv (kernel, bias) and LayerNorm (beta, gamma) layers."""
    names = {}
    for layer in layers:
        if isinstance(layer, LayerNormalization):
            names.update(_ln_vars(f"{scope}/{layer.name}", layer))
        else:
            names.update(_dense_vars(f"{scope}/{layer.name}", layer))
    return names


def _dim(x, axis):
    """The static size of ``x`` along ``axis`` when known, else the dynamic one."""
    return x.shape[axis] if x.shape[axis] is not None else tf.shape(x)[axis]


def merge_time(x):
    """[B, T, ...] -> [B*T, ...] (static trailing shape kept)."""
    return tf.reshape(x, [-1] + list(x.shape[2:]))


def split_time(x, batch_size, steps):
    """[B*T, ...] -> [B, T, ...]; ``steps`` a Python int when known so that T stays static."""
    return tf.reshape(x, [batch_size, steps] + list(x.shape[1:]))


# ------------------------------------------------------------------------------------------------
# Encoder
# ------------------------------------------------------------------------------------------------


class EPVAEncoder(keras.layers.Layer):
    """Frame [N, H, W, C] in [0, 1] -> encoding [N, enc_size] (specs/epva.md §3.1)."""

    def __init__(self, enc_size, keep_prob=1.0, use_l2norm=False, grey_in=False, **kwargs):
        super().__init__(**kwargs)
        self.vgg = VGG16Trunk(name="vgg_16")
        self.dropout = _dropout(keep_prob)
        self.dense = keras.layers.Dense(enc_size, kernel_initializer=_trunc(1e-4), name="dense")
        self.use_l2norm = use_l2norm
        self.grey_in = grey_in

    def preprocess(self, images):
        """Greyscale option / tiling of one-channel frames, then slim's ``x * 256 - mean`` (note: 256)."""
        if images.shape[-1] == 1:
            images = tf.tile(images, [1, 1, 1, 3])
        elif self.grey_in:
            images = tf.tile(tf.image.rgb_to_grayscale(images), [1, 1, 1, 3])
        return images * 256.0 - tf.constant(VGG_MEANS, images.dtype)

    def call(self, images, training=False):
        h = self.vgg(self.preprocess(images))
        h = tf.reshape(h, [-1, int(np.prod(h.shape[1:]))])
        h = _apply_dropout(self.dropout, h, training)
        h = self.dense(h)
        if self.use_l2norm:  # the sum of squares in float32 (mixed precision)
            h = tf.cast(tf.math.l2_normalize(tf.cast(h, tf.float32), axis=1), self.compute_dtype)
        return h

    def tf1_variables(self, scope="timestep/encoder"):
        names = self.vgg.tf1_variables(f"{scope}/vgg_16")
        names.update(_dense_vars(f"{scope}/dense", self.dense))
        return names


# ------------------------------------------------------------------------------------------------
# Predictor
# ------------------------------------------------------------------------------------------------


class EPVAPredictor(keras.layers.Layer):
    """One predictor step (specs/epva.md §3.2): ``step(enc, action, states) -> (prediction, new states)``.

    ``states`` is ``None`` at the very first call (zero LSTM states, learned back-connection)
    and otherwise the list of the 21 cell states; the back-connection is read from cell #18
    of ``states`` (so the second, pose pass of a timestep continues from the main pass, §3.4).
    """

    def __init__(self, enc_size, action_dim, pred_depth=20, pred_noise_std=0.0, lstm_state_noise_stddev=0.0,
                 use_l2norm=False, legacy_back_connect=False, **kwargs):
        super().__init__(**kwargs)
        self.enc_size = enc_size
        self.size = enc_size + action_dim  # the original's initial_size S (trap §8.3)
        self.pred_noise_std = float(pred_noise_std)
        self.lstm_state_noise_stddev = float(lstm_state_noise_stddev)
        self.use_l2norm = use_l2norm
        # Trace-time switch of the model's "mean" latent mode: the noise at its mean (zero) instead of samples.
        self.noise_at_mean = False
        self.dense = keras.layers.Dense(self.size, kernel_initializer=_trunc(1e-2), name="dense")
        self.noise_dense = None
        if self.pred_noise_std > 0:
            self.noise_dense = keras.layers.Dense(self.size, kernel_initializer=_trunc(1e-2), name="noise_dense")
        self.stack = ResidualPeepholeLSTMStack(self.size, pred_depth, init_stddev=1e-2,
                                               legacy_back_connect=legacy_back_connect, name="stack")
        self.out_dense = keras.layers.Dense(enc_size, kernel_initializer=_trunc(1e-2), name="dense_1")

    def step(self, enc, action, states=None):
        pre = self.dense(tf.concat([enc, action], axis=1))
        if self.noise_dense is not None:
            # Fresh noise every call, also at test time (spec §3.2 step 2); its mean (zero, so only
            # noise_dense's bias) in the "mean" latent mode.
            shape = tf.stack([tf.shape(enc)[0], PRED_NOISE_SIZE])
            noise = tf.zeros(shape) if self.noise_at_mean else tf.random.normal(shape, stddev=self.pred_noise_std)
            pre = pre + self.noise_dense(noise)
        pre = tf.nn.relu(pre)
        if states is None:
            states, back_connection = self.stack.initial_states(tf.shape(enc)[0]), None
        else:
            back_connection = states[self.stack.back_connect_cell]
        h, states = self.stack.step(pre, states, back_connection)
        pred = self.out_dense(h)
        if self.use_l2norm:  # the sum of squares in float32 (mixed precision)
            pred = tf.cast(tf.math.l2_normalize(tf.cast(pred, tf.float32), axis=1), self.compute_dtype)
        if self.lstm_state_noise_stddev > 0 and not self.noise_at_mean:
            # Relative truncated-normal noise on every state (spec §3.2 step 8); 0 (default) is a no-op.
            noisy = []
            for state in states:
                x = tf.cast(state, tf.float32)  # the state's statistics in float32 (mixed precision)
                _, variance = tf.nn.moments(x, axes=[1])
                std = tf.reduce_mean(tf.sqrt(variance))
                noise = tf.random.truncated_normal(tf.shape(state), stddev=self.lstm_state_noise_stddev * std)
                noisy.append(tf.cast(x + noise, state.dtype))
            states = noisy
        return pred, states

    def tf1_variables(self, scope="timestep/predict"):
        names = _dense_vars(f"{scope}/dense", self.dense)
        if self.noise_dense is not None:
            names.update(_dense_vars(f"{scope}/noise_dense", self.noise_dense))
        names.update(self.stack.tf1_variables(scope))
        names.update(_dense_vars(f"{scope}/dense_1", self.out_dense))
        return names


# ------------------------------------------------------------------------------------------------
# VAN
# ------------------------------------------------------------------------------------------------


def _conv(filters, strides=1, activation="relu", name=None):
    return keras.layers.Conv2D(filters, 3, strides=strides, padding="same", activation=activation, name=name)


def _deconv(filters, strides=1, activation="relu", name=None):
    return keras.layers.Conv2DTranspose(filters, 3, strides=strides, padding="same", activation=activation,
                                        name=name)


class VANVectorEncoder(keras.layers.Layer):
    """``van_enc``: encoding [N, E] -> (map [N, s, s, 4D], higher-level vector [N, E + s²·2D + s²·4D])."""

    def __init__(self, base_size, depth=VAN_DEPTH, **kwargs):
        super().__init__(**kwargs)
        self.base_size = base_size  # 4 at 64x64
        self.depth = depth
        self.dense = keras.layers.Dense(depth * base_size * base_size, activation="relu", name="dense")
        self.deconvs = [_deconv(depth, name="conv2d_transpose"), _deconv(2 * depth, 2, name="conv2d_transpose_1"),
                        _deconv(2 * depth, name="conv2d_transpose_2"), _deconv(4 * depth, name="conv2d_transpose_3")]
        self.norms = [_ln(k) for k in range(3)]
        track_as_attributes(self, self.deconvs + self.norms)

    def call(self, x):
        h = self.norms[0](self.dense(tf.nn.relu(x)))  # ReLU on the encoding first (trap §8.6)
        h = tf.reshape(h, [-1, self.base_size, self.base_size, self.depth])
        h = self.norms[1](self.deconvs[0](h))
        h2 = self.deconvs[1](h)
        h = self.norms[2](self.deconvs[2](h2))
        h4 = self.deconvs[3](h)
        flat2 = tf.reshape(h2, [-1, int(np.prod(h2.shape[1:]))])
        flat4 = tf.reshape(h4, [-1, int(np.prod(h4.shape[1:]))])
        return h4, tf.concat([x, flat2, flat4], axis=1)  # the raw (pre-ReLU) x

    def tf1_variables(self, scope):
        return _named_vars(scope, [self.dense] + self.deconvs + self.norms)


class VANImageEncoder(keras.layers.Layer):
    """``van_image_enc``: frame [N, H, W, C] -> map [N, H/8, W/8, 4D]."""

    def __init__(self, keep_prob=1.0, depth=VAN_DEPTH, **kwargs):
        super().__init__(**kwargs)
        filters = [depth, depth, 2 * depth, 2 * depth, 4 * depth, 4 * depth, 4 * depth]
        self.convs = [_conv(f, name=tf1_auto_name("conv2d", k)) for k, f in enumerate(filters)]
        self.norms = [_ln(k) for k in range(3)]
        self.pool = keras.layers.MaxPooling2D(2, 2, padding="same")
        self.dropout = _dropout(keep_prob)
        track_as_attributes(self, self.convs + self.norms)

    def call(self, x, training=False):
        c, n = self.convs, self.norms
        h = c[1](n[0](c[0](x)))
        h = n[1](_apply_dropout(self.dropout, self.pool(h), training))
        h = c[3](c[2](h))
        h = n[2](_apply_dropout(self.dropout, self.pool(h), training))
        h = c[6](c[5](c[4](h)))
        return self.pool(h)

    def tf1_variables(self, scope):
        return _named_vars(scope, self.convs + self.norms)


class VANAnalogy(keras.layers.Layer):
    """``analogy_computation``: conv(F_img(x0) - F_vec(e0)), conv(F_vec(e)), then three convs."""

    def __init__(self, depth=VAN_DEPTH, **kwargs):
        super().__init__(**kwargs)
        self.convs = [_conv(4 * depth, name=tf1_auto_name("conv2d", k)) for k in range(5)]
        self.norm = _ln(0)
        track_as_attributes(self, self.convs)

    def call(self, f_first_enc, f_first_frame, f_current_enc):
        c = self.convs
        diff = c[0](f_first_frame - f_first_enc)
        current = c[1](f_current_enc)
        h = self.norm(c[2](tf.concat([diff, current], axis=3)))
        return c[4](c[3](h))

    def tf1_variables(self, scope):
        return _named_vars(scope, self.convs + [self.norm])


def straight_through_clip01(x):
    """``clip(x, 0, 1)`` forward, identity backward (a straight-through estimator).

    The ``van_output_activation='clip'`` option (not in the original): a pixel already below 0 whose
    target is 0 has zero error, so a black background can stay exactly black, while a pixel below 0
    whose target is brighter still gets the full gradient.  The original's linear output leaves a faint
    noise around 0 on the background, which SSIM punishes on mostly-black frames (Moving MNIST).
    """
    return x + tf.stop_gradient(tf.clip_by_value(x, 0.0, 1.0) - x)


#: ``van_penultimate_activation`` of the VAN decoder's ``C + 1``-channel layer before the output layer: ``relu``
#: is the original's.  With only ``C + 1`` channels (2 for grey frames, 4 for RGB) these ReLUs can all die early in
#: training (measured on one-digit Moving MNIST at lr 3e-4: > 99 % of their outputs are 0 after 25 steps), after
#: which the decoder's output is its bias alone: a constant colour and mask, i.e. frame 0 dimmed plus a uniform
#: haze, whatever the encoding.  ``linear`` (not in the original) keeps that layer linear so it cannot die.
VAN_PENULTIMATE_ACTIVATIONS = {"relu": "relu", "linear": None}

#: ``van_output_activation``: ``linear`` is the original's (the composite is not clipped).
VAN_OUTPUT_ACTIVATIONS = {"linear": tf.identity, "clip": straight_through_clip01}


#: ``van_pixel_loss``, the element-wise error of the VAN's pixel losses: ``l2`` (squared) is the original's.  Where the
#: digit's next position is uncertain, the squared error's optimum is the mean over positions, a grey haze over the
#: whole region, while the absolute error's optimum is the per-pixel median, black wherever the digit is more likely
#: absent than present.  ``l1`` (not in the original) therefore keeps a black background black, which SSIM on
#: mostly-black frames (Moving MNIST) needs.
VAN_PIXEL_LOSSES = {"l2": tf.square, "l1": tf.abs}


class VANDecoder(keras.layers.Layer):
    """``van_dec``: map -> (image composited on the first frame, sigmoid mask)."""

    def __init__(self, channels, keep_prob=1.0, depth=VAN_DEPTH, output_activation="linear",
                 penultimate_activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        if penultimate_activation not in VAN_PENULTIMATE_ACTIVATIONS:
            raise ValueError(f"van_penultimate_activation must be one of {', '.join(VAN_PENULTIMATE_ACTIVATIONS)}, "
                             f"got {penultimate_activation!r}")
        if output_activation not in VAN_OUTPUT_ACTIVATIONS:
            raise ValueError(f"van_output_activation must be one of {', '.join(VAN_OUTPUT_ACTIVATIONS)}, "
                             f"got {output_activation!r}")
        self.output_activation = VAN_OUTPUT_ACTIVATIONS[output_activation]
        specs = [(4 * depth, 2, "relu"), (4 * depth, 1, "relu"), (2 * depth, 1, "relu"), (2 * depth, 2, "relu"),
                 (depth, 1, "relu"), (channels + 1, 2, VAN_PENULTIMATE_ACTIVATIONS[penultimate_activation]),
                 (channels + 1, 1, None)]
        self.deconvs = [_deconv(f, s, a, name=tf1_auto_name("conv2d_transpose", k))
                        for k, (f, s, a) in enumerate(specs)]
        self.norms = [_ln(k) for k in range(3)]
        self.dropout = _dropout(keep_prob)
        track_as_attributes(self, self.deconvs + self.norms)

    def call(self, x, first_frame, training=False):
        d, n = self.deconvs, self.norms

        def drop(h):
            return _apply_dropout(self.dropout, h, training)

        h = n[0](drop(d[0](x)))
        h = drop(d[1](h))
        h = n[1](drop(d[2](h)))
        h = drop(d[3](h))
        h = n[2](drop(d[4](h)))
        h = drop(d[5](h))  # the ReLU before the output layer is the original's (trap §8.6; van_penultimate_activation)
        out = d[6](h)
        mask = tf.sigmoid(out[..., self.channels:self.channels + 1])
        colour = out[..., : self.channels]  # linear, unbounded, not clipped
        return self.output_activation(colour * mask + first_frame * (1.0 - mask)), mask

    def tf1_variables(self, scope):
        return _named_vars(scope, self.deconvs + self.norms)


class VAN(keras.layers.Layer):
    """Visual analogy network (specs/epva.md §3.3): ``(first_enc, first_frame, current_enc) -> (image, higher, mask)``."""

    def __init__(self, channels, base_size, keep_prob=1.0, output_activation="linear", penultimate_activation="relu",
                 **kwargs):
        super().__init__(**kwargs)
        self.vector_encoder = VANVectorEncoder(base_size, name="van_enc")
        self.image_encoder = VANImageEncoder(keep_prob, name="van_image_enc")
        self.analogy = VANAnalogy(name="analogy_computation")
        self.decoder = VANDecoder(channels, keep_prob, output_activation=output_activation,
                                  penultimate_activation=penultimate_activation, name="van_dec")

    def call(self, first_enc, first_frame, current_enc, training=False):
        f_first_enc, _ = self.vector_encoder(first_enc)
        f_first_frame = self.image_encoder(first_frame, training=training)
        f_current_enc, higher = self.vector_encoder(current_enc)
        analogy = self.analogy(f_first_enc, f_first_frame, f_current_enc)
        image, mask = self.decoder(f_current_enc + analogy, first_frame, training=training)
        return image, higher, mask

    def tf1_variables(self, scope="timestep/van"):
        names = self.vector_encoder.tf1_variables(f"{scope}/van_enc")
        names.update(self.image_encoder.tf1_variables(f"{scope}/van_image_enc"))
        names.update(self.analogy.tf1_variables(f"{scope}/analogy_computation"))
        names.update(self.decoder.tf1_variables(f"{scope}/van_dec"))
        return names


# ------------------------------------------------------------------------------------------------
# Sequence critic (EPVA-GAN)
# ------------------------------------------------------------------------------------------------


class SequenceCritic(keras.layers.Layer):
    """``[B, T, E + H2 + H4]`` higher-level vectors -> critic score ``[B, 1]`` (specs/epva.md §3.5).

    Per timestep (weights shared, fresh zero LSTM states per call): H2 / H4 maps through two
    stride-2 convs and a layer norm each, concatenated with ``x`` and the previous step's output
    (zeros at t=0); four peephole LSTMs (4E, 4E, 2E, E) each followed by a layer norm; a linear
    dense on the last step's output.  Default (Glorot-uniform) initialisers.
    """

    def __init__(self, enc_size, map_size, depth=VAN_DEPTH, **kwargs):
        super().__init__(**kwargs)
        self.enc_size = enc_size
        self.map_size = map_size  # 8 at 64x64
        self.depth = depth
        self.convs = [_conv(depth, 2, name="conv2d"), _conv(depth, 2, name="conv2d_1"),
                      _conv(2 * depth, 2, name="conv2d_2"), _conv(depth, 2, name="conv2d_3")]
        self.cells = [PeepholeLSTMCell(units, units, name=tf1_auto_name("LSTMCell", k))
                      for k, units in enumerate((4 * enc_size, 4 * enc_size, 2 * enc_size, enc_size))]
        self.norms = [_ln(k) for k in range(6)]
        self.final = keras.layers.Dense(1, name="dense")
        track_as_attributes(self, self.convs + self.cells + self.norms)

    def call(self, sequence):
        e, s, d = self.enc_size, self.map_size, self.depth
        batch_size = _dim(sequence, 0)
        num_steps = sequence.shape[1]
        if num_steps is None:
            raise ValueError("the EPVA critic needs a static sequence length")
        flat = merge_time(sequence)
        x, h2, h4 = tf.split(flat, [e, s * s * 2 * d, s * s * 4 * d], axis=1)
        # The per-timestep convolutions do not depend on the recurrence: run them on all steps at once.
        h2 = self.norms[0](self.convs[1](self.convs[0](tf.reshape(h2, [-1, s, s, 2 * d]))))
        h4 = self.norms[1](self.convs[3](self.convs[2](tf.reshape(h4, [-1, s, s, 4 * d]))))
        features = tf.concat([x, tf.reshape(h2, [tf.shape(h2)[0], -1]), tf.reshape(h4, [tf.shape(h4)[0], -1])], 1)
        features = split_time(features, batch_size, num_steps)
        states = [cell.zero_state(batch_size) for cell in self.cells]
        result = tf.zeros(tf.stack([batch_size, e]), sequence.dtype)
        for t in range(num_steps):
            h = tf.concat([features[:, t], result], axis=1)
            for k, cell in enumerate(self.cells):
                h, states[k] = cell(h, states[k])
                h = self.norms[k + 2](h)
            result = h
        return self.final(result)

    def tf1_variables(self, scope="Discriminator"):
        names = _named_vars(f"{scope}/timestep", self.convs + self.norms)
        for cell in self.cells:
            names.update(cell.tf1_variables(f"{scope}/timestep/{cell.name}"))
        names.update(_dense_vars(f"{scope}/dense", self.final))
        return names


# ------------------------------------------------------------------------------------------------
# Losses (spec §4.1)
# ------------------------------------------------------------------------------------------------


def quaternion_from_pose_angles(angles):
    """Quaternion of the last two pose dims ('szyx', first angle 0), scalar part last (spec §4.1)."""
    b, c = angles[..., 0] / 2.0, angles[..., 1] / 2.0
    return tf.stack([-tf.sin(b) * tf.sin(c), tf.sin(b) * tf.cos(c), tf.cos(b) * tf.sin(c),
                     tf.cos(b) * tf.cos(c)], axis=-1)


def pose_loss(gen_poses, poses, robot_layout=True):
    """Joint MSE + end-effector MSE + quaternion loss, each pooled over batch per step, averaged over steps.

    ``gen_poses`` / ``poses`` ``[B, T, 12]``.  All three terms are means of equal-sized per-step
    terms, so the average over steps equals the mean over everything.  ``robot_layout=False`` (the
    ``pose_size`` option: a pose that is not the robot's 7 joints + 5 state values, e.g. Moving MNIST's
    digit centres) is the plain mean squared error over every pose value.
    """
    if not robot_layout:
        return tf.reduce_mean(tf.square(gen_poses - poses))
    joint = tf.reduce_mean(tf.square(gen_poses[..., :JOINT_POS_DIM] - poses[..., :JOINT_POS_DIM]))
    ee = tf.reduce_mean(tf.square(gen_poses[..., JOINT_POS_DIM:-2] - poses[..., JOINT_POS_DIM:-2]))
    q_gen = quaternion_from_pose_angles(gen_poses[..., -2:])
    q_true = quaternion_from_pose_angles(poses[..., -2:])
    quat = tf.reduce_mean(1.0 - tf.reduce_sum(q_gen * q_true, axis=-1))
    return joint + ee + quat


def batch_pooled_psnr(pred, target):
    """The original's logged PSNR: per step 10 log10(1 / MSE over the whole batch), averaged over steps."""
    mse = tf.reduce_mean(tf.square(pred - target), axis=[0] + list(range(2, len(pred.shape))))
    return tf.reduce_mean(10.0 * tf.math.log(1.0 / mse) / tf.math.log(10.0))


def wasserstein_gradient_penalty(critic, real, fake, alpha=None, epsilon=1e-10):
    """TF-GAN's two-sided penalty on the whole sequence: per-example uniform alpha, norm over non-batch axes."""
    if alpha is None:
        alpha = tf.random.uniform(tf.stack([tf.shape(real)[0]] + [1] * (len(real.shape) - 1)))
    interpolates = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        scores = tf.cast(critic(interpolates), tf.float32)
    gradients = tape.gradient(scores, interpolates)
    slopes = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=list(range(1, len(real.shape)))) + epsilon)
    return tf.reduce_mean(tf.square(slopes - 1.0))


def sigmoid_cross_entropy(logits, label, label_smoothing=0.0):
    labels = tf.fill(tf.shape(logits), label) * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


class RateFromStep(keras.optimizers.schedules.LearningRateSchedule):
    """``learning_rate`` while ``global_step < step``; from it on 0 (``decay_steps`` 0: ``epva_freeze_step``'s
    frozen encoder + VAN) or a cosine decay to 0 over ``decay_steps`` steps, 0 after (``epva_pred_decay_steps``:
    the predictor in the predictor-only phase).  Reads the model's global step, not the optimizer's own count,
    so that the two cannot drift apart, e.g. over skipped non-finite steps."""

    def __init__(self, learning_rate, step, global_step, decay_steps=0):
        self.learning_rate = float(learning_rate)
        self.step = int(step)
        self.decay_steps = int(decay_steps)
        self.global_step = global_step

    def __call__(self, iterations):
        del iterations
        if not self.decay_steps:
            return tf.where(self.global_step < self.step, self.learning_rate, 0.0)
        done = tf.clip_by_value(tf.cast(self.global_step - self.step, tf.float32) / self.decay_steps, 0.0, 1.0)
        return self.learning_rate * 0.5 * (1.0 + tf.cos(np.pi * done))

    def get_config(self):
        return {"learning_rate": self.learning_rate, "step": self.step, "decay_steps": self.decay_steps}


def clip_per_tensor(gradients, clip_norm):
    """Clip each gradient tensor to ``clip_norm`` after the cross-replica sum (slim's per-tensor clipping).

    Keras' ``clipnorm`` clips each replica's partial gradient before the optimizer sums them over
    replicas, which is not the clipped global-batch gradient.  Here the sum is made first, the
    sum is clipped, and the result is divided by the number of replicas so that the optimizer's
    own sum gives back the clipped gradient.
    """
    context = tf.distribute.get_replica_context()
    replicas = num_replicas()
    present = [g for g in gradients if g is not None]
    if context is not None and replicas > 1 and present:
        present = context.all_reduce(tf.distribute.ReduceOp.SUM, present)
        present = [tf.clip_by_norm(g, clip_norm) / replicas for g in present]
    else:
        present = [tf.clip_by_norm(g, clip_norm) for g in present]
    present = iter(present)
    return [None if g is None else next(present) for g in gradients]


# ------------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------------


class EPVAVideoPredictionModel(LatentModeMixin, VideoPredictionModel):
    """EPVA family model; ``model_mode`` picks the training objective (spec §4.2).

    ``call(batch, training)`` returns batch-major:

    * ``gen_images`` ``[B, T-1, H, W, C]`` — the VAN's decoding of the predicted encodings
      (``van_out``; ground-truth encodings fed to the predictor during the context);
    * ``masks`` ``[B, T-1, H, W, 1]`` — the VAN's masks divided by their per-example maximum;
    * ``van_on_enc`` ``[B, T-1, H, W, C]`` — reconstructions from the encodings of frames 1..T-1;
    * ``encodings`` ``[B, T, E]``, ``predictions`` ``[B, T-1, E]``;
    * with ``enc_size`` equal to the pose size (12): ``pred_on_pose`` ``[B, T-1, 12]`` and ``van_on_pose``.

    Batches may hold ``actions`` ``[B, >=T-1, action_dim]`` (zeros otherwise, as the original's
    human data) and ``joint_poses`` ``[B, T, 12]`` (7 joints then 5 end-effector values, zeros
    otherwise).  Options, not the original's: ``pose_key`` names another batch key to read the poses
    from (e.g. Moving MNIST's ``poses`` [B, T, num_digits, 2], flattened to [B, T, num_digits * 2]) and
    ``pose_size`` sets their size (0: the original's ``action_dim + 7`` robot layout).
    """

    trainable_model = True
    #: generate.py's VAN masks and van_on_enc GIFs (inference/extras/epva.py)
    inference_extras = "video_prediction.inference.extras.epva:EPVAInferenceExtras"
    #: Per-call optimizers and the variable groups they train, per mode (spec §4.2).
    OPTIMIZERS = {
        "e2e": ("all",),
        "epva": ("all",),
        "epva_gan": ("pred", "van", "discrim"),
        "individual": ("enc", "pred", "van"),
        "e2epose_oneop": ("all",),
        "e2epose_sepop": ("all", "enc", "pred"),
    }

    def __init__(self, hparams_dict=None, hparams=None, name=None, **kwargs):
        super().__init__(hparams_dict=hparams_dict, hparams=hparams, name=name, **kwargs)
        hp = self.hparams
        if hp.model_mode not in MODEL_MODES:
            raise ValueError(f"unknown model_mode {hp.model_mode!r}; valid: {', '.join(MODEL_MODES)}")
        if hp.imgnet_pretrain_source not in ("slim", "torchvision"):
            raise ValueError(f"unknown imgnet_pretrain_source {hp.imgnet_pretrain_source!r}; valid: slim, torchvision")
        if hp.pose_size < 0:
            raise ValueError(f"pose_size must be >= 0 (0: the original's action_dim + 7), got {hp.pose_size}")
        if hp.model_mode == "individual" and hp.enc_size != self.pose_size:
            raise ValueError(f"model_mode 'individual' needs enc_size == {self.pose_size} (the pose size), "
                             f"got enc_size={hp.enc_size}")
        if hp.discrim_context < 1 or hp.discrim_context >= hp.sequence_length:
            raise ValueError(f"discrim_context must be in [1, sequence_length), got {hp.discrim_context}")
        if hp.van_output_activation not in VAN_OUTPUT_ACTIVATIONS:
            raise ValueError(f"van_output_activation must be one of {', '.join(VAN_OUTPUT_ACTIVATIONS)}, "
                             f"got {hp.van_output_activation!r}")
        if hp.van_penultimate_activation not in VAN_PENULTIMATE_ACTIVATIONS:
            raise ValueError(f"van_penultimate_activation must be one of {', '.join(VAN_PENULTIMATE_ACTIVATIONS)}, "
                             f"got {hp.van_penultimate_activation!r}")
        if hp.van_pixel_loss not in VAN_PIXEL_LOSSES:
            raise ValueError(f"van_pixel_loss must be one of {', '.join(VAN_PIXEL_LOSSES)}, got {hp.van_pixel_loss!r}")
        if hp.epva_freeze_step < 0:
            raise ValueError(f"epva_freeze_step must be >= 0 (0: never), got {hp.epva_freeze_step}")
        if hp.epva_pred_decay_steps < 0:
            raise ValueError(f"epva_pred_decay_steps must be >= 0 (0: a constant rate), got {hp.epva_pred_decay_steps}")
        if hp.epva_pred_decay_steps and not hp.epva_freeze_step:
            raise ValueError("epva_pred_decay_steps decays the predictor's rate after epva_freeze_step, which is 0")
        if hp.epva_freeze_step and hp.model_mode != "epva":
            raise ValueError(f"epva_freeze_step is an option of model_mode 'epva', got model_mode {hp.model_mode!r}")
        for key in ("enc_keep_prob", "van_keep_prob"):
            if not 0.0 < getattr(hp, key) <= 1.0:
                raise ValueError(f"{key} must be in (0, 1], got {getattr(hp, key)}")
        self.stochastic = hp.pred_noise_std > 0
        self.encoder = EPVAEncoder(hp.enc_size, hp.enc_keep_prob, hp.enc_pred_use_l2norm, hp.encoder_grey_in,
                                   name="encoder")
        self.predictor = EPVAPredictor(hp.enc_size, hp.action_dim, hp.pred_depth, hp.pred_noise_std,
                                       hp.lstm_state_noise_stddev, hp.enc_pred_use_l2norm, hp.use_legacy_vars,
                                       name="predict")
        self.van = None  # needs the frame size and channels: built on the first batch
        self.critic = None
        self.optimizers = {}

    @classmethod
    def default_hparams(cls):
        # The original's flags (specs/epva.md §5) with their defaults, except epv_pretrain_ckpt ('' here, trap §8.14).
        hparams = dict(super().default_hparams())
        for key in ("lr", "end_lr", "decay_steps", "lr_boundaries", "beta1", "beta2", "clip_length", "l1_weight",
                    "l2_weight"):
            hparams.pop(key)
        hparams.update(
            batch_size=8,
            max_steps=4800000,  # train_steps
            model_mode="e2e",
            enc_size=64,
            action_dim=5,  # pose_dim: actions are always fed (zeros without actions, trap §8.3)
            pred_depth=20,  # hard-coded in construct_model: 21 LSTM cells
            enc_keep_prob=1.0,
            van_keep_prob=1.0,
            enc_noise_stddev=0.0,
            pred_noise_std=0.0,
            lstm_state_noise_stddev=0.0,
            enc_pred_use_l1_loss=False,
            enc_pred_use_l2norm=False,
            encoder_grey_in=False,
            discrim_steps_per_pred=5,
            use_wgan=True,
            gradient_penalty_weight=10.0,
            discrim_context=1,
            enc_learning_rate=1e-5,
            pred_learning_rate=3e-4,
            van_learning_rate=3e-5,
            discrim_learning_rate=1e-2,
            all_learning_rate=1e-5,
            enc_pred_loss_scale=1e-2,
            enc_pred_loss_scale_delay=0.0,
            pose_weight=1.0,
            clip_gradient_norm=0.0,
            imgnet_pretrain=False,
            imgnet_pretrain_source="slim",  # 'slim' (vgg_16.ckpt download) or 'torchvision' (offline, LPIPS's)
            epv_pretrain_ckpt="",
            use_legacy_vars=False,
            # Not a flag of the original: 'clip' clips the VAN's composite to [0, 1] with a straight-through
            # gradient (:func:`straight_through_clip01`); 'linear' (default) is the original's unclipped output.
            van_output_activation="linear",
            # Not a flag of the original: 'linear' drops the ReLU of the VAN decoder's layer before its output
            # layer (VAN_PENULTIMATE_ACTIVATIONS says why); 'relu' (default) is the original's.
            van_penultimate_activation="relu",
            # Not a flag of the original: the VAN's pixel losses (van, van_on_enc, van_on_pose). 'l2' (default) is
            # the original's mean squared error; 'l1' the mean absolute error (VAN_PIXEL_LOSSES says why).
            van_pixel_loss="l2",
            # Not a flag of the original: in 'epva' mode, adds this weight times the pixel loss of the frames decoded
            # from the *predicted* encodings (van_loss) to the objective, so the predictor also learns through the
            # VAN (which the reconstruction loss teaches to read the encoding).  0 (default) is the original's.
            epva_van_loss_weight=0.0,
            # Not a flag of the original: in 'epva' mode, > 0 trains the predictor with its own Adam
            # (pred_learning_rate) and, from this global step on, freezes the encoder and the VAN so that only the
            # predictor learns, on a target that no longer moves; 0 (default) is the original's one optimizer
            # on everything for every step.  See optimizers_needed and train_step.
            epva_freeze_step=0,
            # Not a flag of the original: with epva_freeze_step, > 0 decays pred_learning_rate from the freeze step to
            # 0 over this many steps (cosine); 0 (default) keeps it constant.
            epva_pred_decay_steps=0,
            # Not flags of the original (which fixed the pose to the robot's 12 values, §3.6): pose_key is the batch
            # key the pose-supervised modes (individual, e2epose_*) read, 'joint_poses' (default, the original's) or
            # e.g. 'poses' (Moving MNIST's digit centres [B, T, num_digits, 2], flattened per frame); pose_size is
            # its size after flattening, 0 (default) = the original's action_dim + 7 with its joint / end-effector /
            # quaternion loss.  Any other pose_size takes the plain mean squared error as the pose loss.
            pose_key="joint_poses",
            pose_size=0,
        )
        return hparams

    @property
    def pose_size(self):
        """The pose vector's size: the ``pose_size`` option, else the original's ``action_dim + 7`` (§3.6)."""
        return self.hparams.pose_size or self.hparams.action_dim + JOINT_POS_DIM

    @property
    def robot_pose_layout(self):
        """Whether the pose is the original's 7 joints + 5 state values (its pose loss), not a ``pose_size`` option."""
        return not self.hparams.pose_size

    @property
    def has_pose_pass(self):
        """The original runs the pose passes whenever ``enc_size`` equals the pose size (§3.4)."""
        return self.hparams.enc_size == self.pose_size

    # -- building -------------------------------------------------------------------------------

    def _build_layers(self, image_shape):
        height, width, channels = (int(d) for d in image_shape)
        if height != width or height % 32:
            raise ValueError(f"EPVA needs square frames whose side is a multiple of 32 (64 in the original), "
                             f"got {height}x{width}")
        self.image_shape = (height, width, channels)
        self.van = VAN(channels, height // 16, self.hparams.van_keep_prob,
                       output_activation=self.hparams.van_output_activation,
                       penultimate_activation=self.hparams.van_penultimate_activation, name="van")
        if self.hparams.model_mode == "epva_gan":
            self.critic = SequenceCritic(self.hparams.enc_size, height // 8, name="Discriminator")

    def build(self, input_shape):
        if self.van is None:
            self._build_layers(dict(input_shape)["images"][2:])

    def build_from_batch(self, batch):
        if self.van is None:
            self._build_layers(tf.convert_to_tensor(batch["images"]).shape[2:])
        outputs = self._forward(batch, training=False, with_higher=self.critic is not None)
        if self.critic is not None:
            self.critic(outputs["higher_real"])
        self.built = True

    # -- forward --------------------------------------------------------------------------------

    def _inputs(self, batch):
        images = tf.convert_to_tensor(batch["images"])
        batch_size, num_frames = tf.shape(images)[0], tf.shape(images)[1]
        action_dim = self.hparams.action_dim
        if "actions" in batch:
            actions = tf.convert_to_tensor(batch["actions"], tf.float32)
            if actions.shape[-1] != action_dim:
                raise ValueError(f"the batch's actions have size {actions.shape[-1]}, the model action_dim="
                                 f"{action_dim}")
            actions = actions[:, : num_frames - 1]
        else:
            actions = tf.zeros(tf.stack([batch_size, num_frames - 1, action_dim]))
        key = self.hparams.pose_key
        if key in batch:
            poses = tf.convert_to_tensor(batch[key], tf.float32)
            size = int(np.prod(poses.shape[2:]))  # e.g. Moving MNIST's [B, T, num_digits, 2]: flattened per frame
            if size != self.pose_size:
                raise ValueError(f"the batch's {key} have {size} values per frame (shape {poses.shape.as_list()}), "
                                 f"the model's pose size is {self.pose_size} (hparam pose_size)")
            poses = tf.reshape(poses, tf.stack([batch_size, num_frames, size]))
        else:
            poses = tf.zeros(tf.stack([batch_size, num_frames, self.pose_size]))
        return images, actions, poses

    def _predict(self, encodings, actions, poses):
        """The recurrent part: predictor (and pose pass) over T-1 steps; returns batch-major predictions."""
        hp = self.hparams
        context = hp.context_frames
        # The loop in the layers' compute dtype (mixed precision): step() is no Keras __call__.
        enc_t, act_t, pose_t = (tf.cast(tf.transpose(x, [1, 0, 2]), self.precision)
                                for x in (encodings, actions, poses))
        num_steps = tf.shape(enc_t)[0] - 1
        pose_pass = self.has_pose_pass

        def step(t, prev_pred, prev_pose, states):
            use_gt = t < context
            pred_input = tf.where(use_gt, enc_t[t], prev_pred) if states is not None else enc_t[t]
            pred, states = self.predictor.step(pred_input, act_t[t], states)
            outputs = {"pred": pred}
            pose_pred = prev_pose
            if pose_pass:
                pose_input = tf.where(use_gt, pose_t[t], prev_pose) if prev_pose is not None else pose_t[t]
                pose_pred, states = self.predictor.step(pose_input, act_t[t], states)
                outputs["pose"] = pose_pred
            return outputs, pred, pose_pred, states

        with keras.name_scope(self.predictor.name):
            first, pred, pose_pred, states = step(tf.constant(0), None, None, None)
        if not pose_pass:
            pose_pred = tf.zeros_like(pred)
        static_steps = encodings.shape[1] - 1 if encodings.shape[1] is not None else None
        arrays = {key: tf.TensorArray(value.dtype, size=num_steps, element_shape=value.shape).write(0, value)
                  for key, value in first.items()}

        def body(t, pred, pose_pred, states, arrays):
            outputs, pred, new_pose, states = step(t, pred, pose_pred if pose_pass else None, states)
            if not pose_pass:
                new_pose = pose_pred
            return t + 1, pred, new_pose, states, {k: arrays[k].write(t, outputs[k]) for k in arrays}

        # One graph copy of the step for any length (long rollouts, trap §8.17).
        _, _, _, _, arrays = tf.while_loop(lambda t, *_: t < num_steps, body,
                                           (tf.constant(1), pred, pose_pred, states, arrays))
        stacked = {k: tf.transpose(a.stack(), [1, 0, 2]) for k, a in arrays.items()}
        if static_steps is not None:
            stacked = {k: tf.ensure_shape(v, [None, static_steps, v.shape[-1]]) for k, v in stacked.items()}
        return stacked

    def _van_sequence(self, first_enc, first_frame, encodings, training):
        """The VAN on every encoding of ``encodings`` [B, N, E], conditioned on frame 0 and its encoding."""
        batch_size, steps = _dim(encodings, 0), _dim(encodings, 1)
        tiled_enc = merge_time(tf.repeat(first_enc[:, None], steps, axis=1))
        tiled_frame = merge_time(tf.repeat(first_frame[:, None], steps, axis=1))
        image, higher, mask = self.van(tiled_enc, tiled_frame, merge_time(encodings), training=training)
        return tuple(split_time(x, batch_size, steps) for x in (image, higher, mask))

    def _forward(self, batch, training=False, with_higher=False, with_reconstructions=True):
        hp = self.hparams
        images, actions, poses = self._inputs(batch)
        if self.van is None:
            self._build_layers(images.shape[2:])
        encodings = split_time(self.encoder(merge_time(images), training=training), _dim(images, 0),
                               _dim(images, 1))
        predicted = self._predict(encodings, actions, poses)
        preds = predicted["pred"]
        first_frame, first_enc = images[:, 0], encodings[:, 0]
        van_out, higher_fake, mask = self._van_sequence(first_enc, first_frame, preds, training)
        # Shown divided by its per-example maximum (output / visualisation only, §3.3).
        mask = mask / tf.reduce_max(mask, axis=[2, 3, 4], keepdims=True)
        outputs = dict(gen_images=van_out, masks=mask, encodings=encodings, predictions=preds)
        if with_reconstructions:
            targets = encodings[:, 1:]
            if hp.enc_noise_stddev > 0:
                targets = targets + tf.random.truncated_normal(tf.shape(targets), stddev=hp.enc_noise_stddev)
            van_on_enc, higher_real, _ = self._van_sequence(first_enc, first_frame, targets, training)
            outputs["van_on_enc"] = van_on_enc
            if with_higher:
                _, higher_0 = self.van.vector_encoder(first_enc)
                outputs["higher_real"] = tf.concat([higher_0[:, None], higher_real], axis=1)
                outputs["higher_fake"] = higher_fake
        if self.has_pose_pass:
            outputs["pred_on_pose"] = predicted["pose"]
            if with_reconstructions:
                outputs["van_on_pose"], _, _ = self._van_sequence(poses[:, 0], first_frame, poses[:, 1:], training)
        return to_float32(outputs)  # losses in float32 (the train step calls _forward directly)

    def call(self, batch, training=False):
        return self._forward(batch, training=training)

    @tf.function(reduce_retracing=True)
    def _generate_sample_fn(self, inputs):
        return self._generated_frames(inputs)

    @tf.function(reduce_retracing=True)
    def _generate_mean_fn(self, inputs):
        # Traced with the predictor noise at its mean: this function's graph holds no noise op.
        self.predictor.noise_at_mean = True
        try:
            return self._generated_frames(inputs)
        finally:
            self.predictor.noise_at_mean = False

    def _generated_frames(self, inputs):
        # The VAN's output is unbounded (not clipped in the original, also not in ``call``, whose
        # outputs the losses use); generated videos are clipped to the toolkit's [0, 1] contract.
        images = self._forward(inputs, training=False, with_reconstructions=False)["gen_images"]
        return tf.clip_by_value(images, 0.0, 1.0)

    def rollout_inputs(self, batch, horizon):
        inputs = super().rollout_inputs(batch, horizon)
        key = self.hparams.pose_key
        if key in batch:
            # The pose pass reads ground-truth poses only during the context (§3.4); the future ones are zeroed so
            # that nothing can peek at them.
            poses = tf.convert_to_tensor(batch[key])
            context = poses[:, : self.context_frames]
            future = tf.repeat(tf.zeros_like(context[:, :1]), horizon, axis=1)
            inputs[key] = tf.concat([context, future], axis=1)
        return inputs

    # -- losses ---------------------------------------------------------------------------------

    def enc_pred_loss_scale(self):
        """``epva``: sigmoid ramp on the global step, half the maximum at the delay (§4.3); else constant."""
        hp = self.hparams
        if hp.model_mode != "epva":
            return tf.constant(hp.enc_pred_loss_scale, tf.float32)
        delay = max(float(hp.enc_pred_loss_scale_delay), 1.0)
        step = tf.cast(self.global_step, tf.float32)
        return tf.sigmoid((step - delay) / (delay * 0.1)) * hp.enc_pred_loss_scale

    def named_losses(self, batch, outputs):
        """Every named loss of the original (§4.1) that the outputs allow; each a batch mean."""
        hp = self.hparams
        images, _, poses = self._inputs(batch)
        targets = images[:, 1:]
        losses = {}
        diff = outputs["encodings"][:, 1:] - outputs["predictions"]  # no stop-gradient (trap §8.8)
        losses["enc_pred_loss"] = tf.reduce_mean(tf.abs(diff) if hp.enc_pred_use_l1_loss else tf.square(diff))
        pixel_loss = VAN_PIXEL_LOSSES[hp.van_pixel_loss]
        losses["van_loss"] = tf.reduce_mean(pixel_loss(outputs["gen_images"] - targets))
        if "van_on_enc" in outputs:
            losses["van_on_enc_loss"] = tf.reduce_mean(pixel_loss(outputs["van_on_enc"] - targets))
        if "van_on_pose" in outputs:
            losses["van_on_pose_loss"] = tf.reduce_mean(pixel_loss(outputs["van_on_pose"] - targets))
        pose_size, robot = self.pose_size, self.robot_pose_layout
        if hp.enc_size >= pose_size:  # else the original's shape check returns 0
            losses["pose_from_enc_loss"] = pose_loss(outputs["encodings"][..., :pose_size], poses, robot)
            losses["pose_from_pred_loss"] = pose_loss(outputs["predictions"][..., :pose_size], poses[:, 1:], robot)
        else:
            losses["pose_from_enc_loss"] = losses["pose_from_pred_loss"] = tf.constant(0.0)
        if "pred_on_pose" in outputs:
            losses["pose_from_pred_on_pose_loss"] = pose_loss(outputs["pred_on_pose"][..., :pose_size], poses[:, 1:],
                                                              robot)
        return losses

    def objectives(self, losses):
        """``{optimizer name: loss}`` of the non-adversarial objectives of this mode (§4.2)."""
        hp = self.hparams
        mode = hp.model_mode
        if mode == "e2e":
            return {"all": losses["van_loss"]}
        if mode == "epva":
            objective = losses["enc_pred_loss"] * self.enc_pred_loss_scale() + losses["van_on_enc_loss"]
            if hp.epva_van_loss_weight:  # an option, not the original's (default 0): see default_hparams
                objective += hp.epva_van_loss_weight * losses["van_loss"]
            return {"all": objective}
        if mode == "individual":
            return {"enc": losses["pose_from_enc_loss"], "pred": losses["pose_from_pred_on_pose_loss"],
                    "van": losses["van_on_pose_loss"]}
        if mode == "e2epose_oneop":
            return {"all": hp.pose_weight * (losses["pose_from_enc_loss"] + losses["pose_from_pred_loss"])
                    + losses["van_loss"]}
        if mode == "e2epose_sepop":
            return {"all": losses["van_loss"], "enc": losses["pose_from_enc_loss"],
                    "pred": losses["pose_from_pred_loss"]}
        # epva_gan: the generator objective gets the adversarial term in train_step
        return {"pred": losses["enc_pred_loss"] * hp.enc_pred_loss_scale, "van": losses["van_on_enc_loss"]}

    def generator_losses(self, batch, outputs):
        """Named losses for validation summaries (the training loop's ``generator_losses`` hook)."""
        return self.named_losses(batch, outputs)

    def loss_names(self):
        names = ["loss", "enc_pred_loss", "van_loss", "van_on_enc_loss", "pose_from_enc_loss", "pose_from_pred_loss",
                 "van_psnr", "enc_pred_loss_scale"]
        if self.has_pose_pass:
            names += ["van_on_pose_loss", "pose_from_pred_on_pose_loss"]
        if self.hparams.model_mode == "epva":
            names.append("epva_loss")
        if self.hparams.model_mode == "epva_gan":
            names += ["enc_pred_loss_gan", "enc_pred_loss_total", "discrim_total_loss"]
        return names

    # -- variables and optimizers ---------------------------------------------------------------

    def variable_sets(self):
        """The original's variable collections (§4.2): enc, pred, van, all, discrim."""
        enc = list(self.encoder.trainable_variables)
        pred = list(self.predictor.trainable_variables)
        van = list(self.van.trainable_variables)
        sets = dict(enc=enc, pred=pred, van=van, all=enc + pred + van)
        if self.critic is not None:
            sets["discrim"] = list(self.critic.trainable_variables)
        return sets

    def optimizer_variables(self, name):
        """Variables trained by optimizer ``name`` in this mode (epva_gan: pred -> enc+pred, van -> enc+van)."""
        sets = self.variable_sets()
        if self.hparams.model_mode == "epva_gan" and name in ("pred", "van"):
            return sets["enc"] + sets[name]
        if self.freezes and name == "all":  # epva_freeze_step: the predictor has its own optimizer
            return sets["enc"] + sets["van"]
        return sets[name]

    def learning_rate(self, name):
        return getattr(self.hparams, f"{name}_learning_rate")

    def make_optimizer(self, name="all"):
        """Adam with TF1's epsilon 1e-8 (Keras' default is 1e-7); clipping is done by :func:`clip_per_tensor`.

        With ``epva_freeze_step`` the encoder + VAN optimizer's rate drops to 0 at that global step."""
        learning_rate = self.learning_rate(name)
        if self.freezes and name == "all":
            learning_rate = RateFromStep(learning_rate, self.hparams.epva_freeze_step, self.global_step)
        if self.freezes and name == "pred" and self.hparams.epva_pred_decay_steps:
            learning_rate = RateFromStep(learning_rate, self.hparams.epva_freeze_step, self.global_step,
                                         decay_steps=self.hparams.epva_pred_decay_steps)
        return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8, name=f"{name}_optimizer")

    def clip_gradients(self, name, gradients):
        """slim's ``clip_gradient_norm``: each tensor to that norm (not the global norm); never the critic's.

        Under float16 the gradients are loss-scaled until the optimizer's ``apply``: the norm is scaled too."""
        clip = self.hparams.clip_gradient_norm
        if clip <= 0 or name == "discrim":
            return gradients
        return clip_per_tensor(gradients, clip * gradient_scale(self.optimizers[name]))

    @property
    def freezes(self):
        """``epva_freeze_step`` > 0: ``epva`` mode with a predictor optimizer and a frozen encoder + VAN later."""
        return self.hparams.epva_freeze_step > 0

    def optimizers_needed(self):
        """Names of this mode's optimizers (``all``, ``enc``, ``pred``, ``van``, ``discrim``)."""
        if self.freezes:
            return ("all", "pred")  # all: encoder + VAN (all_learning_rate); pred: predictor (pred_learning_rate)
        return self.OPTIMIZERS[self.hparams.model_mode]

    def warm_start(self):
        """``epv_pretrain_ckpt`` / ``imgnet_pretrain`` initialisation (spec §4.6); returns a description or None.

        Called by :meth:`make_optimizers`, i.e. only when training: a resumed run then restores its
        own checkpoint over it, as the original's init_fn only ran for a fresh log dir.  As the
        original, ``epv_pretrain_ckpt`` wins over ``imgnet_pretrain``.
        """
        hp = self.hparams
        if hp.epv_pretrain_ckpt:
            from video_prediction.conversion.epva import load_warm_start

            copied = load_warm_start(self, hp.epv_pretrain_ckpt)
            return f"warm start from {hp.epv_pretrain_ckpt}: {len(copied)} variables"
        if hp.imgnet_pretrain:
            from video_prediction.models.epva_pretrained import load_imagenet_vgg16

            return load_imagenet_vgg16(self.encoder.vgg, hp.imgnet_pretrain_source)
        return None

    def make_optimizers(self, jit_compile=False):
        message = self.warm_start()
        if message:
            print(message)
        names = self.optimizers_needed()
        self.optimizers = {name: self.wrap_optimizer(self.make_optimizer(name)) for name in names}
        self.compile(optimizer=self.optimizers[names[0]], jit_compile=jit_compile)

    def optimizers_by_name(self):
        return {f"{name}_optimizer": opt for name, opt in self.optimizers.items()}

    def variables_by_optimizer(self):
        return {f"{name}_optimizer": self.optimizer_variables(name) for name in self.optimizers}

    def current_learning_rate(self):
        return self.learning_rate(self.OPTIMIZERS[self.hparams.model_mode][0])

    # -- training -------------------------------------------------------------------------------

    def _critic_losses(self, real, fake, alpha=None):
        hp = self.hparams
        d_real, d_fake = to_float32((self.critic(real), self.critic(fake)))
        if hp.use_wgan:
            d_loss = tf.reduce_mean(d_fake) - tf.reduce_mean(d_real)
            d_loss += hp.gradient_penalty_weight * wasserstein_gradient_penalty(self.critic, real, fake, alpha)
            g_loss = tf.reduce_mean(d_real) - tf.reduce_mean(d_fake)
        else:
            # TF-GAN's modified discriminator loss (label smoothing 0.25 on reals); the generator gets its negation.
            d_loss = sigmoid_cross_entropy(d_real, 1.0, 0.25) + sigmoid_cross_entropy(d_fake, 0.0)
            g_loss = -d_loss
        return d_loss, g_loss

    def gan_sequences(self, outputs):
        """(real, fake) critic inputs ``[B, T, L]``: fake = real for the first ``discrim_context`` frames (§3.5)."""
        context = self.hparams.discrim_context
        real = outputs["higher_real"]
        fake = tf.concat([real[:, :context], outputs["higher_fake"][:, context - 1:]], axis=1)
        return real, fake

    def compute_objectives(self, batch, training=True, alpha=None):
        """One forward pass -> ``(outputs, named losses, {optimizer name: objective})`` of this mode.

        ``epva_gan``: the generator objective (``pred``) is the WGAN generator loss plus
        ``enc_pred_loss_scale * enc_pred_loss``, and ``discrim`` the critic loss with the gradient
        penalty (``alpha`` fixes its interpolation weights, for tests).
        """
        outputs = self._forward(batch, training=training, with_higher=self.critic is not None)
        losses = self.named_losses(batch, outputs)
        objectives = self.objectives(losses)
        if self.critic is not None:
            real, fake = self.gan_sequences(outputs)
            d_loss, g_loss = self._critic_losses(real, fake, alpha)
            losses["enc_pred_loss_gan"] = g_loss
            objectives["pred"] = objectives["pred"] + g_loss
            losses["enc_pred_loss_total"] = objectives["pred"]
            losses["discrim_total_loss"] = d_loss
        return outputs, losses, objectives

    def train_step(self, batch):
        """One step of the mode's optimizers on one forward pass; ``global_step`` += 1.

        ``epva_gan``: one generator step (the ``pred`` and ``van`` optimizers, both on the same
        forward pass, both updating the encoder), then ``discrim_steps_per_pred`` critic steps
        (WGAN-GP, no clipping) on the real / fake sequences of that forward pass; the global step
        counts generator steps only (§4.4).  Losses are per-replica batch means, divided by the
        number of replicas for the gradients (DESIGN.md's distribution rule).
        """
        hp = self.hparams
        replicas = num_replicas()
        gan = hp.model_mode == "epva_gan"
        with tf.GradientTape(persistent=True) as tape:
            outputs, losses, objectives = self.compute_objectives(batch, training=True)
            # float16: each objective times its optimizer's loss scale
            scaled = {name: self.optimizers[name].scale_loss(loss / replicas) for name, loss in objectives.items()}
        if self.freezes:
            self._apply_with_freeze(tape, scaled["all"])
        else:
            updates = []
            for name, loss in scaled.items():
                variables = self.optimizer_variables(name)
                updates.append((name, tape.gradient(loss, variables), variables))
            for name, gradients, variables in updates:  # every gradient from the same forward pass, then the updates
                self.optimizers[name].apply(self.clip_gradients(name, gradients), variables)
        del tape
        if gan:
            real, fake = (tf.stop_gradient(x) for x in self.gan_sequences(outputs))
            critic_variables = self.optimizer_variables("discrim")
            for _ in range(hp.discrim_steps_per_pred):
                with tf.GradientTape() as critic_tape:
                    d_loss, _ = self._critic_losses(real, fake)
                    scaled_d_loss = self.optimizers["discrim"].scale_loss(d_loss / replicas)
                gradients = critic_tape.gradient(scaled_d_loss, critic_variables)
                self.optimizers["discrim"].apply(gradients, critic_variables)
            losses["discrim_total_loss"] = d_loss
        report = dict(losses, enc_pred_loss_scale=self.enc_pred_loss_scale(),
                      van_psnr=batch_pooled_psnr(outputs["gen_images"], self._inputs(batch)[0][:, 1:]))
        if hp.model_mode == "epva":
            report["epva_loss"] = objectives["all"]
        report["loss"] = losses["van_loss"]  # the original's Estimator loss is always the van loss
        self.global_step.assign_add(1)
        return self.report(report)

    def _apply_with_freeze(self, tape, loss):
        """``epva_freeze_step``: the ``epva`` objective's gradients, to the predictor (its own Adam, every step) and,
        before the freeze step only, to the encoder and VAN (``all``).

        The objective's gradient with respect to the predictor is the same as with one optimizer (only the
        enc–pred loss, and ``epva_van_loss_weight``'s term, reach it).  From the freeze step on, the encoder's
        and VAN's gradients are not computed (``tf.cond``; such a step costs a third to a half of a full one on
        CPU) and zeros are applied at learning rate 0 (:class:`RateFromStep`: Adam's momentum would otherwise
        keep moving them).
        The update itself stays outside the ``tf.cond``: an optimizer's cross-replica sum cannot run inside one.
        """
        pred_variables = self.optimizer_variables("pred")
        pred_gradients = tape.gradient(loss, pred_variables)
        rest = self.optimizer_variables("all")

        def rest_gradients():
            gradients = tape.gradient(loss, rest)
            return [tf.zeros_like(v) if g is None else g for g, v in zip(gradients, rest)]

        gradients = tf.cond(self.global_step < self.hparams.epva_freeze_step, rest_gradients,
                            lambda: [tf.zeros_like(v) for v in rest])
        self.optimizers["all"].apply(self.clip_gradients("all", gradients), rest)
        self.optimizers["pred"].apply(self.clip_gradients("pred", pred_gradients), pred_variables)

    def test_step(self, batch):
        outputs = self._forward(batch, training=False)
        losses = self.named_losses(batch, outputs)
        report = dict(losses, loss=losses["van_loss"], enc_pred_loss_scale=self.enc_pred_loss_scale(),
                      van_psnr=batch_pooled_psnr(outputs["gen_images"], self._inputs(batch)[0][:, 1:]))
        return self.report({k: v for k, v in report.items() if k in self.loss_trackers})

    def report(self, values):
        return super().report({k: v for k, v in values.items() if k in self.loss_trackers})

    # -- inspection -----------------------------------------------------------------------------

    def tf1_variables(self):
        """``{original TF1 variable name: Keras variable}`` for every weight (the converters' name map)."""
        names = self.encoder.tf1_variables("timestep/encoder")
        names.update(self.predictor.tf1_variables("timestep/predict"))
        names.update(self.van.tf1_variables("timestep/van"))
        if self.critic is not None:
            names.update(self.critic.tf1_variables("Discriminator"))
        return names

    def parameter_counts(self):
        """Trainable parameters per network, as the original's scopes (spec §3.5)."""
        counts = {"encoder": self.encoder, "predict": self.predictor, "van": self.van, "Discriminator": self.critic}
        return {name: int(sum(np.prod(v.shape) for v in layer.trainable_variables))
                for name, layer in counts.items() if layer is not None}
