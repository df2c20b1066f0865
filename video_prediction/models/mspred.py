"""MSPred: multi-scale hierarchical recurrent video prediction (specs/mspred.md §3-§4).

The original's SpatioTempHierarch with ConvLSTM predictors (model_type
``SpatioTempHierarchConvLSTM``).  The period gating of the original is a set of
per-module counters.  The context steps (a constant of the model) are unrolled in
Python, where every module knows at which steps it ticks; the steps after the
context run, with ``time_loop="while"`` (default, issue 18), in one ``tf.while_loop``
over a tensor length in which each level ticks through a ``tf.cond`` on ``t``
(states of fixed shape; per-level outputs collected in fixed-size buffers), so
the graph does not grow with T; ``time_loop="python"`` unrolls every step.

Outputs of ``call`` (channels-last):

* ``gen_images`` ``[B, T-1, H, W, C]``: the decoder output at every step t (frame
  t+1).  The decoder runs at every step in the original too; during the context
  these are one-step predictions from ground-truth features, afterwards the
  autoregressive predictions.  The original supervises steps C-1 .. C-1+N-1.
* ``gen_level0`` ``[B, N, H, W, C]``: the N supervised frames (targets C .. C+N-1).
* ``gen_heatmaps_level1`` / ``gen_heatmaps_level2`` ``[B, N, H, W, K]``: the heads'
  outputs; ``level_target_frames()`` gives the frame each one predicts (§3.7).
* ``mu_post_level{h}`` etc. for the KL, stacked over the kept ticks.
"""

import functools
import operator

import keras
import tensorflow as tf

from video_prediction.layers.mspred_layers import (
    DCGANDecoder, DCGANEncoder, ConvLSTMPredictor, DeconvHead, GaussianConvLSTM, VGGDecoder, VGGEncoder,
    register, upsample_nearest,
)
from video_prediction.models.base import VideoPredictionModel, check_recompute_steps, check_time_loop, num_replicas

NUM_LEVELS = 3  # the original asserts num_hierarch == 3


def tick_every(period, count, tick, hold):
    """``tick()`` when ``count % period == 0``, else ``hold()``: a ``tf.cond`` on the tensor ``count``, or the
    tick alone for a level that ticks at every step (period 1: level 0, and the prior without double
    gating).  A cond in the time loop returns every intermediate its gradient needs as an extra output; level
    0's, whose other branch is never taken, cost memory: peak RSS at B=4 x 57 4.65 -> 4.52 GiB without it
    (issue 18, ``ru_maxrss`` of one benchmark run each; step time the same within noise in an interleaved A/B).
    """
    if period == 1:
        return tick()
    return tf.cond(count % period == 0, tick, hold)


def level_target_frames(context, num_preds, periods, sequence_length):
    """Frame indices (0-based) each level's outputs predict (§3.7).

    Level 0 keeps the decoder outputs of steps C-1 .. C-1+N-1; head h ticks at
    steps C-1 + k p_h and predicts frame C-1 + (k+1) p_h.  Only steps < T-1 run, so a
    short sequence gives fewer outputs (and a head's last target may lie past it).
    """
    frames = []
    for level, period in enumerate(periods):
        step = 1 if level == 0 else period
        ticks = [context - 1 + k * step for k in range(num_preds) if context - 1 + k * step <= sequence_length - 2]
        frames.append([t + step for t in ticks])
    return frames


def epoch_lr_table(lr, num_epochs, warmup_steps, decay_steps, factor):
    """lr during each epoch 0..num_epochs: the original's WarmupStepLR stepped after every epoch (§4.2)."""
    table, current = [lr], lr
    for epoch in range(num_epochs):
        if epoch < warmup_steps:
            current = max(lr * (epoch / warmup_steps), 1e-6)
        elif epoch in decay_steps:
            current = current * factor
        table.append(current)
    return table


def epoch_beta_table(beta0, beta, warmup_steps, num_epochs):
    """KL weight during each epoch 0..num_epochs: the original's linear BetaScheduler (§4.2)."""
    table, current = [beta0], beta0
    for epoch in range(num_epochs):
        if epoch <= warmup_steps:
            # with warmup 0 this is beta0 + (beta - beta0) = beta, as in the original
            current = beta0 + (epoch - 1) * (beta - beta0) / (warmup_steps - 1) if warmup_steps != 1 else beta
        table.append(current)
    return table


@keras.saving.register_keras_serializable(package="video_prediction")
class EpochTableSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A per-epoch value table looked up with ``step // steps_per_epoch`` (last value after the end)."""

    def __init__(self, table, steps_per_epoch):
        self.table = [float(v) for v in table]
        self.steps_per_epoch = int(steps_per_epoch)

    def __call__(self, step):
        epoch = tf.cast(step, tf.int64) // self.steps_per_epoch
        epoch = tf.minimum(epoch, len(self.table) - 1)
        return tf.gather(tf.constant(self.table, tf.float32), epoch)

    def get_config(self):
        return {"table": self.table, "steps_per_epoch": self.steps_per_epoch}


class MSPredVideoPredictionModel(VideoPredictionModel):
    """MSPred (SpatioTempHierarch, ConvLSTM predictors)."""

    stochastic = True
    inference_extras = "video_prediction.inference.extras.mspred:MSPredInferenceExtras"  # per-level GIFs, metrics

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(
            # model (the original's "model" section; names in comments)
            enc_dec_type="dcgan",  # enc_dec_type: "dcgan" | "vgg"
            dim=512,  # enc_dec.dim (must be num_filters * 8, see §3.2)
            num_filters=64,  # enc_dec.num_filters
            extra_deep=False,  # enc_dec.extra_deep (VGG only)
            periods=[1, 4, 8],  # HierarchLSTM.periods
            hidden_dim=128,  # HierarchLSTM.hidden_dim
            num_layers=[4, 4, 4],  # HierarchLSTM.num_layers
            stochastic_latents=True,  # HierarchLSTM.stochastic
            ancestral_sampling=True,  # HierarchLSTM.ancestral_sampling
            aux_outputs=True,  # HierarchLSTM.aux_outputs
            heatmap_channels=[1, 1],  # HierarchLSTM.n_hmap_channels (from the dataset)
            latent_dim=10,  # LSTM_Prior.latent_dim (used by both)
            prior_hidden_dim=64,  # LSTM_Prior.hidden_dim
            prior_num_layers=1,  # LSTM_Prior.num_layers
            posterior_hidden_dim=64,  # LSTM_Posterior.hidden_dim
            posterior_num_layers=1,  # LSTM_Posterior.num_layers
            autoreg_mode="LAST_PRED_FEATS",  # or LAST_PRED_FRAME
            last_context_residuals=True,
            num_preds=5,  # training.num_preds
            num_channels=3,  # dataset.num_channels
            # quirks of the original (§7): defaults reproduce it
            batch_norm_batch_stats=True,  # BN always on batch statistics (test time too)
            prior_double_gating=True,  # prior only recomputes every p^2 steps (§3.5)
            latent_mode="sample",  # "sample" | "mean": z = mu at inference (parity, --latent_mode)
            # Added (issue 18): the steps after the context in one tf.while_loop ("while") or unrolled ("python")
            time_loop="while",
            # Added (issue 18): recompute each step after the context in the backward pass (models/base.py
            # recompute_step); needs batch_norm_batch_stats (a recomputed step may update no moving statistics)
            recompute_steps=False,
            # Added (issue 18): the backward pass skips what reaches no loss, as torch autograd does in the
            # original: after its last supervised output a level's steps (and the decoder's frame after level
            # 0's N predictions) run forward only.  The gradients are the same (those paths contribute zeros);
            # false computes them anyway.  Only with autoreg_mode LAST_PRED_FEATS and a static sequence length.
            prune_backward=True,
            # losses (§4.1)
            reconst_losses=["mse", "mse", "mse"],  # mse | mae | weighted_kpoint_loss | cross_entropy
            alphas=[0.2, 0.5, 0.5],
            beta=1e-4,
            beta0=1e-4,
            beta_warmup_steps=0,  # epochs
            w_easy_kpts=1.0,
            # optimiser and per-epoch schedules (§4.2)
            optimizer="adam",  # adam | adamw | sgd
            momentum=0.0,
            nesterov=False,
            lr=1e-4,
            lr_factor=0.5,
            lr_decay_steps=[250],  # epochs
            lr_warmup_steps=0,  # epochs
            num_epochs=350,
            # An epoch is one pass over the training loader (its length, drop_last False): 60000 / 16 for
            # mmnist.  0 = ceil(training videos / batch_size), counted from the dataset at build time.
            steps_per_epoch=3750,
        )
        hparams["batch_size"] = 16
        hparams["max_steps"] = 350 * 3750  # 0 = num_epochs * steps_per_epoch
        return hparams

    @classmethod
    def hparams_from_dataset(cls, hparams, dataset):
        derived = {}
        steps_per_epoch = hparams["steps_per_epoch"]
        if steps_per_epoch <= 0:
            num_examples = dataset.num_examples_per_epoch()
            if num_examples < 1:
                raise ValueError(f"steps_per_epoch=0 needs training videos, but {dataset.input_dir!r} "
                                 f"({dataset.mode}) has none long enough")
            steps_per_epoch = derived["steps_per_epoch"] = -(-num_examples // hparams["batch_size"])
        if hparams["max_steps"] <= 0:
            derived["max_steps"] = hparams["num_epochs"] * steps_per_epoch
        return derived

    def __init__(self, hparams_dict=None, hparams=None, name=None, **kwargs):
        super().__init__(hparams_dict=hparams_dict, hparams=hparams, name=name or "mspred", **kwargs)
        hp = self.hparams
        if len(hp.periods) != NUM_LEVELS:
            raise ValueError(f"periods must have {NUM_LEVELS} entries, got {hp.periods}")
        if hp.enc_dec_type == "vgg" and (hp.num_filters, hp.dim) != (64, 512):
            raise ValueError("the VGG encoder has hard-coded widths: num_filters must be 64 and dim 512")
        if hp.dim != hp.num_filters * 8:
            raise ValueError(f"dim ({hp.dim}) must be num_filters*8 ({hp.num_filters * 8}): level sizes follow nf")
        if hp.autoreg_mode not in ("LAST_PRED_FEATS", "LAST_PRED_FRAME"):
            raise ValueError(f"autoreg_mode must be LAST_PRED_FEATS or LAST_PRED_FRAME, got {hp.autoreg_mode!r}")
        if hp.latent_mode not in ("sample", "mean"):
            raise ValueError(f"latent_mode must be 'sample' or 'mean', got {hp.latent_mode!r}")
        self.latent_mode = hp.latent_mode
        check_time_loop(hp.time_loop)
        check_recompute_steps(hp.recompute_steps)
        if hp.recompute_steps and not hp.batch_norm_batch_stats:
            raise ValueError("recompute_steps=true needs batch_norm_batch_stats=true (a recomputed step would "
                             "update the BatchNorm moving statistics a second time)")
        num_layers = hp.num_layers if len(hp.num_layers) == NUM_LEVELS else list(hp.num_layers[:1]) * NUM_LEVELS
        bs = hp.batch_norm_batch_stats
        if hp.enc_dec_type == "dcgan":
            self.encoder = DCGANEncoder(hp.dim, hp.num_filters, batch_stats=bs, name="encoder")
            self.decoder = DCGANDecoder(hp.num_channels, hp.num_filters, batch_stats=bs, name="decoder")
            self.level_scales = [4, 8, 16]
        elif hp.enc_dec_type == "vgg":
            self.encoder = VGGEncoder(hp.dim, hp.extra_deep, batch_stats=bs, name="encoder")
            self.decoder = VGGDecoder(hp.num_channels, hp.extra_deep, batch_stats=bs, name="decoder")
            self.level_scales = [2, 4, 8]
        else:
            raise ValueError(f"enc_dec_type must be 'dcgan' or 'vgg', got {hp.enc_dec_type!r}")
        self.level_channels = [hp.num_filters * 2 ** (n + 1) for n in range(NUM_LEVELS)]
        self.predictors = register(self, "predictor", [ConvLSTMPredictor(self.level_channels[n], hp.hidden_dim, num_layers[n],
                                             name=f"predictor_{n}") for n in range(NUM_LEVELS)])
        if hp.stochastic_latents:
            self.posteriors = register(self, "posterior", [GaussianConvLSTM(hp.latent_dim, hp.posterior_hidden_dim, hp.posterior_num_layers,
                                                name=f"posterior_{n}") for n in range(NUM_LEVELS)])
            self.priors = register(self, "prior", [GaussianConvLSTM(hp.latent_dim, hp.prior_hidden_dim, hp.prior_num_layers,
                                            name=f"prior_{n}") for n in range(NUM_LEVELS)])
        if hp.aux_outputs:
            if len(hp.heatmap_channels) != NUM_LEVELS - 1:
                raise ValueError(f"heatmap_channels needs {NUM_LEVELS - 1} entries, got {hp.heatmap_channels}")
            self.heads = register(self, "head", [DeconvHead(hp.heatmap_channels[h - 1], hp.num_filters, h + 1,
                                                            batch_stats=bs, name=f"decoder_head_{h}")
                                                 for h in range(1, NUM_LEVELS)])

    # -- static schedule (§3.4-§3.7) ------------------------------------------------------------

    def level_target_frames(self, sequence_length=None):
        length = sequence_length or self.hparams.sequence_length
        return level_target_frames(self.context_frames, self.hparams.num_preds, self.hparams.periods, length)

    def gradient_horizons(self, sequence_length):
        """Per level h, the last step whose outputs can reach the training loss (``prune_backward``), or None
        when every step must be differentiated (``prune_backward`` off, a symbolic length, LAST_PRED_FRAME).

        Level h's own outputs reach the loss up to its last supervised one: level 0's frames at steps C-1 ..
        C-2+N (``gen_level0``), a head's N calls and a level's kept KL ticks (``_kept_counts``).  A level also
        feeds every level below it at the same and later steps (ancestral latents; the decoder, whose stage
        for level h is read by the heads of levels <= h), so its horizon is the maximum over itself and the
        levels below.  The frame of a step is an output of level 0 only: with LAST_PRED_FEATS no level reads
        it back (with LAST_PRED_FRAME every level would, so nothing is pruned there)."""
        hp = self.hparams
        if not hp.prune_backward or sequence_length is None or hp.autoreg_mode != "LAST_PRED_FEATS":
            return None
        context, num_preds, periods = self.context_frames, hp.num_preds, hp.periods
        kept_stats, kept_heads = self._kept_counts(sequence_length)
        steps = range(context - 1, sequence_length - 1)
        own = []
        for h, period in enumerate(periods):
            last = [context - 2 + num_preds] if h == 0 else []
            if hp.stochastic_latents:
                last += [t for t in steps if t % period == 0][:kept_stats[h]][-1:]
            if hp.aux_outputs and h > 0:
                last += [t for t in steps if (t - (context - 1)) % period == 0][:kept_heads[h]][-1:]
            own.append(max(last, default=context - 1))
        return [max(own[:h + 1]) for h in range(NUM_LEVELS)]

    def torch_layers(self):
        """Original state_dict prefix -> Keras layer, for the checkpoint converter."""
        names = {}
        names.update(self.encoder.torch_layers("encoder"))
        names.update(self.decoder.torch_layers("decoder"))
        for n in range(NUM_LEVELS):
            names.update(self.predictors[n].torch_layers(f"predictor.{n}"))
            if self.hparams.stochastic_latents:
                names.update(self.posteriors[n].torch_layers(f"posterior.{n}"))
                names.update(self.priors[n].torch_layers(f"prior.{n}"))
        if self.hparams.aux_outputs:
            for i, head in enumerate(self.heads):
                names.update(head.torch_layers(f"decoder_heads.{i}"))
        return names

    # -- forward ---------------------------------------------------------------------------------

    def _encode_levels(self, frame, training):
        h4, (h1, h2, h3) = self.encoder(frame, training=training)
        return [h2, h3, h4], [h1, h2, h3, h4]  # level inputs, residual feats (§3.2)

    def _latent_inputs(self, h, target_inputs, level_inputs, latents):
        """Inputs of level ``h``'s posterior and prior: the level's features, with ancestral sampling (§3.5)
        also the latents of every level above, upsampled to this level's size."""
        post_in, prior_in = target_inputs[h], level_inputs[h]
        if self.hparams.ancestral_sampling and h < NUM_LEVELS - 1:
            upper = [upsample_nearest(latents[u], 2 ** (i + 1)) for i, u in enumerate(range(h + 1, NUM_LEVELS))]
            post_in = tf.concat([post_in] + upper, axis=-1)
            prior_in = tf.concat([prior_in] + upper, axis=-1)
        return post_in, prior_in

    #: Whether the steps after the context draw their latents' noise statelessly from per-step seeds (always
    #: with ``recompute_steps`` in training: a recomputed step must draw the same noise again).
    stateless_latent_draws = False

    def _latent(self, mu, logvar, training, seed=None):
        # Sampled in float32 from the float32 mu / logvar, then in the layers' compute dtype (mixed precision).
        if self.latent_mode == "mean" and not training:
            return tf.cast(mu, self.precision)
        if seed is not None:
            noise = tf.random.stateless_normal(tf.shape(mu), seed=seed)
        else:
            noise = tf.random.normal(tf.shape(mu))
        return tf.cast(mu + tf.exp(0.5 * logvar) * noise, self.precision)

    def _recomputing(self, training):
        return bool(training and self.hparams.recompute_steps)

    def _step_variables(self):
        """The variables a step after the context reads (for recompute_step)."""
        layers = [self.encoder, self.decoder, *self.predictors]
        if self.hparams.stochastic_latents:
            layers += [*self.posteriors, *self.priors]
        if self.hparams.aux_outputs:
            layers += list(self.heads)
        return [v for layer in layers for v in layer.variables]

    def call(self, inputs, training=False):
        hp = self.hparams
        images = inputs["images"]
        length = images.shape[1]
        batch_size = tf.shape(images)[0]
        height, width = images.shape[2], images.shape[3]
        context, num_preds, periods = self.context_frames, hp.num_preds, hp.periods
        double_gating = hp.prior_double_gating
        sizes = [(height // s, width // s) for s in self.level_scales]

        pred_states = [m.zero_state(batch_size, *sizes[n]) for n, m in enumerate(self.predictors)]
        if hp.stochastic_latents:
            post_states = [m.zero_state(batch_size, *sizes[n]) for n, m in enumerate(self.posteriors)]
            prior_states = [m.zero_state(batch_size, *sizes[n]) for n, m in enumerate(self.priors)]
            prior_cache = [None] * NUM_LEVELS
            post_ticks = [0] * NUM_LEVELS
            latents = [None] * NUM_LEVELS
            stats = {k: [[] for _ in range(NUM_LEVELS)] for k in ("mu_post", "logvar_post", "mu_prior", "logvar_prior")}
        pred_feats = [None] * NUM_LEVELS
        head_outputs = [[] for _ in range(NUM_LEVELS - 1)]
        gen_images = []
        level_inputs = residuals = None
        # The posterior's encoding of frame t+1 at step t is step t+1's context input: the same
        # frame through the same encoder.  The original encodes it twice; once is the same
        # tensor unless BatchNorm updates moving statistics (training with batch_stats off).
        reuse_encoding = hp.batch_norm_batch_stats or not training
        next_encoding = None

        # time_loop="python" (with a static T) unrolls every step; otherwise only the context steps are
        # unrolled here and the rest run in _loop_after_context's tf.while_loop.
        num_steps = tf.shape(images)[1] - 1
        horizons = self.gradient_horizons(length) if training else None
        if self.time_loop_for(training) == "python" and length is not None and not self._recomputing(training):
            python_steps = length - 1
        else:
            python_steps = context if length is None else min(context, length - 1)
        for t in range(python_steps):
            encoding, next_encoding = next_encoding, None
            if hp.stochastic_latents:
                next_encoding = self._encode_levels(images[:, t + 1], training)
                target_inputs = next_encoding[0]
            if t < context:
                if encoding is None or not reuse_encoding:
                    encoding = self._encode_levels(images[:, t], training)
                level_inputs, residuals = encoding
            elif hp.autoreg_mode == "LAST_PRED_FEATS":
                level_inputs = pred_feats
            else:  # LAST_PRED_FRAME: re-encode the last predicted frame
                level_inputs, _ = self._encode_levels(gen_images[-1], training)

            # latents, top-down (§3.5)
            if hp.stochastic_latents:
                for h in reversed(range(NUM_LEVELS)):
                    if t % periods[h]:
                        continue  # the posterior does not tick; neither is the prior called
                    post_in, prior_in = self._latent_inputs(h, target_inputs, level_inputs, latents)
                    mu_post, logvar_post, post_states[h] = self.posteriors[h](post_in, post_states[h])
                    z_post = self._latent(mu_post, logvar_post, training)
                    prior_ticks = post_ticks[h] % periods[h] == 0 if double_gating else True
                    post_ticks[h] += 1
                    if prior_ticks:
                        mu_prior, logvar_prior, prior_states[h] = self.priors[h](prior_in, prior_states[h])
                        prior_cache[h] = (self._latent(mu_prior, logvar_prior, training), mu_prior, logvar_prior)
                    z_prior, mu_prior, logvar_prior = prior_cache[h]
                    latents[h] = z_post if (t < context - 1 or training) else z_prior
                    if t >= context - 1:
                        stats["mu_post"][h].append(mu_post)
                        stats["logvar_post"][h].append(logvar_post)
                        stats["mu_prior"][h].append(mu_prior)
                        stats["logvar_prior"][h].append(logvar_prior)

            # level predictors (§3.4): tick every p_h steps, else keep their last output
            for h in range(NUM_LEVELS):
                if t % periods[h]:
                    continue
                x = level_inputs[h]
                if hp.stochastic_latents:
                    x = tf.concat([x, latents[h]], axis=-1)
                pred_feats[h], pred_states[h] = self.predictors[h](x, pred_states[h])

            frame, activations = self._decode(pred_feats, residuals, training)
            if horizons and not context - 1 <= t <= horizons[0]:
                # prune_backward: a frame no loss reads (before C-1 no level reads it back either, and after
                # the context only LAST_PRED_FRAME would; the tape then leaves out the work that only led to it)
                frame = tf.stop_gradient(frame)
            gen_images.append(frame)

            # heads (§3.6): called from t = C-1, tick every p_h calls, N outputs each
            if hp.aux_outputs and t >= context - 1:
                head_inputs = [activations[1], activations[0]]  # level 1 reads d2, level 2 reads d1
                for h in range(1, NUM_LEVELS):
                    if (t - (context - 1)) % periods[h] == 0 and len(head_outputs[h - 1]) < num_preds:
                        head_outputs[h - 1].append(self.heads[h - 1](head_inputs[h - 1], training=training))

        if python_steps == context and (length is None or length - 1 > context):
            carry = dict(pred_states=pred_states, pred_feats=pred_feats, last_frame=gen_images[-1])
            if hp.stochastic_latents:
                carry.update(post_states=post_states, prior_states=prior_states, prior_cache=prior_cache,
                             post_ticks=post_ticks, latents=latents, stats=stats)
            return self._loop_after_context(images, length, num_steps, carry, residuals, gen_images, head_outputs,
                                            training, horizons)
        gen_images = tf.stack(gen_images, axis=1)
        outputs = {"gen_images": gen_images,
                   "gen_level0": gen_images[:, context - 1: context - 1 + num_preds]}
        if hp.aux_outputs:
            for h in range(1, NUM_LEVELS):
                if head_outputs[h - 1]:
                    outputs[f"gen_heatmaps_level{h}"] = tf.stack(head_outputs[h - 1], axis=1)
        if hp.stochastic_latents:
            for key, per_level in stats.items():
                for h in range(NUM_LEVELS):
                    kept = per_level[h][:len(self.level_target_frames(length)[h])]
                    if kept:
                        outputs[f"{key}_level{h}"] = tf.stack(kept, axis=1)
        return outputs

    def _kept_counts(self, length):
        """Static ``(stats, heads)`` output counts per level for a T-frame sequence (None for a symbolic T):
        what the Python unroll keeps (stats at ticks t >= C-1 with t % p == 0, the first
        ``len(level_target_frames)``; head outputs every p calls from C-1, at most num_preds)."""
        if length is None:
            return None, None
        context, num_preds, periods = self.context_frames, self.hparams.num_preds, self.hparams.periods
        targets = self.level_target_frames(length)
        steps = range(context - 1, length - 1)
        stats = [min(len([t for t in steps if t % p == 0]), len(targets[h])) for h, p in enumerate(periods)]
        heads = [min(num_preds, len([t for t in steps if (t - (context - 1)) % p == 0])) for p in periods]
        return stats, heads

    def _decode(self, pred_feats, residuals, training):
        """The decoder (§3.3) on the levels' features, with the residuals of the last context frame added when
        ``last_context_residuals``: ``(frame, activations)``."""
        if self.hparams.last_context_residuals:
            dec_feats = [p + r for p, r in zip(pred_feats, residuals[1:])]
        else:
            dec_feats = list(pred_feats)
        return self.decoder(dec_feats[2], [residuals[0], dec_feats[0], dec_feats[1]], training=training)

    def _loop_after_context(self, images, length, num_steps, carry, residuals, context_frames, head_outputs,
                            training, horizons=None):
        """Steps C .. T-2 in one ``tf.while_loop`` (``time_loop="while"``), from the carry of the Python-unrolled
        context steps.  Same step as ``call``'s: each level ticks when ``t % p_h == 0`` (``tf.cond``); every
        layer was built during the context.  Per-level stats and head outputs go into ``[num_preds, ...]``
        buffers at their running count (the Python unroll keeps at most num_preds of each).

        With ``recompute_steps`` (training) each step is recomputed in the backward pass (models/base.py
        ``recompute_step``); ``time_loop="python"`` then runs this same step unrolled in Python.

        ``horizons`` (``gradient_horizons``, training only): the loop is split where a level's outputs stop
        reaching the loss, and in each part the dead levels' outputs are cut from the gradient.  One loop
        cannot do it: a while loop's gradient runs the backward of its whole body at every iteration (with
        zero gradients where nothing reaches the loss), which is most of the step's work for MSPred, whose
        level 0 runs 7x past its last supervised frame on Moving MNIST."""
        hp = self.hparams
        context, num_preds, periods = self.context_frames, hp.num_preds, hp.periods
        stochastic = hp.stochastic_latents
        aux = hp.aux_outputs and all(head_outputs)  # heads first run at t = C-1, during the context
        stat_keys = ("mu_post", "logvar_post", "mu_prior", "logvar_prior")

        def buffer(entries, like):
            """[num_preds, ...] holding ``entries`` (capped at num_preds) then zeros, and its count."""
            entries = entries[:num_preds]
            pad = [tf.zeros_like(like)] * (num_preds - len(entries))
            return tf.stack(entries + pad), tf.constant(len(entries))

        def put(buf, count, value, do):
            """``buf`` with ``value`` at ``count`` when ``do`` and ``count < num_preds``; the new count."""
            do = tf.logical_and(do, count < num_preds)
            at = tf.logical_and(tf.equal(tf.range(num_preds), count), do)
            at = tf.reshape(at, [num_preds] + [1] * len(value.shape))
            return tf.where(at, value[None], buf), count + tf.cast(do, tf.int32)

        state = dict(pred_states=carry["pred_states"], pred_feats=carry["pred_feats"], last_frame=carry["last_frame"])
        if stochastic:
            state.update(post_states=carry["post_states"], prior_states=carry["prior_states"],
                         prior_cache=[tuple(c) for c in carry["prior_cache"]], latents=carry["latents"],
                         post_ticks=[tf.constant(n) for n in carry["post_ticks"]])
            state["stats"] = [{k: buffer(carry["stats"][k][h], carry["prior_cache"][h][1]) for k in stat_keys}
                              for h in range(NUM_LEVELS)]
        if aux:
            state["heads"] = [buffer(head_outputs[h - 1], head_outputs[h - 1][0]) for h in range(1, NUM_LEVELS)]
        stateless = self.stateless_latent_draws or self._recomputing(training)
        if stateless:  # one stateful draw; each step's seed folds in t (the recomputation redraws the same)
            base_seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)

        def step_inputs(t):
            # The last context frame's residual features are an input (their gradient must flow into the encoder).
            inputs = dict(residuals=list(residuals))
            if stochastic:
                inputs["target"] = images[:, t + 1]
            if stateless:
                inputs["seed"] = tf.random.experimental.stateless_fold_in(base_seed, t)
            return inputs

        def step(t, inputs, state, live=(True,) * NUM_LEVELS):
            """Step t after the context: ``(frame, new state)``.  ``live[h]`` false: level h's outputs at this
            step reach no loss, and are cut from the gradient (``horizons``)."""
            residuals = inputs["residuals"]

            def cut(h, values):
                return values if live[h] else tf.nest.map_structure(tf.stop_gradient, values)

            def draw_seed(h, k):
                return tf.random.experimental.stateless_fold_in(inputs["seed"], 2 * h + k) if stateless else None

            pred_feats, pred_states = list(state["pred_feats"]), list(state["pred_states"])
            if hp.autoreg_mode == "LAST_PRED_FEATS":
                level_inputs = list(pred_feats)
            else:
                level_inputs, _ = self._encode_levels(state["last_frame"], training)
            new = {}
            if stochastic:
                target_inputs = self._encode_levels(inputs["target"], training)[0]
                latents = list(state["latents"])
                post_states, prior_states = list(state["post_states"]), list(state["prior_states"])
                prior_cache, post_ticks = list(state["prior_cache"]), list(state["post_ticks"])
                stats = [dict(level) for level in state["stats"]]
                for h in reversed(range(NUM_LEVELS)):
                    def tick(h=h):
                        post_in, prior_in = self._latent_inputs(h, target_inputs, level_inputs, latents)
                        mu_post, logvar_post, post_state = cut(h, self.posteriors[h](post_in, post_states[h]))
                        z_post = self._latent(mu_post, logvar_post, training, draw_seed(h, 0))

                        def prior_tick():
                            mu, logvar, prior_state = cut(h, self.priors[h](prior_in, prior_states[h]))
                            return (self._latent(mu, logvar, training, draw_seed(h, 1)), mu, logvar), prior_state

                        cache, prior_state = tick_every(periods[h] if hp.prior_double_gating else 1, post_ticks[h],
                                                        prior_tick, lambda: (prior_cache[h], prior_states[h]))
                        values = dict(mu_post=mu_post, logvar_post=logvar_post, mu_prior=cache[1],
                                      logvar_prior=cache[2])
                        level_stats = {k: put(*stats[h][k], values[k], tf.constant(True)) for k in stat_keys}
                        return (post_state, prior_state, cache, post_ticks[h] + 1, z_post if training else cache[0],
                                level_stats)

                    def rest(h=h):
                        return (post_states[h], prior_states[h], prior_cache[h], post_ticks[h], latents[h], stats[h])

                    (post_states[h], prior_states[h], prior_cache[h], post_ticks[h], latents[h],
                     stats[h]) = tick_every(periods[h], t, tick, rest)
                new.update(post_states=post_states, prior_states=prior_states, prior_cache=prior_cache,
                           post_ticks=post_ticks, latents=latents, stats=stats)

            for h in range(NUM_LEVELS):
                def predict(h=h):
                    x = level_inputs[h]
                    if stochastic:
                        x = tf.concat([x, new["latents"][h]], axis=-1)
                    return cut(h, self.predictors[h](x, pred_states[h]))

                pred_feats[h], pred_states[h] = tick_every(periods[h], t, predict,
                                                           lambda h=h: (pred_feats[h], pred_states[h]))
            frame, activations = self._decode(pred_feats, residuals, training)
            frame = cut(0, frame)  # read by no level (LAST_PRED_FEATS whenever horizons are given)
            new.update(pred_feats=pred_feats, pred_states=pred_states, last_frame=frame)
            if aux:
                # (cut: the head's tf.cond would otherwise send zeros back through the decoder)
                head_inputs = [cut(1, activations[1]), cut(2, activations[0])]
                heads = list(state["heads"])
                for h in range(1, NUM_LEVELS):
                    buf, count = heads[h - 1]
                    ticks = tf.logical_and(tf.equal((t - (context - 1)) % periods[h], 0), count < num_preds)
                    heads[h - 1] = tf.cond(
                        ticks, lambda h=h, buf=buf, count=count: put(
                            buf, count, self.heads[h - 1](head_inputs[h - 1], training=training), tf.constant(True)),
                        lambda buf=buf, count=count: (buf, count))
                new["heads"] = heads
            return frame, new

        def live_at(t):
            return tuple(horizons is None or t <= horizons[h] for h in range(NUM_LEVELS))

        def ticking(t, levels):
            """Whether one of ``levels`` ticks or calls its head at step t (a bool tensor for a tensor t)."""
            return functools.reduce(operator.or_, [(t % periods[h] == 0) | ((t - (context - 1)) % periods[h] == 0)
                                                   for h in levels])

        def live_upper_levels(live):
            """The live levels (> 0) when level 0 is dead (after its horizon), else none: then a step in which
            none of them ticks or calls its head passes their states through unchanged, and nothing of it
            reaches the loss (``horizons``)."""
            return [] if live[0] else [h for h in range(1, NUM_LEVELS) if live[h]]

        dead = (False,) * NUM_LEVELS
        variables = self._step_variables()
        if self.time_loop_for(training) == "python" and length is not None:  # (only with recompute_steps)
            later = []
            for t in range(context, length - 1):
                live = live_at(t)
                levels = live_upper_levels(live)
                if levels and not ticking(t, levels):
                    live = dead
                live_step = self.recomputed_if_asked(functools.partial(step, live=live), variables, training)
                frame, state = live_step(tf.constant(t), step_inputs(t), state)
                later.append(frame)
            later = tf.stack(later, axis=1)
        else:
            frames = tf.TensorArray(context_frames[-1].dtype, size=num_steps - context,
                                    element_shape=context_frames[-1].shape)
            # One loop, or (horizons) one per run of steps with the same live levels.
            parts = [(context, num_steps)]
            if horizons is not None:
                cuts = sorted({h + 1 for h in horizons if context < h + 1 < length - 1})
                bounds = [context] + cuts + [length - 1]
                parts = list(zip(bounds[:-1], bounds[1:]))
            t = tf.constant(context)
            for start, end in parts:
                live = live_at(start)
                live_step = self.recomputed_if_asked(functools.partial(step, live=live), variables, training)
                levels = live_upper_levels(live)
                if levels and not self._recomputing(training):
                    # a tf.cond between the step and the same step cut from the gradient: the cond's gradient
                    # runs only the taken branch's backward (levels 1-2 tick every 4th / 8th step on Moving MNIST).
                    # Not with recompute_steps: TF cannot differentiate a recomputed step inside a cond in a loop.
                    dead_step = self.recomputed_if_asked(functools.partial(step, live=dead), variables, training)

                    def live_step(t, inputs, state, live_step=live_step, dead_step=dead_step, levels=levels):
                        return tf.cond(ticking(t, levels), lambda: live_step(t, inputs, state),
                                       lambda: dead_step(t, inputs, state))

                def body(t, state, frames, live_step=live_step):
                    frame, new = live_step(t, step_inputs(t), state)
                    return t + 1, new, frames.write(t - context, frame)

                t, state, frames = tf.while_loop(lambda t, *_, end=end: t < end, body, (t, state, frames),
                                                 maximum_iterations=end - start)
            later = tf.transpose(frames.stack(), [1, 0, 2, 3, 4])
        gen_images = tf.concat([tf.stack(context_frames, axis=1), later], axis=1)
        if length is not None:
            gen_images.set_shape([None, length - 1] + gen_images.shape[2:].as_list())
        outputs = {"gen_images": gen_images,
                   "gen_level0": gen_images[:, context - 1: context - 1 + num_preds]}
        kept_stats, kept_heads = self._kept_counts(length)

        def kept(buf, count, static_count):
            values = tf.transpose(buf, [1, 0] + list(range(2, len(buf.shape))))  # batch-major
            return values[:, :static_count] if static_count is not None else values[:, :count]

        if aux:
            for h in range(1, NUM_LEVELS):
                n = kept_heads[h] if kept_heads else None
                if n != 0:
                    outputs[f"gen_heatmaps_level{h}"] = kept(*state["heads"][h - 1], n)
        if stochastic:
            for h in range(NUM_LEVELS):
                n = kept_stats[h] if kept_stats else None
                if n != 0:
                    for key in stat_keys:
                        outputs[f"{key}_level{h}"] = kept(*state["stats"][h][key], n)
        return outputs

    # -- losses (§4.1) ---------------------------------------------------------------------------

    def loss_names(self):
        return ["loss", "recon_loss_level0", "recon_loss_level1", "recon_loss_level2", "kl_loss"]

    def kl_weight(self):
        table = epoch_beta_table(self.hparams.beta0, self.hparams.beta, self.hparams.beta_warmup_steps,
                                 self.hparams.num_epochs)
        return EpochTableSchedule(table, self.hparams.steps_per_epoch)(self.global_step)

    def level_targets(self, batch, level, length):
        """Ground truth of ``level`` at the frames its outputs predict, or None if the batch lacks it."""
        frames = [f for f in self.level_target_frames(length)[level] if f < length]
        source = batch["images"] if level == 0 else batch.get(f"heatmaps_level{level}")
        if source is None or not frames:
            return None
        return tf.gather(source, frames, axis=1)

    def generator_losses(self, batch, outputs):
        hp = self.hparams
        length = batch["images"].shape[1]
        losses = {}
        for level in range(NUM_LEVELS):
            key = "gen_level0" if level == 0 else f"gen_heatmaps_level{level}"
            target = self.level_targets(batch, level, length)
            if key not in outputs or target is None:
                losses[f"recon_loss_level{level}"] = tf.constant(0.0)
                continue
            preds = outputs[key][:, : target.shape[1]]
            loss = reconstruction_loss(hp.reconst_losses[level], preds, target, batch)
            losses[f"recon_loss_level{level}"] = hp.alphas[level] * loss
        kl = tf.constant(0.0)
        if hp.stochastic_latents:
            for level in range(NUM_LEVELS):
                if f"mu_post_level{level}" in outputs:
                    kl += gaussian_kl_sum(outputs[f"mu_post_level{level}"], outputs[f"logvar_post_level{level}"],
                                          outputs[f"mu_prior_level{level}"], outputs[f"logvar_prior_level{level}"])
        losses["kl_loss"] = self.kl_weight() * kl
        return losses

    # -- optimiser (§4.2) --------------------------------------------------------------------------

    def learning_rate_schedule(self):
        hp = self.hparams
        table = epoch_lr_table(hp.lr, hp.num_epochs, hp.lr_warmup_steps, hp.lr_decay_steps, hp.lr_factor)
        return EpochTableSchedule(table, hp.steps_per_epoch)

    def make_optimizer(self):
        hp = self.hparams
        lr = self.learning_rate_schedule()
        if hp.optimizer == "adam":  # torch defaults: betas (0.9, 0.999), eps 1e-8, no weight decay
            return keras.optimizers.Adam(learning_rate=lr, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
        if hp.optimizer == "adamw":  # torch AdamW default weight decay 0.01
            return keras.optimizers.AdamW(learning_rate=lr, weight_decay=0.01, epsilon=1e-8)
        return keras.optimizers.SGD(learning_rate=lr, momentum=hp.momentum, nesterov=hp.nesterov,
                                    weight_decay=5e-4)

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            outputs = self(batch, training=True)
            losses = self.generator_losses(batch, outputs)
            loss = tf.add_n(list(losses.values()))
            scaled_loss = loss / num_replicas()  # per-replica means reduced by hand (DESIGN.md)
            scaled_loss = self.optimizer.scale_loss(scaled_loss)  # float16: times the dynamic loss scale
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply(gradients, variables)
        self.global_step.assign_add(1)
        return self.report(dict(losses, loss=loss))


def gaussian_kl_sum(mu_post, logvar_post, mu_prior, logvar_prior):
    """KL(post || prior) summed over time, channels and space, divided by the batch size (KLLoss)."""
    kl = (0.5 * (logvar_prior - logvar_post)
          + (tf.exp(logvar_post) + tf.square(mu_post - mu_prior)) / (2.0 * tf.exp(logvar_prior)) - 0.5)
    return tf.reduce_sum(kl) / tf.cast(tf.shape(kl)[0], kl.dtype)


def reconstruction_loss(kind, preds, targets, batch):
    """The original's per-level losses with its reductions (§4.1)."""
    if kind == "mse":
        return tf.reduce_mean(tf.square(preds - targets))
    if kind == "mae":
        return tf.reduce_mean(tf.abs(preds - targets))
    if kind == "cross_entropy":
        # sigmoid head outputs used as logits, no class weights (both as the original)
        labels = tf.argmax(targets, axis=-1)
        per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=preds)
        return tf.reduce_mean(per_pixel)  # equal-size frames: mean of per-frame means
    if kind == "weighted_kpoint_loss":
        # a channel counts if its target is non-zero or the whole frame target is empty
        weights = batch.get("heatmap_weights")  # [B, K] per-class channel weights, 1 if absent
        channel_mse = tf.reduce_mean(tf.square(preds - targets), axis=[2, 3])  # [B, N, K]
        channel_present = tf.reduce_any(tf.not_equal(targets, 0.0), axis=[2, 3])
        frame_empty = tf.logical_not(tf.reduce_any(channel_present, axis=-1, keepdims=True))
        counts = tf.cast(tf.logical_or(channel_present, frame_empty), preds.dtype)
        if weights is None:
            weights = tf.ones_like(channel_mse[:, 0])
        weighted = counts * channel_mse * tf.cast(weights, preds.dtype)[:, None, :]
        return tf.reduce_sum(weighted) / tf.maximum(tf.reduce_sum(counts), 1.0)
    raise ValueError(f"unknown reconstruction loss {kind!r}; valid: mse, mae, cross_entropy, weighted_kpoint_loss")
