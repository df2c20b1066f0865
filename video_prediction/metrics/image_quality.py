"""Per-frame image-quality metrics: MSE, PSNR and SSIM (specs/savp.md §4.3).

Every metric takes ``targets`` and ``predictions`` as float videos
``[B, T, H, W, C]`` in [0, 1] and returns a float32 tensor ``[B, T]``: one
value per frame.  Time is folded into the batch, so there is no Python loop
over frames and the metrics can run inside ``tf.function``.

Input checks (``ValueError`` naming the problem): rank other than 5,
mismatched shapes, integer dtypes, and values outside [0, 1] by more than
``range_tolerance``.  The value check needs concrete values, so it raises
``ValueError`` in eager mode; inside a ``tf.function`` it becomes a
``tf.debugging`` assertion (``InvalidArgumentError`` at run time).
"""

import numpy as np
import tensorflow as tf

# Values may leave [0, 1] by this much (float round-off in resizing or model outputs).
DEFAULT_RANGE_TOLERANCE = 1e-4


class PerFrameMetric:
    """Base class: validation plus ``__call__(targets, predictions) -> [B, T]``."""

    name = None
    higher_is_better = None

    def __init__(self, range_tolerance=DEFAULT_RANGE_TOLERANCE):
        self.range_tolerance = float(range_tolerance)

    def __call__(self, targets, predictions):
        targets, predictions = self._validate(targets, predictions)
        return self.per_frame(targets, predictions)

    def per_frame(self, targets, predictions):
        """The metric on already validated float32 ``[B, T, H, W, C]`` tensors."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"

    def _validate(self, targets, predictions):
        converted = []
        for label, video in (("targets", targets), ("predictions", predictions)):
            video = tf.convert_to_tensor(video)
            if not video.dtype.is_floating:
                raise ValueError(f"{self.name}: {label} must be float videos in [0, 1], got dtype {video.dtype.name} "
                                 "(divide uint8 frames by 255)")
            if video.shape.rank is not None and video.shape.rank != 5:
                raise ValueError(f"{self.name}: {label} must have rank 5 [B, T, H, W, C], got shape {video.shape}")
            converted.append(tf.cast(video, tf.float32))
        targets, predictions = converted
        if not targets.shape.is_compatible_with(predictions.shape):
            raise ValueError(f"{self.name}: targets and predictions shapes differ: {targets.shape} vs {predictions.shape}")
        if self.range_tolerance is not None and self.range_tolerance >= 0:
            low, high = -self.range_tolerance, 1.0 + self.range_tolerance
            if tf.executing_eagerly():
                for label, video in (("targets", targets), ("predictions", predictions)):
                    if tf.size(video) == 0:
                        continue
                    vmin, vmax = float(tf.reduce_min(video)), float(tf.reduce_max(video))
                    if not (low <= vmin and vmax <= high):  # also catches NaN
                        raise ValueError(f"{self.name}: {label} values must be in [0, 1] (tolerance "
                                         f"{self.range_tolerance:g}), got range [{vmin:g}, {vmax:g}]")
            else:
                checks = []
                for label, video in (("targets", targets), ("predictions", predictions)):
                    checks.append(tf.debugging.assert_greater_equal(
                        video, low, message=f"{self.name}: {label} values below 0"))
                    checks.append(tf.debugging.assert_less_equal(
                        video, high, message=f"{self.name}: {label} values above 1"))
                with tf.control_dependencies(checks):
                    targets = tf.identity(targets)
        return targets, predictions


class MSE(PerFrameMetric):
    """Mean squared error over H, W, C per frame (lower is better)."""

    name = "mse"
    higher_is_better = False

    def per_frame(self, targets, predictions):
        return tf.reduce_mean(tf.square(targets - predictions), axis=[-3, -2, -1])


class PSNR(PerFrameMetric):
    """Peak signal-to-noise ratio ``10 * log10(1 / MSE)`` per frame, peak value 1.0 (higher is better).

    ``tf.image.psnr`` returns ``inf`` for identical frames, which makes every
    average containing such a frame infinite.  We clamp the MSE at
    ``mse_floor`` (default 1e-10), so identical frames score a finite
    ``-10 * log10(mse_floor)`` = 100 dB; otherwise the value equals
    ``tf.image.psnr(max_val=1.0)``.  Pass ``mse_floor=0`` to get ``inf``.
    """

    name = "psnr"
    higher_is_better = True

    def __init__(self, mse_floor=1e-10, range_tolerance=DEFAULT_RANGE_TOLERANCE):
        super().__init__(range_tolerance=range_tolerance)
        if mse_floor < 0:
            raise ValueError(f"psnr: mse_floor must be >= 0, got {mse_floor}")
        self.mse_floor = float(mse_floor)

    @property
    def max_db(self):
        """The value given to identical frames."""
        return float("inf") if self.mse_floor == 0 else -10.0 * np.log10(self.mse_floor)

    def per_frame(self, targets, predictions):
        mse = tf.reduce_mean(tf.square(targets - predictions), axis=[-3, -2, -1])
        mse = tf.maximum(mse, self.mse_floor)
        return -10.0 * tf.math.log(mse) / tf.math.log(10.0)


class SSIM(PerFrameMetric):
    """Structural similarity per frame with ``tf.image.ssim`` semantics (higher is better).

    Defaults equal ``tf.image.ssim(max_val=1.0)``: 11x11 Gaussian window with
    sigma 1.5, k1 0.01, k2 0.03, population covariances, SSIM map on the
    VALID positions only (no padding), mean over positions and channels.

    Variants (for the paper-era and other families' definitions):
      * ``window='uniform'`` — a box window of ``filter_size`` (e.g. 7 with
        ``use_sample_covariance=True`` is scikit-image's default SSIM);
      * ``padding='reflect'`` — symmetric padding so the map covers every
        pixel (scikit-image's full map before its border crop);
      * ``use_sample_covariance`` — scale covariances by N / (N - 1), N the
        window size in pixels (scikit-image's default).

    Frames smaller than the window raise ``ValueError``.  The Gaussian is
    separable, so it is applied as two 1-D depthwise convolutions.
    """

    name = "ssim"
    higher_is_better = True

    def __init__(self, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03, max_val=1.0, window="gaussian",
                 padding="valid", use_sample_covariance=False, range_tolerance=DEFAULT_RANGE_TOLERANCE):
        super().__init__(range_tolerance=range_tolerance)
        if window not in ("gaussian", "uniform"):
            raise ValueError(f"ssim: window must be 'gaussian' or 'uniform', got {window!r}")
        if padding not in ("valid", "reflect"):
            raise ValueError(f"ssim: padding must be 'valid' or 'reflect', got {padding!r}")
        if int(filter_size) < 1:
            raise ValueError(f"ssim: filter_size must be >= 1, got {filter_size}")
        self.filter_size = int(filter_size)
        self.filter_sigma = float(filter_sigma)
        self.k1, self.k2, self.max_val = float(k1), float(k2), float(max_val)
        self.window, self.padding = window, padding
        self.use_sample_covariance = bool(use_sample_covariance)

    def __repr__(self):
        return (f"SSIM(filter_size={self.filter_size}, filter_sigma={self.filter_sigma}, window={self.window!r}, "
                f"padding={self.padding!r}, use_sample_covariance={self.use_sample_covariance})")

    def window_1d(self):
        """The normalised 1-D window (its outer product is the 2-D window)."""
        if self.window == "uniform":
            weights = np.ones(self.filter_size)
        else:
            # Same kernel as tf.image.ssim's _fspecial_gauss, which is separable.
            coords = np.arange(self.filter_size, dtype=np.float64) - (self.filter_size - 1) / 2.0
            weights = np.exp(-0.5 * coords**2 / self.filter_sigma**2)
        return (weights / weights.sum()).astype(np.float32)

    def per_frame(self, targets, predictions):
        height, width, channels = targets.shape[-3], targets.shape[-2], targets.shape[-1]
        if channels is None:
            raise ValueError("ssim: the channel dimension must be known statically")
        for label, size in (("height", height), ("width", width)):
            if size is not None and size < self.filter_size:
                raise ValueError(f"ssim: frame {label} {size} is smaller than the {self.filter_size}x{self.filter_size} "
                                 "window; use larger frames or a smaller filter_size")
        video_shape = tf.shape(targets)
        frames_x = tf.reshape(targets, tf.concat([[-1], video_shape[-3:]], axis=0))
        frames_y = tf.reshape(predictions, tf.concat([[-1], video_shape[-3:]], axis=0))

        # One filtering pass over the five local statistics stacked on the channel axis.
        stacked = tf.concat([frames_x, frames_y, frames_x * frames_x, frames_y * frames_y, frames_x * frames_y], axis=-1)
        if self.padding == "reflect":
            radius_before = (self.filter_size - 1) // 2
            radius_after = self.filter_size - 1 - radius_before
            # scipy.ndimage's mode 'reflect' (used by scikit-image) is TF's SYMMETRIC.
            stacked = tf.pad(stacked, [[0, 0], [radius_before, radius_after], [radius_before, radius_after], [0, 0]],
                             mode="SYMMETRIC")
        weights = tf.constant(self.window_1d())
        num_channels = 5 * channels
        kernel_rows = tf.tile(tf.reshape(weights, [-1, 1, 1, 1]), [1, 1, num_channels, 1])
        kernel_cols = tf.tile(tf.reshape(weights, [1, -1, 1, 1]), [1, 1, num_channels, 1])
        filtered = tf.nn.depthwise_conv2d(stacked, kernel_rows, strides=[1, 1, 1, 1], padding="VALID")
        filtered = tf.nn.depthwise_conv2d(filtered, kernel_cols, strides=[1, 1, 1, 1], padding="VALID")
        mu_x, mu_y, mean_xx, mean_yy, mean_xy = tf.split(filtered, 5, axis=-1)

        c1 = (self.k1 * self.max_val) ** 2
        c2 = (self.k2 * self.max_val) ** 2
        covariance_scale = 1.0
        if self.use_sample_covariance:
            num_pixels = self.filter_size**2
            covariance_scale = num_pixels / (num_pixels - 1.0)
        var_x = (mean_xx - mu_x * mu_x) * covariance_scale
        var_y = (mean_yy - mu_y * mu_y) * covariance_scale
        cov_xy = (mean_xy - mu_x * mu_y) * covariance_scale
        luminance = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
        contrast_structure = (2.0 * cov_xy + c2) / (var_x + var_y + c2)
        ssim_per_frame = tf.reduce_mean(luminance * contrast_structure, axis=[-3, -2, -1])
        return tf.reshape(ssim_per_frame, video_shape[:2])
