"""list_objects and watch_stream against a loopback server that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from asyncpod.errors import (
    ApiConnectionError,
    ForbiddenError,
    GoneError,
    WatchStalledError,
)
from asyncpod.kube._lines import LineSplitter
from asyncpod.kube.client import KubeClient
from asyncpod.kube.config import ClusterConfig
from asyncpod.kube.watch import list_objects, watch_stream
from tests.unit.kube.fakeapi import (
    FakeApiServer,
    events,
    fail,
    reply,
    status_body,
    stream_chunks,
)

PODS = "/api/v1/namespaces/ns/pods"


def pod(name: str, rv: str = "1", **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv, **extra}}


async def collect(
    client: KubeClient, **kwargs: Any
) -> tuple[list[tuple[str, dict[str, Any]]], BaseException | None]:
    """Events seen before the stream ended, and how it ended (None: cleanly)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    stream = watch_stream(client, PODS, **{"resource_version": "10", **kwargs})
    try:
        async with contextlib.aclosing(stream):
            async for event in stream:
                seen.append(event)
    except Exception as exc:  # noqa: BLE001 - the test inspects how the stream ended
        return seen, exc
    return seen, None


# ----------------------------------------------------------------------------- list


async def test_list_follows_continue_tokens(api: FakeApiServer, client: KubeClient) -> None:
    api.on(
        "GET",
        PODS,
        reply({"items": [pod("a")], "metadata": {"continue": "t1", "resourceVersion": "100"}}),
        reply({"items": [pod("b")], "metadata": {"continue": "t2", "resourceVersion": "100"}}),
        reply({"items": None, "metadata": {"resourceVersion": "100"}}),
    )

    items, rv = await list_objects(client, PODS, label_selector="app=x", limit=1)

    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert rv == "100"
    queries = [r.query for r in api.seen("GET")]
    assert queries == [
        {"labelSelector": "app=x", "limit": "1"},
        {"labelSelector": "app=x", "limit": "1", "continue": "t1"},
        {"labelSelector": "app=x", "limit": "1", "continue": "t2"},
    ]


async def test_list_restarts_when_a_continue_token_expires(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on(
        "GET",
        PODS,
        reply({"items": [pod("a")], "metadata": {"continue": "old", "resourceVersion": "5"}}),
        fail(410, "Expired", "The provided continue parameter is too old"),
        reply({"items": [pod("a"), pod("b")], "metadata": {"resourceVersion": "9"}}),
    )

    items, rv = await list_objects(client, PODS, limit=1)

    # Restarted from scratch: no duplicate "a", the newer snapshot's version.
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert rv == "9"
    assert [r.query.get("continue") for r in api.seen("GET")] == [None, "old", None]


async def test_list_gone_on_first_page_and_other_errors_raise(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("GET", PODS, fail(410, "Expired", "too old resource version"))
    with pytest.raises(GoneError):
        await list_objects(client, PODS, resource_version="1")
    assert len(api.seen()) == 1

    api.on("GET", PODS, fail(403, "Forbidden", "cannot list pods"))
    with pytest.raises(ForbiddenError, match="cannot list pods"):
        await list_objects(client, PODS)


# ----------------------------------------------------------------------------- watch


async def test_watch_yields_events_and_bookmarks_then_ends_cleanly(
    api: FakeApiServer, client: KubeClient
) -> None:
    body = events(
        ("ADDED", pod("a", "11")),
        ("MODIFIED", pod("a", "12")),
        ("BOOKMARK", {"metadata": {"resourceVersion": "13"}}),
        ("DELETED", pod("a", "14")),
    )
    api.on("GET", PODS, stream_chunks([body]))

    seen, ended = await collect(client, label_selector="app=x", timeout_seconds=300)

    assert ended is None
    assert [(t, o["metadata"]["resourceVersion"]) for t, o in seen] == [
        ("ADDED", "11"),
        ("MODIFIED", "12"),
        ("BOOKMARK", "13"),
        ("DELETED", "14"),
    ]
    (request,) = api.seen()
    assert request.query == {
        "watch": "true",
        "allowWatchBookmarks": "true",
        "resourceVersion": "10",
        "labelSelector": "app=x",
        "timeoutSeconds": "300",
    }
    assert client.statistics().streams_open == 0


async def test_watch_reassembles_lines_split_across_chunks(
    api: FakeApiServer, client: KubeClient
) -> None:
    big = pod("big", "20", annotations={"blob": "é" * 200_000})  # > aiohttp's readline cap
    body = events(("ADDED", pod("a", "11")), ("MODIFIED", big), ("DELETED", pod("a", "21")))
    # Cut everywhere awkward: inside a multi-byte character, right before a newline,
    # right after one, and into many small pieces of the big line.
    cuts = sorted(
        {5, body.index(b"\n"), body.index(b"\n") + 1, body.index("é".encode()) + 1}
        | set(range(100, len(body), 65_536))
    )
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    api.on("GET", PODS, stream_chunks(chunks, pause=0.005))

    seen, ended = await collect(client)

    assert ended is None
    assert [t for t, _ in seen] == ["ADDED", "MODIFIED", "DELETED"]
    assert seen[1][1] == big


async def test_watch_without_managed_fields_yields_pods_without_them(
    api: FakeApiServer, client: KubeClient
) -> None:
    """``managed_fields=False``: the recorded event's pod arrives whole but for
    ``metadata.managedFields``, also when the stream's chunks cut through it; the
    default yields it as sent."""
    recorded = (Path(__file__).parent / "data" / "watch-event-running-pod.json").read_bytes()
    sent = orjson.loads(recorded)["object"]
    body = recorded + events(("DELETED", pod("a", "21")))
    chunks = [body[:1000], body[1000:1001], body[1001:]]  # inside managedFields
    api.on("GET", PODS, stream_chunks(chunks))

    seen, ended = await collect(client, managed_fields=False)

    assert ended is None
    kind, got = seen[0]
    assert kind == "MODIFIED"
    assert "managedFields" not in got["metadata"]
    assert got == {
        **sent,
        "metadata": {k: v for k, v in sent["metadata"].items() if k != "managedFields"},
    }
    assert seen[1] == ("DELETED", pod("a", "21"))

    api.on("GET", PODS, stream_chunks([recorded]))
    seen, ended = await collect(client)
    assert seen == [("MODIFIED", sent)]


async def test_watch_without_managed_fields_decodes_whole_what_the_cut_would_break(
    api: FakeApiServer, client: KubeClient
) -> None:
    """An event whose markers sit at two depths (not the API server's shape of a pod):
    the cut bytes do not decode, so the event is decoded whole, not reported garbled."""
    odd = {
        "metadata": {"name": "p"},
        "status": {"inner": {"q": 1, "managedFields": [{"manager": "m"}], "w": {}}, "x": [1]},
        "spec": {"z": 1},
    }
    api.on("GET", PODS, stream_chunks([events(("MODIFIED", odd))]))

    seen, ended = await collect(client, managed_fields=False)

    assert ended is None
    assert seen == [("MODIFIED", odd)]


async def test_watch_error_event_410_raises_gone(api: FakeApiServer, client: KubeClient) -> None:
    expired = status_body(410, "Expired", "too old resource version: 10 (50)")
    api.on(
        "GET",
        PODS,
        stream_chunks(
            [events(("ADDED", pod("a", "11")), ("ERROR", expired))], then="stall", api=api
        ),
    )

    seen, ended = await collect(client)

    assert [t for t, _ in seen] == ["ADDED"]
    assert isinstance(ended, GoneError)
    assert "too old resource version" in str(ended)
    assert client.statistics().streams_open == 0


async def test_watch_http_410_at_open_raises_gone(api: FakeApiServer, client: KubeClient) -> None:
    api.on("GET", PODS, fail(410, "Gone", "resourceVersion 10 is too old"))

    seen, ended = await collect(client)

    assert seen == []
    assert isinstance(ended, GoneError)
    assert len(api.seen()) == 1  # not retried


async def test_watch_cut_mid_body_raises_connection_error(
    api: FakeApiServer, client: KubeClient
) -> None:
    body = events(("ADDED", pod("a", "11")))
    api.on("GET", PODS, stream_chunks([body, b'{"type":"MODIFIED","obj'], then="cut"))

    seen, ended = await collect(client)

    assert [t for t, _ in seen] == ["ADDED"]
    assert isinstance(ended, ApiConnectionError)
    assert not isinstance(ended, WatchStalledError)
    assert "cut off" in str(ended)
    assert client.statistics().streams_open == 0


async def test_watch_that_goes_silent_raises_stalled(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("GET", PODS, stream_chunks([events(("ADDED", pod("a", "11")))], then="stall", api=api))

    started = time.monotonic()
    seen, ended = await collect(client, inactivity_timeout=0.3)
    elapsed = time.monotonic() - started

    assert [t for t, _ in seen] == ["ADDED"]
    assert isinstance(ended, WatchStalledError)
    assert isinstance(ended, ApiConnectionError)
    assert 0.3 <= elapsed < 2.0
    assert client.statistics().streams_open == 0


async def test_watch_bookmarks_keep_a_quiet_stream_alive(
    api: FakeApiServer, client: KubeClient
) -> None:
    bookmark = events(("BOOKMARK", {"metadata": {"resourceVersion": "12"}}))
    # Five bookmarks 0.1 s apart: 0.5 s in total, but never 0.25 s of silence.
    api.on("GET", PODS, stream_chunks([bookmark] * 5, pause=0.1))

    seen, ended = await collect(client, inactivity_timeout=0.25)

    assert ended is None
    assert len(seen) == 5


async def test_watch_garbage_line_raises_connection_error(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("GET", PODS, stream_chunks([b"<html>proxy error</html>\n"]))

    _, ended = await collect(client)

    assert isinstance(ended, ApiConnectionError)
    assert "undecodable watch event" in str(ended)


async def test_watch_early_break_with_aclosing_frees_the_stream(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("GET", PODS, stream_chunks([events(("ADDED", pod("a")))], then="stall", api=api))

    stream = watch_stream(client, PODS, resource_version="1")
    async with contextlib.aclosing(stream):
        async for _ in stream:
            assert client.statistics().streams_open == 1
            break

    assert client.statistics().streams_open == 0


async def test_many_watches_beyond_the_pool_default(api: FakeApiServer) -> None:
    """120 concurrent watches: more than aiohttp's default pool of 100, none queued."""
    api.on("GET", PODS, stream_chunks([events(("ADDED", pod("a")))], then="stall", api=api))
    async with KubeClient(ClusterConfig(api.url), qps=None, max_streams=150) as client:
        first_events = asyncio.Queue[str]()

        async def one() -> None:
            stream = watch_stream(client, PODS, resource_version="1")
            async with contextlib.aclosing(stream):
                async for kind, _ in stream:
                    await first_events.put(kind)
                    await api.release.wait()

        tasks = [asyncio.create_task(one()) for _ in range(120)]
        got = [await asyncio.wait_for(first_events.get(), 5) for _ in range(120)]
        stats = client.statistics()
        api.release.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    assert got == ["ADDED"] * 120
    assert (stats.streams_open, stats.stream_waits) == (120, 0)


# ----------------------------------------------------------------------------- lines


def test_line_splitter_handles_any_chunking() -> None:
    data = b'{"a":1}\n\n{"b":"' + b"x" * 1000 + b'"}\n{"c":3}'
    for size in (1, 2, 7, 64, 5000):
        splitter = LineSplitter()
        lines: list[bytes] = []
        for start in range(0, len(data), size):
            lines.extend(splitter.feed(data[start : start + size]))
        assert lines == [b'{"a":1}', b"", b'{"b":"' + b"x" * 1000 + b'"}'], size
        assert splitter.pending == len(b'{"c":3}')
        assert splitter.flush() == b'{"c":3}'
        assert splitter.flush() == b""


def test_line_splitter_keeps_bytes_verbatim() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"caf\xc3") == []
    assert splitter.feed(b"\xa9 \r\n") == ["café \r".encode()]


async def test_watch_rejects_non_dict_list_answer(api: FakeApiServer, client: KubeClient) -> None:
    async def listy(request: web.Request) -> web.StreamResponse:
        return web.Response(body=orjson.dumps([1, 2]), content_type="application/json")

    api.on("GET", PODS, listy)
    with pytest.raises(ApiConnectionError):
        await list_objects(client, PODS)
