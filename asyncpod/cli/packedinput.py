"""A batch input carried in ConfigMaps: compressed, split, and put back together.

Why: a shard of ``asyncpod batch --submit`` reads the same input the user validated on
their machine, from inside the cluster, with no state elsewhere: the file goes into
ConfigMaps, mounted into every shard pod. An object is at most 1 MiB (etcd's request
limit, ``--max-request-bytes``), so the file is gzip-compressed and, if still too big,
split into parts of :data:`PART_BYTES`, one ConfigMap each (``binaryData``), at most
:data:`MAX_PARTS` of them; the shard concatenates the parts in order and decompresses.
A bigger input is a clear error (:class:`InputTooLargeError`) that says how to pass it
(a volume, or several batches).

Pure: bytes in, payloads out, and a directory read back. No Kubernetes calls.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from asyncpod.errors import UsageError

__all__ = [
    "MANIFEST_KEY",
    "MAX_PARTS",
    "PART_BYTES",
    "InputTooLargeError",
    "Packed",
    "pack",
    "unpack",
]

PART_BYTES = 900 * 1024
"""Compressed bytes per ConfigMap: base64 in JSON makes them 1.2 MB on the wire, under
the API server's 3 MiB request limit, and 900 KiB stored, under etcd's 1 MiB object."""
MAX_PARTS = 16
MANIFEST_KEY = "input.json"
"""The first part's data key describing the input: its name, format, parts, digest."""


class InputTooLargeError(UsageError):
    """The compressed input does not fit in :data:`MAX_PARTS` ConfigMaps."""


@dataclass(frozen=True, slots=True)
class Packed:
    """The ConfigMaps' payloads: ``data`` of the first, ``binaryData`` of each part."""

    manifest: dict[str, object]
    parts: tuple[dict[str, str], ...]
    compressed_bytes: int


def _part_key(index: int) -> str:
    return f"part-{index:03d}.gz"


def pack(text: str, *, name: str, format: str) -> Packed:
    """Compress ``text`` and split it into ConfigMap payloads; InputTooLargeError if it
    cannot fit."""
    raw = text.encode("utf-8")
    compressed = gzip.compress(raw, compresslevel=9, mtime=0)
    chunks = [compressed[i : i + PART_BYTES] for i in range(0, len(compressed), PART_BYTES)]
    chunks = chunks or [b""]
    if len(chunks) > MAX_PARTS:
        limit = MAX_PARTS * PART_BYTES
        raise InputTooLargeError(
            f"the input {name} is {len(raw):,} bytes, {len(compressed):,} compressed: more "
            f"than {MAX_PARTS} ConfigMaps of {PART_BYTES // 1024} KiB ({limit:,} bytes; a "
            "Kubernetes object holds at most 1 MiB). Split it into several batches, or use "
            "a template with parameter rows (much smaller), or run it locally"
        )
    manifest: dict[str, object] = {
        "name": Path(name).name or "input",
        "format": format,
        "parts": len(chunks),
        "bytes": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    parts = tuple(
        {_part_key(i): base64.b64encode(chunk).decode("ascii")} for i, chunk in enumerate(chunks)
    )
    return Packed(manifest=manifest, parts=parts, compressed_bytes=len(compressed))


def unpack(directory: Path) -> tuple[str, str, str]:
    """(text, name, format) of a packed input mounted in ``directory`` (every part's key
    in one directory, as a projected volume puts them)."""
    try:
        manifest = json.loads((directory / MANIFEST_KEY).read_text(encoding="utf-8"))
        count = int(manifest["parts"])
        compressed = b"".join((directory / _part_key(i)).read_bytes() for i in range(count))
        raw = gzip.decompress(compressed)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{directory}: not a packed batch input: {error}") from None
    if hashlib.sha256(raw).hexdigest() != manifest.get("sha256"):
        raise UsageError(f"{directory}: the packed input's parts do not match its digest")
    return raw.decode("utf-8"), str(manifest["name"]), str(manifest["format"])
