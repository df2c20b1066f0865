"""A restricted unpickler for weight files downloaded from the internet.

``pickle.load`` runs whatever callables a pickle names, so a tampered
weight file could run ``os.system``.  :func:`restricted_load` reads only
pickles built from plain containers and numpy arrays: every global the
pickle references must be on an allow-list, anything else raises
``pickle.UnpicklingError`` naming the refused global.

Usage::

    with open(path, "rb") as f:
        params = restricted_load(f)

Callers that need a few more globals (e.g. the torch tensor-rebuild
functions of a legacy ``.pth`` file) pass ``extra_globals``, a mapping from
``(module, name)`` to the callable to use instead.  The replacement is
chosen by the caller, so the real module is never imported.  A legacy
(non-zip) torch file additionally needs a ``persistent_load`` for its storage
ids: subclass :class:`RestrictedUnpickler` and define it (checked on the
``lpips`` package's v0.1 ``.pth`` heads, tests/data/README.md).
"""

import codecs
import collections
import io
import pickle

import numpy as np

# numpy moved its C core from ``numpy.core`` to ``numpy._core`` in 2.0; pickles
# written by either version name one or the other.  Map both to the objects
# of the installed numpy without importing the deprecated ``numpy.core`` shim.
_NUMPY_CORE = np._core if hasattr(np, "_core") else np.core
_NUMPY_MULTIARRAY = _NUMPY_CORE.multiarray

ALLOWED_GLOBALS = {
    # numpy array / scalar / dtype reconstruction (what ndarray.__reduce__ emits)
    ("numpy.core.multiarray", "_reconstruct"): _NUMPY_MULTIARRAY._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _NUMPY_MULTIARRAY._reconstruct,
    ("numpy.core.multiarray", "scalar"): _NUMPY_MULTIARRAY.scalar,
    ("numpy._core.multiarray", "scalar"): _NUMPY_MULTIARRAY.scalar,
    # protocol-5 pickles rebuild arrays from a byte buffer
    ("numpy.core.numeric", "_frombuffer"): _NUMPY_CORE.numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _NUMPY_CORE.numeric._frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # plain containers
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "complex"): complex,
    ("builtins", "slice"): slice,
    # Protocol-2 pickles written by Python 3 encode ``bytes`` as
    # ``_codecs.encode(text, "latin1")``; it only converts a string to bytes.
    ("_codecs", "encode"): codecs.encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only allow-listed globals.

    ``extra_globals`` maps ``(module, name)`` to the object to return for
    that global, on top of :data:`ALLOWED_GLOBALS`.
    """

    def __init__(self, file, *, extra_globals=None, **kwargs):
        super().__init__(file, **kwargs)
        self._allowed = dict(ALLOWED_GLOBALS)
        if extra_globals:
            self._allowed.update(extra_globals)

    def find_class(self, module, name):
        # Protocol < 3 pickles name Python 2's module for builtins (pickle's fix_imports).
        if module == "__builtin__":
            module = "builtins"
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: only numpy arrays and plain containers are "
                "allowed in weight files") from None


def restricted_load(file, *, extra_globals=None, **kwargs):
    """Unpickle from a binary file object, allowing only numpy arrays and plain containers."""
    return RestrictedUnpickler(file, extra_globals=extra_globals, **kwargs).load()


def restricted_loads(data, *, extra_globals=None, **kwargs):
    """Unpickle from ``bytes``, allowing only numpy arrays and plain containers."""
    return restricted_load(io.BytesIO(data), extra_globals=extra_globals, **kwargs)
