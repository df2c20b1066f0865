"""FEVD VQ-VAE: the first-stage frame compressor of nsoul97/CS229_Project (specs/vqvae.md §3).

Per frame: :class:`~video_prediction.layers.vqgan.Encoder` -> 1x1 ``quant_conv`` ->
:class:`~video_prediction.layers.vector_quantizer.VectorQuantizer` (taming
"VectorQuantizer2", legacy beta placement, straight-through) -> 1x1
``post_quant_conv`` -> ``Decoder2D`` per frame, or ``Decoder3D`` over the clip
(``decoder='3d'``: two pixel-space Conv3D after the per-frame decoder).  With the
configs' sizes a 64x64 frame becomes 4x4 codes of a 1024-entry codebook.

The model works in the original's normalised space: ``(x - input_mean) / input_std``
per channel (RoboNet train statistics by default, §2.4); the decoder output is read
in that space too (no final activation).

Loss (§3.8), every term a scalar mean:

* ``pixel_loss`` = mean |x - x_hat| in the normalised space, times ``pixelloss_weight``
  (``pixel_loss='l2'``, not in the original, takes the squared error instead);
* ``perc_2d_loss`` = mean over frames of LPIPS-VGG (our ``metrics/lpips.py`` network,
  frozen, always in inference mode -- the original's dropout before the heads is
  re-enabled in training by its ``model.train()``, a quirk not kept), times
  ``perceptual_weight_2d``.  LPIPS sees un-normalised [0, 1] frames by default;
  ``lpips_normalized_input_quirk=True`` feeds it the normalised tensors as the
  original's training loss did (its LPIPS then maps them by 2x - 1 as if they were
  in [0, 1]);
* ``fvd_mu_loss`` / ``fvd_cov_loss``: squared differences of the batch mean and
  unbiased covariance of I3D features (our ``metrics/fvd.py`` network, 224x224
  half-pixel bilinear resize, [-1, 1]) of real and reconstructed clips, times
  ``fvd_mu_weight`` / ``fvd_cov_weight`` (0 in every config; clips only);
* ``quant_loss`` = the quantiser loss, times ``codebook_weight``;
* ``loss`` = the sum (the original's ``total_loss``).

Training (§3.9): Adam(lr, beta (0.5, 0.9), eps 1e-8), constant lr, no clipping.
One ``train_step`` is one optimizer update of the original: the global batch
(``batch_size``) is split into ``grad_updates_per_step`` micro-batches whose
gradients are summed with weight 1/n (the original divides each micro-batch loss
by n), in a symbolic loop so only one micro-batch is live at a time.  So
``batch_size`` here = the original's ``train_dataloader.batch_size`` x
``grad_updates_per_step``.  ``train_on='frames'`` (the 2D configs) trains on one
uniformly drawn frame of each clip of the batch, ``'clips'`` (the 3D config) on
whole clips.  ``mixed_precision=float16`` (the original's fp16 autocast + GradScaler; the deprecated
boolean ``mixed_float16=True`` means the same) or ``bfloat16`` computes the networks in that dtype (a
loss-scale optimizer for float16); the quantiser (distances, codes, its loss, the codebook) and all
losses stay float32 (models/precision.py).

Codebook usage (fraction of codes hit in the step's batch) and perplexity are
reported with the losses, so they reach TensorBoard as scalars.

Pipeline contract: this is a reconstruction model.  ``call`` reconstructs every
frame it is given and returns ``gen_images`` = the reconstructions of frames
1..T-1 (clipped to [0, 1] at this public boundary; the original's metrics see
unclipped values), plus ``reconstructions`` (all T, clipped), ``codes``
``[B, T, h, w]`` (int32).  ``generate`` returns the reconstructions of the frames
after the context -- it reads them, like ``ground_truth`` does.
"""

import keras
import numpy as np
import tensorflow as tf

from video_prediction.layers.vector_quantizer import VectorQuantizer, codebook_usage
from video_prediction.layers.vqgan import Decoder2D, Decoder3D, Encoder, torch_conv
from video_prediction.models.base import BaseVideoPredictionModel, VideoPredictionModel, num_replicas

# specs/vqvae.md §2.4: per-channel mean/std of RoboNet's train frames in [0, 1] (RGB).
ROBONET_MEAN = [0.4947905177456989, 0.4394289448514622, 0.3734249455050442]
ROBONET_STD = [0.2248808632122409, 0.2230480187693433, 0.2166628109431439]

LOSS_NAMES = ("loss", "quant_loss", "rec_loss", "pixel_loss", "perc_2d_loss", "fvd_loss", "fvd_mu_loss",
              "fvd_cov_loss")
USAGE_NAMES = ("codebook_usage", "codebook_perplexity")


class VQVAEVideoPredictionModel(VideoPredictionModel):
    """The FEVD VQ-VAE (``--model vqvae``); see the module docstring."""

    #: input|reconstruction GIFs, codebook usage, the original's all-frame reconstruction metrics
    inference_extras = "video_prediction.inference.extras.vqvae:VQVAEInferenceExtras"

    @classmethod
    def default_hparams(cls):
        # Not VideoPredictionModel's SAVP schedule/loss hparams: this family has its own (§3.9-3.10).
        hparams = BaseVideoPredictionModel.default_hparams()
        hparams.update(
            # model (the configs' model.* keys, §3.10)
            decoder="2d",  # model.key: "2d" | "3d"
            embed_dim=192,  # model.embed_dim
            n_embed=1024,  # model.n_embed
            z_channels=256,  # ddconfig.z_channels
            resolution=64,  # ddconfig.resolution (frames must be resolution x resolution)
            ch=128,  # ddconfig.ch
            ch_mult=[1, 1, 2, 2, 4],  # ddconfig.ch_mult
            num_res_blocks=2,  # ddconfig.num_res_blocks
            attn_resolutions=[16],  # ddconfig.attn_resolutions
            dropout=0.0,  # ddconfig.dropout
            num_groups=32,  # GroupNorm groups, 32 in the original (smaller only for tiny test models)
            beta=0.25,  # VectorQuantizer beta, hard-coded in the original's VQModel
            input_mean=list(ROBONET_MEAN),  # normalisation (§2.4); one value = every channel
            input_std=list(ROBONET_STD),
            # loss (model.lossconfig)
            codebook_weight=1.0,
            pixelloss_weight=1.0,
            perceptual_weight_2d=1.0,
            fvd_mu_weight=0.0,
            fvd_cov_weight=0.0,
            lpips_normalized_input_quirk=False,  # True: LPIPS gets normalised tensors, as the original's training
            # optimisation (setup.*)
            lr=5e-4,  # setup.learning_rate, constant
            beta1=0.5,
            beta2=0.9,
            epsilon=1e-8,  # PyTorch's Adam default (Keras' is 1e-7)
            batch_size=720,  # global batch per optimizer update = train_dataloader.batch_size x grad_updates
            grad_updates_per_step=6,  # setup.grad_updates_per_step
            max_steps=70000,  # setup.total_steps (optimizer updates)
            train_on="frames",  # "frames": one random frame per clip (RobonetImgDataset) | "clips"
            # Deprecated alias (RoboNet hparams files): True = mixed_precision="float16" (models/precision.py).
            mixed_float16=False,
            # Not in the original: "data" sets the codebook to random encoder outputs of the first training
            # batch (before step 0) instead of uniform(-1/n, 1/n), against early codebook collapse;
            # "kmeans++" draws them by k-means++ seeding (each next one with probability proportional to its
            # squared distance to the nearest one drawn), so that a frequent latent (the black background of
            # Moving MNIST) gets a few codes instead of a share of the codebook proportional to its frequency.
            codebook_init="uniform",
            # Not in the original (always L1): "l2" = squared error, which escapes the all-background
            # minimum of L1 on sparse frames such as Moving MNIST quickly (the quickstart uses it).
            pixel_loss="l1",
        )
        return hparams

    def __init__(self, hparams_dict=None, hparams=None, name=None, **kwargs):
        super().__init__(hparams_dict=hparams_dict, hparams=hparams, name=name, **kwargs)
        hp = self.hparams
        if hp.decoder not in ("2d", "3d"):
            raise ValueError(f"decoder must be '2d' or '3d', got {hp.decoder!r}")
        if hp.codebook_init not in ("uniform", "data", "kmeans++"):
            raise ValueError(f"codebook_init must be 'uniform', 'data' or 'kmeans++', got {hp.codebook_init!r}")
        if hp.pixel_loss not in ("l1", "l2"):
            raise ValueError(f"pixel_loss must be 'l1' or 'l2', got {hp.pixel_loss!r}")
        if hp.train_on not in ("frames", "clips"):
            raise ValueError(f"train_on must be 'frames' or 'clips', got {hp.train_on!r}")
        if hp.decoder == "3d" and hp.train_on == "frames":
            raise ValueError("decoder='3d' mixes frames in time: it must train on clips (train_on='clips')")
        if hp.grad_updates_per_step < 1 or hp.batch_size % hp.grad_updates_per_step:
            raise ValueError(f"batch_size={hp.batch_size} must be a positive multiple of "
                             f"grad_updates_per_step={hp.grad_updates_per_step}")
        if len(hp.input_mean) != len(hp.input_std) or min(hp.input_std) <= 0:
            raise ValueError(f"input_mean and input_std must have equal lengths and std > 0, got "
                             f"{hp.input_mean} and {hp.input_std}")
        # dtype None: the model's mixed_precision policy, scoped by the base class (precision.py).
        compute_dtype = None
        self.compute_dtype_name = self.precision
        net = dict(ch=hp.ch, ch_mult=tuple(hp.ch_mult), num_res_blocks=hp.num_res_blocks,
                   attn_resolutions=tuple(hp.attn_resolutions), dropout=hp.dropout, resolution=hp.resolution,
                   z_channels=hp.z_channels, num_groups=hp.num_groups, dtype=compute_dtype)
        self.channels = None  # set when built (in_channels = out_ch = the frames' channels)
        self._net_kwargs = net
        self.quantize = VectorQuantizer(hp.n_embed, hp.embed_dim, beta=hp.beta, name="quantize")
        # Frozen LPIPS / I3D: a plain (untracked) dict keeps them out of the model's weights and checkpoints.
        # Built now, since variables cannot be created inside the traced train step.
        object.__setattr__(self, "_loss_nets", {})
        if hp.perceptual_weight_2d > 0:
            self._lpips()
        if hp.fvd_mu_weight > 0 or hp.fvd_cov_weight > 0:
            self._i3d()

    # -- construction ---------------------------------------------------------------------------

    def _build_networks(self, channels):
        """Create the encoder/decoder for ``channels``-channel frames (called once, on the first batch)."""
        hp = self.hparams
        net = self._net_kwargs
        dtype = net["dtype"]
        self.encoder = Encoder(in_channels=channels, name="encoder", **net)
        self.quant_conv = torch_conv(hp.embed_dim, 1, hp.z_channels, name="quant_conv", dtype=dtype)
        self.post_quant_conv = torch_conv(hp.z_channels, 1, hp.embed_dim, name="post_quant_conv", dtype=dtype)
        if hp.decoder == "2d":
            self.decoder = Decoder2D(out_ch=channels, name="decoder", **net)
        else:
            self.decoder = Decoder3D(out_ch=channels, name="decoder", **net)
        self.channels = channels

    def torch_layers(self):
        """``{original parameter-name prefix: keras layer}`` for every parameterised layer (conversion)."""
        layers = {"quantize.embedding": self.quantize, "quant_conv": self.quant_conv,
                  "post_quant_conv": self.post_quant_conv}
        layers.update(self.encoder.torch_layers("encoder."))
        layers.update(self.decoder.torch_layers("decoder."))
        return layers

    # -- normalisation --------------------------------------------------------------------------

    def _stats(self, channels):
        hp = self.hparams
        mean, std = list(hp.input_mean), list(hp.input_std)
        if len(mean) == 1:
            mean, std = mean * channels, std * channels
        if len(mean) != channels:
            raise ValueError(f"input_mean/input_std have {len(mean)} values but the frames have {channels} channels")
        return tf.constant(mean, tf.float32), tf.constant(std, tf.float32)

    def normalize(self, images):
        mean, std = self._stats(images.shape[-1])
        return (images - mean) / std

    def unnormalize(self, values):
        mean, std = self._stats(values.shape[-1])
        return values * std + mean

    # -- forward --------------------------------------------------------------------------------

    def _check_frames(self, images):
        images = tf.convert_to_tensor(images)
        if images.shape.rank != 5:
            raise ValueError(f"vqvae: images must be [B, T, H, W, C], got shape {images.shape}")
        height, width, channels = images.shape[2:]
        res = self.hparams.resolution
        if height != res or width != res:
            raise ValueError(f"vqvae: frames must be {res}x{res} (hparam resolution), got shape {images.shape}")
        if self.channels is None:
            self._build_networks(int(channels))
        elif channels != self.channels:
            raise ValueError(f"vqvae: the model was built for {self.channels}-channel frames, got shape {images.shape}")
        return tf.cast(images, tf.float32)

    def encode(self, x, training=False):
        """Normalised clips ``[B, T, H, W, C]`` -> ``(z_q [B, T, h, w, embed_dim] float32, q_loss, codes [B, T, h, w])``."""
        shape = tf.shape(x)
        frames = tf.reshape(x, tf.concat([[-1], shape[2:]], 0))
        h = self.quant_conv(self.encoder(frames, training=training))
        z_q, q_loss, codes = self.quantize(h)
        latent = tf.shape(z_q)
        z_q = tf.reshape(z_q, tf.concat([shape[:2], latent[1:]], 0))
        codes = tf.reshape(codes, tf.concat([shape[:2], latent[1:3]], 0))
        return z_q, q_loss, codes

    def decode(self, z_q, training=False):
        """``[B, T, h, w, embed_dim]`` code vectors -> normalised reconstructions ``[B, T, H, W, C]`` (float32)."""
        shape = tf.shape(z_q)
        frames = tf.reshape(z_q, tf.concat([[-1], shape[2:]], 0))
        h = self.post_quant_conv(frames)
        if self.hparams.decoder == "2d":
            out = self.decoder(h, training=training)
            out = tf.reshape(out, tf.concat([shape[:2], tf.shape(out)[1:]], 0))
        else:
            h = tf.reshape(h, tf.concat([shape[:2], tf.shape(h)[1:]], 0))
            out = self.decoder(h, training=training)
        return tf.cast(out, tf.float32)

    def decode_codes(self, codes, training=False):
        """Integer codes ``[B, T, h, w]`` -> normalised reconstructions (stage 2 decodes its tokens with this)."""
        return self.decode(self.quantize.lookup(codes), training=training)

    def reconstruct(self, x, training=False):
        """Normalised clips -> ``(normalised reconstructions, q_loss, codes)`` (the original's ``forward``)."""
        z_q, q_loss, codes = self.encode(x, training=training)
        return self.decode(z_q, training=training), q_loss, codes

    def call(self, batch, training=False):
        images = self._check_frames(batch["images"])
        x = self.normalize(images)
        rec, q_loss, codes = self.reconstruct(x, training=training)
        reconstructions = tf.clip_by_value(self.unnormalize(rec), 0.0, 1.0)
        return {"gen_images": reconstructions[:, 1:], "reconstructions": reconstructions,
                "normalized_inputs": x, "normalized_reconstructions": rec, "quant_loss": q_loss, "codes": codes}

    def generate(self, batch, num_samples=1, horizon=None):
        """Reconstructions of the ``horizon`` frames after the context, ``[B, num_samples, horizon, H, W, C]``.

        A reconstruction model reads the frames it outputs (like ``ground_truth``):
        the batch must hold ``context + horizon`` frames.  It is deterministic, so the
        samples are copies.
        """
        context = self.context_frames
        horizon = self.sequence_length - context if horizon is None else int(horizon)
        images = tf.convert_to_tensor(batch["images"])
        if horizon < 1 or (images.shape[1] is not None and images.shape[1] < context + horizon):
            raise ValueError(f"vqvae reconstructs the frames it predicts: it needs {context + horizon} frames for a "
                             f"horizon of {horizon}, the batch has {images.shape[1]}")
        recon = self._reconstruct_fn(images[:, context:context + horizon])
        return tf.repeat(recon[:, None], num_samples, axis=1)

    @tf.function(reduce_retracing=True)
    def _reconstruct_fn(self, images):
        return self({"images": images}, training=False)["reconstructions"]

    def build_from_batch(self, batch):
        """Create the weights; with ``codebook_init='data'`` / ``'kmeans++'`` and step 0 also initialise the codebook from ``batch``.

        (The training script builds the model from its first training batch; a restore afterwards
        overwrites the codebook, so resuming and loading are unaffected.)
        """
        images = tf.convert_to_tensor(batch["images"])
        self({"images": images[:1, :1] if self.hparams.train_on == "frames" else images[:1]}, training=False)
        if self.hparams.codebook_init in ("data", "kmeans++") and int(self.global_step.numpy()) == 0:
            self.init_codebook_from_data(images)

    def init_codebook_from_data(self, images):
        """Set the codebook to ``n_embed`` latent vectors (before quantisation) of ``images``: drawn uniformly
        (``codebook_init='data'``) or by k-means++ seeding (``'kmeans++'``, :func:`kmeans_plus_plus_picks`)."""
        x = self.normalize(self._check_frames(images))
        frames = tf.reshape(x, [-1] + x.shape[2:].as_list())
        latents = tf.reshape(tf.cast(self.quant_conv(self.encoder(frames)), tf.float32), [-1, self.hparams.embed_dim])
        count = int(latents.shape[0])
        if self.hparams.codebook_init == "kmeans++":
            picks = kmeans_plus_plus_picks(latents, self.hparams.n_embed)
        else:
            picks = tf.random.shuffle(tf.range(count))
            picks = tf.tile(picks, [-(-self.hparams.n_embed // count)])[: self.hparams.n_embed]
        self.quantize.embedding.assign(tf.gather(latents, picks))

    # -- losses ---------------------------------------------------------------------------------

    def _lpips(self):
        if "lpips" not in self._loss_nets:
            from video_prediction.metrics.lpips import LPIPS
            self._loss_nets["lpips"] = LPIPS("vgg", normalize_inputs=True)
        return self._loss_nets["lpips"]

    def _i3d(self):
        if "i3d" not in self._loss_nets:
            from video_prediction.metrics.fvd import I3D
            self._loss_nets["i3d"] = I3D()
        return self._loss_nets["i3d"]

    def perceptual_distance(self, x, rec, normalized_input_quirk=None):
        """LPIPS-VGG per frame ``[B, T]`` of normalised clips (un-normalised first unless the quirk is on).

        ``normalized_input_quirk`` overrides the hparam ``lpips_normalized_input_quirk``.
        """
        quirk = self.hparams.lpips_normalized_input_quirk if normalized_input_quirk is None else normalized_input_quirk
        if not quirk:
            x, rec = self.unnormalize(x), self.unnormalize(rec)
        shape = tf.shape(x)
        frames = tf.concat([shape[:1] * shape[1:2], shape[2:]], 0)
        a, b = tf.reshape(x, frames), tf.reshape(rec, frames)
        if x.shape[-1] == 1:
            a, b = tf.tile(a, [1, 1, 1, 3]), tf.tile(b, [1, 1, 1, 3])
        lpips = self._lpips()
        # The range check of LPIPS.call is skipped on purpose: reconstructions may leave [0, 1].
        count = tf.shape(a)[0]
        taps = lpips.features(tf.concat([a, b], 0) * 2.0 - 1.0)
        distance = 0.0
        for head, feats in zip(lpips.heads, taps):
            feats = feats / (tf.sqrt(tf.reduce_sum(tf.square(feats), axis=-1, keepdims=True)) + 1e-10)
            distance += tf.reduce_mean(head(tf.square(feats[:count] - feats[count:])), axis=[1, 2, 3])
        return tf.reshape(distance, shape[:2])

    def i3d_features(self, x):
        """I3D logits ``[B, 400]`` of normalised clips (un-normalised, resized to 224 half-pixel, to [-1, 1])."""
        from video_prediction.metrics.fvd import preprocess_videos
        videos = self.unnormalize(x)
        if videos.shape[-1] == 1:
            videos = tf.tile(videos, [1, 1, 1, 1, 3])
        return self._i3d()(preprocess_videos(videos, half_pixel_centers=True))

    def fvd_losses(self, x, rec):
        """``(mu_loss, cov_loss)``: mean squared differences of the batch feature means and covariances."""
        if x.shape[1] is not None and x.shape[1] < 9:
            raise ValueError(f"fvd_mu_weight / fvd_cov_weight need clips of >= 9 frames (I3D), got {x.shape}")
        real, fake = self.i3d_features(x), self.i3d_features(rec)

        def cov(feats):  # torch.cov: unbiased
            centered = feats - tf.reduce_mean(feats, axis=0, keepdims=True)
            return tf.matmul(centered, centered, transpose_a=True) / tf.cast(tf.shape(feats)[0] - 1, tf.float32)

        mu_loss = tf.reduce_mean(tf.square(tf.reduce_mean(real, 0) - tf.reduce_mean(fake, 0)))
        cov_loss = tf.reduce_mean(tf.square(cov(real) - cov(fake)))
        return mu_loss, cov_loss

    def vq_losses(self, x, rec, q_loss, normalized_input_quirk=None):
        """Every logged term of the original's ``VQLoss`` (§3.8) from normalised inputs/reconstructions.

        ``normalized_input_quirk`` overrides the hparam ``lpips_normalized_input_quirk`` (parity checks).
        """
        hp = self.hparams
        zero = tf.constant(0.0)
        error = tf.abs(x - rec) if hp.pixel_loss == "l1" else tf.square(x - rec)
        pixel = tf.reduce_mean(error) if hp.pixelloss_weight > 0 else zero
        perceptual = tf.reduce_mean(self.perceptual_distance(x, rec, normalized_input_quirk)) if hp.perceptual_weight_2d > 0 else zero
        mu_loss = cov_loss = zero
        if hp.fvd_mu_weight > 0 or hp.fvd_cov_weight > 0:
            mu_loss, cov_loss = self.fvd_losses(x, rec)
            mu_loss = mu_loss if hp.fvd_mu_weight > 0 else zero
            cov_loss = cov_loss if hp.fvd_cov_weight > 0 else zero
        fvd = hp.fvd_mu_weight * mu_loss + hp.fvd_cov_weight * cov_loss
        rec_loss = hp.pixelloss_weight * pixel + hp.perceptual_weight_2d * perceptual + fvd
        quant = q_loss if hp.codebook_weight > 0 else zero
        return {"loss": rec_loss + hp.codebook_weight * quant, "quant_loss": quant, "rec_loss": rec_loss,
                "pixel_loss": pixel, "perc_2d_loss": perceptual, "fvd_loss": fvd, "fvd_mu_loss": mu_loss,
                "fvd_cov_loss": cov_loss}

    def generator_losses(self, batch, outputs):
        losses = self.vq_losses(outputs["normalized_inputs"], outputs["normalized_reconstructions"],
                                outputs["quant_loss"])
        losses.pop("loss")
        return losses

    def loss_names(self):
        return list(LOSS_NAMES) + list(USAGE_NAMES)

    def _usage(self, codes):
        counts, perplexity = codebook_usage(codes, self.hparams.n_embed)
        used = tf.reduce_sum(tf.cast(counts > 0, tf.float32)) / self.hparams.n_embed
        return {"codebook_usage": used, "codebook_perplexity": perplexity}

    # -- optimisation ---------------------------------------------------------------------------

    def learning_rate_schedule(self):
        return self.hparams.lr  # constant (§3.9)

    def current_learning_rate(self):
        return tf.constant(self.hparams.lr)

    def make_optimizer(self):
        hp = self.hparams
        optimizer = keras.optimizers.Adam(learning_rate=hp.lr, beta_1=hp.beta1, beta_2=hp.beta2, epsilon=hp.epsilon)
        return self.wrap_optimizer(optimizer)  # float16: dynamic loss scaling, as GradScaler

    def training_inputs(self, images):
        """The clips a train step fits: one random frame per clip for ``train_on='frames'``."""
        if self.hparams.train_on == "clips":
            return images
        shape = tf.shape(images)
        index = tf.random.uniform([shape[0]], 0, shape[1], dtype=tf.int32)
        return tf.gather(images, index, axis=1, batch_dims=1)[:, None]

    def _micro_step(self, x):
        """Gradients (loss-scaled when mixed precision) and terms of one micro-batch of normalised clips."""
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            rec, q_loss, codes = self.reconstruct(x, training=True)
            losses = self.vq_losses(x, rec, q_loss)
            # Per-replica mean reduced by hand: scale to the global-batch mean (DESIGN.md), and 1/n per micro-batch.
            scaled = losses["loss"] / (num_replicas() * self.hparams.grad_updates_per_step)
            scaled = self.optimizer.scale_loss(scaled)
        gradients = tape.gradient(scaled, variables)
        gradients = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(gradients, variables)]
        return gradients, losses, codes

    def train_step(self, batch):
        images = self._check_frames(batch["images"])
        x = self.normalize(self.training_inputs(images))
        n = self.hparams.grad_updates_per_step
        variables = self.trainable_variables
        if n == 1:
            gradients, losses, codes = self._micro_step(x)
            usage = self._usage(codes)
        else:
            micro = tf.reshape(x, tf.concat([[n, -1], tf.shape(x)[1:]], 0))
            micro.set_shape([n, None] + x.shape[1:].as_list())
            counts0 = tf.zeros([self.hparams.n_embed], tf.float32)

            def body(i, gradients, totals, counts):
                step_gradients, losses, codes = self._micro_step(micro[i])
                step_counts, _ = codebook_usage(codes, self.hparams.n_embed)
                return (i + 1, [a + g for a, g in zip(gradients, step_gradients)],
                        {k: totals[k] + losses[k] / n for k in totals}, counts + step_counts)

            zeros = [tf.zeros_like(v) for v in variables]
            totals0 = {k: tf.constant(0.0) for k in LOSS_NAMES}
            _, gradients, losses, counts = tf.while_loop(
                lambda i, *_: i < n, body, (tf.constant(0), zeros, totals0, counts0), parallel_iterations=1)
            probs = counts / tf.reduce_sum(counts)
            entropy = -tf.reduce_sum(tf.where(probs > 0, probs * tf.math.log(tf.maximum(probs, 1e-30)), 0.0))
            usage = {"codebook_usage": tf.reduce_sum(tf.cast(counts > 0, tf.float32)) / self.hparams.n_embed,
                     "codebook_perplexity": tf.exp(entropy)}
        self.optimizer.apply(gradients, variables)
        self.global_step.assign_add(1)
        return self.report(dict(losses, **usage))

    def test_step(self, batch):
        outputs = self(batch, training=False)
        losses = self.vq_losses(outputs["normalized_inputs"], outputs["normalized_reconstructions"],
                                outputs["quant_loss"])
        return self.report(dict(losses, **self._usage(outputs["codes"])))


def kmeans_plus_plus_picks(points, count):
    """Indices of ``count`` rows of ``points`` ``[N, D]`` by k-means++ seeding: the first uniformly, each next
    with probability proportional to its squared distance to the nearest row picked so far (uniformly again
    once every row coincides with a pick, e.g. ``count`` > N).  Uses TensorFlow's global random seed."""
    points = tf.convert_to_tensor(points, tf.float32)
    n = tf.shape(points)[0]
    picks = [tf.random.uniform([], 0, n, dtype=tf.int32)]
    nearest = tf.reduce_sum(tf.square(points - points[picks[0]]), axis=1)
    for _ in range(count - 1):
        total = tf.reduce_sum(nearest)
        logits = tf.where(total > 0, tf.math.log(tf.maximum(nearest, 1e-30)) - tf.where(nearest > 0, 0.0, 1e30),
                          tf.zeros_like(nearest))
        pick = tf.cast(tf.random.categorical(logits[None], 1)[0, 0], tf.int32)
        picks.append(pick)
        nearest = tf.minimum(nearest, tf.reduce_sum(tf.square(points - points[pick]), axis=1))
    return tf.stack(picks)


def count_parameters(hparams=None, channels=3):
    """Trainable parameters ``{"total", "encoder", "decoder", ...}`` of a ``vqvae`` built with ``hparams`` (one 1-frame pass)."""
    hparams = dict(hparams or {})
    hparams.setdefault("context_frames", 1)
    hparams.setdefault("sequence_length", 2)
    model = VQVAEVideoPredictionModel(hparams=hparams)
    hp = model.hparams
    frames = 2 if hp.decoder == "3d" else 1
    model.build_from_batch({"images": tf.zeros([1, frames, hp.resolution, hp.resolution, channels])})
    return {"total": sum(int(np.prod(w.shape)) for w in model.trainable_weights),
            **{name: sum(int(np.prod(w.shape)) for w in getattr(model, name).trainable_weights)
               for name in ("encoder", "decoder", "quant_conv", "post_quant_conv", "quantize")}}
