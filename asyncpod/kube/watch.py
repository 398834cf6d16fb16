"""Raw LIST and WATCH: paginated lists and one watch stream, as orjson dicts.

Why it exists: ``kubernetes_asyncio.watch.Watch`` builds its own API client, parses each
event three times, retries a 410 once with the same stale version and lets
``aiohttp.ClientPayloadError`` escape (docs/architecture.md, "Facts"). These are the two primitives
the informer in ``asyncpod.core`` is built on, done once and done cheaply:

* :func:`list_objects` follows ``continue`` tokens and restarts the list if a token
  expires (410) part-way.
* :func:`watch_stream` reads the body line by line (lines of any length, split across
  chunks anywhere), decodes each with orjson, yields ``(type, object)`` including
  ``BOOKMARK``, and turns every way a watch ends into one precise outcome:

  ==============================================  =====================================
  the server closes the stream cleanly            the iterator ends (reopen from the
                                                  last resourceVersion)
  an ``ERROR`` event with code 410, or HTTP 410   :class:`GoneError` (relist)
  another ``ERROR`` event                         the typed error for its code
  no bytes for ``inactivity_timeout`` seconds     :class:`WatchStalledError`
  the connection is cut mid-body                  :class:`ApiConnectionError`
  ==============================================  =====================================

What it deliberately does not do: no cache, no relist-and-diff, no reconnect loop, no
resourceVersion bookkeeping: that is the informer's job, and keeping it out of here
keeps these functions small and their failures explicit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, Final

import aiohttp
import orjson

from asyncpod.errors import (
    ApiConnectionError,
    GoneError,
    WatchStalledError,
    api_error_from_status,
)
from asyncpod.kube._lines import LineSplitter
from asyncpod.kube._managedfields import loads_without_managed_fields
from asyncpod.kube.client import KubeClient, translate_transport_error

__all__ = ["ADDED", "BOOKMARK", "DELETED", "ERROR", "MODIFIED", "list_objects", "watch_stream"]

ADDED: Final = "ADDED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"
BOOKMARK: Final = "BOOKMARK"
ERROR: Final = "ERROR"


async def list_objects(
    client: KubeClient,
    path: str,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    limit: int = 500,
    resource_version: str | None = None,
    max_restarts: int = 3,
    rate_limited: bool = True,
    managed_fields: bool = True,
) -> tuple[list[dict[str, Any]], str]:
    """LIST ``path`` page by page; return ``(items, resourceVersion)``.

    The resourceVersion is the list's snapshot, the one to start a watch from. Items
    are raw dicts (note that Kubernetes omits ``kind``/``apiVersion`` on list items).
    If a ``continue`` token expires mid-way (410), the whole list starts over, at most
    ``max_restarts`` times; a 410 on the first page is raised as :class:`GoneError`.
    ``managed_fields=False``: items without ``metadata.managedFields`` (see
    :func:`watch_stream`).
    """
    restarts = 0
    while True:
        items: list[dict[str, Any]] = []
        token: str | None = None
        try:
            while True:
                page = await client.request(
                    "GET",
                    path,
                    params={
                        "labelSelector": label_selector,
                        "fieldSelector": field_selector,
                        "limit": limit,
                        "continue": token,
                        # resourceVersion only applies to the first page; the continue
                        # token carries the snapshot after that.
                        "resourceVersion": resource_version if token is None else None,
                    },
                    rate_limited=rate_limited,
                    managed_fields=managed_fields,
                )
                page_items = page.get("items") if isinstance(page, dict) else None
                metadata = page.get("metadata") if isinstance(page, dict) else None
                if (
                    not isinstance(page, dict)
                    or not isinstance(page_items, (list, type(None)))
                    or not isinstance(metadata, (dict, type(None)))
                    or not all(isinstance(item, dict) for item in page_items or ())
                ):
                    raise ApiConnectionError(f"GET {path}: the answer was not a list of objects")
                items.extend(page_items or ())
                metadata = metadata or {}
                token = metadata.get("continue") or None
                if token is None:
                    return items, str(metadata.get("resourceVersion") or "")
        except GoneError:
            if token is None or restarts >= max_restarts:
                raise
            restarts += 1  # the continue token expired: the snapshot is gone, start over


async def watch_stream(
    client: KubeClient,
    path: str,
    *,
    resource_version: str | None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    timeout_seconds: int | None = None,
    inactivity_timeout: float | None = 70.0,
    allow_bookmarks: bool = True,
    rate_limited: bool = True,
    managed_fields: bool = True,
) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
    """WATCH ``path`` from ``resource_version``; yield ``(event type, object)``.

    ``managed_fields=False`` cuts each pod's ``metadata.managedFields`` out of the
    event's bytes before decoding them (:mod:`asyncpod.kube._managedfields`): for a
    reader that does not use it, that is most of each event's decoding work.

    ``timeout_seconds`` asks the server to end the watch (cleanly) after that long.
    ``inactivity_timeout`` is the client's guard against a silently dead connection:
    bookmarks arrive about once a minute, so the default of 70 s only fires when the
    stream is dead. The stream holds a slot of the client's stream budget until the
    generator finishes: iterate it with ``contextlib.aclosing`` (or exhaust it), so an
    early ``break`` gives the connection back at once, not at garbage collection.
    """
    params: dict[str, Any] = {
        "watch": True,
        "allowWatchBookmarks": allow_bookmarks,
        "resourceVersion": resource_version or None,
        "labelSelector": label_selector,
        "fieldSelector": field_selector,
        "timeoutSeconds": timeout_seconds,
    }
    async with client.stream(
        "GET", path, params=params, read_timeout=inactivity_timeout, rate_limited=rate_limited
    ) as resp:
        splitter = LineSplitter()
        chunks = resp.content.iter_any()
        while True:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                # aiohttp's sock_read timer: no byte for inactivity_timeout seconds.
                # The peer is presumed dead: abort the socket. A graceful (TLS) close
                # would wait for a close_notify that never comes and leak the socket.
                _abort(resp)
                raise WatchStalledError(
                    f"GET {path}: watch sent nothing for {inactivity_timeout:g}s; "
                    "presumed dead (half-open connection)"
                ) from None
            except aiohttp.ClientError as exc:
                raise translate_transport_error(exc, method="GET", path=path) from exc
            for line in splitter.feed(chunk):
                event = _decode_event(line, path, managed_fields=managed_fields)
                if event is not None:
                    yield event
        # A clean end may still leave one unterminated line (servers always end events
        # with a newline, but a proxy might not).
        rest = splitter.flush()
        event = _decode_event(rest, path, managed_fields=managed_fields)
        if event is not None:
            yield event


def _abort(response: aiohttp.ClientResponse) -> None:
    connection = response.connection
    transport = connection.transport if connection is not None else None
    if transport is not None:
        transport.abort()


def _decode_event(
    line: bytes, path: str, *, managed_fields: bool
) -> tuple[str, dict[str, Any]] | None:
    if not line or line.isspace():  # isspace stops at the first byte of a real event
        return None
    try:
        event = orjson.loads(line) if managed_fields else loads_without_managed_fields(line)
        kind = event["type"]
        obj = event["object"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        # A garbled line means the stream cannot be trusted from here on.
        raise ApiConnectionError(
            f"GET {path}: undecodable watch event ({len(line)} bytes)"
        ) from None
    if not isinstance(kind, str) or not isinstance(obj, dict):
        raise ApiConnectionError(f"GET {path}: a watch event without a type or an object")
    if kind == ERROR:
        code = obj.get("code")
        raise api_error_from_status(
            code if isinstance(code, int) else 500, obj, method="GET", path=path
        )
    return kind, obj
