"""Optimizers with TF1 semantics that Keras 3's own differ from.

* :class:`TF1RMSprop`: ``tf.train.RMSPropOptimizer`` without momentum: the
  mean-square slot starts at ONES (Keras: zeros), ``ms = rho*ms + (1-rho)*g^2``,
  ``var -= lr*g/sqrt(ms + eps)`` with ``eps`` inside the root (TF1 default
  1e-10; Keras's update has the same form, so only the slot initialiser
  changes).  Used by the hierarchical pose LSTM (specs/hierarchical_lstm.md §4.1).
* :class:`GatedAdam`: ``tf.train.AdamOptimizer`` whose update can be switched
  off per step by a boolean variable without a ``tf.cond`` around the apply (a
  cross-replica merge inside a cond branch is not allowed under a
  distribution strategy).  When off, weights, moments and the step count (TF1's
  ``beta*_power``) stay unchanged, exactly as when the original skipped
  ``sess.run(optimizer)``.  Used by the visual-analogy GAN's update hysteresis
  (specs/hierarchical_lstm.md §4.2).
"""

import keras
import tensorflow as tf


class TF1RMSprop(keras.optimizers.RMSprop):
    """RMSProp as TF1's ``RMSPropOptimizer`` (decay 0.9, momentum 0, epsilon 1e-10, slot initialised to 1)."""

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-10, name="tf1_rmsprop", **kwargs):
        super().__init__(learning_rate=learning_rate, rho=rho, momentum=0.0, epsilon=epsilon, centered=False,
                         name=name, **kwargs)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # TF1 creates the "rms" slot with a ones initializer (training/rmsprop.py, _create_slots).
        for velocity in self._velocities:
            velocity.assign(tf.ones_like(velocity))


class GatedAdam(keras.optimizers.Optimizer):
    """TF1 ``AdamOptimizer`` maths (epsilon-hat form) with an on/off switch ``self.enabled``.

    ``lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)``; ``m = b1 m + (1-b1) g``;
    ``v = b2 v + (1-b2) g^2``; ``var -= lr_t * m / (sqrt(v) + eps)``, with ``t``
    counting only the enabled steps (``applied_steps``).
    """

    def __init__(self, learning_rate=1e-4, beta_1=0.9, beta_2=0.999, epsilon=1e-8, name="gated_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = self.add_optimizer_variables(var_list, "momentum")
        self._velocities = self.add_optimizer_variables(var_list, "velocity")
        self.enabled = self.add_variable((), initializer="ones", dtype="bool", name="enabled",
                                         aggregation="only_first_replica")
        self.applied_steps = self.add_variable((), initializer="zeros", dtype="int64", name="applied_steps",
                                               aggregation="only_first_replica")

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        on = tf.cast(self.enabled, variable.dtype)
        step = tf.cast(self.applied_steps + 1, variable.dtype)
        lr = tf.cast(learning_rate, variable.dtype)
        lr_t = lr * tf.sqrt(1.0 - tf.pow(self.beta_2, step)) / (1.0 - tf.pow(self.beta_1, step))
        new_m = self.beta_1 * m + (1.0 - self.beta_1) * gradient
        new_v = self.beta_2 * v + (1.0 - self.beta_2) * tf.square(gradient)
        self.assign(m, on * new_m + (1.0 - on) * m)
        self.assign(v, on * new_v + (1.0 - on) * v)
        self.assign_sub(variable, on * lr_t * new_m / (tf.sqrt(new_v) + self.epsilon))

    def apply(self, grads, trainable_variables=None):
        result = super().apply(grads, trainable_variables)
        self.applied_steps.assign_add(tf.cast(self.enabled, "int64"))
        return result

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config
