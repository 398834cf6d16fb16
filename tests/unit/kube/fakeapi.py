"""A real local HTTP server that plays the API server, for faults a real one won't make.

Each test programs routes on :class:`FakeApiServer` (``api.on("GET", path, handler)``);
every request is recorded (method, path, query, headers) so tests can assert on what
was actually sent. Stream handlers that must stall wait on ``api.release``, which the
fixture sets before shutting the server down, so no handler outlives its test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from asyncpod.kube.client import RetryPolicy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TOKEN = "sekrit-token-0123456789"  # a test credential that must never leak
FAST_RETRY = RetryPolicy(attempts=4, backoff_base=0.01, backoff_cap=0.05)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes


class FakeApiServer:
    def __init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._handlers: dict[tuple[str, str], list[Handler]] = {}
        self.requests: list[Seen] = []
        self.release = asyncio.Event()
        self.url = ""

    def on(self, method: str, path: str, *handlers: Handler) -> None:
        """Serve ``handlers`` in turn for ``method path``; the last one repeats."""
        self._handlers[(method, path)] = list(handlers)

    def seen(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path == path)
        ]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                CIMultiDict(request.headers),
                body,
            )
        )
        queue = self._handlers.get((request.method, request.path))
        if not queue:
            return status_response(404, "NotFound", f"no route for {request.path}")
        handler = queue.pop(0) if len(queue) > 1 else queue[0]
        return await handler(request)


def status_body(code: int, reason: str, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
        **extra,
    }


def status_response(
    code: int, reason: str, message: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=code,
        body=orjson.dumps(status_body(code, reason, message)),
        content_type="application/json",
        headers=headers,
    )


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(obj), content_type="application/json")


def reply(obj: Any, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return json_response(obj, status)

    return handler


def fail(
    code: int, reason: str = "", message: str = "", *, headers: dict[str, str] | None = None
) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return status_response(code, reason, message or f"failed with {code}", headers=headers)

    return handler


def stream_chunks(
    chunks: Iterable[bytes],
    *,
    then: str = "end",
    api: FakeApiServer | None = None,
    pause: float = 0.01,
) -> Handler:
    """A chunked 200 response: write ``chunks`` with pauses, then ``end``, ``cut`` or ``stall``."""
    parts = list(chunks)

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request)
        for part in parts:
            await response.write(part)
            await asyncio.sleep(pause)  # let the client see the chunk boundary
        if then == "cut":
            assert request.transport is not None
            request.transport.close()
        elif then == "stall":
            assert api is not None
            await api.release.wait()
        else:
            await response.write_eof()
        return response

    return handler


def events(*pairs: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps({"type": t, "object": o}) + b"\n" for t, o in pairs)
