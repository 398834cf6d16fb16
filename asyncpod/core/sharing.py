"""One copy of each repeated value across the pods an informer keeps.

Why: a pod kept by the informer (:func:`asyncpod.core.lifecycle.project`) is about
7.6 KB of Python objects, and 4 KB of it are values every other pod of the batch holds
too: ``"True"``, ``"Ready"``, the node's name, the image, the namespace, timestamps of
the same second, whole conditions lists of pods started together. orjson shares dict
keys between documents but makes every value anew, so 10,000 pods in flight hold
10,000 copies of each. :class:`ValueTable` hands back one canonical copy instead:
strings are interned, and a small dict or list (up to :data:`MAX_SHARED_BYTES` of
JSON: a conditions list, a container state, a label set) is replaced by an equal one
already kept. Measured with ``python -m benchmarks.gc_census
--tracemalloc`` (docs/architecture.md, "Memory per run").

Sharing is safe because kept pods are read-only by contract (``run.pod``,
``informer.get``: "do not mutate"); equal values are interchangeable.

What it deliberately does not do: share large subtrees by content (unique to their
pod, their keys would cost more than they save), or grow without bound: at
``capacity`` entries it starts afresh (new values are shared again from the next pod).
"""

from __future__ import annotations

from typing import Any, Final

import orjson

__all__ = ["ValueTable"]

#: A dict or list whose JSON is at most this long is shared by content (its JSON is
#: its key: short, and it keeps the JSON types apart); a larger one only has its parts
#: shared. Conditions lists, container states and label sets fit; a whole status
#: or metadata, unique to its pod, does not.
MAX_SHARED_BYTES: Final = 768

#: Entries kept before the table starts afresh: enough for the values a namespace's
#: pods repeat (nodes, images, condition strings, a few seconds of timestamps).
DEFAULT_CAPACITY: Final = 4096


class ValueTable:
    """Canonical copies of repeated values; :meth:`share` rewrites a pod to use them."""

    __slots__ = ("_capacity", "_values")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._values: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self._values)

    def share(self, document: dict[str, Any]) -> dict[str, Any]:
        """``document`` with its repeated values replaced by canonical ones, in place.

        The document must be freshly decoded (owned by the caller): its inner dicts and
        lists are rewritten. The top-level dict itself is returned, never replaced.
        """
        if len(self._values) > self._capacity:
            self._values.clear()
        self._share_items(document)
        return document

    def _share_items(self, container: dict[str, Any]) -> None:
        values = self._values
        for key, value in container.items():
            kind = value.__class__
            if kind is str:
                shared = values.setdefault(value, value)
            elif kind is dict or kind is list:
                shared = self._share(value)
            else:
                continue
            if shared is not value:
                container[key] = shared  # same keys: safe while iterating

    def _share(self, value: dict[str, Any] | list[Any]) -> Any:
        """A small dict or list: the kept equal one (or this one, kept from now on).
        A large one: itself, with its parts shared."""
        key = orjson.dumps(value)  # keeps JSON's types: true, 1 and 1.0 differ
        if len(key) <= MAX_SHARED_BYTES:
            kept = self._values.get(key)
            if kept is not None:
                return kept
            self._values[key] = value  # first of its kind; its strings shared below
        if isinstance(value, dict):
            self._share_items(value)
        else:
            values = self._values
            for index, item in enumerate(value):
                kind = item.__class__
                if kind is str:
                    value[index] = values.setdefault(item, item)
                elif kind is dict or kind is list:
                    value[index] = self._share(item)
        return value
