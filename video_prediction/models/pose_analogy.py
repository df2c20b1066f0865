"""The visual-structure analogy image generator ("IMGGEN") of Villegas et al. 2017
(specs/hierarchical_lstm.md §3.2-3.4, §4.2).

Renders frame t+n from frame t, its pose heatmaps p_t and the heatmaps p_{t+n}:
``x̂_{t+n} = dec(f_img(x_t) + f_pose(p_{t+n}) - f_pose(p_t))``.

* ``f_img`` / ``f_pose``: VGG-like 3x3 SAME conv+ReLU stacks (64,64 | 128,128 |
  256,256,256) with 2x2 VALID max-pools, Glorot-uniform kernels, zero biases;
  ``f_pose`` runs once on ``concat([p_t, p_{t+n}], batch)``.
* decoder: 2x2 zero-fill unpooling (value at the top-left) and stride-1 3x3
  transposed convs (256,256,128 | 128,64 | 64,C), ReLU, tanh output (hparam
  ``output_activation='clip'``, not in the original: a straight-through clip to
  [-1, 1] instead, for mostly-black frames; see :func:`straight_through_clip`).
* discriminator on ``concat(image, p_{t+n})``: 5x5/2 SAME convs 64..512, lrelu
  0.2, batch-statistics BN (eps 1e-3, always training mode) after h1-h3, Dense 1
  (N(0, 0.02)); three separate calls (good = (x_{t+n}, p_{t+n}), bad = (x_t,
  p_{t+n}), gen = (x̂_{t+n}, p_{t+n})), each with its own batch statistics.
* losses (§4.2): ``L_img = 0.5 mean((x̂ - x)^2)``; ``feat_loss1 = 0.5 mean((A(x) -
  A(x̂))^2)`` (AlexNet conv5 of ``x01*255 - batch mean``); ``feat_loss2 = 0.5
  mean((H(x01)[layer] - H(x̂01)[layer])^2)`` (Hourglass); ``L = L_img + alpha
  feat_loss1 + beta feat_loss2``; non-saturating ``g_loss``; ``d_loss = real +
  0.5 fake(gen) + 0.5 fake(bad)``.  G minimises ``L + gamma g_loss``.
* two Adams (lr 1e-4, beta1 0.5, eps 1e-8); per batch the G step, then the D step
  against the updated G, then the margin-0.3 hysteresis on the post-update
  losses: ``errD_fake < m or errD_real < m`` stops D updates, ``> 1 - m`` stops G
  updates, both off -> both on again; a flag is never re-enabled on its own.

Images are BGR in [-1, 1] inside the model (``channel_order='bgr'`` reverses RGB
frames of the [0, 1] contract).  Pose heatmaps come from the batch's
``heatmaps`` ``[B, T, H, W, J]`` (the datasets render the original's schemes)
or, without them, one Gaussian per joint is drawn from ``poses`` (Human3.6M's
scheme, §2.4).  Training samples one pair per clip: gap n ~ U{1..T-1}, start ~
U{0..T-1-n} (the original's steps=30 gap for Penn windows of 30 frames).

``call`` follows the test protocol (§3.5): every frame after the context is
generated from the SAME last context frame and its pose with the frame's own
(ground-truth, or supplied) pose.
"""

import os

import keras
import tensorflow as tf

from video_prediction.layers import perceptual
from video_prediction.layers import pose as pose_ops
from video_prediction.models.precision import inner_optimizer
from video_prediction.models.base import VideoPredictionModel, num_replicas
from video_prediction.optimizers import GatedAdam


def unpool_zero_filled(x):
    """The original's ``FixedUnPooling(x, [2, 2])``: each value at (2i, 2j), zeros at the other three."""
    out = tf.concat([x, tf.zeros_like(x)], axis=3)
    out = tf.concat([out, tf.zeros_like(out)], axis=2)
    return tf.reshape(out, [-1, x.shape[1] * 2, x.shape[2] * 2, x.shape[3]])


def lrelu(x, leak=0.2):
    """The original's ``lrelu``: ``0.5(1+leak) x + 0.5(1-leak) |x|``."""
    return 0.5 * (1 + leak) * x + 0.5 * (1 - leak) * tf.abs(x)


def _conv(filters, kernel_size, strides, name):
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                               kernel_initializer="glorot_uniform", bias_initializer="zeros", name=name)


class VGGEncoder(keras.layers.Layer):
    """``img_encoder`` / ``pose_encoder``: 3x3 convs + ReLU, 2x2 VALID max-pools, /8 spatially, 4*gf_dim channels."""

    def __init__(self, gf_dim, prefix, **kwargs):
        super().__init__(**kwargs)
        widths = {"1_1": gf_dim, "1_2": gf_dim, "2_1": 2 * gf_dim, "2_2": 2 * gf_dim,
                  "3_1": 4 * gf_dim, "3_2": 4 * gf_dim, "3_3": 4 * gf_dim}
        self.keys = tuple(widths)
        for key, width in widths.items():  # named attributes: tf.train.Checkpoint does not follow dicts
            setattr(self, f"conv{key}", _conv(width, 3, 1, f"{prefix}{key}"))
        self.prefix = prefix

    @property
    def convs(self):
        return {key: getattr(self, f"conv{key}") for key in self.keys}

    def call(self, x):
        for block in ("1", "2", "3"):
            for key in sorted(k for k in self.keys if k.startswith(block)):
                x = tf.nn.relu(getattr(self, f"conv{key}")(x))
            x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        return x


def straight_through_clip(x):
    """``clip(x, -1, 1)`` forward, identity backward (a straight-through estimator).

    The ``output_activation='clip'`` option: a pixel already below -1 whose target is -1 has zero error (so
    a black background stays exactly black), while a pixel below -1 whose target is brighter still gets the
    full gradient.  With ``tanh`` a background of exactly -1 (the asymptote) drives the pre-activations to
    -inf, and the saturated tanh then passes almost no gradient to the few bright pixels: on Moving MNIST
    (96 % black) the generator collapses to all-black frames within a few hundred steps.
    """
    return x + tf.stop_gradient(tf.clip_by_value(x, -1.0, 1.0) - x)


OUTPUT_ACTIVATIONS = {"tanh": tf.tanh, "clip": straight_through_clip}


class UnpoolDecoder(keras.layers.Layer):
    """The decoder: zero-fill unpool + stride-1 3x3 transposed convs (``dec_deconv*``), tanh output.

    ``output_activation`` ``'clip'`` replaces the final tanh by :func:`straight_through_clip` (an option of
    this port, not of the original).
    """

    def __init__(self, gf_dim, channels, output_activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.output_activation = OUTPUT_ACTIVATIONS[output_activation]
        spec = [("3_3", 4 * gf_dim), ("3_2", 4 * gf_dim), ("3_1", 2 * gf_dim), ("2_2", 2 * gf_dim),
                ("2_1", gf_dim), ("1_2", gf_dim), ("1_1", channels)]
        self.keys = tuple(key for key, _ in spec)
        for key, width in spec:
            setattr(self, f"deconv{key}", keras.layers.Conv2DTranspose(
                width, 3, strides=1, padding="same", kernel_initializer="glorot_uniform", bias_initializer="zeros",
                name=f"dec_deconv{key}"))

    @property
    def deconvs(self):
        return [(key, getattr(self, f"deconv{key}")) for key in self.keys]

    def call(self, h):
        for key, layer in self.deconvs:
            if key.endswith("_3") or key in ("2_2", "1_2"):  # first layer of each level: unpool before it
                h = unpool_zero_filled(h)
            h = layer(h)
            h = self.output_activation(h) if key == "1_1" else tf.nn.relu(h)
        return h


class BatchStatsNorm(keras.layers.Layer):
    """``tf.contrib.layers.batch_norm(is_training=True, scale=True)``: batch moments always, eps 1e-3.

    ``moving_mean`` / ``moving_variance`` exist only to hold the original checkpoint's values (its update
    ops never ran); they are never read.
    """

    def __init__(self, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[-1]
        # autocast=False: applied in float32 with the statistics (call).
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros", autocast=False)
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones", autocast=False)
        self.moving_mean = self.add_weight(name="moving_mean", shape=(channels,), initializer="zeros",
                                           trainable=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=(channels,), initializer="ones",
                                               trainable=False)

    def call(self, x):
        # Batch statistics in float32 under mixed precision (issue 18), as Keras' own BatchNormalization.
        x32 = tf.cast(x, tf.float32)
        mean, variance = tf.nn.moments(x32, [0, 1, 2])
        outputs = tf.nn.batch_normalization(x32, mean, variance, self.beta, self.gamma, self.epsilon)
        return tf.cast(outputs, self.compute_dtype)


class AnalogyDiscriminator(keras.layers.Layer):
    """``IMGGEN.discriminator``: returns the logits ``[B, 1]``."""

    def __init__(self, df_dim, **kwargs):
        super().__init__(**kwargs)
        for i, m in enumerate((1, 2, 4, 8)):
            setattr(self, f"h{i}_conv", _conv(df_dim * m, 5, 2, f"dis_h{i}_conv"))
            if i:
                setattr(self, f"bn{i}", BatchStatsNorm(name=f"bn{i}"))
        self.linear = keras.layers.Dense(1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
                                         bias_initializer="zeros", name="dis_h3_lin")

    @property
    def convs(self):
        return [getattr(self, f"h{i}_conv") for i in range(4)]

    @property
    def norms(self):
        return [None] + [getattr(self, f"bn{i}") for i in (1, 2, 3)]

    def call(self, x):
        for conv, norm in zip(self.convs, self.norms):
            x = conv(x)
            x = lrelu(norm(x) if norm is not None else x)
        return self.linear(tf.reshape(x, [tf.shape(x)[0], -1]))


def sigmoid_bce(logits, label):
    """mean of ``sigmoid_cross_entropy_with_logits`` against a constant label."""
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), label),
                                                                  logits=logits))


class PoseAnalogyVideoPredictionModel(VideoPredictionModel):
    """``--model pose_analogy`` (see the module docstring)."""

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(
            batch_size=8,  # --batch_size
            lr=0.0001,  # --lr, both Adams
            beta1=0.5,  # AdamOptimizer(beta1=0.5)
            beta2=0.999,
            max_steps=100000,  # --num_iter
            gf_dim=64,
            df_dim=64,
            alpha=1.0,  # AlexNet feature loss weight
            beta=1.0,  # Hourglass feature loss weight
            gamma=1.0,  # adversarial g_loss weight
            layer=3,  # Hourglass level for feat_loss2 (3 = 64x64x512, the outermost)
            margin=0.3,  # update hysteresis margin
            steps=0,  # --steps: pair gaps n ~ U{1..steps-1} (Penn 30, Human3.6M 1000 raw frames); 0: the clip length
            num_joints=-1,  # heatmap channels (48 Penn, 32 Human3.6M); -1: from the first batch
            heatmap_sigma=8.0,  # pixels, only when heatmaps are drawn from 'poses' here
            channel_order="bgr",  # the original reads frames with cv2 (BGR); 'rgb' keeps the contract's order
            perceptual_models_dir="perceptual_models",  # holds alexnet/bvlc_alexnet.npy, hourglass/*.npy
            # 'tanh' (the original) or 'clip': clip(x, -1, 1) with a straight-through gradient, not in the
            # original; for mostly-black frames such as Moving MNIST (see straight_through_clip)
            output_activation="tanh",
        )
        return hparams

    def __init__(self, hparams_dict=None, hparams=None, name=None, **kwargs):
        super().__init__(hparams_dict=hparams_dict, hparams=hparams, name=name, **kwargs)
        hp = self.hparams
        if hp.channel_order not in ("bgr", "rgb"):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {hp.channel_order!r}")
        if hp.layer not in (0, 1, 2, 3):
            raise ValueError(f"layer must be 0..3 (a Hourglass level), got {hp.layer}")
        if hp.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"output_activation must be one of {sorted(OUTPUT_ACTIVATIONS)}, got "
                             f"{hp.output_activation!r}")
        if not 0.0 <= hp.margin < 0.5:
            raise ValueError(f"margin must be in [0, 0.5), got {hp.margin}")
        self.img_encoder = VGGEncoder(hp.gf_dim, "enc_iconv", name="img_encoder")
        self.pose_encoder = VGGEncoder(hp.gf_dim, "enc_pconv", name="pose_encoder")
        self.decoder = None  # sized by the frames' channels on the first call
        self.discriminator = AnalogyDiscriminator(hp.df_dim, name="discriminator")
        self.alexnet, self.hourglass, self.perceptual_error = self._make_perceptual_nets()
        self.update_g = keras.Variable(True, dtype="bool", trainable=False, name="update_g",
                                       aggregation="only_first_replica")
        self.update_d = keras.Variable(True, dtype="bool", trainable=False, name="update_d",
                                       aggregation="only_first_replica")
        self.seed_generator = keras.random.SeedGenerator(0, name="pair_seed")
        self.discriminator_optimizer = None

    def _make_perceptual_nets(self):
        """AlexNet / Hourglass from ``perceptual_models_dir`` when alpha / beta > 0.

        Missing files do not stop generation or evaluation (the frozen weights are then placeholders that a
        checkpoint restores); training refuses to start (:meth:`make_optimizers`) with the message kept here.
        """
        hp = self.hparams
        alexnet = hourglass = None
        errors = []
        if hp.alpha:
            path = os.path.join(hp.perceptual_models_dir, "alexnet", "bvlc_alexnet.npy")
            try:
                weights = perceptual.read_alexnet_file(path)
            except perceptual.PerceptualWeightsMissing as e:
                errors.append(str(e))
                weights = {k: tuple(tf.zeros(s).numpy() for s in shapes)
                           for k, shapes in perceptual.ALEXNET_SHAPES.items()}
            alexnet = perceptual.AlexNetConv5(weights, name="alexnet")
        if hp.beta:
            directory = os.path.join(hp.perceptual_models_dir, "hourglass")
            try:
                params = perceptual.read_hourglass_dir(directory)
            except perceptual.PerceptualWeightsMissing as e:
                errors.append(str(e))
                params = [tf.zeros(s).numpy() for s in perceptual.hourglass_param_shapes()]
            hourglass = perceptual.HourglassFeatures(params, name="hourglass")
        return alexnet, hourglass, (errors[0] + " (or train with alpha=0,beta=0)") if errors else None

    @classmethod
    def hparams_from_dataset(cls, hparams, dataset):
        """``num_joints``: the dataset's heatmap channels (with ``heatmaps=True``) or its joints."""
        if hparams.get("num_joints", -1) < 0 and getattr(dataset, "num_joints", 0):
            drawn = getattr(dataset.hparams, "heatmaps", False) if hasattr(dataset, "hparams") else False
            return {"num_joints": int(dataset.num_heatmap_channels if drawn else dataset.num_joints)}
        return {}

    def loss_names(self):
        return ["loss", "L", "L_img", "L_feat", "feat_loss1", "feat_loss2", "g_loss", "d_loss", "d_loss_real",
                "d_loss_fake", "update_g", "update_d", "errD_fake", "errD_real", "errG"]

    # -- inputs -------------------------------------------------------------------------------

    def to_model_images(self, images):
        """[0, 1] contract frames -> the original's BGR [-1, 1]."""
        images = tf.convert_to_tensor(images, tf.float32)
        if self.hparams.channel_order == "bgr" and images.shape[-1] == 3:
            images = images[..., ::-1]
        return images * 2.0 - 1.0

    def from_model_images(self, images):
        images = (images + 1.0) / 2.0
        if self.hparams.channel_order == "bgr" and images.shape[-1] == 3:
            images = images[..., ::-1]
        return images

    def heatmaps(self, batch):
        """``[B, T, H, W, J]`` pose maps: the batch's ``heatmaps`` or per-joint Gaussians of ``poses``."""
        if "heatmaps" in batch:
            return tf.cast(batch["heatmaps"], tf.float32)
        if "poses" not in batch:
            raise ValueError("pose_analogy needs 'heatmaps' [B, T, H, W, J] or 'poses' [B, T, K, 2] in the batch")
        images = batch["images"]
        return pose_ops.joint_heatmaps(batch["poses"], images.shape[2], images.shape[3], self.hparams.heatmap_sigma,
                                       batch.get("pose_visibility"))

    # -- networks -----------------------------------------------------------------------------

    def generate_frame(self, xt, pt, ptpn):
        """``IMGGEN.generator``: BGR [-1, 1] frame t+n from x_t, p_t, p_{t+n} (all [B, H, W, .])."""
        if self.decoder is None:
            self.decoder = UnpoolDecoder(self.hparams.gf_dim, int(xt.shape[-1]), self.hparams.output_activation,
                                         name="decoder")
        batch_size = tf.shape(xt)[0]
        h_img = self.img_encoder(xt)
        h_pose = self.pose_encoder(tf.concat([pt, ptpn], axis=0))
        h_pose_t, h_pose_tpn = h_pose[:batch_size], h_pose[batch_size:]
        # float32 whatever the layers' compute dtype (mixed precision): losses and outputs are float32.
        return tf.cast(self.decoder(h_img + (h_pose_tpn - h_pose_t)), tf.float32)

    def discriminate(self, image, pose):
        return tf.cast(self.discriminator(tf.concat([image, pose], axis=3)), tf.float32)  # logits for float32 BCE

    def perceptual_losses(self, xtpn, gen):
        """(feat_loss1, feat_loss2); zero for a net whose weight is 0 (the original built both always)."""
        true01, gen01 = (xtpn + 1.0) / 2.0, (gen + 1.0) / 2.0
        zero = tf.constant(0.0)
        feat1 = feat2 = zero
        if self.alexnet is not None:
            a_t = tf.cast(self.alexnet(perceptual.alexnet_input(true01)), tf.float32)
            a_g = tf.cast(self.alexnet(perceptual.alexnet_input(gen01)), tf.float32)
            feat1 = 0.5 * tf.reduce_mean(tf.square(a_t - a_g))
        if self.hourglass is not None:
            layer = self.hparams.layer
            h_t = tf.cast(self.hourglass(true01)[layer], tf.float32)
            h_g = tf.cast(self.hourglass(gen01)[layer], tf.float32)
            feat2 = 0.5 * tf.reduce_mean(tf.square(h_t - h_g))
        return feat1, feat2

    def loss_terms(self, xt, xtpn, pt, ptpn, gen=None):
        """Every term of ``model_analogy.py`` (§4.2) for one batch of pairs; ``gen`` defaults to G's output."""
        hp = self.hparams
        if gen is None:
            gen = self.generate_frame(xt, pt, ptpn)
        feat1, feat2 = self.perceptual_losses(xtpn, gen)
        l_feat = hp.alpha * feat1 + hp.beta * feat2
        l_img = 0.5 * tf.reduce_mean(tf.square(gen - xtpn))
        good = self.discriminate(xtpn, ptpn)
        bad = self.discriminate(xt, ptpn)
        fake = self.discriminate(gen, ptpn)
        d_loss_real = sigmoid_bce(good, 1.0)
        d_loss_fake = 0.5 * sigmoid_bce(fake, 0.0) + 0.5 * sigmoid_bce(bad, 0.0)
        return dict(gen=gen, D_logits=good, DB_logits=bad, D_logits_=fake, feat_loss1=feat1, feat_loss2=feat2,
                    L_feat=l_feat, L_img=l_img, L=l_img + l_feat, g_loss=sigmoid_bce(fake, 1.0),
                    d_loss_real=d_loss_real, d_loss_fake=d_loss_fake, d_loss=d_loss_real + d_loss_fake)

    # -- the contract -------------------------------------------------------------------------

    def call(self, batch, training=False):
        """Frames after the context from the last context frame, its pose and each frame's pose (§3.5)."""
        images = tf.convert_to_tensor(batch["images"], tf.float32)
        maps = self.heatmaps(batch)
        context = self.context_frames
        xt = self.to_model_images(images[:, context - 1])
        pt = maps[:, context - 1]
        future = tf.transpose(maps[:, context:], [1, 0, 2, 3, 4])  # [T-C, B, H, W, J]
        first = self.generate_frame(xt, pt, future[0])  # builds the decoder outside map_fn
        rest = tf.map_fn(lambda p: self.generate_frame(xt, pt, p), future[1:],
                         fn_output_signature=tf.TensorSpec(first.shape, tf.float32), parallel_iterations=1)
        generated = tf.concat([first[None], rest], axis=0)
        generated = self.from_model_images(tf.transpose(generated, [1, 0, 2, 3, 4]))
        return {"gen_images": tf.concat([images[:, 1:context], generated], axis=1)}

    def build_from_batch(self, batch):
        """Create every weight: the generator through ``call``, the discriminator on one frame."""
        if "heatmaps" not in batch and "poses" not in batch:
            if self.hparams.num_joints < 0:
                raise ValueError("pose_analogy needs 'heatmaps' or 'poses' in the batch or num_joints set")
            images = tf.convert_to_tensor(batch["images"])
            batch = dict(batch, heatmaps=tf.zeros(images.shape[:4] + (self.hparams.num_joints,)))
        self.mark_built_by_forward_pass()
        self(batch, training=False)
        maps = self.heatmaps(batch)
        self.discriminate(self.to_model_images(batch["images"][:, 0]), maps[:, 0])

    def rollout_inputs(self, batch, horizon):
        """The context frames plus the poses / heatmaps of every rollout step (the pose drives the frames)."""
        inputs = super().rollout_inputs(batch, horizon)
        length = self.context_frames + horizon
        for key in ("heatmaps", "poses", "pose_visibility"):
            if key in batch:
                value = tf.convert_to_tensor(batch[key])
                if value.shape[1] is not None and value.shape[1] < length:
                    raise ValueError(f"a rollout of {length} frames needs {length} {key}, the batch has "
                                     f"{value.shape[1]}")
                inputs[key] = value[:, :length]
        return inputs

    def generator_losses(self, batch, outputs):
        """Validation: the pixel term ``0.5 mean((x̂ - x)^2)`` (in [-1, 1]) over the generated frames."""
        context = self.context_frames
        gen = self.to_model_images(outputs["gen_images"][:, context - 1:])
        target = self.to_model_images(batch["images"][:, context:])
        return {"L_img": 0.5 * tf.reduce_mean(tf.square(gen - target))}

    # -- training -----------------------------------------------------------------------------

    def sample_pair(self, batch):
        """(x_t, x_{t+n}, p_t, p_{t+n}) with n ~ U{1..S-1}, t ~ U{0..T-1-n} per example (S = min(steps, T))."""
        images = self.to_model_images(batch["images"])
        maps = self.heatmaps(batch)
        length = tf.shape(images)[1]
        batch_size = tf.shape(images)[0]
        span = length if self.hparams.steps <= 0 else tf.minimum(length, self.hparams.steps)
        seed = tf.cast(self.seed_generator.next(), tf.int64)
        u = tf.random.stateless_uniform([2, batch_size], seed=seed)
        gap = 1 + tf.cast(tf.floor(u[0] * tf.cast(span - 1, tf.float32)), tf.int32)
        gap = tf.minimum(gap, span - 1)
        start = tf.cast(tf.floor(u[1] * tf.cast(length - gap, tf.float32)), tf.int32)
        start = tf.minimum(start, length - 1 - gap)
        take = lambda x, i: tf.gather(x, i, axis=1, batch_dims=1)
        return take(images, start), take(images, start + gap), take(maps, start), take(maps, start + gap)

    def make_optimizers(self, jit_compile=False):
        if self.perceptual_error:
            raise ValueError(self.perceptual_error)
        hp = self.hparams
        make = lambda: self.wrap_optimizer(GatedAdam(learning_rate=hp.lr, beta_1=hp.beta1, beta_2=hp.beta2,
                                                     epsilon=1e-8))
        self.compile(optimizer=make(), jit_compile=jit_compile)
        self.discriminator_optimizer = make()

    def optimizers_by_name(self):
        return {"optimizer": self.optimizer, "discriminator_optimizer": self.discriminator_optimizer}

    def generator_variables(self):
        return [v for layer in (self.img_encoder, self.pose_encoder, self.decoder)
                for v in layer.trainable_variables]

    def discriminator_variables(self):
        return self.discriminator.trainable_variables

    def variables_by_optimizer(self):
        return {"optimizer": self.generator_variables(),
                "discriminator_optimizer": self.discriminator_variables()}

    def current_learning_rate(self):
        return self.hparams.lr

    def train_step(self, batch):
        """One pair per clip (:meth:`sample_pair`), then :meth:`train_on_pair`."""
        return self.report(self.train_on_pair(*self.sample_pair(batch)))

    def train_on_pair(self, xt, xtpn, pt, ptpn):
        """G step, D step against the updated G, then the margin hysteresis on the post-update losses.

        Returns the values to report: the loss terms before the updates (what the original's summaries
        show), ``update_g``/``update_d`` used by this step (1 = updated) and the post-update
        ``errD_fake``/``errD_real``/``errG`` the hysteresis looked at.
        """
        hp = self.hparams
        replicas = num_replicas()
        inner_optimizer(self.optimizer).enabled.assign(self.update_g)  # the GatedAdam in a LossScaleOptimizer
        inner_optimizer(self.discriminator_optimizer).enabled.assign(self.update_d)
        g_variables = self.generator_variables()
        with tf.GradientTape() as tape:
            terms = self.loss_terms(xt, xtpn, pt, ptpn)
            g_objective = terms["L"] + hp.gamma * terms["g_loss"]
            scaled = g_objective / replicas  # per-replica mean -> global-batch mean (DESIGN.md)
            scaled = self.optimizer.scale_loss(scaled)  # float16: times the dynamic loss scale
        self.optimizer.apply(tape.gradient(scaled, g_variables), g_variables)
        d_variables = self.discriminator_variables()
        with tf.GradientTape() as tape:
            gen = tf.stop_gradient(self.generate_frame(xt, pt, ptpn))  # the just-updated G
            fake = self.discriminate(gen, ptpn)
            good = self.discriminate(xtpn, ptpn)
            bad = self.discriminate(xt, ptpn)
            d_loss = sigmoid_bce(good, 1.0) + 0.5 * sigmoid_bce(fake, 0.0) + 0.5 * sigmoid_bce(bad, 0.0)
            scaled = self.discriminator_optimizer.scale_loss(d_loss / replicas)
        self.discriminator_optimizer.apply(tape.gradient(scaled, d_variables), d_variables)
        # errD_fake, errD_real, errG re-evaluated after both updates (the original's three .eval calls).
        gen = self.generate_frame(xt, pt, ptpn)
        fake = self.discriminate(gen, ptpn)
        err_real = sigmoid_bce(self.discriminate(xtpn, ptpn), 1.0)
        err_fake = 0.5 * sigmoid_bce(fake, 0.0) + 0.5 * sigmoid_bce(self.discriminate(xt, ptpn), 0.0)
        err_g = sigmoid_bce(fake, 1.0)
        if replicas > 1:  # every replica takes the same decision, on the global-batch losses
            context = tf.distribute.get_replica_context()
            err_real, err_fake = (context.all_reduce("mean", e) for e in (err_real, err_fake))
        margin = hp.margin
        update_d = tf.logical_and(self.update_d, tf.logical_not((err_fake < margin) | (err_real < margin)))
        update_g = tf.logical_and(self.update_g,
                                  tf.logical_not((err_fake > 1.0 - margin) | (err_real > 1.0 - margin)))
        neither = tf.logical_not(update_d | update_g)
        report = {k: terms[k] for k in ("L", "L_img", "L_feat", "feat_loss1", "feat_loss2", "g_loss", "d_loss",
                                         "d_loss_real", "d_loss_fake")}
        # flags used by THIS step (1 = the network was updated)
        report.update(update_g=tf.cast(self.update_g, tf.float32), update_d=tf.cast(self.update_d, tf.float32),
                      loss=g_objective, errD_fake=err_fake, errD_real=err_real, errG=err_g)
        self.update_d.assign(update_d | neither)
        self.update_g.assign(update_g | neither)
        self.global_step.assign_add(1)
        return report

    def test_step(self, batch):
        outputs = self(batch, training=False)
        losses = self.generator_losses(batch, outputs)
        return self.report(dict(losses, loss=losses["L_img"]))
