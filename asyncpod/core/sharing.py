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

#: Metadata fields unique to each pod: not worth a place in the table.
_OWN_METADATA: Final = frozenset({"name", "uid", "resourceVersion", "selfLink"})
#: Metadata maps that differ per pod as a whole (a task key, a create token), though
#: most of their values repeat: shared value by value, not as a whole.
_OWN_SETS: Final = frozenset({"labels", "annotations"})

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

    def share(self, pod: dict[str, Any]) -> dict[str, Any]:
        """``pod`` with its repeated values replaced by canonical ones, in place.

        The pod must be freshly decoded (owned by the caller): its inner dicts and
        lists are rewritten; the top-level dict itself is returned, never replaced.
        What is each pod's own (name, uid, resourceVersion; label and annotation sets,
        which carry tokens and task keys) is left as it is, so it does not crowd out of
        the table what repeats; the label and annotation values are shared one by one.
        """
        if len(self._values) > self._capacity:
            self._values.clear()
        values = self._values
        for key, value in pod.items():
            if key == "metadata" and value.__class__ is dict:
                self._share_metadata(value)
            elif value.__class__ is dict or value.__class__ is list:
                shared = self._share(value)
                if shared is not value:
                    pod[key] = shared
            elif value.__class__ is str:
                pod[key] = values.setdefault(value, value)
        return pod

    def _share_metadata(self, metadata: dict[str, Any]) -> None:
        values = self._values
        for key, value in metadata.items():
            if key in _OWN_METADATA:
                continue
            kind = value.__class__
            if kind is str:
                metadata[key] = values.setdefault(value, value)
            elif kind is dict and key in _OWN_SETS:
                for name, item in value.items():
                    if item.__class__ is str:
                        value[name] = values.setdefault(item, item)
            elif kind is dict or kind is list:
                metadata[key] = self._share(value)

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
            # First of its kind; its strings are shared below. The key is copied:
            # orjson's bytes keep their 4 KB buffer.
            self._values[bytes(memoryview(key))] = value
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
