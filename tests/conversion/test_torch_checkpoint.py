"""The torch-free .pth reader on files in torch's zip format (written by tests/torch_pth_writer.py)."""

import collections
import pickle
import zipfile

import numpy as np
import pytest

from torch_pth_writer import save_pth
from video_prediction.conversion.formats.torch_pth import CheckpointFormatError, load_state_dict, load_torch_checkpoint


def test_round_trip_of_a_trainer_checkpoint(tmp_path):
    weights = collections.OrderedDict(
        conv=np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4),
        empty=np.zeros((0,), np.float32),
        steps=np.array(7, np.int64),
        half=np.array([0.5, 1.5], np.float16),
    )
    obj = {"epoch": 3, "model_state_dict": weights,
           "optimizer_state_dict": {"state": {0: {"step": np.array(1.0, np.float32)}},
                                    "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0]}]},
           "scheduler_state_dict": ""}
    path = tmp_path / "checkpoint.pth"
    save_pth(obj, path)
    loaded = load_torch_checkpoint(path)
    assert loaded["epoch"] == 3 and loaded["scheduler_state_dict"] == ""
    assert loaded["optimizer_state_dict"]["param_groups"][0]["betas"] == (0.9, 0.999)
    state = load_state_dict(path)
    assert list(state) == list(weights)
    for key, value in weights.items():
        assert state[key].dtype == value.dtype and state[key].shape == value.shape
        np.testing.assert_array_equal(state[key], value)


def test_strided_views_share_one_storage(tmp_path):
    # torch stores a view as (offset, size, stride) into the parent's storage
    path = tmp_path / "views.pth"
    save_pth({"a": np.arange(12, dtype=np.float32).reshape(3, 4)}, path)
    with zipfile.ZipFile(path) as archive:
        assert "archive/data.pkl" in archive.namelist() and "archive/data/0" in archive.namelist()
    assert load_torch_checkpoint(path)["a"][2, 3] == 11


def test_rejects_other_globals(tmp_path):
    def evil():
        pass

    path = tmp_path / "evil.pth"
    save_pth({"x": evil}, path, extra_globals=[("torch._utils", "evil", evil)])
    with pytest.raises(pickle.UnpicklingError, match="torch._utils.evil"):
        load_torch_checkpoint(path)


def test_rejects_legacy_format(tmp_path):
    path = tmp_path / "legacy.pth"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointFormatError, match="zip-format"):
        load_torch_checkpoint(path)
