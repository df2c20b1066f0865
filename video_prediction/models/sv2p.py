"""SV2P: Stochastic Variational Video Prediction (Babaeizadeh et al. 2018), as the SAVP repository re-implemented it.

Port of the original's ``sv2p_model.py`` (specs/savp.md §3.1):

* generator: Finn et al.'s conv-LSTM CDNA tower (:mod:`conv_lstm_cdna`) with
  seven conv-LSTMs of 32, 32, 64, 64, 128, 64, 32 channels; the composition is
  the previous frame, a scratch image and the first ``num_masks - 1`` CDNA images;
* latent tower on ALL frames stacked on channels (3x3 convs 32/2, 64/2, 64/1
  with layer norm and ReLU, then 3x3/2 mean and log-variance maps of
  ``latent_channels`` at 1/8 resolution; log variance = ReLU(...) +
  ``latent_std_min``); the latent map joins the tower at 1/8 resolution;
* ``multi_latent=False`` (time-invariant): one latent for the whole video;
  ``True`` (time-variant): a fresh noise sample per step (the posterior's mean
  and variance stay one per video, as in the original);
* two passes share the weights: the prior path (``gen_images``, z ~ N(0, I)),
  used for generation, and the posterior path (``gen_images_enc``) that the
  L2 loss sees.  Training stages on the global step: until
  ``num_iterations_1st_stage`` the posterior path also gets N(0, I) noise; the
  KL weight then ramps linearly over ``kl_anneal_steps`` (100k -> 120k).
* without actions the original feeds zero actions (4) and states (3) to
  ``state_pred`` (its checkpoints hold that layer), but does not condition on them.
"""

import keras
import tensorflow as tf

from video_prediction.layers.normalization import LayerNormalization
from video_prediction.models.base import LatentModeMixin
from video_prediction.models.conv_lstm_cdna import ConvLSTMCDNAModel, TowerSpec, conv2d, state_action_dims
from video_prediction.models.savp import DEPRECATED_HPARAMS

SV2P_TOWER = TowerSpec(
    encoder_lstm_sizes=((32, 32), (64, 64)),  # the original's lstm_size = [32, 32, 64, 64, 128, 64, 32]
    bottleneck_lstm_size=128,
    decoder_lstm_sizes=(64, 32),
    top_relu=False,  # convt3: activation_fn=None, layer norm only
    dna_relu=False,
    background="previous",
    scratch_takes_last_mask=True,
    masks_name="convt7",
    dna_kernels_name="convt4",
)

#: (action, state) sizes of the zeros the original's generator_fn feeds without actions.
ACTION_FREE_DIMS = (4, 3)
#: The original's DNA_KERN_SIZE (not an hparam of sv2p).
KERNEL_SIZE = (5, 5)
#: The original's sv2p drops SAVP's deprecated keys except the encoder/discriminator switches.
SV2P_DEPRECATED_HPARAMS = tuple(key for key in DEPRECATED_HPARAMS if key != "e_net" and not key.startswith("d_"))


class LatentTower(keras.layers.Layer):
    """q(z | x_0 .. x_T-1): mean and log-variance maps ``[B, H/8, W/8, latent_channels]`` (the original's
    ``construct_latent_tower``); layer names are its scopes."""

    def __init__(self, latent_channels=1, latent_std_min=-5.0, **kwargs):
        super().__init__(**kwargs)
        self.latent_std_min = float(latent_std_min)
        # (conv scope, norm scope, filters, stride); slim convs with a normalizer have no bias.
        self.layer_specs = (("latent_conv1", "latent_norm1", 32, 2), ("latent_conv2", "latent_norm2", 64, 2),
                            ("latent_conv3", "latent_norm3", 64, 1))
        for conv_name, norm_name, filters, stride in self.layer_specs:
            setattr(self, conv_name, conv2d(filters, 3, stride, conv_name, use_bias=False))
            setattr(self, norm_name, LayerNormalization(name=norm_name))
        self.latent_mean = conv2d(latent_channels, 3, 2, "latent_mean", use_bias=False)
        self.latent_norm_mean = LayerNormalization(name="latent_norm_mean")
        self.latent_std = conv2d(latent_channels, 3, 2, "latent_std", use_bias=False)
        self.latent_std_norm = LayerNormalization(name="latent_std_norm")

    def call(self, images):
        """``images`` [T, B, H, W, C] -> (mean, log variance)."""
        shape = tf.shape(images)
        # frames stacked on channels in time order: [B, H, W, T * C]
        h = tf.transpose(images, [1, 2, 3, 0, 4])
        h = tf.reshape(h, tf.stack([shape[1], shape[2], shape[3], shape[0] * shape[4]]))
        if images.shape[0] is not None and images.shape[4] is not None:  # the first conv needs its channels
            h = tf.ensure_shape(h, [None, None, None, images.shape[0] * images.shape[4]])
        for conv_name, norm_name, _, _ in self.layer_specs:
            h = tf.nn.relu(getattr(self, norm_name)(getattr(self, conv_name)(h)))
        # The Gaussian's parameters in float32 (mixed precision): the model samples with exp(log_sigma_sq / 2)
        # and the KL takes exp(log_sigma_sq).
        mean = tf.cast(self.latent_norm_mean(self.latent_mean(h)), tf.float32)
        # the original names it latent_std but uses it as log sigma^2 (exp(x / 2) scales the noise)
        log_sigma_sq = tf.nn.relu(tf.cast(self.latent_std_norm(self.latent_std(h)), tf.float32)) + self.latent_std_min
        return mean, log_sigma_sq


class SV2PVideoPredictionModel(LatentModeMixin, ConvLSTMCDNAModel):
    """SV2P time-invariant (``multi_latent=False``) or time-variant (``True``); deterministic with
    ``stochastic_model=False``.

    Outputs (batch-major) besides the tower's: ``zs`` (prior latents, ``[B, h, w, c]`` or
    ``[B, T-1, h, w, c]``) and, on the posterior path, ``gen_images_enc``, ``gen_states_enc``,
    ``zs_enc``, ``zs_mu`` and ``zs_log_sigma_sq`` (``[B, h, w, c]``), h, w = H/8, W/8.
    """

    tower_spec = SV2P_TOWER
    deprecated_hparams = SV2P_DEPRECATED_HPARAMS

    def __init__(self, hparams_dict=None, hparams=None, name=None, **kwargs):
        super().__init__(hparams_dict=hparams_dict, hparams=hparams, name=name, **kwargs)
        hp = self.hparams
        self.stochastic = bool(hp.stochastic_model)
        if hp.kl_weight and not self.stochastic:
            raise ValueError("kl_weight > 0 needs the latent tower (stochastic_model=True); set kl_weight=0")
        if self.stochastic and hp.latent_channels < 1:
            raise ValueError(f"latent_channels must be >= 1 with stochastic_model=True, got {hp.latent_channels}")
        self.latent_tower = None

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        # specs/savp.md §3.1, the original's SV2PVideoPredictionModel defaults (batch 32, l2 1, cdna,
        # num_masks 10, schedule_sampling_k 900 come from ConvLSTMCDNAModel)
        hparams.update(
            # latent_loss_multiplier 1e-3 of the reference implementation times 10 (it does not average the
            # KL over time) times 8 (it sums over the 8 columns instead of the latent channel)
            kl_weight=1e-3 * 10 * 8,
            stochastic_model=True,
            multi_latent=False,
            latent_std_min=-5.0,
            latent_channels=1,
            num_iterations_1st_stage=50000,
            kl_anneal_steps=(100000, 120000),
            max_steps=200000,
            decay_steps=(0, 0),  # no lr decay (the original: decaying gives blurrier images)
        )
        return hparams

    def build(self, input_shape):
        super().build(input_shape)
        if self.stochastic and self.latent_tower is None:
            hp = self.hparams
            self.latent_tower = LatentTower(hp.latent_channels, hp.latent_std_min, name="latent_tower")

    def tower_options(self, shapes):
        hp = self.hparams
        action_dim, state_dim = state_action_dims(shapes)
        return dict(
            transformation=hp.transformation, num_masks=hp.num_masks, kernel_size=KERNEL_SIZE, scratch_image=True,
            action_dim=action_dim or ACTION_FREE_DIMS[0], state_dim=state_dim or ACTION_FREE_DIMS[1],
            condition_on_state_action=action_dim > 0,  # the original's use_state = 'actions' in inputs
            latent_channels=hp.latent_channels if self.stochastic else 0,
        )

    def step_conditioning(self, time_major):
        images = time_major["images"]
        num_steps, batch_size = tf.shape(images)[0] - 1, tf.shape(images)[1]
        actions, states = time_major.get("actions"), time_major.get("states")
        if actions is None:
            if self.cell.condition_on_state_action:
                raise ValueError("this sv2p model was built action-conditioned: the batch needs 'actions'")
            actions = tf.zeros(tf.stack([num_steps, batch_size, self.cell.action_dim]))
        initial_state = states[0] if states is not None else tf.zeros(tf.stack([batch_size, self.cell.state_dim]))
        return actions, initial_state


    def _forward(self, batch, training=False, posterior_path=True, mean_latents=False):
        """Prior path, then (``posterior_path``) the posterior path of the original's training graph.

        ``mean_latents`` uses the prior's mean (zeros) instead of samples (generation only)."""
        hp = self.hparams
        if self.cell is None:
            self.build({key: tuple(value.shape) for key, value in batch.items()})
        time_major = self.time_major_inputs(batch)
        if not self.stochastic:
            return self.run_tower(time_major, training)
        images = time_major["images"]
        num_steps, batch_size = tf.shape(images)[0] - 1, tf.shape(images)[1]
        latent_shape = tf.stack([batch_size, self.cell.height // 8, self.cell.width // 8, hp.latent_channels])
        if hp.multi_latent:
            latent_shape = tf.concat([[num_steps], latent_shape], axis=0)
        zs = tf.zeros(latent_shape) if mean_latents else tf.random.normal(latent_shape)
        outputs = self.run_tower(time_major, training, zs)
        outputs["zs"] = self._batch_major_latents(zs)
        if posterior_path:
            if images.shape[0] is not None and images.shape[0] != hp.sequence_length:
                raise ValueError(f"the latent tower reads all sequence_length={hp.sequence_length} frames, the "
                                 f"batch has {images.shape[0]}; use generate() to predict other lengths")
            mu, log_sigma_sq = self.latent_tower(images)
            noise = tf.random.normal(latent_shape)
            posterior = mu + tf.exp(log_sigma_sq / 2.0) * noise  # one mean/variance, per-step noise if multi_latent
            zs_enc = tf.where(self.global_step < hp.num_iterations_1st_stage, noise, posterior)
            enc = self.run_tower(time_major, training, zs_enc)
            outputs.update({f"{key}_enc": value for key, value in enc.items()})
            outputs.update(zs_enc=self._batch_major_latents(zs_enc), zs_mu=mu, zs_log_sigma_sq=log_sigma_sq)
        return outputs

    def _batch_major_latents(self, zs):
        return tf.transpose(zs, [1, 0, 2, 3, 4]) if self.hparams.multi_latent else zs

    def call(self, batch, training=False):
        return self._forward(batch, training=training)

    @tf.function(reduce_retracing=True)
    def _generate_sample_fn(self, inputs):
        # Prior path only (the latent tower needs the whole ground-truth video).
        return self._forward(inputs, training=False, posterior_path=False)["gen_images"]

    @tf.function(reduce_retracing=True)
    def _generate_mean_fn(self, inputs):
        return self._forward(inputs, training=False, posterior_path=False, mean_latents=True)["gen_images"]
