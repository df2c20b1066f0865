"""Hyperparameters: class defaults, then a JSON file/dict, then a ``"k=v,k2=v2"`` string.

Every dataset and model declares ``default_hparams()``.  :func:`resolve_hparams`
merges the three sources in that order and validates each key and value, so a
typo in a JSON file or on the command line fails loudly instead of silently
training with a default.
"""

import ast
import json
import os


class HParams:
    """A validated, attribute-style bag of hyperparameters.

    Attribute access (``hparams.lr``) and ``values()`` (a plain dict copy) are
    the whole public surface; construct it with :func:`resolve_hparams`.
    """

    def __init__(self, values):
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"no hparam {name!r}; valid hparams: {', '.join(sorted(self._values))}"
            ) from None

    def __setattr__(self, name, value):
        raise AttributeError("HParams are read-only; use resolve_hparams() to make a new set")

    def __contains__(self, name):
        return name in self._values

    def __repr__(self):
        items = ", ".join(f"{k}={v!r}" for k, v in sorted(self._values.items()))
        return f"HParams({items})"

    def values(self):
        return dict(self._values)

    def to_json(self):
        return json.dumps(self.values(), sort_keys=True, indent=4)


def _type_name(value):
    return type(value).__name__


def _coerce(key, value, default, valid_keys):
    """Return ``value`` converted to the type of ``default`` or raise ValueError."""

    def fail():
        raise ValueError(
            f"hparam {key!r} expects a value of type {_type_name(default)} "
            f"(default {default!r}), got {value!r} of type {_type_name(value)}"
        )

    if default is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        fail()
    if isinstance(default, int):
        if isinstance(value, bool):
            fail()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        fail()
    if isinstance(default, float):
        if isinstance(value, bool):
            fail()
        if isinstance(value, (int, float)):
            return float(value)
        fail()
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        fail()
    if isinstance(default, (list, tuple)):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and len(default) == 0:
            value = [value]
        if not isinstance(value, (list, tuple)):
            fail()
        if default:
            # Elements take the element type of the default (e.g. (50000, 100000) -> ints).
            value = [_coerce(f"{key}[{i}]", v, default[0], valid_keys) for i, v in enumerate(value)]
        return type(default)(value)
    if isinstance(default, dict):
        if isinstance(value, dict):
            return value
        fail()
    return value


def _parse_value(text):
    """Parse one value of a ``k=v`` string: Python/JSON literal, else a bare string."""
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _split_top_level(text):
    """Split ``a=1,b=[1,2],c=x`` on commas that are not inside brackets."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current))
    return [p for p in parts if p.strip()]


def parse_hparams_string(text):
    """``"lr=0.001,kl_anneal_steps=(1,2)"`` -> ``{"lr": 0.001, "kl_anneal_steps": (1, 2)}``."""
    result = {}
    if not text:
        return result
    for part in _split_top_level(text):
        if "=" not in part:
            raise ValueError(f"malformed hparam assignment {part.strip()!r}; expected name=value")
        key, value = part.split("=", 1)
        result[key.strip()] = _parse_value(value)
    return result


def load_hparams_file(path):
    """Read a JSON dict of hparams, with an error naming the file when it is missing or invalid."""
    if not os.path.exists(path):
        raise ValueError(f"hparams file {path!r} does not exist")
    with open(path) as f:
        try:
            values = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"hparams file {path!r} is not valid JSON: {e}") from None
    if not isinstance(values, dict):
        raise ValueError(f"hparams file {path!r} must hold a JSON object, got {_type_name(values)}")
    return values


def resolve_hparams(defaults, hparams_dict=None, hparams=None, deprecated=()):
    """Merge ``defaults`` <- ``hparams_dict`` (dict or JSON path) <- ``hparams`` (string or dict).

    Keys in ``deprecated`` are dropped silently (the originals' old JSON files
    carry keys that no longer mean anything).  Any other unknown key, or a
    value whose type does not match the default, raises ``ValueError`` naming
    the key and listing the valid keys.
    """
    values = dict(defaults)
    valid_keys = sorted(defaults)
    sources = []
    if hparams_dict:
        if isinstance(hparams_dict, (str, os.PathLike)):
            hparams_dict = load_hparams_file(hparams_dict)
        sources.append(hparams_dict)
    if hparams:
        sources.append(parse_hparams_string(hparams) if isinstance(hparams, str) else hparams)
    for source in sources:
        for key, value in source.items():
            if key in deprecated:
                continue
            if key not in defaults:
                raise ValueError(f"unknown hparam {key!r}; valid hparams: {', '.join(valid_keys)}")
            values[key] = _coerce(key, value, defaults[key], valid_keys)
    return HParams(values)


class ClipLengthsMixin:
    """``context_frames`` / ``sequence_length`` properties read from ``self.hparams`` (datasets and models)."""

    @property
    def context_frames(self):
        return self.hparams.context_frames

    @property
    def sequence_length(self):
        return self.hparams.sequence_length
