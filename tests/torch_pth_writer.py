"""Write ``torch.save``-format (zip) checkpoints without torch, for test fixtures.

The layout is the one torch >= 1.6 writes: ``archive/data.pkl`` (protocol-2 pickle whose
tensors are ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False,
OrderedDict())`` with storages as persistent ids ``('storage', torch.FloatStorage,
key, 'cpu', numel)``), ``archive/data/<key>`` raw little-endian buffers,
``archive/byteorder`` and ``archive/version``.  (Checked in-session: torch 2.13's
``torch.load(weights_only=True)`` reads these files.)
"""

import collections
import contextlib
import io
import pickle
import sys
import types
import zipfile

import numpy as np

_STORAGE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
                  np.dtype(np.int64): "LongStorage", np.dtype(np.int32): "IntStorage",
                  np.dtype(np.uint8): "ByteStorage", np.dtype(np.bool_): "BoolStorage",
                  np.dtype(np.float16): "HalfStorage"}


@contextlib.contextmanager
def _fake_torch_modules(extra_globals=()):
    """Stand-in ``torch`` / ``torch._utils`` modules so pickle can name torch's globals."""
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    torch_module, utils_module = types.ModuleType("torch"), types.ModuleType("torch._utils")
    torch_module._utils = utils_module

    def _rebuild_tensor_v2(*args):
        raise AssertionError("placeholder")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils_module._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in _STORAGE_NAMES.values():
        setattr(torch_module, name, type(name, (), {"__module__": "torch", "__qualname__": name}))
    for module, name, value in extra_globals:
        value.__module__ = module
        value.__qualname__ = name
        setattr(torch_module if module == "torch" else utils_module, name, value)
    sys.modules["torch"], sys.modules["torch._utils"] = torch_module, utils_module
    try:
        yield torch_module, utils_module
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value


class _Storage:
    def __init__(self, key, array):
        self.key, self.array = key, array


def save_pth(obj, path, extra_globals=()):
    """Write ``obj`` (dicts/lists/scalars with numpy arrays for tensors) as a torch zip checkpoint."""
    storages = []
    with _fake_torch_modules(extra_globals) as (torch_module, utils_module):

        class Pickler(pickle._Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, _Storage):
                    storage_type = getattr(torch_module, _STORAGE_NAMES[obj.array.dtype])
                    return ("storage", storage_type, obj.key, "cpu", obj.array.size)
                return None

            def reducer_override(self, obj):
                if isinstance(obj, np.ndarray):
                    array = np.require(obj, requirements="C")
                    storage = _Storage(str(len(storages)), array)
                    storages.append(storage)
                    stride = tuple(s // array.itemsize for s in array.strides) if array.ndim else ()
                    return (utils_module._rebuild_tensor_v2,
                            (storage, 0, tuple(array.shape), stride, False, collections.OrderedDict()))
                return NotImplemented

        buffer = io.BytesIO()
        Pickler(buffer, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/byteorder", "little")
        for storage in storages:
            little_endian = storage.array.astype(storage.array.dtype.newbyteorder("<"))
            archive.writestr(f"archive/data/{storage.key}", little_endian.tobytes())
        archive.writestr("archive/version", "3\n")
