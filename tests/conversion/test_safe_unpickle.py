"""The restricted unpickler: numpy arrays and plain containers load, anything else is refused."""

import collections
import io
import os
import pickle

import numpy as np
import pytest

from video_prediction.conversion.formats.safe_unpickle import ALLOWED_GLOBALS, restricted_load, restricted_loads


class _CallsSystem:
    """Pickles as ``os.system("...")``: what a malicious weight file would contain."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_numpy_arrays_and_containers_round_trip():
    tree = {
        "params": collections.OrderedDict(conv=np.arange(12, dtype=np.float32).reshape(3, 4)),
        "stats": [np.float64(2.5), np.int32(3), (1, 2.0, "x", None, True)],
        "misc": {"set": {1, 2}, "frozen": frozenset({3}), "bytes": b"\x00\xff", "complex": 1 + 2j},
        "fortran": np.asfortranarray(np.ones((2, 3), np.float16)),
    }
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        loaded = restricted_loads(pickle.dumps(tree, protocol=protocol))
        np.testing.assert_array_equal(loaded["params"]["conv"], tree["params"]["conv"])
        assert isinstance(loaded["params"], collections.OrderedDict)
        assert loaded["params"]["conv"].dtype == np.float32
        assert loaded["stats"][0] == 2.5 and loaded["stats"][1] == 3
        assert loaded["stats"][2] == (1, 2.0, "x", None, True)
        assert loaded["misc"] == tree["misc"]
        np.testing.assert_array_equal(loaded["fortran"], tree["fortran"])


def test_legacy_numpy_core_name_is_accepted():
    # Pickles written by numpy < 2 name numpy.core.multiarray; numpy >= 2 writes numpy._core.
    data = pickle.dumps(np.arange(3.0), protocol=2)
    legacy = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in legacy
    np.testing.assert_array_equal(restricted_loads(legacy), np.arange(3.0))
    assert ("numpy.core.multiarray", "_reconstruct") in ALLOWED_GLOBALS


def test_os_system_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"weights": np.zeros(2), "evil": _CallsSystem(marker)})
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global (posix|os|nt)\.system"):
        restricted_loads(payload)
    assert not marker.exists()
    # plain pickle would have run it: the payload is real
    pickle.loads(payload)
    assert marker.exists()


@pytest.mark.parametrize("obj", [
    print,                       # builtins.print: a builtin function, not a container
    collections.Counter({1: 2}),  # a container class that is not on the list
    io.BytesIO,                  # a class from another module
])
def test_other_globals_are_refused(obj):
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        restricted_loads(pickle.dumps(obj))


def test_eval_via_builtins_is_refused():
    # GLOBAL builtins.eval followed by REDUCE: hand-written opcodes, as an attacker would.
    payload = b"cbuiltins\neval\n(V__import__('os')\ntR."
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.eval"):
        restricted_loads(payload)


def test_extra_globals_are_opt_in():
    payload = pickle.dumps(collections.Counter({"a": 1}))
    loaded = restricted_loads(payload, extra_globals={("collections", "Counter"): collections.Counter})
    assert loaded == collections.Counter({"a": 1})


def test_reads_from_a_file(tmp_path):
    path = tmp_path / "weights.ckpt"
    path.write_bytes(pickle.dumps({"kernel": np.ones((1, 1, 3, 4), np.float32)}))
    with open(path, "rb") as f:
        assert restricted_load(f)["kernel"].shape == (1, 1, 3, 4)
