"""The deterministic pose LSTM ("DET_LSTM") of Villegas et al. 2017 (specs/hierarchical_lstm.md §3.1, §4.1).

Observes ``context_frames`` (10) poses and predicts the following ones:

1. landmark vector ``[x_0..x_{L-1}, y_0..y_{L-1}]`` in [-1, 1] (``2v - 1`` of the
   pixel coordinates divided by the frame size; ``swap_xy_normalization`` keeps
   the Penn Action script's x/height, y/width swap, §2.3), multiplied by the
   visibility mask;
2. ``lm_enc``: 32-d ReLU Dense (kernel N(0, 0.02), bias 0) on each observed step;
3. a TF1 ``BasicLSTMCell`` (1024 units; gates i, j, f, o; forget bias +1 added at
   run time; one Glorot-uniform kernel over ``[input, h]``) from a zero state over
   the encoded observations, whose outputs are discarded;
4. for every future step a ZERO input (same size as the encoding) continues the
   state and ``dec_fc2`` (Dense 2L, N(0, 0.02)) + tanh gives absolute coordinates;
5. output = the masked observations (passed through) + the predictions.

The rollout length is the batch's length: training windows of 10 + 32, test
rollouts of 64 (Penn) / 128 (Human3.6M) future steps with the same weights
(a ``tf.while_loop``).  Loss: mean over ``[B, future, 2L]`` of
``mask * (output - target)^2`` (divides by ALL entries, §4.1).  Optimiser: TF1
RMSProp (slot initialised to ones, eps 1e-10 inside the root, rho 0.9) with
gradients clipped by global norm 25, constant lr 1e-3.

Batches follow the pose-record contract: ``poses`` ``[B, T, K, 2]`` (x, y pixels)
and ``pose_visibility`` ``[B, T, K]`` (all visible if absent); optional
``pose_frame_size`` ``[B, 2]`` (height, width of the pixel frame the poses were
measured in, e.g. the Penn crop) overrides the image size for normalisation.
``gen_images`` are grey renderings of the poses (the original's sample images),
so the generic generation/evaluation tools work; ``gen_poses`` are the poses.
"""

import keras
import tensorflow as tf

from video_prediction.layers.conv_rnn import BasicLSTMCell
from video_prediction.layers import pose as pose_ops
from video_prediction.models.precision import gradient_scale
from video_prediction.models.base import VideoPredictionModel, num_replicas
from video_prediction.optimizers import TF1RMSprop


def tf1_linear(units, name):
    """The original's ``ops.linear``: matmul + bias, kernel N(0, 0.02) (not truncated), bias 0."""
    return keras.layers.Dense(units, kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
                              bias_initializer="zeros", name=name)


class PoseLSTMVideoPredictionModel(VideoPredictionModel):
    """``--model pose_lstm``: future landmarks from observed ones (see the module docstring)."""

    #: evaluate.py: MPJPE / PCK vs the constant pose; generate.py: skeleton GIFs
    inference_extras = "video_prediction.inference.extras.hierarchical_pose:HierarchicalPoseExtras"

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(
            batch_size=256,  # --batch_size
            lr=0.001,  # --learning_rate (RMSProp)
            max_steps=37500,  # round(600000 * 16 / 256)
            lstm_units=1024,  # --lstm_units (num_layer 1)
            lm_enc_units=32,  # lm_enc width (commit 9584bd3)
            keep_prob=1.0,  # DropoutWrapper input_keep_prob
            clip_norm=25.0,  # tf.clip_by_global_norm(gradients, 25)
            rmsprop_rho=0.9,  # TF1 RMSPropOptimizer decay
            rmsprop_epsilon=1e-10,  # TF1 RMSPropOptimizer epsilon
            num_landmarks=-1,  # L (13 Penn, 32 Human3.6M); -1: from the first batch
            swap_xy_normalization=False,  # Penn Action's original x/height, y/width (hparams/penn_action sets it)
            render_sigma=1.5,  # pixels, for the gen_images renderings only
        )
        return hparams

    def __init__(self, hparams_dict=None, hparams=None, name=None, **kwargs):
        super().__init__(hparams_dict=hparams_dict, hparams=hparams, name=name, **kwargs)
        hp = self.hparams
        if not 0.0 < hp.keep_prob <= 1.0:
            raise ValueError(f"keep_prob must be in (0, 1], got {hp.keep_prob}")
        self.lm_enc = tf1_linear(hp.lm_enc_units, "lm_enc")
        self.cell = BasicLSTMCell(hp.lstm_units, name="basic_lstm_cell")
        self.decoder = None  # dec_fc2, sized by the number of landmarks on the first call
        if hp.num_landmarks > 0:
            self.decoder = tf1_linear(2 * hp.num_landmarks, "dec_fc2")

    @classmethod
    def hparams_from_dataset(cls, hparams, dataset):
        """``num_landmarks`` from a pose dataset's skeleton (so a run directory rebuilds without data)."""
        if hparams.get("num_landmarks", -1) < 0 and getattr(dataset, "num_joints", 0):
            return {"num_landmarks": int(dataset.num_joints)}
        return {}

    def build_from_batch(self, batch):
        if "poses" not in batch:
            if self.hparams.num_landmarks < 0:
                raise ValueError("pose_lstm needs 'poses' in the batch or num_landmarks set to build its weights")
            images = tf.convert_to_tensor(batch["images"])
            batch = dict(batch, poses=tf.zeros([images.shape[0], images.shape[1], self.hparams.num_landmarks, 2]))
        super().build_from_batch(batch)

    def loss_names(self):
        return ["loss"]

    # -- forward ------------------------------------------------------------------------------

    def frame_size(self, batch):
        """(height, width) of the pixel frame for :func:`poses_to_landmarks`, ``[2]`` or ``[B, 2]``.

        The frame of the batch's images.  With ``swap_xy_normalization`` and the batch's ``crop_box``
        ``[B, 4]`` (x1, y1, x2, y2 of the source crop; pose-record contract), the sizes are chosen so that
        the swapped division reproduces the original exactly: ``x_crop / crop_height`` and
        ``y_crop / crop_width`` (Penn Action, spec §2.3), where ``x_crop = x * crop_width / W``.
        """
        images = batch["images"]
        size = tf.constant([images.shape[2], images.shape[3]], tf.float32)
        if "pose_frame_size" in batch:
            size = tf.cast(batch["pose_frame_size"], tf.float32)
        if self.hparams.swap_xy_normalization and "crop_box" in batch:
            box = tf.cast(batch["crop_box"], tf.float32)
            crop_w, crop_h = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
            ratio = tf.where((crop_w > 0) & (crop_h > 0), crop_h / tf.where(crop_w > 0, crop_w, 1.0), 1.0)
            # poses_to_landmarks(swap=True) divides x by size[0] and y by size[1]
            size = tf.stack([size[..., 1] * ratio, size[..., 0] / ratio], axis=-1)
        return size

    def landmarks(self, batch):
        """(``seq`` [B, T, 2L] in [-1, 1], ``mask2`` [B, T, 2L]) of the batch's poses."""
        if "poses" not in batch:
            raise ValueError("pose_lstm needs 'poses' [B, T, K, 2] in the batch (a pose dataset)")
        poses = tf.convert_to_tensor(batch["poses"], tf.float32)
        if poses.shape.rank != 4 or poses.shape[-1] != 2:
            raise ValueError(f"'poses' must be [B, T, K, 2], got shape {poses.shape}")
        seq = pose_ops.poses_to_landmarks(poses, self.frame_size(batch), self.hparams.swap_xy_normalization)
        if "pose_visibility" in batch:
            mask = pose_ops.visibility_mask(batch["pose_visibility"])
        else:
            mask = tf.ones_like(seq)
        return seq, mask

    def predict_landmarks(self, observed, num_future, training=False):
        """``observed`` [B, C, 2L] (masked) -> predictions [B, num_future, 2L] (a symbolic loop)."""
        hp = self.hparams
        if self.decoder is None:
            self.decoder = tf1_linear(int(observed.shape[-1]), "dec_fc2")
        batch_size = tf.shape(observed)[0]
        state = self.cell.zero_state(batch_size)
        encoded = None
        for t in range(observed.shape[1]):  # the 10 observed steps (static_rnn), outputs discarded
            encoded = tf.nn.relu(self.lm_enc(observed[:, t]))
            if training and hp.keep_prob < 1.0:
                encoded = tf.nn.dropout(encoded, rate=1.0 - hp.keep_prob)
            _, state = self.cell(encoded, state)
        empty = tf.zeros_like(encoded)  # zeros of the encoding's size; dropout of zeros is zeros
        # First future step outside the loop so that dec_fc2 is built in this scope.
        output, state = self.cell(empty, state)
        first = tf.tanh(self.decoder(output))
        outputs = tf.TensorArray(first.dtype, size=num_future, element_shape=first.shape).write(0, first)

        def body(t, state, outputs):
            output, state = self.cell(empty, state)
            return t + 1, state, outputs.write(t, tf.tanh(self.decoder(output)))

        _, _, outputs = tf.while_loop(lambda t, *_: t < num_future, body, (tf.constant(1), state, outputs))
        # float32 whatever the layers' compute dtype (mixed precision): the loss is computed on them.
        return tf.cast(tf.transpose(outputs.stack(), [1, 0, 2]), tf.float32)

    def forward_landmarks(self, batch, training=False):
        """(output [B, T, 2L] = masked observations + predictions, seq, mask2)."""
        seq, mask = self.landmarks(batch)
        context = self.context_frames
        if seq.shape[1] is not None and seq.shape[1] <= context:
            raise ValueError(f"pose_lstm needs more than {context} poses per example, got {seq.shape[1]}")
        masked = seq * mask
        num_future = tf.shape(seq)[1] - context
        predictions = self.predict_landmarks(masked[:, :context], num_future, training)
        return tf.concat([masked[:, :context], predictions], axis=1), seq, mask

    def call(self, batch, training=False):
        output, _, _ = self.forward_landmarks(batch, training)
        gen_poses = pose_ops.landmarks_to_poses(output, self.frame_size(batch), self.hparams.swap_xy_normalization)
        images = batch["images"]
        height, width, channels = images.shape[2], images.shape[3], images.shape[4]
        gen_images = pose_ops.render_poses(gen_poses[:, 1:], height, width, channels, self.hparams.render_sigma)
        return {"gen_images": gen_images, "gen_poses": gen_poses, "gen_landmarks": output}

    def rollout_inputs(self, batch, horizon):
        inputs = super().rollout_inputs(batch, horizon)
        length = self.context_frames + horizon
        for key in ("poses", "pose_visibility"):
            if key in batch:
                value = tf.convert_to_tensor(batch[key])[:, : self.context_frames]
                # future entries are placeholders the model never reads (zero inputs during prediction)
                pad = tf.repeat(tf.zeros_like(value[:, :1]), length - self.context_frames, axis=1)
                inputs[key] = tf.concat([value, pad], axis=1)
        for key in ("pose_frame_size", "crop_box"):
            if key in batch:
                inputs[key] = batch[key]
        return inputs

    # -- losses and optimisation -------------------------------------------------------------

    def landmark_loss(self, output, seq, mask):
        """mean over [B, future, 2L] of mask2 * (output - seq)^2 on the future part only (§4.1)."""
        context = self.context_frames
        return tf.reduce_mean(mask[:, context:] * tf.square(output[:, context:] - seq[:, context:]))

    def generator_losses(self, batch, outputs):
        seq, mask = self.landmarks(batch)
        return {"loss": self.landmark_loss(outputs["gen_landmarks"], seq, mask)}

    def make_optimizer(self):
        hp = self.hparams
        return TF1RMSprop(learning_rate=hp.lr, rho=hp.rmsprop_rho, epsilon=hp.rmsprop_epsilon)

    def current_learning_rate(self):
        return self.hparams.lr

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            output, seq, mask = self.forward_landmarks(batch, training=True)
            loss = self.landmark_loss(output, seq, mask)
            scaled_loss = loss / num_replicas()  # per-replica mean -> global-batch mean (DESIGN.md)
            scaled_loss = self.optimizer.scale_loss(scaled_loss)  # float16: times the dynamic loss scale
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        replicas = num_replicas()
        if replicas > 1:
            # Clip the norm of the whole-batch gradient, as the original's single device saw it: sum over
            # replicas, clip, and hand each replica 1/R of it (the optimizer sums the replicas' gradients).
            gradients = tf.distribute.get_replica_context().all_reduce("sum", gradients)
        # float16: the gradients carry the loss scale until apply(), so the clip norm does too.
        gradients, _ = tf.clip_by_global_norm(gradients, self.hparams.clip_norm * gradient_scale(self.optimizer))
        if replicas > 1:
            gradients = [g / replicas for g in gradients]
        self.optimizer.apply(gradients, variables)
        self.global_step.assign_add(1)
        return self.report({"loss": loss})

    def test_step(self, batch):
        output, seq, mask = self.forward_landmarks(batch, training=False)
        return self.report({"loss": self.landmark_loss(output, seq, mask)})
