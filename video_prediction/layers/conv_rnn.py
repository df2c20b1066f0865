"""Recurrent cells with the original's TF1 semantics (specs/savp.md §3.4, §8.2).

Each cell is a Keras layer called once per time step:
``outputs, new_state = cell(inputs, state)``; ``zero_state(batch, ...)``
gives the initial state.  ``inputs_non_spatial`` (a ``[B, D]`` vector) is the
original's ``use_tile_concat=False`` path: it is added to the gates through a
bias-free dense layer (``weights``) instead of being tiled into the input.

* :class:`BasicConv2DLSTMCell`: gates from one SAME conv over
  ``concat(inputs, h)`` into 4F channels ordered i, j, f, o; no conv bias when
  normalised; one instance norm over all 4F gates (scope
  ``input_transform_forget_output``) or, for layer norm, one per gate; forget
  bias +1; the new cell state is normalised (``state``).
* :class:`Conv2DGRUCell`: the original's conv-GRU (reset/update gates, then a
  candidate conv over ``[x, h, r*h]``).
* :class:`BasicLSTMCell`: TF1 ``LSTMCell`` (gates i, j, f, o, forget bias 1,
  glorot-uniform kernel ``[in + units, 4 units]``) used on the latents.
"""

import keras
import tensorflow as tf

from video_prediction.layers.normalization import make_norm_layer
from video_prediction.layers.resampling import kernel_initializer


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value), int(value))


class _ConvRNNCellBase(keras.layers.Layer):
    def __init__(self, filters, kernel_size=(5, 5), norm_layer="instance", non_spatial_units=None,
                 kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        # None: SAVP's truncated normal (stddev 0.02); Finn et al.'s cell (SV2P, SNA) uses slim's glorot uniform.
        self.kernel_initializer = kernel_initializer
        self.filters = int(filters)
        self.non_spatial_units = non_spatial_units
        self.kernel_size = _pair(kernel_size)
        self.norm_layer = norm_layer
        self.normalized = norm_layer != "none"
        # The original normalises the concatenated gates at once for instance norm
        # (identical per channel) and gate by gate for layer norm (not identical).
        self.separate_norms = norm_layer == "layer"

    def _conv_weights(self, name, in_channels, out_channels, bias_initializer="zeros"):
        kernel = self.add_weight(
            name=f"{name}kernel", shape=self.kernel_size + (in_channels, out_channels),
            initializer=self.kernel_initializer or kernel_initializer(),
        )
        bias = None
        if not self.normalized:
            bias = self.add_weight(name=f"{name}bias", shape=(out_channels,), initializer=bias_initializer)
        return kernel, bias

    def _add_norms(self, names, beta_initializer="zeros"):
        for name in names:
            # attribute "norm_<scope>" (Keras layers already own e.g. .input/.output); layer name = scope
            setattr(self, f"norm_{name}", make_norm_layer(self.norm_layer, name=name,
                                                          beta_initializer=beta_initializer))

    def _conv(self, inputs, kernel, bias):
        outputs = tf.nn.conv2d(inputs, kernel, strides=1, padding="SAME")
        return tf.nn.bias_add(outputs, bias) if bias is not None else outputs

    def zero_state(self, batch_size, height, width):
        raise NotImplementedError

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, norm_layer=self.norm_layer,
                      non_spatial_units=self.non_spatial_units, kernel_initializer=self.kernel_initializer)
        return config





class BasicConv2DLSTMCell(_ConvRNNCellBase):
    """Conv-LSTM; state ``(c, h)``, output ``h``."""

    def build(self, input_shape):
        in_channels = input_shape[-1] + self.filters
        self.kernel, self.bias = self._conv_weights("", in_channels, 4 * self.filters)
        self.non_spatial_kernel = None
        if self.non_spatial_units:
            self.non_spatial_kernel = self.add_weight(
                name="weights", shape=(self.non_spatial_units, 4 * self.filters), initializer=kernel_initializer()
            )
        # Norm layers are attributes named like the original's scopes (not a dict: TF
        # checkpoints only follow attributes of Keras layers, not Keras-tracked dicts).
        if self.normalized:
            separate = ("input", "transform", "forget", "output")
            self._add_norms(separate if self.separate_norms else ("input_transform_forget_output",))
        self.state_norm = make_norm_layer(self.norm_layer, name="state") if self.normalized else None

    def call(self, inputs, state, inputs_non_spatial=None):
        c, h = state
        gates = self._conv(tf.concat([inputs, h], axis=-1), self.kernel, self.bias)
        if inputs_non_spatial is not None:
            gates = gates + tf.matmul(inputs_non_spatial, self.non_spatial_kernel)[:, None, None, :]
        if self.normalized and not self.separate_norms:
            gates = self.norm_input_transform_forget_output(gates)
        i, j, f, o = tf.split(gates, 4, axis=-1)
        if self.separate_norms:
            i, j = self.norm_input(i), self.norm_transform(j)
            f, o = self.norm_forget(f), self.norm_output(o)
        forget_bias = 1.0  # added at run time, not stored in a bias (TF1)
        new_c = c * tf.sigmoid(f + forget_bias) + tf.sigmoid(i) * tf.tanh(j)
        if self.state_norm is not None:
            new_c = self.state_norm(new_c)
        new_h = tf.tanh(new_c) * tf.sigmoid(o)
        return new_h, (new_c, new_h)

    def zero_state(self, batch_size, height, width):
        zeros = tf.zeros([batch_size, height, width, self.filters], self.compute_dtype)
        return (zeros, zeros)


class Conv2DGRUCell(_ConvRNNCellBase):
    """Conv-GRU of the original's rnn_ops.py; state ``h``, output ``h``."""

    def build(self, input_shape):
        gates_in = input_shape[-1] + self.filters
        # Gate biases start at 1 and the candidate's at 0 (bias_initializer=None in the original).
        self.gates_kernel, self.gates_bias = self._conv_weights("gates_", gates_in, 2 * self.filters, "ones")
        self.candidate_kernel, self.candidate_bias = self._conv_weights(
            "candidate_", gates_in + self.filters, self.filters
        )
        self.gates_weights = self.candidate_weights = None
        if self.non_spatial_units:
            self.gates_weights = self.add_weight(
                name="gates_weights", shape=(self.non_spatial_units, 2 * self.filters),
                initializer=kernel_initializer(),
            )
            self.candidate_weights = self.add_weight(
                name="candidate_weights", shape=(self.non_spatial_units, self.filters),
                initializer=kernel_initializer(),
            )
        if self.normalized:
            # Gate norms' beta starts at 1 like the gate biases, the candidate's at 0.
            gate_names = ("reset", "update") if self.separate_norms else ("reset_update",)
            self._add_norms(gate_names, beta_initializer="ones")
            self._add_norms(("state",))

    def call(self, inputs, state, inputs_non_spatial=None):
        gate_inputs = tf.concat([inputs, state], axis=-1)
        gates = self._conv(gate_inputs, self.gates_kernel, self.gates_bias)
        if inputs_non_spatial is not None:
            gates = gates + tf.matmul(inputs_non_spatial, self.gates_weights)[:, None, None, :]
        if self.normalized and not self.separate_norms:
            gates = self.norm_reset_update(gates)
        r, u = tf.split(gates, 2, axis=-1)
        if self.separate_norms:
            r, u = self.norm_reset(r), self.norm_update(u)
        r, u = tf.sigmoid(r), tf.sigmoid(u)
        # As in the original, the candidate conv sees [x, h, r*h] (its input is the gates' input plus r*h).
        candidate = self._conv(tf.concat([gate_inputs, r * state], axis=-1), self.candidate_kernel,
                               self.candidate_bias)
        if inputs_non_spatial is not None:
            candidate = candidate + tf.matmul(inputs_non_spatial, self.candidate_weights)[:, None, None, :]
        if self.normalized:
            candidate = self.norm_state(candidate)
        new_h = u * state + (1 - u) * tf.tanh(candidate)
        return new_h, new_h

    def zero_state(self, batch_size, height, width):
        return tf.zeros([batch_size, height, width, self.filters], self.compute_dtype)


CONV_RNNS = ("lstm", "gru")


def make_conv_rnn_cell(conv_rnn, filters, norm_layer, kernel_size=(5, 5), non_spatial_units=None, name=None):
    """A conv-RNN cell by the original's ``conv_rnn`` name (``lstm`` or ``gru``)."""
    kwargs = dict(norm_layer=norm_layer, non_spatial_units=non_spatial_units, name=name)
    if conv_rnn == "lstm":
        return BasicConv2DLSTMCell(filters, kernel_size, **kwargs)
    if conv_rnn == "gru":
        return Conv2DGRUCell(filters, kernel_size, **kwargs)
    raise ValueError(f"unknown conv_rnn {conv_rnn!r}; valid: {', '.join(CONV_RNNS)}")


class BasicLSTMCell(keras.layers.Layer):
    """TF1 ``LSTMCell``: ``[i, j, f, o] = [x, h] @ kernel + bias``, forget bias 1, state ``(c, h)``."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1] + self.units, 4 * self.units), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(4 * self.units,), initializer="zeros")

    def call(self, inputs, state):
        c, h = state
        gates = tf.matmul(tf.concat([inputs, h], axis=-1), self.kernel) + self.bias
        i, j, f, o = tf.split(gates, 4, axis=-1)
        new_c = c * tf.sigmoid(f + 1.0) + tf.sigmoid(i) * tf.tanh(j)
        new_h = tf.tanh(new_c) * tf.sigmoid(o)
        return new_h, (new_c, new_h)

    def zero_state(self, batch_size):
        zeros = tf.zeros([batch_size, self.units], self.compute_dtype)
        return (zeros, zeros)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config



class BasicGRUCell(keras.layers.Layer):
    """TF1 ``GRUCell``: gates ``sigmoid([x, h] W_g + b_g)`` (bias init 1) -> r, u; candidate
    ``tanh([x, r*h] W_c + b_c)``; ``h' = u*h + (1-u)*c``.  State is ``h``."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        total = input_shape[-1] + self.units
        self.gates_kernel = self.add_weight(name="gates_kernel", shape=(total, 2 * self.units),
                                            initializer="glorot_uniform")
        self.gates_bias = self.add_weight(name="gates_bias", shape=(2 * self.units,), initializer="ones")
        self.candidate_kernel = self.add_weight(name="candidate_kernel", shape=(total, self.units),
                                                initializer="glorot_uniform")
        self.candidate_bias = self.add_weight(name="candidate_bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs, state):
        gates = tf.sigmoid(tf.matmul(tf.concat([inputs, state], -1), self.gates_kernel) + self.gates_bias)
        r, u = tf.split(gates, 2, axis=-1)
        candidate = tf.tanh(tf.matmul(tf.concat([inputs, r * state], -1), self.candidate_kernel)
                            + self.candidate_bias)
        new_h = u * state + (1 - u) * candidate
        return new_h, new_h

    def zero_state(self, batch_size):
        return tf.zeros([batch_size, self.units], self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


RNNS = ("lstm", "gru")


def make_rnn_cell(rnn, units, name=None):
    """A vector RNN cell by the original's ``rnn`` name (TF1 ``LSTMCell`` or ``GRUCell`` semantics)."""
    if rnn == "lstm":
        return BasicLSTMCell(units, name=name)
    if rnn == "gru":
        return BasicGRUCell(units, name=name)
    raise ValueError(f"unknown rnn {rnn!r}; valid: {', '.join(RNNS)}")
