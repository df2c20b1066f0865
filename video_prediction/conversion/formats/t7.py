"""A small reader for Torch7 ``.t7`` files (binary, little-endian), e.g. the SVG KTH metadata.

Covers what those files use: nil, numbers, strings, booleans, tables (with back
references) and torch tensors/storages of numeric types.  Tables whose keys are
exactly 1..n become lists (the ``torchfile`` package's list heuristic); strings are
returned as ``str`` (UTF-8, undecodable bytes kept as ``bytes``); tensors as numpy arrays.
Functions are refused.
"""

import struct

import numpy as np

NIL, NUMBER, STRING, TABLE, TORCH, BOOLEAN, FUNCTION, RECUR_FUNCTION, LEGACY_RECUR_FUNCTION = range(9)

_STORAGE_DTYPES = {
    "torch.DoubleStorage": np.float64, "torch.FloatStorage": np.float32, "torch.HalfStorage": np.float16,
    "torch.LongStorage": np.int64, "torch.IntStorage": np.int32, "torch.ShortStorage": np.int16,
    "torch.CharStorage": np.int8, "torch.ByteStorage": np.uint8,
}


class T7FormatError(ValueError):
    pass


class _Reader:
    def __init__(self, data, long_size=8):
        self.data, self.pos, self.long_size = data, 0, long_size
        self.memo = {}

    def _unpack(self, fmt, size):
        if self.pos + size > len(self.data):
            raise T7FormatError(f"unexpected end of file at byte {self.pos}")
        value = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return value

    def int(self):
        return self._unpack("i", 4)[0]

    def long(self):
        return self._unpack("q" if self.long_size == 8 else "i", self.long_size)[0]

    def raw_string(self):
        size = self.int()
        if size < 0 or self.pos + size > len(self.data):
            raise T7FormatError(f"bad string length {size} at byte {self.pos}")
        value = self.data[self.pos: self.pos + size]
        self.pos += size
        return value

    def string(self):
        value = self.raw_string()
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value

    def object(self):
        kind = self.int()
        if kind == NIL:
            return None
        if kind == NUMBER:
            value = self._unpack("d", 8)[0]
            return int(value) if value.is_integer() else value
        if kind == STRING:
            return self.string()
        if kind == BOOLEAN:
            return self.int() == 1
        if kind in (TABLE, TORCH):
            index = self.int()
            if index in self.memo:
                return self.memo[index]
            return self.table(index) if kind == TABLE else self.torch_object(index)
        if kind in (FUNCTION, RECUR_FUNCTION, LEGACY_RECUR_FUNCTION):
            raise T7FormatError("the file holds a Lua function; refusing to read code")
        raise T7FormatError(f"unknown type tag {kind} at byte {self.pos - 4}")

    def table(self, index):
        size = self.int()
        table = {}
        self.memo[index] = table  # before the contents: tables may refer to themselves
        for _ in range(size):
            key = self.object()
            table[key] = self.object()
        keys = list(table)
        if keys and all(isinstance(k, int) for k in keys) and sorted(keys) == list(range(1, len(keys) + 1)):
            as_list = [table[k] for k in range(1, len(keys) + 1)]
            self.memo[index] = as_list
            return as_list
        return table

    def torch_object(self, index):
        version = self.string()
        class_name = self.string() if isinstance(version, str) and version.startswith("V ") else version
        if class_name in _STORAGE_DTYPES:
            dtype = np.dtype(_STORAGE_DTYPES[class_name]).newbyteorder("<")
            size = self.long()
            nbytes = size * dtype.itemsize
            if size < 0 or self.pos + nbytes > len(self.data):
                raise T7FormatError(f"unexpected end of file: a {class_name} of {size} elements at byte {self.pos} "
                                    f"runs past the end ({len(self.data)} bytes)")
            value = np.frombuffer(self.data, dtype, size, self.pos).copy()
            self.pos += nbytes
        elif class_name.endswith("Tensor") and class_name.replace("Tensor", "Storage") in _STORAGE_DTYPES:
            ndim = self.int()
            shape = [self.long() for _ in range(ndim)]
            strides = [self.long() for _ in range(ndim)]
            offset = self.long() - 1  # 1-based
            storage = self.object()
            if ndim == 0 or storage is None:
                value = np.zeros([0], _STORAGE_DTYPES[class_name.replace("Tensor", "Storage")])
            else:
                value = np.lib.stride_tricks.as_strided(
                    storage[offset:], shape, [s * storage.itemsize for s in strides]).copy()
        else:
            raise T7FormatError(f"unsupported torch class {class_name!r}")
        self.memo[index] = value
        return value


def load_t7(path, long_size=8):
    """The object stored in the ``.t7`` file at ``path``."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return _Reader(data, long_size).object()
    except T7FormatError as e:
        raise T7FormatError(f"{path}: {e}") from None
