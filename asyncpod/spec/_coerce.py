"""Input coercion: user values (typed, or read from YAML/JSON) to canonical shapes.

Why this module exists: a spec arrives as Python objects or as a batch file's dicts,
where YAML has already turned ``1.10`` into a float and ``yes`` into True. Every field
goes through one of these helpers, which either returns the canonical value (a tuple, a
copied dict, a string) or raises :class:`~asyncpod.errors.SpecError` naming the field
path, written the way the user wrote it: ``resources.limits.memory``,
``labels["bad key"]``, ``env[2].name``.

What it deliberately does not do: semantic checks (is this a valid DNS name, is the
request below the limit) belong to ``validate()``; here only types and shapes are
checked, and silent conversions that could change a value (float → string) are refused.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from asyncpod.errors import SpecError

__all__ = [
    "at_line",
    "check_keys",
    "child",
    "key_path",
    "list_items",
    "need_bool",
    "need_mapping",
    "need_str",
    "opt_int",
    "opt_str",
    "raw_map",
    "raw_maps",
    "scalar_str",
    "str_map",
    "str_tuple",
]

_SIMPLE_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


# -- field paths ----------------------------------------------------------------------


def key_path(base: str, key: object) -> str:
    """``labels["bad key"]``: the path of one entry of a user-data mapping."""
    text = json.dumps(key, ensure_ascii=False) if isinstance(key, str) else repr(key)
    return f"{base}[{text}]"


def child(base: str, key: str) -> str:
    """``resources.limits.memory`` but ``resources.limits["nvidia.com/gpu"]``."""
    if _SIMPLE_KEY_RE.fullmatch(key):
        return f"{base}.{key}" if base else key
    return key_path(base, key)


@contextmanager
def at_line(line: int | None) -> Iterator[None]:
    """Stamp a batch file's ``line`` on a :class:`SpecError` raised inside, if it has none."""
    try:
        yield
    except SpecError as exc:
        if line is None or exc.line is not None:
            raise
        raise SpecError(exc.field, exc.problem, line=line) from None


# -- shapes ---------------------------------------------------------------------------


def check_keys(data: Mapping[Any, Any], allowed: Collection[str], path: str) -> None:
    """Reject a key outside ``allowed``, with a "did you mean" when one is close."""
    for key in data:
        if key in allowed:
            continue
        where = child(path, key) if isinstance(key, str) else key_path(path, key)
        close = difflib.get_close_matches(key, list(allowed), n=1) if isinstance(key, str) else []
        if close:
            raise SpecError(where, f"unknown key; did you mean {close[0]!r}?")
        raise SpecError(where, f"unknown key (expected one of: {', '.join(allowed)})")


def need_mapping(value: object, path: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(path, f"must be a mapping, got {type(value).__name__}")
    return value


def need_str(value: object, path: str) -> str:
    if value is None:
        raise SpecError(path, "is required")
    if not isinstance(value, str):
        raise SpecError(path, f"must be a string, got {type(value).__name__}")
    return value


def opt_str(value: object, path: str) -> str | None:
    return None if value is None else need_str(value, path)


def scalar_str(value: object, path: str) -> str:
    """A string, or an int taken literally; floats and bools must be quoted.

    YAML reads ``1.10`` as the float 1.1 and ``yes`` as True: converting those would
    silently change the value, so they are rejected with the fix.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, float)):
        raise SpecError(path, f"must be a string, got {value!r}; quote it in YAML")
    if isinstance(value, int):
        return str(value)
    raise SpecError(path, f"must be a string, got {type(value).__name__}")


def opt_int(value: object, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(path, f"must be an integer, got {value!r}")
    return value


def need_bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(path, f"must be true or false, got {value!r}")
    return value


def str_tuple(value: object, path: str, *, hint: str = "") -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)):
        raise SpecError(path, f"must be a list of strings, not a single string{hint}")
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise SpecError(path, f"must be a list of strings, got {type(value).__name__}")
    return tuple(scalar_str(item, f"{path}[{i}]") for i, item in enumerate(value))


def str_map(value: object, path: str) -> dict[str, str]:
    if value is None:
        return {}
    mapping = need_mapping(value, path)
    out: dict[str, str] = {}
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise SpecError(key_path(path, key), "keys must be strings")
        if not isinstance(item, str):
            raise SpecError(
                key_path(path, key), f"value must be a string, got {item!r}; quote it in YAML"
            )
        out[key] = item
    return out


def raw_map(value: object, path: str) -> dict[str, Any] | None:
    """A raw Kubernetes object (camelCase), deep-copied so a frozen spec stays frozen."""
    if value is None:
        return None
    return copy.deepcopy(dict(need_mapping(value, path)))


def list_items(value: object, path: str, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise SpecError(path, f"must be a list of {what}, got {type(value).__name__}")
    return list(value)


def raw_maps(value: object, path: str) -> tuple[dict[str, Any], ...]:
    return tuple(
        copy.deepcopy(dict(need_mapping(item, f"{path}[{i}]")))
        for i, item in enumerate(list_items(value, path, "mappings"))
    )
