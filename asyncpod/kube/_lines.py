"""Split a byte stream into lines, whatever the chunk boundaries.

Why it exists: watch events and log lines are newline-delimited, but chunks arrive cut
anywhere, and aiohttp's ``readline()`` gives up on lines over 128 KiB (a pod with a big
``last-applied-configuration`` annotation is larger). This is a small synchronous state
machine, so it is tested without a loop and costs one ``bytes.find`` per line.

It does not decode: the caller decides (orjson for watches, UTF-8 for logs).
"""

from __future__ import annotations

__all__ = ["LineSplitter"]


class LineSplitter:
    """Feed chunks, get complete lines (without ``\\n``); the unterminated rest waits.

    A long line arriving in many chunks is kept as a list of parts and joined once, so
    it costs linear, not quadratic, time.
    """

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        """Complete lines ended by ``chunk`` (the first may have begun in earlier chunks)."""
        lines: list[bytes] = []
        start = 0
        end = chunk.find(b"\n")
        while end >= 0:
            if self._parts:
                self._parts.append(chunk[start:end])
                lines.append(b"".join(self._parts))
                self._parts.clear()
            else:
                lines.append(chunk[start:end])
            start = end + 1
            end = chunk.find(b"\n", start)
        if start < len(chunk):
            self._parts.append(chunk[start:])
        return lines

    @property
    def pending(self) -> int:
        """Bytes received after the last newline."""
        return sum(len(p) for p in self._parts)

    def flush(self) -> bytes:
        """Take the unterminated rest (``b""`` if none); call at a clean end of stream."""
        rest = b"".join(self._parts)
        self._parts.clear()
        return rest
