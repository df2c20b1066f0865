"""The model contract shared by every family (DESIGN.md, "Model API").

* ``call(batch, training)`` returns a dict with ``gen_images`` ``[B, T-1, H, W, C]``:
  frame t+1 predicted from frames <= t, ground truth fed during the context.
* ``train_step`` / ``test_step`` return named losses (``keras.metrics.Mean`` trackers).
* ``generate(batch, num_samples, horizon)`` rolls out stochastic samples past the
  training length and returns ``[B, num_samples, horizon, H, W, C]`` future frames.

:class:`BaseVideoPredictionModel` holds what every model needs (hparams, the
global step, ``generate``); :class:`VideoPredictionModel` adds the trainable
machinery (Adam with the original's lr schedule, L1/L2 reconstruction losses,
one optimizer; GAN families override ``make_optimizers`` and ``train_step``).
"""

import functools

import keras
import tensorflow as tf
from keras.src.backend.common import global_state

from video_prediction import losses as vp_losses
from video_prediction.hparams import ClipLengthsMixin, resolve_hparams
from video_prediction.models import precision as vp_precision
from video_prediction.training.schedules import SAVPLearningRate, kl_weight_schedule


def num_replicas():
    """Number of replicas of the current distribution strategy (1 outside any)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def _init_in_model_precision(init):
    """A subclass's ``__init__`` that restores the global dtype policy once the outermost one returns (the
    base ``__init__`` sets it to the model's as soon as the hparams are known)."""

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        if self.__dict__.get("_vp_in_init"):
            return init(self, *args, **kwargs)
        object.__setattr__(self, "_vp_in_init", True)
        previous = global_state.get_global_attribute("dtype_policy", None)
        try:
            return init(self, *args, **kwargs)
        finally:
            global_state.set_global_attribute("dtype_policy", previous)
            object.__setattr__(self, "_vp_in_init", False)

    # Keras' Operation.__new__ reads the argspec of __init__ without following __wrapped__ and its signature
    # with it; both must see the wrapper's (*args, **kwargs).
    del wrapper.__wrapped__
    return wrapper


def _call_in_model_precision(call):
    """A subclass's ``call`` under the model's dtype policy, its floating outputs cast to float32 (the
    losses, metrics and the public ``gen_images`` are float32 whatever the compute dtype)."""
    call = vp_precision.in_model_precision(call)

    @functools.wraps(call)
    def wrapper(self, *args, **kwargs):
        outputs = call(self, *args, **kwargs)
        return outputs if self.precision == "float32" else vp_precision.to_float32(outputs)

    return wrapper


class BaseVideoPredictionModel(ClipLengthsMixin, keras.Model):
    """Hparams, global step and ``generate`` for every video prediction model."""

    #: Keys of old JSON files that are dropped silently instead of raising.
    deprecated_hparams = ()
    #: Whether the model has weights to train (``ground_truth`` / ``repeat`` do not).
    trainable_model = False
    #: Whether repeated ``generate`` calls give different samples.
    stochastic = False
    #: ``"module:Class"`` of the family's generate/evaluate extras (``video_prediction.inference.extras``), if any.
    inference_extras = None

    def __init_subclass__(cls, **kwargs):
        """Mixed precision (``precision.py``): every subclass's ``__init__`` runs under the model's dtype
        policy (restored when the outermost one returns), its ``build``/``call``/train and test steps too
        (layers created lazily get it), and ``call``'s outputs are cast back to float32."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if "__init__" in own:
            cls.__init__ = _init_in_model_precision(own["__init__"])
        for name in ("build", "train_step", "test_step", "build_from_batch"):
            if name in own:
                setattr(cls, name, vp_precision.in_model_precision(own[name]))
        if "call" in own:
            cls.call = _call_in_model_precision(own["call"])

    @_init_in_model_precision
    def __init__(self, hparams_dict=None, hparams=None, name=None, **kwargs):
        # The model object itself stays float32 (its inputs, the batch, are not cast); its layers get the
        # ``mixed_precision`` policy (precision.py).
        kwargs.setdefault("dtype", "float32")
        super().__init__(name=name or type(self).__name__, **kwargs)
        self.hparams = resolve_hparams(
            self.default_hparams(), hparams_dict, hparams, deprecated=self.deprecated_hparams
        )
        # Every layer created from here on (in this and the subclasses' __init__, build and call) computes
        # in this precision; variables stay float32.
        object.__setattr__(self, "_precision", vp_precision.precision_from_hparams(self.hparams))
        keras.config.set_dtype_policy(vp_precision.POLICIES[self._precision])
        if self.hparams.context_frames < 1 or self.hparams.sequence_length <= self.hparams.context_frames:
            raise ValueError(
                "context_frames and sequence_length must be set (from the dataset) with "
                f"1 <= context_frames < sequence_length; got context_frames={self.hparams.context_frames}, "
                f"sequence_length={self.hparams.sequence_length}"
            )
        # Schedules (lr, KL weight, schedule sampling) are keyed on this step.  One
        # replica's increment is kept so that every replica sees the same value.
        self.global_step = keras.Variable(
            0, dtype="int64", trainable=False, name="global_step", aggregation="only_first_replica"
        )

    @classmethod
    def default_hparams(cls):
        return dict(
            context_frames=-1,  # set from the dataset by the scripts
            sequence_length=-1,  # set from the dataset by the scripts
            repeat=1,  # the dataset's time_shift, as the original recorded it
            batch_size=16,
            # Added (issue 18): float32 | bfloat16 | float16 compute dtype of the layers (precision.py).
            mixed_precision="float32",
        )

    @classmethod
    def hparams_from_dataset(cls, hparams, dataset):
        """Hparams that depend on the training data, given the merged ``hparams`` dict (default: none).

        ``build_model`` calls this after taking context/sequence length from the dataset, so that a
        model can size e.g. an epoch from ``dataset.num_examples_per_epoch()``.
        """
        return {}

    def prepare_from_dataset(self, dataset):
        """Derive what the model needs from ``dataset``'s training data (default: nothing).

        ``training.build_model`` calls this with the dataset the model will run on; the ``blank``
        baseline computes its mean training frame here.
        """

    @property
    def precision(self):
        """The ``mixed_precision`` the layers compute in: ``"float32"``, ``"bfloat16"`` or ``"float16"``."""
        return self.__dict__.get("_precision", "float32")

    def wrap_optimizer(self, optimizer):
        """``optimizer`` in a dynamic ``LossScaleOptimizer`` when the model computes in float16."""
        return vp_precision.wrap_optimizer(optimizer, self.precision)

    @vp_precision.in_model_precision
    def build_from_batch(self, batch):
        """Create every weight by running one forward pass on ``batch`` (used before restoring)."""
        self.mark_built_by_forward_pass()
        self(batch, training=False)

    def mark_built_by_forward_pass(self):
        """Tell Keras not to build this model itself on its first call: the sub-layers create their weights
        as the forward pass reaches them.  (Keras' default would first trace ``call`` symbolically, then warn
        that "``build()`` was called ... it looks like it has unbuilt state" for a model whose discriminator
        the forward pass does not reach.)  A model with its own ``build`` is built by that instead."""
        if type(self).build is keras.Model.build:
            self.built = True

    def generate(self, batch, num_samples=1, horizon=None):
        """Predict ``horizon`` frames after the context, ``num_samples`` times per video.

        ``batch`` needs at least ``context_frames`` images (ground truth after the
        context is not looked at, except by ``ground_truth``).  Samples are drawn in
        one pass by tiling the batch.  Returns ``[B, num_samples, horizon, H, W, C]``.
        """
        context = self.context_frames
        horizon = self.sequence_length - context if horizon is None else int(horizon)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        images = tf.convert_to_tensor(batch["images"])
        if images.shape[1] is not None and images.shape[1] < context:
            raise ValueError(f"generate needs at least {context} context frames, got {images.shape[1]}")
        inputs = self.rollout_inputs(batch, horizon)
        tiled = {k: _repeat_batch(v, num_samples) for k, v in inputs.items()}
        if self.symbolic_time_loop and self.built:
            # Trace once for any batch and rollout length (the time loop is a tf.while_loop): later calls
            # with other lengths reuse this trace instead of retracing (issue 18).  Only once the weights
            # exist: a first call that creates them needs the concrete shapes (a dense layer's input size).
            function = self._generate_function()
            function.get_concrete_function(
                {k: tf.TensorSpec([None, None, *v.shape[2:]], v.dtype) for k, v in tiled.items()})
            gen = function(tiled)
        else:
            gen = self._generate_fn(tiled)
        gen = gen[:, context - 1 : context - 1 + horizon]
        shape = tf.shape(gen)
        return tf.reshape(gen, tf.concat([[-1, num_samples], shape[1:]], axis=0))

    @tf.function(reduce_retracing=True)
    def _generate_fn(self, inputs):
        return self(inputs, training=False)["gen_images"]

    @property
    def symbolic_time_loop(self):
        """Whether the model's time loop is a ``tf.while_loop`` over a tensor length (the ``time_loop``
        hparam of the recurrent families is ``"while"``): one traced ``generate`` serves every horizon."""
        return "time_loop" in self.hparams and self.hparams.time_loop == "while"

    def _generate_function(self):
        """The ``tf.function`` that ``generate`` calls (with :attr:`symbolic_time_loop`)."""
        return self._generate_fn

    def time_loop_for(self, training):
        """The ``time_loop`` a forward pass uses: the hparam, except in an XLA-compiled train step
        (``--jit_compile``), which unrolls in Python: XLA cannot compile the gradient of the while loop when
        the batch size is not static (a ``Tile``'s gradient needs a compile-time shape; found with
        ``ours_savp``)."""
        if training and getattr(self, "jit_compile", False) is True:
            return "python"
        return self.hparams.time_loop

    def recomputed_if_asked(self, step_fn, variables, training):
        """``step_fn(t, inputs, state)`` wrapped by :func:`recompute_step` (``variables``: those the step reads)
        in training when the ``recompute_steps`` hparam is true (issue 18); else, in training with a
        ``tf.while_loop``, by :func:`with_weights_read_once`; otherwise unchanged (evaluation and generation
        take no gradient, and a Python unroll keeps no per-step copies)."""
        if training and "recompute_steps" in self.hparams and self.hparams.recompute_steps:
            return recompute_step(step_fn, variables)
        if training and self.time_loop_for(training) == "while":
            return with_weights_read_once(step_fn, variables)
        return step_fn

    def rollout_inputs(self, batch, horizon):
        """The batch for a rollout of ``context + horizon`` frames.

        Frames after the context are zeroed so that no model can peek at them;
        per-step inputs the model is conditioned on (``actions``, ``states``) must
        cover the whole rollout.
        """
        length = self.context_frames + horizon
        images = tf.convert_to_tensor(batch["images"])
        context = images[:, : self.context_frames]
        pad = tf.zeros_like(images[:, :1])
        future = tf.repeat(pad, horizon, axis=1)
        inputs = {"images": tf.concat([context, future], axis=1)}
        for key in ("actions", "states"):
            if key in batch:
                value = tf.convert_to_tensor(batch[key])
                needed = length - 1 if key == "actions" else length
                if value.shape[1] is not None and value.shape[1] < needed:
                    raise ValueError(
                        f"a rollout of {length} frames needs {needed} {key}, the batch has {value.shape[1]}"
                    )
                inputs[key] = value[:, :needed]
        return inputs


def _repeat_batch(value, times):
    """[B, ...] -> [B*times, ...], each example repeated ``times`` times consecutively."""
    return tf.repeat(value, times, axis=0) if times > 1 else value


class LatentModeMixin:
    """``latent_mode``: ``"sample"`` (default) or ``"mean"`` (``--latent_mode``): at inference the latents are
    the posterior's / prior's means (zeros for a fixed N(0, I) prior) instead of samples; training always
    samples.  A family using ``generate``'s default path defines ``_generate_mean_fn`` and
    ``_generate_sample_fn`` (each a ``tf.function``)."""

    @property
    def latent_mode(self):
        return getattr(self, "_latent_mode", "sample")

    @latent_mode.setter
    def latent_mode(self, value):
        if value not in ("sample", "mean"):
            raise ValueError(f"latent_mode must be 'sample' or 'mean', got {value!r}")
        self._latent_mode = value

    def _generate_fn(self, inputs):
        # One traced function per latent mode (the family's ``_generate_mean_fn`` / ``_generate_sample_fn``),
        # so that switching modes never reuses the other's trace.
        return self._generate_function()(inputs)

    def _generate_function(self):
        return self._generate_mean_fn if self.latent_mode == "mean" else self._generate_sample_fn


class VideoPredictionModel(BaseVideoPredictionModel):
    """A trainable model: Adam with the original's schedule and reconstruction losses.

    Subclasses implement ``call`` and may extend ``generator_losses``.  Models
    with more than one network (GANs) override ``make_optimizers`` and
    ``train_step`` and keep one optimizer per network.
    """

    trainable_model = True

    def __init__(self, hparams_dict=None, hparams=None, name=None, **kwargs):
        super().__init__(hparams_dict=hparams_dict, hparams=hparams, name=name, **kwargs)
        self.loss_trackers = {
            loss_name: keras.metrics.Mean(name=loss_name) for loss_name in self.loss_names()
        }

    @classmethod
    def default_hparams(cls):
        # specs/savp.md §3.2: the generic training hparams of the original.
        hparams = super().default_hparams()
        hparams.update(
            batch_size=16,
            lr=0.001,
            end_lr=0.0,
            decay_steps=(200000, 300000),
            lr_boundaries=(0,),
            max_steps=300000,
            beta1=0.9,
            beta2=0.999,
            clip_length=10,
            l1_weight=0.0,
            l2_weight=1.0,
        )
        return hparams

    # -- losses -------------------------------------------------------------------------------

    def loss_names(self):
        """Names of the scalars ``train_step`` reports (created as trackers up front)."""
        names = ["loss"]
        if self.hparams.l1_weight:
            names.append("gen_l1_loss")
        if self.hparams.l2_weight:
            names.append("gen_l2_loss")
        return names

    def generator_losses(self, batch, outputs):
        """Weighted loss terms ``{name: scalar}``, each the mean over this replica's batch.

        Reconstruction covers all T-1 predicted frames, the context ones included,
        as in the original.
        """
        targets = batch["images"][:, 1:]
        gen_images = outputs["gen_images"]
        losses = {}
        if self.hparams.l1_weight:
            losses["gen_l1_loss"] = self.hparams.l1_weight * tf.reduce_mean(tf.abs(gen_images - targets))
        if self.hparams.l2_weight:
            losses["gen_l2_loss"] = self.hparams.l2_weight * tf.reduce_mean(tf.square(gen_images - targets))
        return losses

    # -- optimisation -------------------------------------------------------------------------

    def learning_rate_schedule(self):
        return SAVPLearningRate(
            self.hparams.lr, self.hparams.end_lr, self.hparams.decay_steps, self.hparams.lr_boundaries
        )

    def make_optimizer(self):
        """Adam as the original configured it (beta1, beta2, lr schedule)."""
        return keras.optimizers.Adam(
            learning_rate=self.learning_rate_schedule(),
            beta_1=self.hparams.beta1,
            beta_2=self.hparams.beta2,
            epsilon=1e-8,  # the TF1 AdamOptimizer default
        )

    def make_optimizers(self, jit_compile=False):
        """Compile with the model's optimizer(s); call inside ``strategy.scope()``."""
        self.compile(optimizer=self.wrap_optimizer(self.make_optimizer()), jit_compile=jit_compile)

    def optimizers_by_name(self):
        """Every optimizer, by name, for checkpointing."""
        return {"optimizer": self.optimizer}

    def variables_by_optimizer(self):
        """The variables each optimizer of ``optimizers_by_name`` updates."""
        return {"optimizer": self.trainable_variables}

    def build_optimizers(self):
        """Create every optimizer slot now (after the model is built) so a checkpoint restores into them."""
        optimizers = self.optimizers_by_name()
        for name, variables in self.variables_by_optimizer().items():
            optimizers[name].build(variables)

    @property
    def metrics(self):
        return list(self.loss_trackers.values())

    def report(self, values):
        """Update the trackers with ``values`` and return every tracker's result.

        The raw values are also kept for :meth:`step_values`: the training loop
        checks them for NaN/Inf (the trackers' running means would hide which step it was).
        """
        object.__setattr__(self, "_step_values", dict(values))  # plain attribute: not tracked by Keras
        for key, value in values.items():
            self.loss_trackers[key].update_state(value)
        return {name: tracker.result() for name, tracker in self.loss_trackers.items()}

    def step_values(self):
        """The loss values of the last :meth:`report` call (tensors of the current trace)."""
        return getattr(self, "_step_values", {})

    def current_learning_rate(self):
        return self.learning_rate_schedule()(self.global_step)

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            outputs = self(batch, training=True)
            losses = self.generator_losses(batch, outputs)
            loss = tf.add_n(list(losses.values()))
            # Per-replica mean reduced by hand: scale to the global-batch mean (DESIGN.md).
            scaled_loss = self.optimizer.scale_loss(loss / num_replicas())  # float16: the dynamic loss scale
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply(gradients, variables)
        self.global_step.assign_add(1)
        return self.report(dict(losses, loss=loss))

    def test_step(self, batch):
        outputs = self(batch, training=False)
        losses = self.generator_losses(batch, outputs)
        loss = tf.add_n(list(losses.values()))
        return self.report(dict(losses, loss=loss))


def swap_batch_time(x):
    """Swap the first two axes ([B, T, ...] <-> [T, B, ...])."""
    x = tf.convert_to_tensor(x)
    return tf.transpose(x, [1, 0] + list(range(2, len(x.shape))))


#: Values of the ``time_loop`` hparam of the recurrent families (issue 18, "Symbolic time loops"):
#: ``"while"`` runs the time loop as one ``tf.while_loop`` (one copy of the step in the graph, the rollout
#: length a tensor: any T traces the same graph, so a 1,000-frame rollout neither retraces nor builds a
#: larger graph); ``"python"`` unrolls it at trace time (one copy of the step per frame; needs a static T,
#: and falls back to the while loop when T is not known at trace time).
TIME_LOOPS = ("while", "python")


def check_time_loop(value):
    """ValueError naming the valid values when ``value`` is not a :data:`TIME_LOOPS` entry."""
    if value not in TIME_LOOPS:
        raise ValueError(f"time_loop must be one of {', '.join(TIME_LOOPS)}; got {value!r}")
    return value


def unroll_remaining_steps(step_fn, first_outputs, state, num_steps, static_steps=None, time_loop="while"):
    """Finish an unroll whose step 0 the caller has run; returns every step's outputs stacked time-major.

    ``step_fn(t, state) -> (outputs, new_state)`` runs steps ``1 .. num_steps - 1``.
    Callers run step 0 themselves (inside their layer's name scope) so that
    every sub-layer creates its weights there.  ``time_loop`` (:data:`TIME_LOOPS`):
    ``"python"`` with ``static_steps`` (a Python int, the static value of
    ``num_steps``) unrolls the steps in Python (one graph copy per step); otherwise a
    ``tf.while_loop`` runs any ``num_steps`` (a tensor).  Both run the same step
    function in the same order, so they give the same outputs and gradients.
    """
    check_time_loop(time_loop)
    if time_loop == "python" and static_steps is not None:
        per_step = [first_outputs]
        for t in range(1, static_steps):
            outputs, state = step_fn(tf.constant(t), state)
            per_step.append(outputs)
        return {key: tf.stack([o[key] for o in per_step]) for key in first_outputs}
    arrays = {
        key: tf.TensorArray(value.dtype, size=num_steps, element_shape=value.shape).write(0, value)
        for key, value in first_outputs.items()
    }

    def body(t, state, arrays):
        outputs, state = step_fn(t, state)
        return t + 1, state, {key: arrays[key].write(t, outputs[key]) for key in arrays}

    # maximum_iterations bounds the loop for XLA (jit_compile), which needs it to differentiate the loop.
    _, _, arrays = tf.while_loop(lambda t, *_: t < num_steps, body, (tf.constant(1), state, arrays),
                                 maximum_iterations=num_steps)
    stacked = {key: array.stack() for key, array in arrays.items()}
    if static_steps is not None:  # keep the static length the Python unroll would give (shape checks use it)
        for value in stacked.values():
            value.set_shape([static_steps] + value.shape[1:].as_list())
    return stacked


def check_recompute_steps(value):
    """ValueError unless ``recompute_steps`` is a bool (the hparams parser already rejects other values)."""
    if not isinstance(value, bool):
        raise ValueError(f"recompute_steps must be true or false; got {value!r}")
    return value


def _read_once(variables):
    """The floating variables among ``variables`` and their raw (not autocast) values, read here."""
    variables = [v for v in variables if tf.as_dtype(v.dtype).is_floating]
    values = [tf.convert_to_tensor(v._value if isinstance(getattr(v, "_value", None), tf.Variable) else v.value)
              for v in variables]
    return variables, values


def with_weights_read_once(step_fn, variables):
    """``step_fn`` reading ``variables`` through values read once, when this is called (before the loop).

    A ``tf.while_loop``'s gradient keeps, per iteration, every tensor of the body that the backward pass
    needs, and a weight read inside the body is one: issue 18 found ``ours_vae_l1`` storing each step's
    copy of its generator cell's kernels (87 MiB per step at B=4, 30 of them weights; 12.9 MiB for
    ``lstm_h2`` alone).  A value read before the loop is a loop invariant, kept once; the gradients still
    reach the variables through those reads.  Same conditions as :func:`recompute_step`: the step updates
    no variable (inside the stateless scope an assignment would be dropped).
    """
    variables, values = _read_once(variables)

    def step(*args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return step_fn(*args)

    return step


def recompute_step(step_fn, variables):
    """``step_fn(t, inputs, state) -> (outputs, new_state)`` whose activations are recomputed in the backward
    pass (``tf.recompute_grad``; the ``recompute_steps`` hparam, issue 18 "Memory at the published batch sizes").

    Without it a gradient keeps every intermediate tensor of every step of the time loop until the backward
    pass; with it only each step's inputs and state are kept, and the step runs again (under a local tape)
    when its gradient is needed: peak memory falls from O(T x activations of a step) to O(T x state + one
    step's activations), for one more forward pass of the loop.  Works in both loop forms
    (:func:`unroll_remaining_steps`: the recomputation of a ``tf.while_loop`` step runs in the loop's gradient).

    ``variables``: the Keras variables the step reads (e.g. ``cell.variables``).  Their values are read once,
    when this is called (call it before the loop), and passed into the recomputed function (a
    ``keras.StatelessScope`` maps each variable to its value there): a recomputation inside a
    ``tf.while_loop``'s gradient may not read a variable itself (TF's while-loop gradient cannot capture the
    handle: "... is in list of internal_captures but not in internal_capture_to_output"), and the variables'
    gradients flow back through those reads.

    What the caller must ensure:

    * every tensor a gradient must flow into is in ``inputs`` or ``state`` (nested structures; their floating
      leaves become the arguments of the recomputed function).  Tensors ``step_fn`` reads from its closure
      are constants for the gradient (fine for data such as the ground-truth frames, wrong for latents);
      integer/bool leaves (counters, the schedule-sampling mask) are passed through unchanged;
    * the variables already exist (the caller runs step 0 plainly first);
    * the step draws no random numbers of its own, or draws them statelessly from a seed in ``inputs`` (the
      recomputation must see the same draws, or the gradient is that of another sample);
    * the step updates no variable (e.g. BatchNorm moving averages): inside the stateless scope an
      assignment would be dropped.
    """
    # Read once here, before the loop: a loop invariant, which the gradient of a tf.while_loop does not store
    # per iteration (see with_weights_read_once).
    variables, values = _read_once(variables)

    def wrapped(t, inputs, state):
        structure = (inputs, state)
        leaves = [tf.convert_to_tensor(x) for x in tf.nest.flatten(structure)]
        floating = [x.dtype.is_floating for x in leaves]
        outputs_info = {}

        @tf.recompute_grad
        def recomputed(*args):
            float_leaves, variable_values = args[:len(args) - len(values)], args[len(args) - len(values):]
            float_iter = iter(float_leaves)
            rebuilt = [next(float_iter) if is_float else x for x, is_float in zip(leaves, floating)]
            step_inputs, step_state = tf.nest.pack_sequence_as(structure, rebuilt)
            with keras.StatelessScope(state_mapping=list(zip(variables, variable_values))):
                result = step_fn(t, step_inputs, step_state)
            flat = [tf.convert_to_tensor(x) for x in tf.nest.flatten(result)]
            if not outputs_info:  # the forward call (later calls are recomputations in the gradient)
                outputs_info.update(structure=result, flat=flat)
            # Only floating outputs go through the custom gradient; the others (counters) are taken from the
            # forward call below.
            return [x for x in flat if x.dtype.is_floating]

        float_outputs = iter(recomputed(*[x for x, is_float in zip(leaves, floating) if is_float], *values))
        flat = [next(float_outputs) if x.dtype.is_floating else x for x in outputs_info["flat"]]
        return tf.nest.pack_sequence_as(outputs_info["structure"], flat)

    return wrapped


# Hparams of the original's VideoPredictionModel (specs/savp.md §3.2) beyond those of
# VideoPredictionModel above; weights of terms a model cannot produce must stay 0.
SAVP_FAMILY_LOSS_HPARAMS = dict(
    vgg_cdist_weight=0.0,  # must stay 0: the VGG metric was removed at HEAD
    feature_l2_weight=0.0,
    ae_l2_weight=0.0,
    state_weight=0.0,
    tv_weight=0.0,
    image_sn_gan_weight=0.0,
    image_sn_vae_gan_weight=0.0,
    images_sn_gan_weight=0.0,
    images_sn_vae_gan_weight=0.0,
    video_sn_gan_weight=0.0,
    video_sn_vae_gan_weight=0.0,
    gan_feature_l2_weight=0.0,
    gan_feature_cdist_weight=0.0,
    vae_gan_feature_l2_weight=0.0,
    vae_gan_feature_cdist_weight=0.0,
    gan_loss_type="LSGAN",
    joint_gan_optimization=False,
    kl_weight=0.0,
    kl_anneal="linear",
    kl_anneal_k=-1.0,
    kl_anneal_steps=(50000, 100000),
    z_l1_weight=0.0,  # unused, as in the original
)


class SAVPFamilyModel(VideoPredictionModel):
    """The models of the SAVP repository (``savp``, ``sv2p``, ``sna``): the original
    ``VideoPredictionModel``'s full hparams (specs/savp.md §3.2) and generator losses.

    ``generator_losses`` follows the original's ``generator_loss_fn``: L1/L2 (and
    states, flow TV) on the posterior path (``*_enc`` outputs) when the model
    has one, else on ``gen_images``; KL of ``zs_mu``/``zs_log_sigma_sq`` (against
    ``zs_*_prior`` when given) with the annealed weight.
    """

    #: Loss-weight hparams this family has no output for; they must stay 0.
    unsupported_weights = ("vgg_cdist_weight", "feature_l2_weight", "ae_l2_weight")

    def __init__(self, hparams_dict=None, hparams=None, name=None, **kwargs):
        super().__init__(hparams_dict=hparams_dict, hparams=hparams, name=name, **kwargs)
        hp = self.hparams
        check_time_loop(hp.time_loop)
        check_recompute_steps(hp.recompute_steps)
        for key in self.unsupported_weights:
            if getattr(hp, key):
                raise ValueError(f"{key} must be 0 for {type(self).__name__} (the model has no output for it)")
        if hp.kl_anneal not in ("none", "sigmoid", "linear"):
            raise ValueError(f"unknown kl_anneal {hp.kl_anneal!r}; valid: none, sigmoid, linear")

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(SAVP_FAMILY_LOSS_HPARAMS)
        # Added (issue 18): how the generator's T-1 steps run in training, evaluation and generation
        # (TIME_LOOPS above); not an hparam of the original, which unrolled in Python (TF1 graph).
        hparams.update(time_loop="while")
        # Added (issue 18): recompute each step's activations in the backward pass (recompute_step below).
        hparams.update(recompute_steps=False)
        return hparams

    def current_kl_weight(self):
        hp = self.hparams
        return kl_weight_schedule(self.global_step, hp.kl_weight, hp.kl_anneal, hp.kl_anneal_k, hp.kl_anneal_steps)

    def generator_losses(self, batch, outputs):
        """Non-adversarial weighted terms (reconstruction on the posterior path when it exists, state, TV, KL)."""
        hp = self.hparams
        suffix = "_enc" if "gen_images_enc" in outputs else ""
        targets = batch["images"][:, 1:]
        gen_images = outputs["gen_images" + suffix]
        losses = {}
        if hp.l1_weight:
            losses["gen_l1_loss"] = hp.l1_weight * vp_losses.l1_loss(gen_images, targets)
        if hp.l2_weight:
            losses["gen_l2_loss"] = hp.l2_weight * vp_losses.l2_loss(gen_images, targets)
        if hp.state_weight:
            if "states" not in batch:
                raise ValueError("state_weight > 0 needs 'states' in the batch (e.g. --dataset_hparams use_state=True)")
            losses["gen_state_loss"] = hp.state_weight * vp_losses.l2_loss(
                outputs["gen_states" + suffix], batch["states"][:, 1:])
        if hp.tv_weight:
            flows = outputs["gen_flows" + suffix]  # [B, T-1, H, W, 2, N]
            diff_y = flows[:, :, 1:] - flows[:, :, :-1]
            diff_x = flows[:, :, :, 1:] - flows[:, :, :, :-1]
            # sum over the flow components and transformations, mean over the rest (as the original)
            tv = (tf.reduce_mean(tf.reduce_sum(tf.abs(diff_y), axis=(-2, -1)))
                  + tf.reduce_mean(tf.reduce_sum(tf.abs(diff_x), axis=(-2, -1))))
            losses["gen_tv_loss"] = hp.tv_weight * tv
        if hp.kl_weight:
            kl = vp_losses.kl_loss(outputs["zs_mu"], outputs["zs_log_sigma_sq"],
                                   outputs.get("zs_mu_prior"), outputs.get("zs_log_sigma_sq_prior"))
            losses["gen_kl_loss"] = self.current_kl_weight() * kl
        return losses

    def generator_loss_names(self):
        """Names of the terms ``generator_losses`` returns with these hparams."""
        hp = self.hparams
        return [name for key, name in (("l1_weight", "gen_l1_loss"), ("l2_weight", "gen_l2_loss"),
                                       ("state_weight", "gen_state_loss"), ("tv_weight", "gen_tv_loss"),
                                       ("kl_weight", "gen_kl_loss")) if getattr(hp, key)]

    def loss_names(self):
        return ["loss"] + self.generator_loss_names() + (["kl_weight"] if self.hparams.kl_weight else [])

    def report(self, values):
        """As the base class, plus the current KL weight when the model anneals one."""
        if self.hparams.kl_weight and "kl_weight" not in values:
            values = dict(values, kl_weight=self.current_kl_weight())
        return super().report(values)
