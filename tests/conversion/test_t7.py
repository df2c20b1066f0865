"""The Torch7 reader on files written in the format (the SVG KTH metadata layout)."""

import struct

import numpy as np
import pytest

from video_prediction.conversion.formats.t7 import T7FormatError, load_t7


class T7Writer:
    """Minimal Torch7 serialiser (torch.save format 'binary') for fixtures."""

    def __init__(self):
        self.parts, self.next_index = [], 1

    def int(self, v):
        self.parts.append(struct.pack("<i", v))

    def string(self, s):
        data = s.encode() if isinstance(s, str) else s
        self.int(len(data))
        self.parts.append(data)

    def write(self, obj):
        if obj is None:
            self.int(0)
        elif isinstance(obj, bool):
            self.int(5)
            self.int(int(obj))
        elif isinstance(obj, (int, float)):
            self.int(1)
            self.parts.append(struct.pack("<d", float(obj)))
        elif isinstance(obj, (str, bytes)):
            self.int(2)
            self.string(obj)
        elif isinstance(obj, np.ndarray):  # a DoubleTensor with its own storage
            self.int(4)
            self.int(self._index())
            self.string("V 1")
            self.string("torch.DoubleTensor")
            self.int(obj.ndim)
            for d in obj.shape:
                self.parts.append(struct.pack("<q", d))
            for s in np.array(obj.strides) // 8:
                self.parts.append(struct.pack("<q", s))
            self.parts.append(struct.pack("<q", 1))
            self.int(4)
            self.int(self._index())
            self.string("V 1")
            self.string("torch.DoubleStorage")
            self.parts.append(struct.pack("<q", obj.size))
            self.parts.append(np.ascontiguousarray(obj, "<f8").tobytes())
        else:
            items = list(enumerate(obj, start=1)) if isinstance(obj, list) else list(obj.items())
            self.int(3)
            self.int(self._index())
            self.int(len(items))
            for key, value in items:
                self.write(key)
                self.write(value)
        return self

    def _index(self):
        self.next_index += 1
        return self.next_index - 1

    def save(self, path):
        with open(path, "wb") as f:
            f.write(b"".join(self.parts))


def test_reads_svg_kth_metadata_layout(tmp_path):
    meta = [{"vid": "person01_walking_d1", "files": [[f"image-{i:03d}_64x64.png" for i in range(1, 4)],
                                                     ["image-010_64x64.png"]]},
            {"vid": "person02_walking_d2", "files": [["image-001_64x64.png"]], "flag": True, "n": 2.5}]
    path = tmp_path / "train_meta64x64.t7"
    T7Writer().write(meta).save(path)
    loaded = load_t7(path)
    assert loaded == meta


def test_reads_tensors(tmp_path):
    array = np.arange(6, dtype=np.float64).reshape(2, 3)
    path = tmp_path / "t.t7"
    T7Writer().write({"x": array}).save(path)
    np.testing.assert_array_equal(load_t7(path)["x"], array)


def test_refuses_functions_and_truncation(tmp_path):
    path = tmp_path / "f.t7"
    path.write_bytes(struct.pack("<ii", 6, 1))
    with pytest.raises(T7FormatError, match="function"):
        load_t7(path)
    path.write_bytes(struct.pack("<ii", 2, 50) + b"abc")
    with pytest.raises(T7FormatError):
        load_t7(path)
