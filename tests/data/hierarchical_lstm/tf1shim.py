"""tf.compat.v1 plus the few tf.contrib pieces the original graphs use (throwaway, not in the repo)."""
import types as _types
import tensorflow as _tf
from tensorflow.compat.v1 import *  # noqa
from tensorflow.compat.v1 import nn, train, summary, image, layers as _layers  # noqa
_v1 = _tf.compat.v1

def _batch_norm(inputs, is_training=True, reuse=None, scope=None, scale=False, **kw):
    # tf.contrib.layers.batch_norm defaults: decay 0.999, center True, epsilon 0.001, unfused moments
    return _v1.layers.batch_normalization(inputs, training=is_training, reuse=reuse or None, name=scope,
                                          scale=scale, center=True, epsilon=0.001, momentum=0.999, fused=False)

contrib = _types.SimpleNamespace(
    rnn=_types.SimpleNamespace(static_rnn=_v1.nn.static_rnn),
    layers=_types.SimpleNamespace(xavier_initializer=lambda: _v1.glorot_uniform_initializer(),
                                 batch_norm=_batch_norm),
)
