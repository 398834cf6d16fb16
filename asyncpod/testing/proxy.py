"""A TCP proxy between a client and the API server, for faults a server won't make.

Why: streams die in ways a healthy API server never shows on demand - a connection
cut mid-body, a half-open socket that goes silent, a network partition during which
the world moves on. Putting this proxy between asyncpod and the real API server makes
those faults real: bytes are relayed untouched (TLS passes through end to end), and
the test decides when to :meth:`cut` every open connection, :meth:`stall` them (keep
those sockets open but relay nothing, as a half-open peer does; new connections still
work), or :meth:`partition` (cut and refuse new ones).

It runs its own event loop in a thread, so both sync tests and async tests (whose
loop is busy with the code under test) can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any

__all__ = ["FaultProxy", "ProxyStatistics"]


@dataclass(frozen=True, slots=True)
class ProxyStatistics:
    accepted: int
    refused: int
    open: int
    cut: int
    bytes_relayed: int


class FaultProxy:
    """Relay ``127.0.0.1:<port>`` to ``target_host:target_port``; see the module doc."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: dict[
            tuple[asyncio.StreamWriter, asyncio.StreamWriter], asyncio.Event
        ] = {}
        self._refusing = False
        self._accepted = self._refused = self._cut = self._bytes = 0

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        self._thread.start()
        self._call(self._start())

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ faults
    def cut(self) -> int:
        """Close every open connection abruptly; return how many were cut."""
        return self._call(self._cut_all())

    def stall(self) -> int:
        """Freeze every open connection: sockets stay open, nothing is relayed."""
        return self._call(self._stall_all())

    def resume(self) -> None:
        """Relay on stalled connections again and accept new ones."""
        self._call(self._resume_all())

    def partition(self) -> int:
        """Cut every connection and refuse new ones until :meth:`resume`."""
        return self._call(self._partition())

    def statistics(self) -> ProxyStatistics:
        return ProxyStatistics(
            accepted=self._accepted,
            refused=self._refused,
            open=len(self._connections),
            cut=self._cut,
            bytes_relayed=self._bytes,
        )

    # ------------------------------------------------------------------ internals
    def _call(self, coroutine: Coroutine[Any, Any, int | None]) -> int:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return int(future.result(10) or 0)

    async def _stall_all(self) -> int:
        for flowing in self._connections.values():
            flowing.clear()
        return len(self._connections)

    async def _resume_all(self) -> None:
        self._refusing = False
        for flowing in self._connections.values():
            flowing.set()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut_all()
        # abort() closes sockets on the next loop iterations: let the handlers finish
        # before the loop stops, or their sockets are never closed.
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if handlers:
            await asyncio.wait(handlers, timeout=5)
        await asyncio.sleep(0)

    async def _partition(self) -> int:
        # On the proxy's loop, so that no handler is between its check of
        # _refusing and registering its connection (it checks again after connecting).
        self._refusing = True
        return await self._cut_all()

    async def _cut_all(self) -> int:
        pairs = list(self._connections)
        for client, upstream in pairs:
            self._connections[(client, upstream)].set()  # let a stalled pipe notice
            for writer in (client, upstream):
                transport = writer.transport
                transport.abort()  # RST, not a polite FIN: the peer sees a cut
        self._cut += len(pairs)
        self._connections.clear()
        return len(pairs)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            self._refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if self._refusing:  # partitioned while we connected: this one must not survive
            self._refused += 1
            for side in (writer, up_writer):
                side.transport.abort()
            return
        self._accepted += 1
        pair = (writer, up_writer)
        flowing = asyncio.Event()
        flowing.set()
        self._connections[pair] = flowing
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, flowing), self._pipe(up_reader, writer, flowing)
            )
        finally:
            self._connections.pop(pair, None)
            for side in pair:
                side.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await flowing.wait()
                writer.write(data)
                self._bytes += len(data)
                await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
