"""Name -> class registries whose modules are imported on first use.

Lazy imports keep ``import video_prediction`` light and mean a broken optional
piece of one family never breaks the others.
"""

import importlib


def available(entries):
    return sorted(entries)


def lookup(entries, name, kind):
    """The object registered as ``name`` in ``entries`` (``{name: "module:attribute"}``).

    An unknown name raises ``ValueError`` naming it and listing the valid names
    of this ``kind`` ("model", "dataset", ...).
    """
    if name not in entries:
        raise ValueError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(available(entries))}")
    module_name, attribute = entries[name].split(":")
    return getattr(importlib.import_module(module_name), attribute)
