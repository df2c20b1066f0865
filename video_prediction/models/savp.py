"""SAVP: Stochastic Adversarial Video Prediction (Lee et al. 2018) and its ablations.

Port of the original ``savp_model.py`` / ``networks.py`` (specs/savp.md §3).
One model class covers every ``ours_*`` variant through hparams (§3.8):

* generator (:class:`SAVPCell`, unrolled over T-1 steps): conv/conv-LSTM U-Net
  whose inputs are tile-concatenated with the latent (through an LSTM), the
  actions and the states; it composes CDNA/DNA/flow-transformed copies of the
  current frame, the first frame and a generated scratch image with softmax masks;
* posterior encoder (:class:`PosteriorEncoder`) on frame pairs; fixed N(0, I)
  prior (or a learned one, :class:`LearnedPrior`) except for the first C-1
  steps, which reuse posterior samples even at test time;
* spectral-norm video (and image) discriminators (:class:`SNDiscriminator`),
  one set for the prior path (GAN) and one for the posterior path (VAE-GAN);
* ``train_step``: discriminator step first (spectral-norm ``u`` update + Adam
  on ``d_loss``), then the generator step against the *updated* discriminator.

Public tensors are batch-major; the unroll works time-major internally.
"""

import keras
import numpy as np
import tensorflow as tf

from video_prediction import losses as vp_losses
from video_prediction.layers.conv_rnn import make_conv_rnn_cell, make_rnn_cell
from video_prediction.layers.normalization import make_norm_layer
from video_prediction.layers.resampling import Conv2D, kernel_initializer, make_downsample_layer, make_upsample_layer
from video_prediction.layers.spectral_norm import SNConv, SNDense
from video_prediction.layers.transformations import apply_flows, apply_kernels, identity_kernel, normalize_kernels
from video_prediction.models.precision import to_float32
from video_prediction.models.base import LatentModeMixin, SAVPFamilyModel, num_replicas, swap_batch_time, unroll_remaining_steps
from video_prediction.training.schedules import ground_truth_sampling_probability

# Keys of old model_hparams.json files that the original dropped silently (specs/savp.md §3.3).
DEPRECATED_HPARAMS = (
    "num_gpus", "e_net", "d_conditional", "d_downsample_layer", "d_net", "d_use_gt_inputs",
    "acvideo_gan_weight", "acvideo_vae_gan_weight", "image_gan_weight", "image_vae_gan_weight",
    "tuple_gan_weight", "tuple_vae_gan_weight", "gan_weight", "vae_gan_weight", "video_gan_weight",
    "video_vae_gan_weight",
)

# Discriminator kinds and the hparam infixes of their weights (§3.7).
DISCRIMINATOR_KINDS = ("image_sn", "images_sn", "video_sn")


def lrelu(x, alpha):
    """The original's leaky ReLU ``max(alpha * x, x)``."""
    return tf.maximum(alpha * x, x)


def _activation(name):
    if name == "relu":
        return tf.nn.relu
    if name == "elu":
        return tf.nn.elu
    raise ValueError(f"unknown activation_layer {name!r}; valid: relu, elu")


def _dense(units, use_bias=True, name=None):
    # The original's ``dense``: truncated-normal(0.02) kernel, zero bias.
    return keras.layers.Dense(units, use_bias=use_bias, kernel_initializer=kernel_initializer(), name=name)


def tile_concat(spatial, vector):
    """Tile ``vector`` [B, D] over the H, W of ``spatial`` [B, H, W, C] and concatenate on channels."""
    shape = tf.shape(spatial)
    tiled = tf.tile(vector[:, None, None, :], tf.stack([1, shape[1], shape[2], 1]))
    return tf.concat([spatial, tiled], axis=-1)


def generator_layer_specs(min_side, ngf):
    """(encoder, decoder) lists of (channels, has_conv_rnn), chosen from the image's smaller side (§3.5)."""
    if min_side >= 256:
        return ([(ngf, False), (ngf * 2, False), (ngf * 4, True), (ngf * 8, True), (ngf * 8, True)],
                [(ngf * 8, True), (ngf * 4, True), (ngf * 2, False), (ngf, False), (ngf, False)])
    if min_side >= 128:
        return ([(ngf, False), (ngf * 2, True), (ngf * 4, True), (ngf * 8, True)],
                [(ngf * 8, True), (ngf * 4, True), (ngf * 2, False), (ngf, False)])
    if min_side >= 64:
        return ([(ngf, True), (ngf * 2, True), (ngf * 4, True)], [(ngf * 2, True), (ngf, True), (ngf, False)])
    if min_side >= 32:
        return ([(ngf, True), (ngf * 2, True)], [(ngf, True), (ngf, False)])
    raise ValueError(f"SAVP needs images of at least 32x32, got a smaller side of {min_side}")


# ------------------------------------------------------------------------------------------------
# Generator step
# ------------------------------------------------------------------------------------------------


class _ConditionedConv(keras.layers.Layer):
    """A conv layer whose input is conditioned on ``sa_z``: tiled into the input (``use_tile_concat``)
    or, otherwise, added through a bias-free dense layer (the original's ``_maybe_tile_concat_layer``)."""

    def __init__(self, conv, condition_units, use_tile_concat, **kwargs):
        super().__init__(**kwargs)
        self.conv = conv
        self.use_tile_concat = use_tile_concat
        self.dense = None
        if condition_units and not use_tile_concat:
            self.dense = _dense(conv.filters, use_bias=False, name="dense")

    def call(self, inputs, condition=None):
        if condition is None:
            return self.conv(inputs)
        if self.use_tile_concat:
            return self.conv(tile_concat(inputs, condition))
        return self.conv(inputs) + self.dense(condition)[:, None, None, :]


class SAVPCell(keras.layers.Layer):
    """One step of the SAVP generator (the original's ``SAVPCell``, specs/savp.md §3.5).

    ``step(t, step_inputs, state, context)`` -> ``(outputs, new_state)``; call
    :meth:`initial_state` first.  Sub-layers are named after the original's
    variable scopes (``h0``, ``lstm_h0``, ..., ``cdna_kernels``, ``masks``).
    """

    def __init__(self, hparams, image_shape, action_dim=0, state_dim=0, use_z=False, **kwargs):
        super().__init__(**kwargs)
        hp = self.hp = hparams
        self.height, self.width, self.channels = image_shape
        self.action_dim, self.state_dim, self.use_z = action_dim, state_dim, use_z
        if hp.where_add not in ("input", "all", "middle"):
            raise ValueError(f"unknown where_add {hp.where_add!r}; valid: input, all, middle")
        if hp.transformation not in ("cdna", "dna", "flow"):
            raise ValueError(f"unknown transformation {hp.transformation!r}; valid: cdna, dna, flow")
        self.encoder_specs, self.decoder_specs = generator_layer_specs(min(self.height, self.width), hp.ngf)
        stride = 2 ** len(self.encoder_specs)
        if self.height % stride or self.width % stride:
            raise ValueError(
                f"the image is {self.height}x{self.width} but must be divisible by the total stride {stride}"
            )
        self.activation = _activation(hp.activation_layer)
        self.num_transformed = hp.last_frames * hp.num_transformed_images
        self.uses_rnn_z = use_z and hp.use_rnn_z
        self.condition_dim = action_dim + state_dim + (hp.nz if use_z else 0)
        cond = self.condition_dim

        if self.uses_rnn_z:
            if hp.ablation_rnn:
                self.fc_z = _dense(hp.nz, name="fc_z")
            else:
                self.rnn_z = make_rnn_cell(hp.rnn, hp.nz, name=f"{hp.rnn}_z")

        # U-Net layers, each an attribute named after the original's scope (h<i>, h<i>_norm,
        # lstm_h<i>, ...): TF checkpoints follow a Keras layer's attributes, not layers kept
        # in Python lists/dicts.  ``unet_specs`` holds those attribute names per layer.
        self.unet_specs = []
        num_enc = len(self.encoder_specs)
        for i, (filters, use_rnn) in enumerate(self.encoder_specs + self.decoder_specs):
            is_encoder = i < num_enc
            adds_to_conv = hp.where_add == "all" or (
                hp.where_add == "input" and i == 0) or (hp.where_add == "middle" and i == num_enc)
            if is_encoder:
                resample = make_downsample_layer(hp.downsample_layer, filters, (5, 5) if i == 0 else (3, 3),
                                                 name=hp.downsample_layer)
            else:
                resample = make_upsample_layer(hp.upsample_layer, filters, (3, 3), name=hp.upsample_layer)
            conv = self._register(f"h{i}", _ConditionedConv(resample, cond if adds_to_conv else 0,
                                                             hp.use_tile_concat, name=f"h{i}"))
            norm = self._register(f"h{i}_norm", make_norm_layer(hp.norm_layer, name=f"h{i}_norm"))
            rnn = rnn_norm = None
            rnn_adds = hp.where_add == "all" and cond > 0
            if use_rnn:
                if hp.ablation_rnn:
                    rnn = self._register(f"conv_h{i}", _ConditionedConv(
                        Conv2D(filters, (5, 5)), cond if rnn_adds else 0, hp.use_tile_concat, name=f"conv_h{i}"))
                    rnn_norm = self._register(f"conv_h{i}_norm", make_norm_layer(hp.norm_layer,
                                                                                 name=f"conv_h{i}_norm"))
                else:
                    norm_type = "none" if hp.ablation_conv_rnn_norm else hp.conv_rnn_norm_layer
                    non_spatial = cond if (rnn_adds and not hp.use_tile_concat) else None
                    rnn = self._register(f"{hp.conv_rnn}_h{i}", make_conv_rnn_cell(
                        hp.conv_rnn, filters, norm_type, (5, 5), non_spatial, name=f"{hp.conv_rnn}_h{i}"))
                    if hp.ablation_conv_rnn_norm:
                        # ablation: normalise the conv-RNN output instead of its gates/state
                        rnn_norm = self._register(f"{hp.conv_rnn}_h{i}_norm", make_norm_layer(
                            hp.conv_rnn_norm_layer, name=f"{hp.conv_rnn}_h{i}_norm"))
            self.unet_specs.append(dict(conv=conv, norm=norm, rnn=rnn, rnn_norm=rnn_norm, adds=adds_to_conv,
                                        rnn_adds=rnn_adds, use_rnn=use_rnn))
        top = len(self.unet_specs)  # index used by the original for the head scopes (h<top>_*)

        self.kernel_shape = tuple(hp.kernel_size) + (self.num_transformed,)
        if self.num_transformed:
            if hp.transformation == "cdna":
                self.cdna_kernels = _dense(int(np.prod(self.kernel_shape)), name="cdna_kernels")
            elif hp.transformation == "dna":
                self.dna_hidden = self._head(f"h{top}_dna_kernel", hp.ngf)
                self.dna_kernels = Conv2D(int(np.prod(self.kernel_shape)), (3, 3), name="dna_kernels")
            else:
                self.flow_hidden = self._head(f"h{top}_flow", hp.ngf)
                self.flows = Conv2D(2 * self.num_transformed, (3, 3), name="flows")
        if hp.generate_scratch_image:
            self.scratch_hidden = self._head(f"h{top}_scratch", hp.ngf)
            self.scratch_image = Conv2D(self.channels, (3, 3), name="scratch_image")
        self.num_masks = self._count_masks()
        if self.num_masks == 0:
            raise ValueError("no candidate image: enable a transformation, a background or the scratch image")
        if self.num_masks > 1:
            self.masks_hidden = self._head(f"h{top}_masks", hp.ngf)
            self.masks = Conv2D(self.num_masks, (3, 3), name="masks")
        if state_dim:
            self.state_pred = _dense(state_dim, name="state_pred")
        self.num_learned_initial_states = 0

    def _register(self, name, layer):
        """Set ``layer`` as attribute ``name`` and return the name (``None`` for no layer)."""
        if layer is None:
            return None
        setattr(self, name, layer)
        return name

    def _layer(self, name):
        return None if name is None else getattr(self, name, None)

    def _norm_act(self, norm_name, h):
        """The named norm (if any) then the generator's activation."""
        norm = self._layer(norm_name)
        return self.activation(norm(h) if norm is not None else h)

    def _head(self, name, filters):
        """conv3x3 + norm + activation on the last U-Net output (the original's h<top>_* scopes)."""
        self._register(name, Conv2D(filters, (3, 3), name=name))
        self._register(f"{name}_norm", make_norm_layer(self.hp.norm_layer, name=f"{name}_norm"))
        return name

    def _apply_head(self, name, inputs):
        return self._norm_act(f"{name}_norm", getattr(self, name)(inputs))

    def _count_masks(self):
        hp = self.hp
        ctx_bg = hp.context_images_background
        return (self.num_transformed + int(hp.prev_image_background)
                + int(hp.first_image_background and not ctx_bg)
                + int(hp.last_image_background and not ctx_bg)
                + int(hp.last_context_image_background and not ctx_bg)
                + (hp.context_frames if ctx_bg else 0)
                + int(hp.generate_scratch_image))

    # -- state -----------------------------------------------------------------------------------

    def _rnn_shapes(self):
        shapes = []
        h, w = self.height, self.width
        for i, (filters, use_rnn) in enumerate(self.encoder_specs + self.decoder_specs):
            if i < len(self.encoder_specs):
                h, w = h // 2, w // 2
            else:
                h, w = h * 2, w * 2
            shapes.append((h, w, filters) if use_rnn and not self.hp.ablation_rnn else None)
        return shapes

    def initial_state(self, batch_size, first_image):
        hp = self.hp
        rnn_states = []
        for spec, shape in zip(self.unet_specs, self._rnn_shapes()):
            if shape is None:
                rnn_states.append(())
                continue
            rnn_states.append(self._layer(spec["rnn"]).zero_state(batch_size, shape[0], shape[1]))
        state = dict(
            gen_image=tf.zeros_like(first_image),
            last_images=[first_image] * hp.last_frames,
            rnn_states=rnn_states,
        )
        if self.uses_rnn_z and not hp.ablation_rnn:
            state["rnn_z_state"] = self.rnn_z.zero_state(batch_size)
        if self.state_dim:
            state["gen_state"] = tf.zeros([batch_size, self.state_dim])
        if hp.learn_initial_state:
            state = self._add_learned_initial_state(state, batch_size)
        # The loop state in the compute dtype (mixed precision): the step returns it in that dtype.
        return tf.nest.map_structure(lambda x: tf.cast(x, self.compute_dtype), state)

    def _add_learned_initial_state(self, state, batch_size):
        """Trainable zero-initialised initial conv-RNN / rnn_z states (``learn_initial_state``)."""
        keys = ["rnn_states"] + (["rnn_z_state"] if "rnn_z_state" in state else [])
        flat = tf.nest.flatten({k: state[k] for k in keys})
        if not self.num_learned_initial_states:
            for i, x in enumerate(flat):  # attributes, so that checkpoints see them
                setattr(self, f"initial_state_{i}",
                        self.add_weight(name=f"initial_state_{i}", shape=tuple(x.shape[1:]), initializer="zeros"))
            self.num_learned_initial_states = len(flat)
        variables = [getattr(self, f"initial_state_{i}") for i in range(self.num_learned_initial_states)]
        tiled = [tf.tile(v[None], [batch_size] + [1] * len(v.shape)) for v in variables]
        packed = tf.nest.pack_sequence_as({k: state[k] for k in keys}, tiled)
        return dict(state, **packed)

    # -- one step --------------------------------------------------------------------------------

    def step(self, t, inputs, state, context):
        """``inputs``: ``image`` (ground truth t), ``ground_truth`` [B] bool, optional ``action``,
        ``state`` and ``z``; ``context``: ``first_image`` and ``context_images`` [C, B, H, W, Ch]."""
        hp = self.hp
        # step() is not a Keras __call__, so nothing casts its inputs: the images, actions, states and z
        # (float32, the latents sampled in float32 by the model) in the compute dtype (mixed precision).
        inputs, context = _cast_floats((inputs, context), self.compute_dtype)
        use_gt = inputs["ground_truth"]
        image = tf.where(use_gt[:, None, None, None], inputs["image"], state["gen_image"])  # schedule sampling
        last_images = state["last_images"][1:] + [image]
        new_state = dict(last_images=last_images)

        state_action, condition = [], []
        if self.action_dim:
            state_action.append(inputs["action"])
            condition.append(inputs["action"])
        if self.state_dim:
            current_state = tf.where(use_gt[:, None], inputs["state"], state["gen_state"])
            state_action.append(current_state)
            condition.append(tf.stop_gradient(current_state))  # no backprop from the convnet into the states
        if self.use_z:
            z = inputs["z"]
            if self.uses_rnn_z:
                if hp.ablation_rnn:
                    z = tf.tanh(self.fc_z(z))
                else:
                    z, new_state["rnn_z_state"] = self.rnn_z(z, state["rnn_z_state"])
            condition.append(z)
        condition = tf.concat(condition, axis=-1) if condition else None

        outputs_per_layer, new_rnn_states = [], []
        num_enc = len(self.encoder_specs)
        for i, spec in enumerate(self.unet_specs):
            if i == 0:
                h = tf.concat([image, context["first_image"]], axis=-1)
            elif i <= num_enc:
                h = outputs_per_layer[-1]
            else:  # decoder with U-Net skip from the mirrored encoder layer
                h = tf.concat([outputs_per_layer[-1], outputs_per_layer[2 * num_enc - i - 1]], axis=-1)
            h = self._layer(spec["conv"])(h, condition if spec["adds"] else None)
            h = self._norm_act(spec["norm"], h)
            rnn_state = ()
            if spec["use_rnn"]:
                rnn = self._layer(spec["rnn"])
                rnn_condition = condition if spec["rnn_adds"] else None
                if hp.ablation_rnn:
                    h = self._norm_act(spec["rnn_norm"], rnn(h, rnn_condition))
                else:
                    if rnn_condition is not None and hp.use_tile_concat:
                        h, rnn_state = rnn(tile_concat(h, rnn_condition), state["rnn_states"][i])
                    else:
                        h, rnn_state = rnn(h, state["rnn_states"][i], inputs_non_spatial=rnn_condition)
                    if spec["rnn_norm"] is not None:
                        h = self._layer(spec["rnn_norm"])(h)
            new_rnn_states.append(rnn_state)
            outputs_per_layer.append(h)
        new_state["rnn_states"] = new_rnn_states
        features = outputs_per_layer[-1]
        batch = tf.shape(image)[0]
        outputs = {}

        transformed = []
        if self.num_transformed:
            if hp.transformation == "flow":
                flows = self.flows(self._apply_head(self.flow_hidden, features))
                flows = tf.reshape(flows, [batch, self.height, self.width, 2, self.num_transformed])
                for image_i, flows_i in zip(last_images, tf.split(flows, hp.last_frames, axis=-1)):
                    transformed.extend(apply_flows(image_i, flows_i))
                outputs["gen_flows"] = flows
            else:
                if hp.transformation == "cdna":
                    deepest = tf.reshape(outputs_per_layer[num_enc - 1], [batch, -1])
                    kernels = tf.reshape(self.cdna_kernels(deepest), [batch, *self.kernel_shape])
                    # In float32 from here to the normalisation (mixed precision): the normalised kernel
                    # weights are ratios of sums of relu(k - 1e-12) + 1e-12.
                    kernels = tf.cast(kernels, tf.float32) + identity_kernel(hp.kernel_size)[None, :, :, None]
                    spatial_axes = [1, 2]
                else:
                    kernels = self.dna_kernels(self._apply_head(self.dna_hidden, features))
                    kernels = tf.reshape(kernels, [batch, self.height, self.width, *self.kernel_shape])
                    kernels = (tf.cast(kernels, tf.float32)
                               + identity_kernel(hp.kernel_size)[None, None, None, :, :, None])
                    spatial_axes = [3, 4]
                kernels = tf.cast(normalize_kernels(kernels, spatial_axes), self.compute_dtype)
                for image_i, kernels_i in zip(last_images, tf.split(kernels, hp.last_frames, axis=-1)):
                    transformed.extend(apply_kernels(image_i, kernels_i, tuple(hp.dilation_rate)))
        if hp.prev_image_background:
            transformed.append(image)
        context_images = context["context_images"]
        if hp.context_images_background:
            transformed.extend(tf.unstack(context_images, num=hp.context_frames))
        else:
            if hp.first_image_background:
                transformed.append(context["first_image"])
            if hp.last_image_background:
                transformed.append(context_images[hp.context_frames - 1])
            if hp.last_context_image_background:
                transformed.append(tf.gather(context_images, tf.minimum(t, hp.context_frames - 1)))
        if hp.generate_scratch_image:
            transformed.append(tf.sigmoid(self.scratch_image(self._apply_head(self.scratch_hidden, features))))

        if len(transformed) > 1:
            h_masks = self._apply_head(self.masks_hidden, features)
            if hp.dependent_mask:
                h_masks = tf.concat([h_masks] + transformed, axis=-1)
            # softmax in float32 (mixed precision): the masks are convex weights of the composite.
            masks = tf.cast(tf.nn.softmax(tf.cast(self.masks(h_masks), tf.float32)), self.compute_dtype)
            masks = tf.split(masks, len(transformed), axis=-1)
        else:
            masks = [tf.ones_like(image[..., :1])]
        gen_image = tf.add_n([candidate * mask for candidate, mask in zip(transformed, masks)])
        outputs.update(gen_images=gen_image, transformed_images=tf.stack(transformed, axis=-1),
                       masks=tf.stack(masks, axis=-1))
        new_state["gen_image"] = gen_image
        if self.state_dim:
            gen_state = self.state_pred(tf.concat(state_action, axis=-1))
            outputs["gen_states"] = gen_state
            new_state["gen_state"] = gen_state
        return outputs, new_state


# ------------------------------------------------------------------------------------------------
# Latent networks
# ------------------------------------------------------------------------------------------------


class ConvEncoder(keras.layers.Layer):
    """The original's ``networks.encoder``: pad 1 + 4x4/2 VALID convs, leaky 0.2, norm from layer 2, global avg pool."""

    def __init__(self, nef=64, n_layers=3, norm_layer="instance", **kwargs):
        super().__init__(**kwargs)
        self.n_layers = n_layers
        for i in range(n_layers):  # attributes layer_<k> / layer_<k>_norm (checkpoint-visible)
            filters = nef * min(2**i, 4)
            setattr(self, f"layer_{i + 1}", keras.layers.Conv2D(
                filters, 4, strides=2, padding="valid", kernel_initializer=kernel_initializer(),
                name=f"layer_{i + 1}"))
            if i > 0:
                setattr(self, f"layer_{i + 1}_norm", make_norm_layer(norm_layer, name=f"layer_{i + 1}_norm"))

    def call(self, inputs):
        h = inputs
        for k in range(1, self.n_layers + 1):
            h = getattr(self, f"layer_{k}")(tf.pad(h, [[0, 0], [1, 1], [1, 1], [0, 0]]))
            norm = getattr(self, f"layer_{k}_norm", None)
            if norm is not None:
                h = norm(h)
            h = lrelu(h, 0.2)
        return tf.reduce_mean(h, axis=[1, 2])


def _scan_rnn(cell, inputs, batch_size):
    """Run a vector RNN cell over time-major ``inputs`` [T, B, D] -> outputs [T, B, units]."""
    if not cell.built:
        cell.build(inputs.shape[2:])

    def step(carry, x):
        _, state = carry
        return cell(x, state)

    initial = (tf.zeros([batch_size, cell.units], cell.compute_dtype), cell.zero_state(batch_size))
    outputs, _ = tf.scan(step, inputs, initializer=initial)
    return outputs


def _flat_time(fn, x):
    """Apply ``fn`` to [T, B, ...] with time folded into the batch."""
    shape = tf.shape(x)
    y = fn(tf.reshape(x, tf.concat([[-1], shape[2:]], axis=0)))
    return tf.reshape(y, tf.concat([shape[:2], tf.shape(y)[1:]], axis=0))


class _GaussianHeads(keras.layers.Layer):
    """``z_mu`` and ``z_log_sigma_sq`` dense heads; log variance clipped to [-10, 10] (§3.6)."""

    def __init__(self, nz, **kwargs):
        super().__init__(**kwargs)
        self.z_mu = _dense(nz, name="z_mu")
        self.z_log_sigma_sq = _dense(nz, name="z_log_sigma_sq")

    def call(self, h):
        # The Gaussian's parameters leave in float32 (mixed precision): the model samples with
        # exp(log_sigma_sq / 2) and the KL uses exp(log_sigma_sq), both kept in float32.
        return (tf.cast(self.z_mu(h), tf.float32),
                tf.clip_by_value(tf.cast(self.z_log_sigma_sq(h), tf.float32), -10.0, 10.0))


class PosteriorEncoder(keras.layers.Layer):
    """q(z_t | x_t, x_t+1) for every transition: conv encoder on frame pairs (+ tiled actions) (§3.6)."""

    def __init__(self, hparams, **kwargs):
        super().__init__(**kwargs)
        self.hp = hparams
        self.conv_encoder = ConvEncoder(hparams.nef, hparams.n_layers, hparams.norm_layer, name="conv_encoder")
        if hparams.use_e_rnn:
            self.e_dense = _dense(hparams.nef * 4, name=f"layer_{hparams.n_layers + 1}")
            self.e_rnn = make_rnn_cell(hparams.rnn, hparams.nef * 4, name=hparams.rnn)
        self.heads = _GaussianHeads(hparams.nz, name="heads")

    def call(self, images, actions=None):
        """``images`` [T, B, H, W, C], ``actions`` [T-1, B, A] -> (mu, log_sigma_sq) [T-1, B, nz]."""
        pairs = tf.concat([images[:-1], images[1:]], axis=-1)
        if actions is not None:
            pairs = tf.concat([pairs, _tile_like(actions, pairs)], axis=-1)
        h = _flat_time(self.conv_encoder, pairs)
        if self.hp.use_e_rnn:
            h = _flat_time(self.e_dense, h)
            h = _scan_rnn(self.e_rnn, h, tf.shape(h)[1])
        return self.heads(h)


def _tile_like(vectors, spatial):
    """[T, B, D] tiled to the H, W of ``spatial`` [T, B, H, W, C]."""
    shape = tf.shape(spatial)
    return tf.tile(vectors[:, :, None, None, :], tf.stack([1, 1, shape[2], shape[3], 1]))


class LearnedPrior(keras.layers.Layer):
    """``learn_prior``: p(z_t | context) from the C-1 context pairs, zeros after, dense + RNN (§3.6)."""

    def __init__(self, hparams, **kwargs):
        super().__init__(**kwargs)
        self.hp = hparams
        self.conv_encoder = ConvEncoder(hparams.nef, hparams.n_layers, hparams.norm_layer, name="conv_encoder")
        self.dense = _dense(hparams.nef * 4, name=f"layer_{hparams.n_layers + 1}")
        self.rnn = make_rnn_cell(hparams.rnn, hparams.nef * 4, name=hparams.rnn)
        self.heads = _GaussianHeads(hparams.nz, name="heads")

    def call(self, images, actions=None):
        context = self.hp.context_frames
        pairs = tf.concat([images[: context - 1], images[1:context]], axis=-1)
        if actions is not None:
            pairs = tf.concat([pairs, _tile_like(actions[: context - 1], pairs)], axis=-1)
        h = _flat_time(self.conv_encoder, pairs)
        num_future = tf.shape(images)[0] - context
        h = tf.concat([h, tf.zeros(tf.stack([num_future, tf.shape(h)[1], h.shape[-1]]), h.dtype)], axis=0)
        h = _flat_time(self.dense, h)
        h = _scan_rnn(self.rnn, h, tf.shape(h)[1])
        return self.heads(h)


# ------------------------------------------------------------------------------------------------
# Discriminators
# ------------------------------------------------------------------------------------------------


class SNDiscriminator(keras.layers.Layer):
    """``video_sn_discriminator`` (3-D) or ``image_sn_discriminator`` (2-D) of networks.py (§3.7).

    Seven zero-pad-1 VALID spectral-norm convs with leaky ReLU 0.1 and a
    spectral-norm dense logit.  Returns ``(features, logits)``.
    """

    def __init__(self, ndf, video=True, **kwargs):
        super().__init__(**kwargs)
        self.video = video
        rank = 3 if video else 2
        down = (1, 2, 2) if video else 2
        specs = [("sn_conv0_0", ndf, 3, 1), ("sn_conv0_1", ndf * 2, 4, down),
                 ("sn_conv1_0", ndf * 2, 3, 1), ("sn_conv1_1", ndf * 4, 4, down),
                 ("sn_conv2_0", ndf * 4, 3, 1), ("sn_conv2_1", ndf * 8, 4, 2),
                 ("sn_conv3_0", ndf * 8, 3, 1)]
        self.conv_names = tuple(name for name, *_ in specs)
        for name, filters, k, strides in specs:  # attributes (checkpoint-visible), original scope names
            setattr(self, name, SNConv(filters, k, strides, rank=rank, padding=1, name=name))
        self.sn_fc4 = SNDense(1, name="sn_fc4")

    def call(self, inputs, training=False):
        features = []
        h = inputs
        for name in self.conv_names:
            h = lrelu(getattr(self, name)(h, training=training), 0.1)
            features.append(h)
        logits = self.sn_fc4(tf.reshape(h, [tf.shape(h)[0], -1]), training=training)
        return features, logits


def _cast_floats(structure, dtype):
    """Every floating tensor of ``structure`` cast to ``dtype`` (booleans and integers unchanged)."""
    return tf.nest.map_structure(lambda x: tf.cast(x, dtype) if x.dtype.is_floating else x, structure)


def _random_frames(videos):
    """One uniformly random frame per video of [B, T, ...] -> [B, ...]."""
    shape = tf.shape(videos)
    t = tf.random.uniform([shape[0]], 0, shape[1], dtype=tf.int32)
    return tf.gather(videos, t, axis=1, batch_dims=1)


def _random_clips(videos, clip_length):
    """A random window of ``clip_length`` consecutive frames per video of [B, T, ...] (§3.7)."""
    shape = tf.shape(videos)
    static_length = videos.shape[1]
    if static_length is not None and static_length < clip_length:
        raise ValueError(f"clip_length={clip_length} exceeds the {static_length} predicted frames; "
                         "lower the clip_length hparam")
    start = tf.random.uniform([shape[0]], 0, shape[1] - clip_length + 1, dtype=tf.int32)
    indices = start[:, None] + tf.range(clip_length)[None, :]
    return tf.gather(videos, indices, axis=1, batch_dims=1)


# ------------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------------


class SAVPVideoPredictionModel(LatentModeMixin, SAVPFamilyModel):
    """SAVP and its ablations (``ours_savp``, ``ours_gan``, ``ours_vae_*``, ``ours_deterministic_*``).

    ``call(batch, training)`` returns, batch-major:

    * ``gen_images`` [B, T-1, H, W, C] — prior path (latents from N(0, I) after the
      first C-1 steps); the only path when ``nz == 0``;
    * ``gen_images_enc`` — posterior path (nz > 0 and ``use_encoder``);
    * ``zs_mu``, ``zs_log_sigma_sq`` [B, T-1, nz] — posterior; ``zs_mu_prior``,
      ``zs_log_sigma_sq_prior`` with ``learn_prior``;
    * ``masks`` [B, T-1, H, W, 1, M], ``transformed_images`` [B, T-1, H, W, C, M]
      (+ ``_enc``), ``gen_states`` with states, ``gen_flows`` with flow;
    * ``ground_truth_sampling_mean``: fraction of ground-truth inputs after the context.
    """

    deprecated_hparams = DEPRECATED_HPARAMS
    trainable_model = True

    def __init__(self, hparams_dict=None, hparams=None, name=None, **kwargs):
        super().__init__(hparams_dict=hparams_dict, hparams=hparams, name=name, **kwargs)
        hp = self.hparams
        self.stochastic = hp.nz > 0
        self._check_hparams()
        # Generator layers are created by build() (they need the image shape and conditioning sizes).
        self.cell = self.encoder = self.prior = None
        # Discriminators are attributes (checkpoint-visible); these dicts map
        # {kind: attribute name} for the prior path (GAN) and the posterior path (VAE-GAN).
        self.discriminator_names, self.discriminator_enc_names = {}, {}
        for kind in DISCRIMINATOR_KINDS:
            video = kind == "video_sn"
            if getattr(hp, f"{kind}_gan_weight"):
                name = f"{kind}_discriminator"
                setattr(self, name, SNDiscriminator(hp.ndf, video=video, name=name))
                self.discriminator_names[kind] = name
            if getattr(hp, f"{kind}_vae_gan_weight"):
                if hp.use_same_discriminator and kind in self.discriminator_names:
                    self.discriminator_enc_names[kind] = self.discriminator_names[kind]
                else:
                    # the original's separate copy under discriminator/encoder/...
                    name = f"encoder_{kind}_discriminator"
                    setattr(self, name, SNDiscriminator(hp.ndf, video=video, name=name))
                    self.discriminator_enc_names[kind] = name
        self.discriminator_optimizer = None

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        # The generic hparams of the original's VideoPredictionModel (§3.2) come from SAVPFamilyModel.
        # SAVP-specific hparams (specs/savp.md §3.3).
        hparams.update(
            l1_weight=1.0,
            l2_weight=0.0,
            n_layers=3,
            ndf=32,
            norm_layer="instance",
            use_same_discriminator=False,
            ngf=32,
            downsample_layer="conv_pool2d",
            upsample_layer="upsample_conv2d",
            activation_layer="relu",
            transformation="cdna",
            kernel_size=(5, 5),
            dilation_rate=(1, 1),
            where_add="all",
            use_tile_concat=True,
            learn_initial_state=False,
            rnn="lstm",
            conv_rnn="lstm",
            conv_rnn_norm_layer="instance",
            num_transformed_images=4,
            last_frames=1,
            prev_image_background=True,
            first_image_background=True,
            last_image_background=False,
            last_context_image_background=False,
            context_images_background=False,
            generate_scratch_image=True,
            dependent_mask=True,
            schedule_sampling="inverse_sigmoid",
            schedule_sampling_k=900.0,
            schedule_sampling_steps=(0, 100000),
            use_e_rnn=False,
            learn_prior=False,
            nz=8,
            num_samples=8,  # the original's visualisation samples; generate() takes its own count
            nef=64,
            use_rnn_z=True,
            ablation_conv_rnn_norm=False,
            ablation_rnn=False,
            # Added (spec §3.8): False removes the posterior encoder, as the paper's
            # ours_gan; L1 and GAN then both use prior samples.
            use_encoder=True,
        )
        return hparams

    def _check_hparams(self):
        hp = self.hparams
        if hp.gan_loss_type not in vp_losses.GAN_LOSS_TYPES:
            valid = ", ".join(vp_losses.GAN_LOSS_TYPES)
            raise ValueError(f"unknown gan_loss_type {hp.gan_loss_type!r}; valid: {valid}")
        has_posterior = hp.nz > 0 and hp.use_encoder
        if hp.kl_weight and not has_posterior:
            raise ValueError("kl_weight > 0 needs latents from the encoder (nz > 0 and use_encoder=True)")
        if any(getattr(hp, f"{kind}_vae_gan_weight") for kind in DISCRIMINATOR_KINDS) and not has_posterior:
            raise ValueError("*_vae_gan_weight > 0 needs the posterior path (nz > 0 and use_encoder=True)")
        if hp.schedule_sampling not in ("none", "inverse_sigmoid", "linear"):
            raise ValueError(
                f"unknown schedule_sampling {hp.schedule_sampling!r}; valid: none, inverse_sigmoid, linear")

    @property
    def has_posterior(self):
        return self.hparams.nz > 0 and self.hparams.use_encoder

    @property
    def has_gan(self):
        return bool(self.discriminator_names or self.discriminator_enc_names)

    @property
    def discriminators(self):
        """``{kind: discriminator}`` of the prior (GAN) path."""
        return {kind: getattr(self, name) for kind, name in self.discriminator_names.items()}

    @property
    def discriminators_enc(self):
        """``{kind: discriminator}`` of the posterior (VAE-GAN) path."""
        return {kind: getattr(self, name) for kind, name in self.discriminator_enc_names.items()}

    # -- generator -------------------------------------------------------------------------------

    def _build_generator(self, shapes):
        """Create the generator's layers from the batch's shapes ``{key: [B, T, ...]}``."""
        hp = self.hparams
        action_dim = int(shapes["actions"][-1]) if "actions" in shapes else 0
        state_dim = int(shapes["states"][-1]) if "states" in shapes else 0
        image_shape = tuple(int(d) for d in shapes["images"][2:])
        self.cell = SAVPCell(hp, image_shape, action_dim, state_dim, use_z=hp.nz > 0, name="savp_cell")
        self.encoder = PosteriorEncoder(hp, name="encoder") if self.has_posterior else None
        self.prior = LearnedPrior(hp, name="prior") if hp.nz > 0 and hp.learn_prior else None

    def generator_variables(self):
        layers = (self.cell, self.encoder, self.prior)
        return [v for layer in layers if layer is not None for v in layer.trainable_variables]

    def discriminator_variables(self):
        names = sorted(set(self.discriminator_names.values()) | set(self.discriminator_enc_names.values()))
        return [v for name in names for v in getattr(self, name).trainable_variables]

    def _ground_truth_mask(self, num_steps, batch_size, training):
        """[T-1, B] bool: True during the context; afterwards Bernoulli(p) in training only (§3.5 step 1)."""
        context = tf.fill([self.hparams.context_frames, batch_size], True)
        num_sampled = num_steps - self.hparams.context_frames
        if training:
            prob = ground_truth_sampling_probability(
                self.global_step, self.hparams.schedule_sampling, self.hparams.schedule_sampling_k,
                self.hparams.schedule_sampling_steps,
            )
            sampled = tf.random.uniform(tf.stack([num_sampled, batch_size])) < prob
        else:
            sampled = tf.fill(tf.stack([num_sampled, batch_size]), False)
        return tf.concat([context, sampled], axis=0)

    def _unroll(self, inputs, zs, training):
        """Run the cell over T-1 steps on time-major ``inputs``; returns time-major outputs."""
        images = inputs["images"]
        num_steps = tf.shape(images)[0] - 1
        batch_size = tf.shape(images)[1]
        ground_truth = self._ground_truth_mask(num_steps, batch_size, training)
        context = dict(first_image=images[0], context_images=images[: self.hparams.context_frames])

        def step_inputs(t):
            step = dict(image=images[t], ground_truth=ground_truth[t])
            if "actions" in inputs:
                step["action"] = inputs["actions"][t]
            if "states" in inputs:
                step["state"] = inputs["states"][t]
            if zs is not None:
                step["z"] = zs[t]
            return step

        # Step 0 runs outside the loop so that every sub-layer creates its weights there
        # (under the cell's name, like the original's savp_cell scope).
        with keras.name_scope(self.cell.name):
            state = self.cell.initial_state(batch_size, images[0])
            first_outputs, state = self.cell.step(tf.constant(0), step_inputs(0), state, context)
        static_steps = images.shape[0] - 1 if images.shape[0] is not None else None
        # The time_loop hparam (issue 18): one tf.while_loop (default) or a Python unroll, in training,
        # evaluation and generation alike.
        # recompute_steps (issue 18): the step's inputs (latents) are arguments of the recomputed function so
        # that their gradients flow; the random draws (latents, schedule-sampling mask) happen before the loop.
        step = self.recomputed_if_asked(lambda t, inputs, state: self.cell.step(t, inputs, state, context),
                                        self.cell.variables, training)
        outputs = unroll_remaining_steps(
            lambda t, state: step(t, step_inputs(t), state), first_outputs, state, num_steps,
            static_steps, self.time_loop_for(training))
        return self._with_sampling_mean(outputs, ground_truth, num_steps, batch_size)

    def _with_sampling_mean(self, outputs, ground_truth, num_steps, batch_size):
        """Add the fraction of ground-truth inputs after the context (the original's summary)."""
        num_sampled = tf.maximum(num_steps - self.hparams.context_frames, 1) * batch_size
        sampled = tf.cast(ground_truth[self.hparams.context_frames:], tf.float32)
        outputs["ground_truth_sampling_mean"] = tf.reduce_sum(sampled) / tf.cast(num_sampled, tf.float32)
        return outputs


    def _forward(self, batch, training=False, posterior_path=True, mean_latents=False, prior_path=True):
        """Both generator passes (posterior, prior); ``posterior_path=False`` skips the first (generation),
        ``prior_path=False`` the second (a train step whose losses use only the posterior path; the prior
        noise is still drawn, so the random stream does not depend on it).

        ``mean_latents`` replaces every latent sample by its distribution's mean (inference only)."""
        hp = self.hparams
        if self.cell is None:
            self._build_generator({key: tuple(value.shape) for key, value in batch.items()})
        time_major = {key: swap_batch_time(batch[key]) for key in ("images", "actions", "states") if key in batch}
        images = time_major["images"]
        num_steps = tf.shape(images)[0] - 1
        batch_size = tf.shape(images)[1]
        outputs = {}
        if hp.nz == 0:
            outputs.update(self._unroll(time_major, None, training))
        else:
            zs_shape = tf.stack([num_steps, batch_size, hp.nz])
            zs_posterior = None
            if self.encoder is not None:
                mu, log_sigma_sq = self.encoder(images, time_major.get("actions"))
                outputs.update(zs_mu=mu, zs_log_sigma_sq=log_sigma_sq)
                zs_posterior = mu if mean_latents else mu + tf.sqrt(tf.exp(log_sigma_sq)) * tf.random.normal(zs_shape)
            if self.prior is not None:
                prior_mu, prior_log_sigma_sq = self.prior(images, time_major.get("actions"))
                outputs.update(zs_mu_prior=prior_mu, zs_log_sigma_sq_prior=prior_log_sigma_sq)
                zs_prior = prior_mu if mean_latents else (
                    prior_mu + tf.sqrt(tf.exp(prior_log_sigma_sq)) * tf.random.normal(zs_shape))
            else:
                zs_prior = tf.zeros(zs_shape) if mean_latents else tf.random.normal(zs_shape)
                if zs_posterior is not None:
                    # The first C-1 transitions (between context frames) use the posterior, even at test time.
                    zs_prior = tf.concat([zs_posterior[: hp.context_frames - 1],
                                          zs_prior[hp.context_frames - 1:]], axis=0)
            if zs_posterior is not None and posterior_path:
                enc = self._unroll(time_major, zs_posterior, training)
                outputs.update({f"{key}_enc": value for key, value in enc.items()})
            if prior_path or zs_posterior is None:
                outputs.update(self._unroll(time_major, zs_prior, training))
        # float32 outputs whatever the compute dtype: the losses (and the train step, which calls _forward
        # directly) see float32.
        return to_float32({key: (value if len(value.shape) < 2 else swap_batch_time(value))
                           for key, value in outputs.items()})

    def build(self, input_shape):
        """Create the generator's layers for a batch of these shapes (keys and image size matter)."""
        if self.cell is None:
            self._build_generator(dict(input_shape))

    def call(self, batch, training=False):
        return self._forward(batch, training=training)

    @tf.function(reduce_retracing=True)  # the while-loop unroll accepts any horizon and batch
    def _generate_sample_fn(self, inputs):
        # Prior path only: the posterior pass is not needed to sample.
        return self._forward(inputs, training=False, posterior_path=False)["gen_images"]

    @tf.function(reduce_retracing=True)
    def _generate_mean_fn(self, inputs):
        return self._forward(inputs, training=False, posterior_path=False, mean_latents=True)["gen_images"]

    def build_from_batch(self, batch):
        """Create every weight (generator and discriminators) from one batch."""
        outputs = self(batch, training=False)
        if self.has_gan:
            self._discriminate(batch, outputs, training=False)

    # -- discriminators --------------------------------------------------------------------------

    def _discriminate(self, batch, outputs, training, generator_side=False):
        """Discriminator outputs on independent random clips of real and fake videos (§3.7).

        Real and fake clips go through each discriminator as one batch (no
        normalisation in D, so this equals two calls) so that the spectral-norm
        ``u`` advances exactly once per training step.  Returns
        ``{(path, kind): (real_logits, fake_logits, real_features, fake_features)}``.

        ``generator_side`` is for the generator's losses after the D update
        (``training=False``, so ``u`` stays put): fake clips go through alone, and
        real ones separately only where a feature-matching loss needs their
        features (real logits are then ``None``).  As the original's TF1 graph
        did: a joint batch would back-propagate through the real half only to
        drop it (issue 18: ~13% of ``ours_savp``'s step on one core).
        """
        if generator_side and training:
            raise ValueError("generator_side discriminator outputs are for training=False (u must not advance)")
        real = batch["images"][:, 1:]
        results = {}
        paths = [("gan", self.discriminators, outputs["gen_images"])] if self.discriminators else []
        if self.discriminators_enc:
            paths.append(("vae_gan", self.discriminators_enc, outputs["gen_images_enc"]))
        clip_length = self.hparams.clip_length
        for path, discriminators, fake in paths:
            real_needed = not generator_side or any(self._feature_matching_weights(path))
            for kind, discriminator in discriminators.items():
                real_x = self._discriminator_inputs(kind, real, clip_length) if real_needed else None
                fake_x = self._discriminator_inputs(kind, fake, clip_length)
                if generator_side:
                    fake_features, fake_logits = to_float32(discriminator(fake_x, training=False))
                    real_features = None
                    if real_x is not None:
                        real_features, _ = to_float32(discriminator(real_x, training=False))
                    results[(path, kind)] = (None, fake_logits, real_features, fake_features)
                    continue
                joint = tf.concat([real_x, fake_x], axis=0)
                features, logits = discriminator(joint, training=training)
                n = tf.shape(real_x)[0]
                logits, features = to_float32((logits, features))  # GAN losses in float32
                results[(path, kind)] = (logits[:n], logits[n:], [f[:n] for f in features],
                                         [f[n:] for f in features])
        return results

    @staticmethod
    def _discriminator_inputs(kind, videos, clip_length):
        """What discriminator ``kind`` sees of [B, T, ...] videos: a random frame, or random clips (per frame
        for ``images_sn``)."""
        if kind == "image_sn":
            return _random_frames(videos)
        clips = _random_clips(videos, clip_length)
        return _merge_batch_time(clips) if kind == "images_sn" else clips

    def discriminator_losses(self, discrim_outputs):
        """Weighted D losses ``{name: scalar}``: weight * (loss(real, 1) + loss(fake, 0))."""
        hp = self.hparams
        losses = {}
        for (path, kind), (real_logits, fake_logits, _, _) in discrim_outputs.items():
            weight = getattr(hp, f"{kind}_{path}_weight")
            losses[f"discrim_{kind}_{path}_loss"] = weight * vp_losses.discriminator_gan_loss(
                real_logits, fake_logits, hp.gan_loss_type)
        return losses

    def adversarial_generator_losses(self, discrim_outputs):
        """Weighted G adversarial and feature-matching losses from discriminator outputs."""
        hp = self.hparams
        losses = {}
        for (path, kind), (_, fake_logits, real_features, fake_features) in discrim_outputs.items():
            losses[f"gen_{kind}_{path}_loss"] = getattr(hp, f"{kind}_{path}_weight") * (
                vp_losses.generator_gan_loss(fake_logits, hp.gan_loss_type))
            l2_weight, cdist_weight = self._feature_matching_weights(path)
            if l2_weight:
                losses[f"gen_{kind}_{path}_feature_l2_loss"] = l2_weight * tf.add_n(
                    [vp_losses.l2_loss(f, r) for f, r in zip(fake_features, real_features)])
            if cdist_weight:
                losses[f"gen_{kind}_{path}_feature_cdist_loss"] = cdist_weight * tf.add_n(
                    [vp_losses.cosine_distance(f, r) for f, r in zip(fake_features, real_features)])
        return losses

    def _adversarial_loss_names(self):
        hp = self.hparams
        g_names, d_names = [], []
        # From the hparams alone: the base class asks for the names before the discriminators exist.
        for path in ("gan", "vae_gan"):
            for kind in DISCRIMINATOR_KINDS:
                if not getattr(hp, f"{kind}_{path}_weight"):
                    continue
                d_names.append(f"discrim_{kind}_{path}_loss")
                g_names.append(f"gen_{kind}_{path}_loss")
                l2_weight, cdist_weight = self._feature_matching_weights(path)
                if l2_weight:
                    g_names.append(f"gen_{kind}_{path}_feature_l2_loss")
                if cdist_weight:
                    g_names.append(f"gen_{kind}_{path}_feature_cdist_loss")
        return g_names, d_names

    def _feature_matching_weights(self, path):
        """``({path}_feature_l2_weight, {path}_feature_cdist_weight)`` for discriminator path ``gan``/``vae_gan``."""
        return (getattr(self.hparams, f"{path}_feature_l2_weight"),
                getattr(self.hparams, f"{path}_feature_cdist_weight"))

    # -- losses ----------------------------------------------------------------------------------

    def loss_names(self):
        hp = self.hparams
        names = ["loss", "g_loss"] + self.generator_loss_names()
        g_names, d_names = self._adversarial_loss_names()
        names += g_names
        if d_names:
            names += ["d_loss"] + d_names
        if hp.kl_weight:
            names.append("kl_weight")
        return names

    # -- optimisation ----------------------------------------------------------------------------

    def make_optimizers(self, jit_compile=False):
        """Generator Adam via ``compile``; a second Adam for the discriminators when any GAN weight is set."""
        self.compile(optimizer=self.wrap_optimizer(self.make_optimizer()), jit_compile=jit_compile)
        if self.has_gan:
            self.discriminator_optimizer = self.wrap_optimizer(self.make_optimizer())

    def optimizers_by_name(self):
        optimizers = {"optimizer": self.optimizer}
        if self.discriminator_optimizer is not None:
            optimizers["discriminator_optimizer"] = self.discriminator_optimizer
        return optimizers

    def variables_by_optimizer(self):
        variables = {"optimizer": self.generator_variables()}
        if self.discriminator_optimizer is not None:
            variables["discriminator_optimizer"] = self.discriminator_variables()
        return variables

    def train_step(self, batch):
        """D step (u update + Adam on d_loss) then G step against the updated D; global_step += 1."""
        hp = self.hparams
        replicas = num_replicas()
        report = {}
        g_tape = tf.GradientTape()
        with g_tape:
            # The prior path only feeds the prior-path GAN (or is the only path): the original's TF1 graph never
            # ran it in a train step otherwise (e.g. ours_vae_l1; ~20% of the step's CPU time at T=5).
            prior_path = bool(self.discriminators) or not self.has_posterior
            outputs = self._forward(batch, training=True, posterior_path=True, prior_path=prior_path)
            g_losses = self.generator_losses(batch, outputs)
        if self.has_gan:
            d_variables = self.discriminator_variables()
            if hp.joint_gan_optimization:
                # One discriminator pass serves both losses; G sees the pre-update D.
                with g_tape, tf.GradientTape() as d_tape:
                    discrim = self._discriminate(batch, outputs, training=True)
                    d_losses = self.discriminator_losses(discrim)
                    d_loss = tf.add_n(list(d_losses.values()))
                    # per-replica mean -> global-batch mean (DESIGN.md); float16: times the loss scale
                    scaled_d_loss = self.discriminator_optimizer.scale_loss(d_loss / replicas)
                    g_losses.update(self.adversarial_generator_losses(discrim))
            else:
                # Outside the generator's tape: the D step needs no generator gradients.
                with tf.GradientTape() as d_tape:
                    fake = {key: tf.stop_gradient(outputs[key]) for key in ("gen_images", "gen_images_enc")
                            if key in outputs}
                    discrim = self._discriminate(batch, fake, training=True)
                    d_losses = self.discriminator_losses(discrim)
                    d_loss = tf.add_n(list(d_losses.values()))
                    scaled_d_loss = self.discriminator_optimizer.scale_loss(d_loss / replicas)
            d_gradients = d_tape.gradient(scaled_d_loss, d_variables)
            self.discriminator_optimizer.apply(d_gradients, d_variables)
            if not hp.joint_gan_optimization:
                with g_tape:  # resume recording: fresh clips through the *updated* discriminator
                    discrim_post = self._discriminate(batch, outputs, training=False, generator_side=True)
                    g_losses.update(self.adversarial_generator_losses(discrim_post))
            report.update(d_losses, d_loss=d_loss)
        with g_tape:
            g_loss = tf.add_n(list(g_losses.values()))
            scaled_g_loss = self.optimizer.scale_loss(g_loss / replicas)
        g_variables = self.generator_variables()
        g_gradients = g_tape.gradient(scaled_g_loss, g_variables)
        self.optimizer.apply(g_gradients, g_variables)
        self.global_step.assign_add(1)
        report.update(g_losses, g_loss=g_loss, loss=g_loss + report.get("d_loss", 0.0))
        return self.report(report)

    def test_step(self, batch):
        outputs = self(batch, training=False)
        losses = self.generator_losses(batch, outputs)
        loss = tf.add_n(list(losses.values()))
        return self.report(dict(losses, loss=loss, g_loss=loss))


def _merge_batch_time(x):
    shape = tf.shape(x)
    return tf.reshape(x, tf.concat([[-1], shape[2:]], axis=0))
