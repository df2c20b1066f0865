"""Peephole LSTM with projection (the functional cell of EPVA's ``tf_ops.lstm_cell``) and its residual stack.

:class:`PeepholeLSTMCell` follows specs/epva.md §3.2 (trap §8.4): one gate matrix ``W``
``[(input + proj), 4 * units]`` and bias ``B`` split in the order ``i, j, f, o``; the
forget bias +1 is added inside (not stored in ``B``); peepholes on ``i`` and ``f`` use
the previous cell state, the one on ``o`` the *new* cell state; the output is projected
by ``W_P`` ``[units, proj]``; no cell clipping.  The state is ``concat(c, m)``
``[B, units + proj]`` and is passed explicitly (the original's cell is functional).
Keras' ``LSTMCell`` differs in all of these.

:class:`ResidualPeepholeLSTMStack` is EPVA's 21-cell predictor core (§3.2 steps 4-6, trap
§8.5): cell #0 on ``concat(pre, back_connection)`` then layer norm; for k = 1, 3, ..., 19
cell #k on ``h`` added to ``h`` without norm, then cell #(k+1) on ``concat(h, pre)``,
layer-normed and added.  The back-connection is cell #18's full state at the previous
step, a learned vector (``back_connect_init``) at the first one.
"""

import keras
import tensorflow as tf

from video_prediction.layers.normalization import LayerNormalization


class PeepholeLSTMCell(keras.layers.Layer):
    """``(inputs [B, D], state [B, units + proj]) -> (output [B, proj], new state)``; see the module docstring."""

    def __init__(self, units, num_proj=None, kernel_initializer="glorot_uniform", forget_bias=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.num_proj = int(num_proj if num_proj is not None else units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.forget_bias = float(forget_bias)

    @property
    def state_size(self):
        return self.units + self.num_proj

    def build(self, input_shape):
        input_dim = int(input_shape[-1])
        init = self.kernel_initializer
        # TF1 names in comments: W_0, B, W_F_diag, W_I_diag, W_O_diag, W_P_0 (all but B use the initializer).
        self.kernel = self.add_weight(name="W", shape=(input_dim + self.num_proj, 4 * self.units), initializer=init)
        self.bias = self.add_weight(name="B", shape=(4 * self.units,), initializer="zeros")
        self.w_f_diag = self.add_weight(name="W_F_diag", shape=(self.units,), initializer=init)
        self.w_i_diag = self.add_weight(name="W_I_diag", shape=(self.units,), initializer=init)
        self.w_o_diag = self.add_weight(name="W_O_diag", shape=(self.units,), initializer=init)
        self.projection = self.add_weight(name="W_P", shape=(self.units, self.num_proj), initializer=init)

    def zero_state(self, batch_size, dtype=None):
        return tf.zeros(tf.stack([batch_size, self.state_size]), dtype or self.compute_dtype)

    def call(self, inputs, state):
        c_prev, m_prev = state[:, : self.units], state[:, self.units :]
        gates = tf.matmul(tf.concat([inputs, m_prev], axis=1), self.kernel) + self.bias
        i, j, f, o = tf.split(gates, 4, axis=1)
        c = (tf.sigmoid(f + self.forget_bias + self.w_f_diag * c_prev) * c_prev
             + tf.sigmoid(i + self.w_i_diag * c_prev) * tf.tanh(j))
        m = tf.sigmoid(o + self.w_o_diag * c) * tf.tanh(c)
        m = tf.matmul(m, self.projection)
        return m, tf.concat([c, m], axis=1)

    def tf1_variables(self, scope):
        """``{TF1 name: variable}`` under the original's ``scope`` (``.../LSTMCell_k``)."""
        return {f"{scope}/W_0": self.kernel, f"{scope}/B": self.bias, f"{scope}/W_F_diag": self.w_f_diag,
                f"{scope}/W_I_diag": self.w_i_diag, f"{scope}/W_O_diag": self.w_o_diag,
                f"{scope}/W_P_0": self.projection}


def track_as_attributes(owner, layers):
    """Also keep each layer of a list as a named attribute: ``tf.train.Checkpoint`` does not follow
    Keras 3's tracked lists (their weights would be silently left out of checkpoints)."""
    for layer in layers:
        setattr(owner, f"_tracked_{layer.name}", layer)


def tf1_auto_name(base, index):
    """TF1's auto-uniquified scope name: ``base`` for the first, ``base_<index>`` for the others."""
    return base if index == 0 else f"{base}_{index}"


class ResidualPeepholeLSTMStack(keras.layers.Layer):
    """EPVA's predictor core: ``depth + 1`` peephole LSTMs of width ``size`` with residual adds.

    ``step(pre, states, back_connection) -> (h, new_states)`` where ``states`` is a list of
    ``depth + 1`` cell states and ``back_connection`` ``[B, 2 * size]`` (``None`` at the first
    step: the learned ``back_connect_init`` broadcast over the batch).  The back-connection for
    the next step is ``new_states[back_connect_cell]`` (cell #18 for depth 20: the original's
    ``lstm_states[pred_depth - 2]``).
    """

    def __init__(self, size, depth=20, init_stddev=1e-2, legacy_back_connect=False, **kwargs):
        super().__init__(**kwargs)
        if depth < 2 or depth % 2:
            raise ValueError(f"the residual LSTM stack needs an even depth >= 2, got {depth}")
        self.size = int(size)
        self.depth = int(depth)
        self.back_connect_cell = self.depth - 2
        self.legacy_back_connect = legacy_back_connect
        init = keras.initializers.TruncatedNormal(stddev=init_stddev)
        self.init_stddev = init_stddev
        self.cells = [PeepholeLSTMCell(self.size, self.size, kernel_initializer=init, name=tf1_auto_name("LSTMCell", k))
                      for k in range(self.depth + 1)]
        # Norms after cell #0 and each even cell: LayerNorm, LayerNorm_1, ... in the original's order.
        self.norms = [LayerNormalization(epsilon=1e-12, name=tf1_auto_name("LayerNorm", k))
                      for k in range(self.depth // 2 + 1)]
        track_as_attributes(self, self.cells + self.norms)

    def build(self, input_shape):
        # ``use_legacy_vars`` (spec §4.6): an unnamed tf.Variable drawn from a normal, not truncated, distribution.
        init = (keras.initializers.RandomNormal(stddev=self.init_stddev) if self.legacy_back_connect
                else keras.initializers.TruncatedNormal(stddev=self.init_stddev))
        self.back_connect_init = self.add_weight(name="back_connect_init", shape=(2 * self.size,), initializer=init)

    def initial_states(self, batch_size):
        return [cell.zero_state(batch_size) for cell in self.cells]

    def step(self, pre, states, back_connection=None):
        if not self.built:
            self.build(pre.shape)
        if back_connection is None:
            # step() is no Keras __call__: the float32 variable is cast to the compute dtype here.
            back_connection = tf.tile(tf.cast(self.back_connect_init, self.compute_dtype)[None],
                                      tf.stack([tf.shape(pre)[0], 1]))
        states = list(states)
        h, states[0] = self.cells[0](tf.concat([pre, back_connection], axis=1), states[0])
        h = self.norms[0](h)
        for k in range(1, self.depth, 2):
            part, states[k] = self.cells[k](h, states[k])
            h = h + part
            part, states[k + 1] = self.cells[k + 1](tf.concat([h, pre], axis=1), states[k + 1])
            h = h + self.norms[(k + 1) // 2](part)
        return h, states

    def tf1_variables(self, scope, legacy_back_connect_name="Variable"):
        """``{TF1 name: variable}`` of the cells, norms and back-connection under ``scope``."""
        names = {}
        for cell in self.cells:
            names.update(cell.tf1_variables(f"{scope}/{cell.name}"))
        for norm in self.norms:
            names[f"{scope}/{norm.name}/beta"] = norm.beta
            names[f"{scope}/{norm.name}/gamma"] = norm.gamma
        back = legacy_back_connect_name if self.legacy_back_connect else "back_connect_init"
        names[f"{scope}/{back}"] = self.back_connect_init
        return names
