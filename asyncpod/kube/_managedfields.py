"""Cut a pod's ``metadata.managedFields`` out of its JSON bytes before they are decoded.

Why it exists: every pod the API server sends carries ``managedFields``, the
server-side-apply bookkeeping: a list of entries whose ``fieldsV1`` trees name every
field each writer set. A running pod's watch event is ~4.4 KB of JSON and 118
containers (dicts and lists) decoded; without ``managedFields`` it is ~2.9 KB and 47
(measured on a kwok pod of the local control plane). Nothing in asyncpod reads it
(:func:`asyncpod.core.lifecycle.project` drops it from what the informer keeps), yet
decoding it allocated most of each event's objects: CPU, and young garbage-collector
passes, for every event of every pod a shared watch carries.

The API server has no request option that leaves it out of a WATCH, so the bytes are
cut before ``orjson.loads``. The cut is sound because of how the kube-apiserver
serializes a pod (Go struct field order):

* ``managedFields`` is the last field of ``ObjectMeta``, and ``spec`` the field after
  ``metadata`` in a ``Pod``: the list ends right before ``},"spec":{``;
* the bytes ``,"managedFields":[{"manager":`` cannot occur inside a JSON string (its
  quotes would be escaped), and no earlier part of a pod has a key of that name with a
  list value (labels and annotations map to strings);
* inside the list, no key is ``"spec"``: the entries' keys are fixed (``manager``,
  ``operation``, ``fieldsV1``, ...) and ``fieldsV1``'s keys all carry a prefix
  (``f:spec``, ``k:{...}``, ``v:...``, ``.``).

Bytes without that shape (no ``managedFields``; keys in another order, as a proxy that
re-serializes objects may write them) are left as they are and decoded whole. The one
shape that would lose more than ``managedFields`` is a list-valued key written after it
in ``metadata``: the kube-apiserver writes none (``ObjectMeta`` has no field after it).
Cut bytes that do not decode (the markers at two different depths of a document of some
other shape) are decoded whole instead: :func:`loads_without_managed_fields`.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

__all__ = ["loads_without_managed_fields", "without_managed_fields"]

_START: Final = b',"managedFields":[{"manager":'
_END: Final = b']},"spec":{'


def without_managed_fields(data: bytes) -> bytes:
    """``data`` with each pod's ``metadata.managedFields`` cut out (see the module's
    docstring for why that is sound); ``data`` itself when there is none."""
    start = data.find(_START)
    if start < 0:
        return data
    parts: list[bytes] = []
    kept_from = 0
    while start >= 0:
        end = data.find(_END, start + len(_START))
        if end < 0:
            break
        parts.append(data[kept_from:start])
        kept_from = end + 1  # keep the "}" that closes the metadata
        start = data.find(_START, kept_from)
    if not parts:
        return data
    parts.append(data[kept_from:])
    return b"".join(parts)


def loads_without_managed_fields(data: bytes) -> Any:
    """``orjson.loads`` of ``data`` cut by :func:`without_managed_fields`, or of ``data``
    whole when the cut bytes do not decode; raises ``orjson.JSONDecodeError`` only when
    ``data`` itself does not."""
    cut = without_managed_fields(data)
    if cut is not data:
        try:
            return orjson.loads(cut)
        except orjson.JSONDecodeError:
            pass  # not the shape the cut assumes: the whole document decides
    return orjson.loads(data)
