"""Finn et al.'s (2016) conv-LSTM CDNA/DNA predictor: the generator of the ``sv2p`` and ``sna`` baselines.

The original repository holds two copies of this network (``sv2p_model.py`` and
``sna_model.py``, specs/savp.md §3.1) that differ in a handful of choices; here
one cell (:class:`ConvLSTMCDNACell`) takes them from a :class:`TowerSpec` and
one model class (:class:`ConvLSTMCDNAModel`) holds what both models share:

* encoder: conv 5x5/2 (32 channels, layer norm, ReLU) -> conv-LSTM(s) ->
  conv 3x3/2 -> conv-LSTM(s) -> conv 3x3/2; at 1/8 resolution the tiled
  ``[action, state]`` vector (and SV2P's latent) is concatenated, then conv
  1x1 and the bottleneck conv-LSTM, whose flattened output predicts the CDNA
  kernels;
* decoder: 3x3/2 transposed convs, each followed by a conv-LSTM, with U-Net
  skips to the 1/4 and 1/2 encoder maps, and a last transposed conv with layer norm;
* a scratch image (sigmoid of a 1x1 transposed conv), CDNA kernels (dense,
  no identity added) or DNA kernels (1x1 transposed conv), both applied with
  ZERO padding (``depthwise_conv2d(..., 'SAME')`` / ``tf.pad``), unlike SAVP's
  symmetric padding; softmax masks (1x1 transposed conv) compose
  ``[background, scratch, transformed images]``;
* the next state is a linear function of ``[action, state]``, and the predicted
  state is fed back at every step (ground-truth state only at t = 0);
* schedule sampling as Finn et al.: after the context, in training, exactly
  ``round(B * k / (k + exp(step / k)))`` random examples of the batch get the
  ground-truth frame (``k = schedule_sampling_k``; ``k = -1`` never).

Every conv-LSTM is a :class:`BasicConv2DLSTMCell` without normalisation (so its
gate conv has a bias, as Finn's ``basic_conv_lstm_cell``) followed by a layer
norm.  Sub-layers are attributes named after the original's variable scopes
(``scale1_conv1``, ``state1``, ``layer_norm2``, ..., ``cdna_params``,
``state_pred``) for checkpoint conversion.  Kernels use slim's glorot-uniform
initialiser and zero biases.
"""

import dataclasses

import keras
import tensorflow as tf

from video_prediction.layers.conv_rnn import BasicConv2DLSTMCell
from video_prediction.layers.normalization import LayerNormalization
from video_prediction.layers.transformations import apply_cdna_kernels, apply_dna_kernels, normalize_kernels
from video_prediction.models.precision import to_float32
from video_prediction.models.base import SAVPFamilyModel, swap_batch_time, unroll_remaining_steps
from video_prediction.models.savp import tile_concat

# Loss weights of the SAVP family that need a discriminator or flows: these models have neither.
_NO_GAN_OR_FLOW_WEIGHTS = tuple(
    f"{kind}_{path}_weight" for kind in ("image_sn", "images_sn", "video_sn") for path in ("gan", "vae_gan")
) + ("gan_feature_l2_weight", "gan_feature_cdist_weight", "vae_gan_feature_l2_weight",
     "vae_gan_feature_cdist_weight", "tv_weight")

# Channels of the first conv (``scale1_conv1``), fixed in both originals.
FIRST_CONV_FILTERS = 32
TRANSFORMATIONS = ("cdna", "dna")


@dataclasses.dataclass(frozen=True)
class TowerSpec:
    """What distinguishes the SV2P and SNA copies of the tower."""

    #: conv-LSTM channels at 1/2 and 1/4 resolution (one or two conv-LSTMs per level).
    encoder_lstm_sizes: tuple
    #: conv-LSTM channels at 1/8 (``state5``).
    bottleneck_lstm_size: int
    #: conv-LSTM channels after the first and second transposed convs (``state6``, ``state7``).
    decoder_lstm_sizes: tuple
    #: ReLU after ``convt3``'s layer norm (SNA) or none (SV2P).
    top_relu: bool
    #: ReLU on the DNA kernel layer's output before normalisation (SNA) or none (SV2P).
    dna_relu: bool
    #: Mask composition background: ``"previous"`` input frame or ``"first"`` frame.
    background: str
    #: SV2P's composition: ``num_masks + 1`` masks for [background, scratch, N CDNA images], so the
    #: last CDNA image gets no mask and is dropped (as in the original and Finn et al.'s code).
    scratch_takes_last_mask: bool
    #: Names of the mask and DNA-kernel layers (the original's scopes).
    masks_name: str
    dna_kernels_name: str


def conv2d(filters, kernel_size, strides, name, use_bias=True):
    """slim's conv2d without its activation: SAME padding, glorot-uniform kernel, zero bias."""
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=use_bias, name=name)


def conv2d_transpose(filters, kernel_size, strides, name, use_bias=True):
    """slim's conv2d_transpose without its activation (output = input size * stride)."""
    return keras.layers.Conv2DTranspose(filters, kernel_size, strides=strides, padding="same", use_bias=use_bias,
                                        name=name)


class ConvLSTMCDNACell(keras.layers.Layer):
    """One step of the tower: ``step(inputs, carry) -> (outputs, new_carry)``; see the module docstring.

    ``inputs``: ``image`` (the frame fed at t, after schedule sampling),
    ``first_image``, optional ``action`` and ``latent`` (``[B, H/8, W/8, c]``).
    ``carry``: ``gen_state`` (the state fed at t) and ``lstm`` (conv-LSTM states by name).
    """

    def __init__(self, spec, image_shape, transformation="cdna", num_masks=10, kernel_size=(5, 5),
                 scratch_image=True, action_dim=0, state_dim=0, condition_on_state_action=False,
                 latent_channels=0, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec
        self.height, self.width, self.channels = (int(d) for d in image_shape)
        if self.height % 8 or self.width % 8:
            raise ValueError(f"the conv-LSTM CDNA tower needs frames whose sides are multiples of 8 "
                             f"(three stride-2 convs), got {self.height}x{self.width}")
        if transformation not in TRANSFORMATIONS:
            # The originals' 'stp' imports a spatial_transformer module that the repository does not ship.
            raise ValueError(f"unknown transformation {transformation!r}; valid: {', '.join(TRANSFORMATIONS)}")
        if transformation == "dna" and num_masks != 1:
            raise ValueError(f"the DNA transformation supports only num_masks=1 (as the original), got {num_masks}")
        if num_masks < 1:
            raise ValueError(f"num_masks must be >= 1, got {num_masks}")
        self.transformation = transformation
        self.num_masks = int(num_masks)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.use_scratch = bool(scratch_image and transformation == "cdna")
        self.action_dim, self.state_dim = int(action_dim), int(state_dim)
        self.condition_on_state_action = condition_on_state_action
        self.latent_channels = int(latent_channels)

        self.scale1_conv1 = conv2d(FIRST_CONV_FILTERS, 5, 2, "scale1_conv1", use_bias=False)
        self.layer_norm1 = LayerNormalization(name="layer_norm1")
        # Encoder levels: conv-LSTMs state<2l+j+1> (each followed by layer_norm<2l+j+2>), then conv<l+2>.
        self.encoder_levels = []
        for level, sizes in enumerate(spec.encoder_lstm_sizes):
            names = []
            for j, size in enumerate(sizes):
                names.append(self._add_lstm(2 * level + j + 1, size))
            self._register(f"conv{level + 2}", conv2d(sizes[-1], 3, 2, f"conv{level + 2}"))
            self.encoder_levels.append((names, f"conv{level + 2}"))
        if len(self.encoder_levels) != 2:
            raise ValueError("the tower has exactly two encoder levels (1/2 and 1/4 resolution)")
        self.conv4 = conv2d(spec.encoder_lstm_sizes[-1][-1], 1, 1, "conv4")
        self._add_lstm(5, spec.bottleneck_lstm_size)
        self.convt1 = conv2d_transpose(spec.bottleneck_lstm_size, 3, 2, "convt1")
        self._add_lstm(6, spec.decoder_lstm_sizes[0])
        self.convt2 = conv2d_transpose(spec.decoder_lstm_sizes[0] + spec.encoder_lstm_sizes[0][-1], 3, 2, "convt2")
        self._add_lstm(7, spec.decoder_lstm_sizes[1])
        top_channels = spec.decoder_lstm_sizes[1] + FIRST_CONV_FILTERS
        self.convt3 = conv2d_transpose(top_channels, 3, 2, "convt3", use_bias=False)
        self.layer_norm9 = LayerNormalization(name="layer_norm9")

        kh, kw = self.kernel_size
        if transformation == "cdna":
            self.cdna_params = keras.layers.Dense(kh * kw * self.num_masks, name="cdna_params")
        else:
            self._register(spec.dna_kernels_name, conv2d_transpose(kh * kw, 1, 1, spec.dna_kernels_name))
        if self.use_scratch:
            self.convt4 = conv2d_transpose(self.channels, 1, 1, "convt4")
        num_transformed = self.num_masks if transformation == "cdna" else 1
        self.num_candidates = 1 + int(self.use_scratch) + num_transformed
        if spec.scratch_takes_last_mask:
            self.num_candidates = min(self.num_candidates, self.num_masks + 1)
        self._register(spec.masks_name, conv2d_transpose(self.num_candidates, 1, 1, spec.masks_name))
        if self.state_dim:
            self.state_pred = keras.layers.Dense(self.state_dim, name="state_pred")

    def _register(self, name, layer):
        # Attributes, not lists: TF checkpoints follow a Keras layer's attributes only.
        setattr(self, name, layer)
        return name

    def _add_lstm(self, index, filters):
        name = self._register(f"state{index}", BasicConv2DLSTMCell(
            filters, (5, 5), norm_layer="none", kernel_initializer="glorot_uniform", name=f"state{index}"))
        self._register(f"layer_norm{index + 1}", LayerNormalization(name=f"layer_norm{index + 1}"))
        return name

    def lstm_names(self):
        return [name for names, _ in self.encoder_levels for name in names] + ["state5", "state6", "state7"]

    def initial_carry(self, batch_size, initial_state=None):
        """Zero conv-LSTM states; ``gen_state`` = the ground-truth state at t = 0 (zeros without states)."""
        shapes = {}
        for level, (names, _) in enumerate(self.encoder_levels):
            for name in names:
                shapes[name] = (self.height // 2 ** (level + 1), self.width // 2 ** (level + 1))
        shapes.update(state5=(self.height // 8, self.width // 8), state6=(self.height // 4, self.width // 4),
                      state7=(self.height // 2, self.width // 2))
        carry = dict(lstm={name: getattr(self, name).zero_state(batch_size, *shapes[name]) for name in shapes})
        if self.state_dim:
            carry["gen_state"] = initial_state if initial_state is not None else tf.zeros([batch_size,
                                                                                           self.state_dim],
                                                                                          self.compute_dtype)
        return carry

    def step(self, inputs, carry):
        spec = self.spec
        image = inputs["image"]
        new_lstm = {}

        def lstm(name, h):
            h, new_lstm[name] = getattr(self, name)(h, carry["lstm"][name])
            return getattr(self, f"layer_norm{int(name[len('state'):]) + 1}")(h)

        enc0 = tf.nn.relu(self.layer_norm1(self.scale1_conv1(image)))
        h, level_outputs = enc0, []
        for names, conv_name in self.encoder_levels:
            for name in names:
                h = lstm(name, h)
            h = tf.nn.relu(getattr(self, conv_name)(h))
            level_outputs.append(h)
        enc1, h = level_outputs
        state_action = None
        if self.state_dim or self.action_dim:
            parts = ([inputs["action"]] if self.action_dim else []) + ([carry["gen_state"]] if self.state_dim else [])
            state_action = tf.concat(parts, axis=-1)
        if self.condition_on_state_action:
            h = tile_concat(h, state_action)
        if self.latent_channels:
            h = tf.concat([h, inputs["latent"]], axis=-1)
        hidden5 = lstm("state5", tf.nn.relu(self.conv4(h)))
        h = lstm("state6", tf.nn.relu(self.convt1(hidden5)))
        h = lstm("state7", tf.nn.relu(self.convt2(tf.concat([h, enc1], axis=-1))))
        top = self.layer_norm9(self.convt3(tf.concat([h, enc0], axis=-1)))
        if spec.top_relu:
            top = tf.nn.relu(top)

        batch = tf.shape(image)[0]
        kh, kw = self.kernel_size
        if self.transformation == "cdna":
            kernels = self.cdna_params(tf.reshape(hidden5, [batch, -1]))
            # Normalised in float32 (mixed precision): relu(k - 1e-12) + 1e-12 over a sum; then the compute dtype.
            kernels = tf.cast(normalize_kernels(tf.cast(tf.reshape(kernels, [batch, kh, kw, self.num_masks]),
                                                        tf.float32), [1, 2]), self.compute_dtype)
            transformed = apply_cdna_kernels(image, kernels, padding="CONSTANT")
        else:
            kernels = getattr(self, spec.dna_kernels_name)(top)
            if spec.dna_relu:
                kernels = tf.nn.relu(kernels)
            kernels = tf.reshape(kernels, [batch, self.height, self.width, kh, kw, 1])
            kernels = tf.cast(normalize_kernels(tf.cast(kernels, tf.float32), [3, 4]), self.compute_dtype)
            transformed = apply_dna_kernels(image, kernels, padding="CONSTANT")
        background = inputs["first_image"] if spec.background == "first" else image
        scratch = [tf.sigmoid(self.convt4(top))] if self.use_scratch else []
        candidates = ([background] + scratch + transformed)[: self.num_candidates]
        # softmax in float32 (mixed precision): the masks are the composite's convex weights.
        masks = tf.nn.softmax(tf.cast(getattr(self, spec.masks_name)(top), tf.float32))
        masks = tf.split(tf.cast(masks, self.compute_dtype), self.num_candidates, axis=-1)
        gen_image = tf.add_n([candidate * mask for candidate, mask in zip(candidates, masks)])
        outputs = dict(gen_images=gen_image, masks=tf.stack(masks, axis=-1),
                       transformed_images=tf.stack(candidates, axis=-1))
        new_carry = dict(lstm=new_lstm)
        if self.state_dim:
            new_carry["gen_state"] = outputs["gen_states"] = self.state_pred(state_action)
        return outputs, new_carry


class ConvLSTMCDNAModel(SAVPFamilyModel):
    """What ``sv2p`` and ``sna`` share: hparams, schedule sampling, the unroll over T-1 steps.

    Subclasses set :attr:`tower_spec` and implement :meth:`step_conditioning`
    (and may add latents).  ``call`` returns batch-major ``gen_images``
    ``[B, T-1, H, W, C]``, ``masks`` ``[B, T-1, H, W, 1, M]``,
    ``transformed_images`` ``[B, T-1, H, W, C, M]`` and, with states, ``gen_states``.
    """

    tower_spec = None
    unsupported_weights = SAVPFamilyModel.unsupported_weights + _NO_GAN_OR_FLOW_WEIGHTS

    def __init__(self, hparams_dict=None, hparams=None, name=None, **kwargs):
        super().__init__(hparams_dict=hparams_dict, hparams=hparams, name=name, **kwargs)
        self.cell = None

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(  # defaults both originals (sv2p, sna) set
            batch_size=32,
            l1_weight=0.0,
            l2_weight=1.0,
            transformation="cdna",
            num_masks=10,
            schedule_sampling_k=900.0,  # -1: always feed the model's own predictions after the context
        )
        return hparams

    # -- to implement --------------------------------------------------------------------------

    def tower_options(self, shapes):
        """Keyword arguments of :class:`ConvLSTMCDNACell` beyond the spec and image shape."""
        raise NotImplementedError

    def step_conditioning(self, time_major):
        """``(actions [T-1, B, A] or None, initial state [B, S] or None)`` for the unroll."""
        raise NotImplementedError

    # -- building ------------------------------------------------------------------------------

    def build(self, input_shape):
        if self.cell is None:
            shapes = {key: tuple(value) for key, value in dict(input_shape).items()}
            self.cell = ConvLSTMCDNACell(self.tower_spec, shapes["images"][2:], name="cell",
                                         **self.tower_options(shapes))

    # -- unroll --------------------------------------------------------------------------------

    def ground_truth_mask(self, num_steps, batch_size, training):
        """[T-1, B] bool: True during the context; afterwards, in training only, a random subset of
        exactly ``round(B * k / (k + exp(step / k)))`` examples per step (Finn et al.'s ``scheduled_sample``)."""
        context = self.hparams.context_frames
        k = float(self.hparams.schedule_sampling_k)
        num_sampled = num_steps - context
        if training and k > 0:
            step = tf.cast(self.global_step, tf.float32)
            probability = k / (k + tf.exp(tf.minimum(step / k, 80.0)))
            num_ground_truth = tf.cast(tf.round(tf.cast(batch_size, tf.float32) * probability), tf.int32)
            # The rank of an example in a random order: the first num_ground_truth get the ground truth.
            ranks = tf.argsort(tf.argsort(tf.random.uniform(tf.stack([num_sampled, batch_size])), axis=1), axis=1)
            sampled = ranks < num_ground_truth
        else:
            sampled = tf.fill(tf.stack([num_sampled, batch_size]), False)
        return tf.concat([tf.fill([context, batch_size], True), sampled], axis=0)

    def run_tower(self, time_major, training, latents=None):
        """Unroll the cell over T-1 steps; ``latents`` is None, ``[B, h, w, c]`` (one for every step)
        or ``[T-1, B, h, w, c]``.  Returns batch-major outputs."""
        # The loop runs in the cell's compute dtype (mixed precision); step() is no Keras __call__, so the
        # inputs and the carry are cast here, and the outputs back to float32 at the end.
        dtype = self.cell.compute_dtype
        images = tf.cast(time_major["images"], dtype)
        num_steps = tf.shape(images)[0] - 1
        batch_size = tf.shape(images)[1]
        ground_truth = self.ground_truth_mask(num_steps, batch_size, training)
        actions, initial_state = self.step_conditioning(time_major)
        actions = None if actions is None else tf.cast(actions, dtype)
        initial_state = None if initial_state is None else tf.cast(initial_state, dtype)
        latents = None if latents is None else tf.cast(latents, dtype)
        time_variant = latents is not None and len(latents.shape) == 5

        def cell_step(t, inputs, carry):
            # schedule sampling: the ground-truth frame or the previous prediction
            inputs = dict(inputs)
            image = tf.where(inputs.pop("ground_truth")[:, None, None, None], inputs["image"], carry["gen_image"])
            outputs, new_carry = self.cell.step(dict(inputs, image=image, first_image=images[0]), carry)
            new_carry["gen_image"] = outputs["gen_images"]
            return outputs, new_carry

        def step_inputs(t):
            inputs = dict(image=images[t], ground_truth=ground_truth[t])
            if actions is not None:
                inputs["action"] = actions[t]
            if latents is not None:
                inputs["latent"] = latents[t] if time_variant else latents
            return inputs

        with keras.name_scope(self.cell.name):  # step 0 creates the cell's weights under its name
            carry = dict(self.cell.initial_carry(batch_size, initial_state), gen_image=tf.zeros_like(images[0]))
            first_outputs, carry = cell_step(tf.constant(0), step_inputs(0), carry)  # never recomputed
        # recompute_steps (issue 18): latents are inputs of the recomputed step (their gradient flows); the
        # random draws (latents, the schedule-sampling mask) happen before the loop.
        recomputed = self.recomputed_if_asked(cell_step, self.cell.variables, training)

        def step(t, carry):
            return recomputed(t, step_inputs(t), carry)

        static_steps = images.shape[0] - 1 if images.shape[0] is not None else None
        # The time_loop hparam (issue 18, SAVPFamilyModel): a tf.while_loop or a Python unroll, in training,
        # evaluation and generation alike.
        outputs = unroll_remaining_steps(step, first_outputs, carry, num_steps, static_steps,
                                         self.time_loop_for(training))
        return to_float32({key: swap_batch_time(value) for key, value in outputs.items()})

    def time_major_inputs(self, batch):
        return {key: swap_batch_time(batch[key]) for key in ("images", "actions", "states") if key in batch}

    def call(self, batch, training=False):
        return self.run_tower(self.time_major_inputs(batch), training)


def state_action_dims(shapes):
    """(action_dim, state_dim) of a batch's ``{key: shape}`` (0 when absent)."""
    return (int(shapes["actions"][-1]) if "actions" in shapes else 0,
            int(shapes["states"][-1]) if "states" in shapes else 0)

