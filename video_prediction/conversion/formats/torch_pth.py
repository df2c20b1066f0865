"""Read a PyTorch ``.pth`` checkpoint (the zip format of ``torch.save``) without torch.

The file is a zip archive holding ``<name>/data.pkl`` (the pickled object) and one
raw little-endian buffer per storage under ``<name>/data/<key>``.  Tensors are
pickled as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``
with the storage as a persistent id ``('storage', <torch.XStorage>, key, location,
numel)``.  A restricted unpickler rebuilds exactly those (as numpy arrays) and
plain containers; any other global (code a checkpoint could smuggle in) raises.
"""

import collections
import io
import os
import pickle
import zipfile
import zlib

import numpy as np

# torch storage class name -> numpy dtype of its elements
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class CheckpointFormatError(ValueError):
    """The file is not a torch zip checkpoint this reader understands."""


class _StorageType:
    def __init__(self, name):
        self.name = name


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    """numpy view of ``storage`` with torch's offset/size/stride (in elements), copied."""
    itemsize = storage.dtype.itemsize
    if len(size) == 0:
        return storage[storage_offset].copy()
    return np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    ).copy()


def _rebuild_parameter(data, requires_grad, backward_hooks, *unused):
    return data


_ALLOWED_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, read_record, byteorder):
        super().__init__(file)
        self._read_record = read_record
        self._byteorder = byteorder
        self._storages = {}

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        raise pickle.UnpicklingError(
            f"checkpoint refers to {module}.{name}, which this reader does not rebuild "
            "(only tensors and plain containers are allowed)"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
        if key not in self._storages:
            dtype = np.dtype(_STORAGE_DTYPES[storage_type.name]).newbyteorder(
                "<" if self._byteorder == "little" else ">")
            self._storages[key] = np.frombuffer(self._read_record(f"data/{key}"), dtype=dtype)
        return self._storages[key]


def load_torch_checkpoint(path):
    """The object ``torch.save`` wrote to ``path``, tensors as numpy arrays."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(4)
        if head == b"PK\x03\x04":  # a zip archive's first entry, without its end: cut short
            raise CheckpointFormatError(f"checkpoint {path} is truncated (a zip archive without its central "
                                        "directory; download or copy it again)")
        raise CheckpointFormatError(
            f"{path} is not a zip-format torch checkpoint (torch >= 1.6 writes that format; "
            "re-save a legacy file with torch.save(obj, path) under a recent torch)"
        )
    try:
        return _load_archive(path)
    except (zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise CheckpointFormatError(f"checkpoint {path} is damaged: {e}") from None


def _load_archive(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise CheckpointFormatError(f"{path}: expected one data.pkl in the archive, found {pickles}")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = archive.read(prefix + "byteorder").decode().strip()

        def read_record(name):
            return archive.read(prefix + name)

        unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), read_record, byteorder)
        return unpickler.load()


def load_state_dict(path, key="model_state_dict"):
    """The parameter dict of a checkpoint: ``checkpoint[key]`` if present, else the object itself."""
    obj = load_torch_checkpoint(path)
    if isinstance(obj, dict) and key in obj:
        obj = obj[key]
    if not isinstance(obj, dict):
        raise CheckpointFormatError(f"{path} holds a {type(obj).__name__}, not a state dict")
    return obj
