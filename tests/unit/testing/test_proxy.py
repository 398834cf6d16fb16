"""The fault proxy's partition holds even for a connection caught half-way through.

A connection whose upstream connect was still under way when :meth:`partition` cut
everything used to be registered after the cut and relay through the whole
partition (a fleet test saw its "lost" cluster go on answering). The upstream
connect is held here until the partition is in place: the one fault a loopback
server cannot be made to produce on demand.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from asyncpod.testing.proxy import FaultProxy


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A blocking echo server on loopback, in a thread."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                while data := conn.recv(4096):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[:2]
    stop.set()
    thread.join(5)
    listener.close()


def test_a_connection_being_made_when_the_partition_starts_is_refused(
    echo_server: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    connecting = threading.Event()
    partitioned = threading.Event()
    real_open = asyncio.open_connection

    async def held_open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        streams = await real_open(host, port)
        connecting.set()
        # The partition happens now, from the test's thread.
        assert await asyncio.to_thread(partitioned.wait, 10)
        return streams

    monkeypatch.setattr(asyncio, "open_connection", held_open)  # the proxy's upstream
    with FaultProxy(*echo_server) as proxy:
        client = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        with client:
            assert connecting.wait(10)
            proxy.partition()
            partitioned.set()
            client.sendall(b"ping")
            assert received(client) == b""  # nothing relayed through the partition
        assert proxy.statistics().open == 0


def test_a_partition_cuts_open_connections_and_refuses_new_ones_until_resumed(
    echo_server: tuple[str, int],
) -> None:
    with FaultProxy(*echo_server) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
            client.sendall(b"ping")
            assert client.recv(4) == b"ping"
            assert proxy.partition() == 1
            assert received(client) == b""
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as refused:
            assert received(refused) == b""
        proxy.resume()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
            client.sendall(b"pong")
            assert client.recv(4) == b"pong"


def received(client: socket.socket) -> bytes:
    """What the proxy relays back: b"" once it closed or reset the connection."""
    try:
        return client.recv(4)
    except ConnectionResetError:
        return b""
