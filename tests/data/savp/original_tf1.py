"""Load the original SAVP package (alexlee-gk/video_prediction) from a checkout, under TF 2.21's tf.compat.v1.

Nothing of the original is copied here: its modules are imported from the checkout given at run time, with
``import tensorflow as tf`` inside them answered by a stand-in for TF1 (``tf.compat.v1`` plus the few
``tf.contrib`` pieces they use, taken from tf-slim 1.1.0 or written below).  Used by
``tests/data/savp/make_reference.py`` (parity references) and ``benchmarks/references/savp_tf1.py`` (the
train-step timer); never imported by the test suite.

Requirements: TF 2.21 with ``tf_keras`` (``TF_USE_LEGACY_KERAS=1`` is set here before TensorFlow is imported,
for ``tf.compat.v1.nn.rnn_cell`` and ``tf.compat.v1.layers``) and ``tf-slim==1.1.0`` on ``sys.path`` (e.g.
``pip install --target DIR tf-slim==1.1.0``).  The original's package name ``video_prediction`` is the same
as ours, so the process must not import ours.

What the stand-in provides (each a documented TF1 API with the same semantics):

* ``tf`` = ``tf.compat.v1`` (v2 behaviour disabled: graph mode, TensorShape ``Dimension``s, ref variables);
* ``tf.contrib.training.HParams``: a minimal HParams (attributes, ``override_from_dict``, ``parse``,
  ``values``);
* ``tf.contrib.rnn.BasicLSTMCell`` / ``GRUCell``: ``tf.compat.v1.nn.rnn_cell``'s;
* ``tf.contrib.slim``, ``tf.contrib.layers.layer_norm`` and ``tensorflow.contrib.{framework,layers}`` internals:
  tf-slim's (the sv2p/sna/dna modules, imported by ``models/__init__.py``, need slim);
* ``tf.contrib.graph_editor``: absent; its only user, ``tf_utils.replace_read_ops`` (the generator loss
  reading the discriminator weights *after* the discriminator update), is replaced by
  :func:`replace_read_ops`, which rewires the same read ops with ``Operation._update_input`` (checked: all
  32 discriminator weights of ``ours_savp`` get a read made under the discriminator's Adam step);
* ``summary_op_util.skip_summary`` (gone from TF 2): ``False``, as TF1 off TPU;
* ``lpips_tf``: a stand-in returning zeros (the LPIPS metric is only built into the summaries/eval graph,
  never run by a train step; the real one downloads a network);
* ``tensorboard.summary.pr_curve_raw_data_op`` (gone from TensorBoard 2; the original's plot summaries of the
  eval metrics use it): an empty summary;
* ``random_normal`` can be fed: :func:`feed_random_normal` queues arrays that the next calls of matching shape
  return (the parity references feed the latent noise this way).
"""

import builtins
import importlib.abc
import importlib.machinery
import os
import sys
import types

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as _tf  # noqa: E402

v1 = _tf.compat.v1
_FED_NORMALS = []


class HParams:
    """The subset of ``tf.contrib.training.HParams`` the original uses."""

    def __init__(self, **kwargs):
        self._keys = list(kwargs)
        for key, value in kwargs.items():
            setattr(self, key, value)

    def override_from_dict(self, values):
        for key, value in values.items():
            if key not in self._keys:
                raise ValueError(f"unknown hparam {key}")
            setattr(self, key, value)
        return self

    def parse(self, text):
        for item in filter(None, text.split(",")):
            key, value = item.split("=")
            default = getattr(self, key)
            if isinstance(default, bool):
                value = value.lower() in ("true", "1")
            elif isinstance(default, (int, float)):
                value = type(default)(value)
            setattr(self, key, value)
        return self

    def values(self):
        return {key: getattr(self, key) for key in self._keys}


def feed_random_normal(*arrays):
    """Queue arrays: each later ``tf.random_normal(shape)`` call of that shape returns the first queued one."""
    _FED_NORMALS.extend(np.asarray(a, np.float32) for a in arrays)


def _random_normal(shape, mean=0.0, stddev=1.0, *args, **kwargs):
    # A dimension that is a tensor (the original's batch size is tf.shape(images)[1]) matches any size.
    dims = [v1.get_static_value(d) if isinstance(d, v1.Tensor) else int(d) for d in shape] \
        if isinstance(shape, (list, tuple)) else None
    for i, array in enumerate(_FED_NORMALS):
        if dims is not None and len(dims) == array.ndim and all(
                d is None or d == n for d, n in zip(dims, array.shape)):
            _FED_NORMALS.pop(i)
            return v1.constant(array) * stddev + mean
    return v1.random_normal(shape, mean, stddev, *args, **kwargs)


def replace_read_ops(loss_or_losses, var_list):
    """``tf_utils.replace_read_ops`` without graph_editor: the ops between ``var_list`` and the loss read each
    variable through a new read op created now (so under the caller's control dependencies)."""
    losses = loss_or_losses if isinstance(loss_or_losses, (list, tuple)) else [loss_or_losses]
    # ops on a path from a variable to the loss: backward-reachable from the loss and forward from a variable
    backward, stack = set(), [t.op for t in losses]
    while stack:
        op = stack.pop()
        if op in backward:
            continue
        backward.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    forward, stack = set(), [var.op for var in var_list]
    while stack:
        op = stack.pop()
        if op in forward or op not in backward:
            continue
        forward.add(op)
        stack.extend(c for out in op.outputs for c in out.consumers())
    ops = forward
    for var in var_list:
        if var.op not in ops:
            continue
        output, = var.op.outputs
        for read_op in [c for c in output.consumers() if c in ops]:
            read_t, = read_op.outputs
            with v1.name_scope("/".join(read_op.name.split("/")[:-1]) + "/"), v1.device(read_op.device):
                new_read = var.read_value()
            for consumer in [c for c in read_t.consumers() if c in ops]:
                for index, tensor in enumerate(consumer.inputs):
                    if tensor is read_t:
                        consumer._update_input(index, new_read)


def _lpips(input0, input1):
    return v1.zeros(v1.shape(input0)[:-3])


def _pr_curve_raw_data_op(name, *args, collections=None, **kwargs):
    return v1.constant("")


def _namespace(**kwargs):
    return types.SimpleNamespace(**kwargs)


def _make_tf1():
    import tf_slim
    from tf_slim.layers import utils as slim_layer_utils
    from tf_slim.ops import variables as slim_variables

    contrib = _namespace(
        training=_namespace(HParams=HParams),
        rnn=_namespace(BasicLSTMCell=v1.nn.rnn_cell.BasicLSTMCell, GRUCell=v1.nn.rnn_cell.GRUCell,
                       LSTMStateTuple=v1.nn.rnn_cell.LSTMStateTuple),
        # tf.contrib.layers.python.layers is the module tf_slim.layers (dna/sna/sv2p models import it)
        layers=_namespace(layer_norm=tf_slim.layers.layer_norm,
                          python=_namespace(layers=_namespace(**dict(vars(tf_slim.layers), utils=slim_layer_utils)))),
        slim=tf_slim,
        framework=_namespace(python=_namespace(ops=_namespace(variables=slim_variables))),
        graph_editor=_namespace(),  # see replace_read_ops
    )
    module = types.ModuleType("tensorflow_v1_standin")
    module.__dict__.update({k: getattr(v1, k) for k in dir(v1) if not k.startswith("__")})
    module.contrib = contrib
    module.random_normal = _random_normal
    return module


class _Loader(importlib.machinery.SourceFileLoader):
    """Executes a module of the checkout with ``import tensorflow`` (and ``lpips_tf``) answered by stand-ins."""

    tf1 = None
    lpips = None
    tensorboard = None

    def exec_module(self, module):
        module.__dict__["__builtins__"] = dict(vars(builtins), __import__=self._import)
        super().exec_module(module)

    @classmethod
    def _import(cls, name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and (name == "tensorflow" or name.startswith("tensorflow.contrib")):
            if not fromlist:
                return cls.tf1
            target = cls.tf1
            for part in name.split(".")[1:]:
                target = getattr(target, part)
            return target
        if level == 0 and name == "lpips_tf":
            return cls.lpips
        if level == 0 and name == "tensorboard" and tuple(fromlist or ()) == ("summary",):
            return cls.tensorboard
        return builtins.__import__(name, globals, locals, fromlist, level)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, checkout):
        self.checkout = checkout

    def find_spec(self, fullname, path, target=None):
        if fullname != "video_prediction" and not fullname.startswith("video_prediction."):
            return None
        base = os.path.join(self.checkout, *fullname.split("."))
        for filename, is_package in ((os.path.join(base, "__init__.py"), True), (base + ".py", False)):
            if os.path.isfile(filename):
                spec = importlib.machinery.ModuleSpec(fullname, _Loader(fullname, filename), origin=filename,
                                                      is_package=is_package)
                spec.has_location = True
                if is_package:
                    spec.submodule_search_locations = [base]
                return spec
        return None


def load_original(checkout, tf_slim_dir=None):
    """Import the checkout's ``video_prediction`` under the TF1 stand-in; returns its ``models`` package."""
    if not os.path.isfile(os.path.join(checkout, "video_prediction", "models", "savp_model.py")):
        raise SystemExit(f"{checkout!r} is not a checkout of alexlee-gk/video_prediction "
                         "(no video_prediction/models/savp_model.py)")
    if "video_prediction" in sys.modules:
        raise RuntimeError("another video_prediction package is already imported in this process")
    if tf_slim_dir:
        sys.path.insert(0, tf_slim_dir)
    v1.disable_v2_behavior()
    from tensorflow.python.ops import summary_op_util

    if not hasattr(summary_op_util, "skip_summary"):  # gif_summary.py asks it (TF1: True only on TPU)
        summary_op_util.skip_summary = lambda: False
    _Loader.tf1 = _make_tf1()
    _Loader.lpips = _namespace(lpips=_lpips)
    _Loader.tensorboard = _namespace(summary=_namespace(pr_curve_raw_data_op=_pr_curve_raw_data_op))
    sys.meta_path.insert(0, _Finder(os.path.abspath(checkout)))
    models = importlib.import_module("video_prediction.models")
    base_model = importlib.import_module("video_prediction.models.base_model")
    base_model.replace_read_ops = replace_read_ops  # bound by name at import time
    importlib.import_module("video_prediction.utils.tf_utils").replace_read_ops = replace_read_ops
    return models
