"""Mixed precision for every model family: the ``mixed_precision`` hparam (issue 18).

``mixed_precision`` is ``"float32"`` (default), ``"bfloat16"`` (Keras ``mixed_bfloat16``: fast on CPUs with
AVX512_BF16 / AMX and on TPUs) or ``"float16"`` (Keras ``mixed_float16`` with a dynamic loss-scale optimizer,
for GPUs).  Under a mixed policy every layer keeps its variables in float32 (so checkpoints are the same as in
float32 and can be resumed in either precision) and computes in the low precision.

How a model applies it (:class:`~video_prediction.models.base.BaseVideoPredictionModel` does this for every
family):

* layers are created under :func:`policy_scope` -- the global Keras dtype policy is set for the duration of
  the model's ``__init__`` / ``build`` / ``call`` / train and test steps and restored afterwards, so that
  several models of different precisions can live in one process (the test suite) and nothing outside the
  model sees the policy.  The model object itself stays float32: its inputs (the batch) are not cast, and
  each layer casts what it receives;
* outputs are cast back to float32 (:func:`to_float32`) where the losses are computed: distributions, KL,
  reconstruction and adversarial losses, metrics and the public ``gen_images`` stay float32 (DESIGN.md's
  contract: videos are float32);
* the families keep their numerically sensitive parts in float32 themselves (Gaussian sampling from
  log-sigmas, normalisation statistics, softmaxes, VQ distances, spectral-norm power iterations); each such
  place says why in a comment;
* :func:`wrap_optimizer` wraps every optimizer in ``keras.optimizers.LossScaleOptimizer`` for float16 (whose
  5-bit exponent underflows small gradients; bfloat16 has float32's exponent range and needs no scaling).
  Train steps scale each loss with ``optimizer.scale_loss`` before differentiating (a no-op otherwise); the
  wrapper unscales the gradients and skips a step whose gradients are not finite.
"""

import contextlib
import functools

import keras
import tensorflow as tf
from keras.src.backend.common import global_state

#: Values of the ``mixed_precision`` hparam.
PRECISIONS = ("float32", "bfloat16", "float16")
#: The Keras dtype policy of each value.
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def check_precision(value):
    """``value`` if it is one of :data:`PRECISIONS`, else a one-line ``ValueError`` naming the valid ones."""
    if value not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {', '.join(PRECISIONS)}; got {value!r}")
    return value


def precision_from_hparams(hparams):
    """The model's precision: ``hparams.mixed_precision``, or ``"float16"`` for the deprecated boolean
    ``mixed_float16=True`` (vqvae's hparam before issue 18; still in RoboNet hparams files as ``false``)."""
    value = check_precision(getattr(hparams, "mixed_precision", "float32"))
    if getattr(hparams, "mixed_float16", False):
        if value not in ("float32", "float16"):
            raise ValueError(f"mixed_float16=True (deprecated: use mixed_precision=float16) contradicts "
                             f"mixed_precision={value}")
        value = "float16"
    return value


def compute_dtype(precision):
    """The dtype layers compute in: ``"float32"``, ``"bfloat16"`` or ``"float16"``."""
    return check_precision(precision)


@contextlib.contextmanager
def policy_scope(precision):
    """Set the global Keras dtype policy to ``precision``'s for the block, then restore the previous one."""
    previous = global_state.get_global_attribute("dtype_policy", None)
    keras.config.set_dtype_policy(POLICIES[check_precision(precision)])
    try:
        yield
    finally:
        global_state.set_global_attribute("dtype_policy", previous)


def in_model_precision(method):
    """Decorator: run a model method under its :func:`policy_scope` (``self.precision``), so that the layers
    it creates get the model's dtype policy.  Before the hparams are resolved (early in ``__init__``) the
    current policy is left alone."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        precision = self.__dict__.get("_precision")
        if precision is None:
            return method(self, *args, **kwargs)
        with policy_scope(precision):
            return method(self, *args, **kwargs)

    return wrapper


def to_float32(structure):
    """Cast every floating tensor of a nested structure to float32 (integers and others unchanged)."""

    def cast(value):
        if isinstance(value, (tf.Tensor, tf.Variable)) and value.dtype in (tf.bfloat16, tf.float16):
            return tf.cast(value, tf.float32)
        return value

    return tf.nest.map_structure(cast, structure)


def wrap_optimizer(optimizer, precision):
    """``optimizer`` in a dynamic ``LossScaleOptimizer`` for float16; unchanged for float32 / bfloat16."""
    if check_precision(precision) == "float16" and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def inner_optimizer(optimizer):
    """The optimizer a ``LossScaleOptimizer`` wraps (``optimizer`` itself otherwise)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def gradient_scale(optimizer):
    """The factor by which ``optimizer.scale_loss`` multiplied the loss (the current dynamic loss scale of a
    ``LossScaleOptimizer``, else 1): a train step that clips gradients before ``apply`` clips to
    ``clip_norm * gradient_scale`` so that the unscaled gradient is clipped to ``clip_norm``."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        if not optimizer.built:
            raise ValueError("build the LossScaleOptimizer (model.build_optimizers()) before the train step")
        return tf.cast(tf.convert_to_tensor(optimizer.dynamic_scale), tf.float32)
    return tf.constant(1.0)
