"""KubeClient against a real loopback HTTP server: retries, budgets, limits, errors."""

from __future__ import annotations

import asyncio
import builtins
import gc
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from asyncpod.errors import (
    ApiConnectionError,
    ApiTimeoutError,
    ClosedError,
    ConfigError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    ServerError,
    ServerUnreachableError,
    TooManyRequestsError,
    TransientError,
    UnauthorizedError,
    UsageError,
)
from asyncpod.kube.client import (
    KubeClient,
    RetryPolicy,
    TokenBucket,
    judge_answer,
    judge_first_contact,
    judge_transport_error,
    parse_retry_after,
    should_retry_exception,
    should_retry_status,
    swallowed_interrupt,
    translate_transport_error,
)
from asyncpod.kube.config import ClusterConfig, StaticToken
from tests.unit.kube.fakeapi import (
    FAST_RETRY,
    TOKEN,
    FakeApiServer,
    fail,
    reply,
    status_body,
    stream_chunks,
)

POD = {"kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u1"}}
PODS = "/api/v1/namespaces/ns/pods"


async def test_get_decodes_json_and_sends_auth(api: FakeApiServer, client: KubeClient) -> None:
    api.on("GET", f"{PODS}/p", reply(POD))

    assert await client.request("GET", f"{PODS}/p") == POD

    (seen,) = api.seen("GET")
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["Accept"] == "application/json"
    assert client.statistics().requests_sent == {"GET": 1}
    assert client.statistics().responses == {200: 1}


async def test_post_body_is_json_and_params_are_kubernetes_spelled(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("POST", PODS, reply(POD, 201))
    api.on("PATCH", f"{PODS}/p", reply(POD))

    await client.request("POST", PODS, json={"metadata": {"name": "p"}}, params={"dryRun": None})
    await client.request("PATCH", f"{PODS}/p", json={"a": 1}, params={"force": True})

    post, patch = api.requests
    assert orjson.loads(post.body) == {"metadata": {"name": "p"}}
    assert post.headers["Content-Type"] == "application/json"
    assert post.query == {}  # None-valued params are dropped
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert patch.query == {"force": "true"}


async def test_non_json_and_empty_bodies(api: FakeApiServer, client: KubeClient) -> None:
    async def text(request: web.Request) -> web.StreamResponse:
        return web.Response(text="line one\nline two\n")

    async def empty(request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    api.on("GET", f"{PODS}/p/log", text)
    api.on("DELETE", f"{PODS}/p", empty)

    assert await client.request("GET", f"{PODS}/p/log") == b"line one\nline two\n"
    assert await client.request("DELETE", f"{PODS}/p") is None


async def test_an_undecoded_success_is_none_and_an_undecoded_error_still_raises(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("DELETE", f"{PODS}/p", reply(POD))
    api.on(
        "DELETE", f"{PODS}/gone", reply(status_body(404, "NotFound", 'pods "gone" not found'), 404)
    )

    assert await client.request("DELETE", f"{PODS}/p", decode=False) is None
    assert await client.request("DELETE", f"{PODS}/p") == POD  # the same answer, decoded
    with pytest.raises(NotFoundError, match="not found"):
        await client.request("DELETE", f"{PODS}/gone", decode=False)


async def test_429_with_retry_after_is_honoured(api: FakeApiServer, client: KubeClient) -> None:
    api.on(
        "POST",
        PODS,
        fail(429, "TooManyRequests", "slow down", headers={"Retry-After": "0.3"}),
        reply(POD, 201),
    )

    started = time.monotonic()
    assert await client.request("POST", PODS, json=POD) == POD
    elapsed = time.monotonic() - started

    assert elapsed >= 0.3  # the server's hint, not our 10 ms backoff
    assert len(api.seen("POST")) == 2
    stats = client.statistics()
    assert (stats.throttled, stats.retries) == (1, 1)
    assert stats.responses == {429: 1, 201: 1}


async def test_429_that_never_ends_raises_with_retry_after(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("GET", PODS, fail(429, "TooManyRequests", "busy", headers={"Retry-After": "0"}))

    with pytest.raises(TooManyRequestsError) as caught:
        await client.request("GET", PODS)

    assert caught.value.retry_after == 0.0
    assert isinstance(caught.value, TransientError)
    assert len(api.seen()) == FAST_RETRY.attempts
    assert client.statistics().throttled == FAST_RETRY.attempts


async def test_503_then_200_on_get_is_retried(api: FakeApiServer, client: KubeClient) -> None:
    api.on("GET", PODS, fail(503, "ServiceUnavailable"), reply({"items": []}))

    assert await client.request("GET", PODS) == {"items": []}
    assert len(api.seen("GET")) == 2
    assert client.statistics().retries == 1


async def test_500_on_post_is_not_retried(api: FakeApiServer, client: KubeClient) -> None:
    api.on("POST", PODS, fail(500, "InternalError", "etcd hiccup"), reply(POD, 201))

    with pytest.raises(ServerError, match="etcd hiccup") as caught:
        await client.request("POST", PODS, json=POD, pod="ns/p")

    assert len(api.seen("POST")) == 1  # it may have been processed: never repeat a create
    assert caught.value.pod == "ns/p"
    assert client.statistics().retries == 0


async def test_503_on_post_is_retried_when_the_server_declined(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on(
        "POST",
        PODS,
        fail(503, "ServiceUnavailable", headers={"Retry-After": "0"}),
        reply(POD, 201),
    )

    assert await client.request("POST", PODS, json=POD) == POD
    assert len(api.seen("POST")) == 2


async def test_403_becomes_forbidden_with_the_servers_message(
    api: FakeApiServer, client: KubeClient
) -> None:
    message = 'pods is forbidden: User "bob" cannot create resource "pods" in "ns"'
    api.on("POST", PODS, fail(403, "Forbidden", message))

    with pytest.raises(ForbiddenError) as caught:
        await client.request("POST", PODS, json=POD, pod="ns/p")

    error = caught.value
    assert error.message == message
    assert (error.status, error.reason, error.method, error.path) == (
        403,
        "Forbidden",
        "POST",
        PODS,
    )
    assert "ns/p" in str(error)
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error.__dict__)
    assert len(api.seen()) == 1  # a usage error is not retried


async def test_422_lists_causes(api: FakeApiServer, client: KubeClient) -> None:
    body = status_body(
        422,
        "Invalid",
        'Pod "X" is invalid',
        details={"causes": [{"field": "metadata.name", "message": "a lowercase RFC 1123"}]},
    )
    api.on("POST", PODS, reply(body, 422))

    with pytest.raises(InvalidRequestError) as caught:
        await client.request("POST", PODS, json=POD)

    assert caught.value.causes == ("metadata.name: a lowercase RFC 1123",)


async def test_non_json_error_body_keeps_the_text(api: FakeApiServer, client: KubeClient) -> None:
    async def proxy_error(request: web.Request) -> web.StreamResponse:
        return web.Response(status=404, text="upstream says no")

    api.on("GET", f"{PODS}/p", proxy_error)

    with pytest.raises(NotFoundError, match="upstream says no"):
        await client.request("GET", f"{PODS}/p")


class RotatingToken:
    """Credentials whose first token the server rejects, like an expired exec token."""

    def __init__(self) -> None:
        self.token = "old"
        self.invalidations = 0

    async def authorization(self) -> str | None:
        return f"Bearer {self.token}"

    async def invalidate(self) -> bool:
        self.invalidations += 1
        self.token = "new"
        return True


async def test_401_refreshes_credentials_once_and_retries(api: FakeApiServer) -> None:
    async def check(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != "Bearer new":
            return web.Response(status=401, text="Unauthorized")
        return web.json_response({"ok": True})

    api.on("GET", PODS, check)
    credentials = RotatingToken()
    config = ClusterConfig(api.url, credentials=credentials)
    async with KubeClient(config, qps=None, retry=FAST_RETRY) as client:
        assert await client.request("GET", PODS) == {"ok": True}
        assert credentials.invalidations == 1
        assert client.statistics().auth_refreshes == 1

        credentials.token = "revoked"
        credentials.invalidate = _no_refresh  # type: ignore[method-assign]
        with pytest.raises(UnauthorizedError):
            await client.request("GET", PODS)


async def _no_refresh() -> bool:
    return False


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _answered_then_gone(config_for: Callable[[str], ClusterConfig]) -> KubeClient:
    """A client whose server answered once and then went away (an outage)."""

    async def answer_and_close(request: web.Request) -> web.StreamResponse:
        # No kept-alive connection: the next request must open a new one, and be refused.
        return web.json_response({"items": []}, headers={"Connection": "close"})

    api = FakeApiServer()
    api.on("GET", PODS, answer_and_close)
    server = TestServer(api.app)
    await server.start_server()
    client = KubeClient(config_for(f"http://127.0.0.1:{server.port}"), qps=None, retry=FAST_RETRY)
    await client.request("GET", PODS)
    await server.close()
    return client


async def test_connection_refused_after_an_answer_is_retried_then_raised_even_for_post() -> None:
    client = await _answered_then_gone(
        lambda url: ClusterConfig(url, credentials=StaticToken(TOKEN))
    )
    async with client:
        with pytest.raises(ApiConnectionError) as caught:
            # Nothing was sent, so even a create is safe to retry.
            await client.request("POST", PODS, json=POD)
        stats = client.statistics()

    assert not isinstance(caught.value, ServerUnreachableError)  # an outage, not a typo
    assert stats.requests_sent == {"GET": 1, "POST": FAST_RETRY.attempts}
    assert stats.connection_errors == FAST_RETRY.attempts
    assert TOKEN not in str(caught.value)


_QUICK = RetryPolicy(attempts=2, backoff_base=0.01, backoff_cap=0.01)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_server_never_reached_fails_fast_naming_server_and_source(method: str) -> None:
    port = _closed_port()
    config = ClusterConfig(
        f"http://127.0.0.1:{port}",
        credentials=StaticToken(TOKEN),
        source="kubeconfig K, context 'c'",
    )
    async with KubeClient(config, qps=None, retry=FAST_RETRY, first_contact=_QUICK) as client:
        with pytest.raises(ServerUnreachableError) as caught:
            await client.request(method, PODS, json=POD if method == "POST" else None)
        stats = client.statistics()

    error = caught.value
    assert isinstance(error, ConfigError)  # a configuration problem: fix, don't retry
    assert str(error) == (
        f"cannot reach the API server http://127.0.0.1:{port} (kubeconfig K, context 'c'): "
        f"connection refused at 127.0.0.1:{port}; is the cluster running, and is this its address?"
    )
    assert (error.server, error.source) == (f"http://127.0.0.1:{port}", "kubeconfig K, context 'c'")
    assert stats.requests_sent == {method: _QUICK.attempts}  # the quick tries, not FAST_RETRY's
    assert not client.answered


async def test_a_server_that_accepted_a_connection_and_died_unanswered_is_an_outage() -> None:
    # Killed after reading a request, before answering anything (the outage tests kill
    # kube-apiserver mid-burst): the server exists, so what follows is ridden through.
    accepted = asyncio.Event()

    async def take_and_hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        writer.close()

    server = await asyncio.start_server(take_and_hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = ClusterConfig(f"http://127.0.0.1:{port}")
    async with KubeClient(config, qps=None, retry=FAST_RETRY, first_contact=_QUICK) as client:
        task = asyncio.ensure_future(client.request("GET", PODS))
        await accepted.wait()
        server.close()
        await server.wait_closed()
        with pytest.raises(ApiConnectionError) as caught:
            await task

    assert not isinstance(caught.value, ServerUnreachableError)
    assert client.reached
    assert not client.answered
    assert client.statistics().requests_sent == {"GET": FAST_RETRY.attempts}


async def test_an_unknown_host_fails_fast_naming_it() -> None:
    config = ClusterConfig("http://no-such-host.invalid:6443", source="kubeconfig K")
    async with KubeClient(config, qps=None, retry=FAST_RETRY, first_contact=_QUICK) as client:
        with pytest.raises(ServerUnreachableError, match=r"unknown host 'no-such-host.invalid'"):
            async with client.stream("GET", PODS, params={"watch": True}):
                pass  # pragma: no cover - never opened


async def test_first_contact_ends_with_the_first_answer_of_any_status(api: FakeApiServer) -> None:
    api.on("GET", PODS, fail(404, "NotFound"))
    async with KubeClient(ClusterConfig(api.url), qps=None, first_contact=_QUICK) as client:
        with pytest.raises(NotFoundError):
            await client.request("GET", PODS)
        assert client.answered


def test_judge_first_contact_leaves_a_cut_mid_request_to_the_usual_verdict() -> None:
    cut = aiohttp.ServerDisconnectedError()
    assert judge_first_contact(cut, server="https://s", source="K") is None
    assert judge_first_contact(asyncio.TimeoutError(), server="https://s", source="K") is None


async def test_server_disconnect_on_post_is_not_retried(api: FakeApiServer) -> None:
    async def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()  # after reading the request: it may have been processed
        await asyncio.sleep(0.05)
        return web.Response()

    api.on("POST", PODS, hang_up)
    api.on("GET", PODS, hang_up)
    async with KubeClient(ClusterConfig(api.url), qps=None, retry=FAST_RETRY) as client:
        with pytest.raises(ApiConnectionError):
            await client.request("POST", PODS, json=POD)
        assert len(api.seen("POST")) == 1
        with pytest.raises(ApiConnectionError):
            await client.request("GET", PODS)
        # Ours retry a GET (aiohttp adds one RFC 9112 retry per attempt of its own).
        assert len(api.seen("GET")) >= 4  # FAST_RETRY.attempts


async def test_timeout_is_api_timeout_error_and_asyncio_timeout(api: FakeApiServer) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.wait_for(api.release.wait(), 2)
        return web.json_response({})

    api.on("GET", PODS, slow)
    retry = RetryPolicy(attempts=2, backoff_base=0.01, backoff_cap=0.01)
    async with KubeClient(ClusterConfig(api.url), qps=None, retry=retry) as client:
        started = time.monotonic()
        with pytest.raises(ApiTimeoutError) as caught:
            await client.request("GET", PODS, timeout=0.1)
        assert time.monotonic() - started < 1.0

    assert isinstance(caught.value, asyncio.TimeoutError)
    assert len(api.seen("GET")) == 2


async def test_rate_limiter_spaces_requests(api: FakeApiServer) -> None:
    api.on("GET", PODS, reply({}))
    async with KubeClient(ClusterConfig(api.url), qps=20, burst=2, retry=FAST_RETRY) as client:
        started = time.monotonic()
        await asyncio.gather(*(client.request("GET", PODS) for _ in range(6)))
        elapsed = time.monotonic() - started
        stats = client.statistics()

    # Two from the burst, then four at 20/s: the last leaves about 200 ms in. All six
    # reserve their token in one loop tick; a stalled machine can only shorten the
    # waits (tokens refill meanwhile), never lengthen them, so bound them from above.
    # (TokenBucket's own arithmetic is pinned exactly by the test with a fake clock.)
    assert elapsed >= 0.18
    assert stats.rate_limiter_waits == 4
    assert stats.rate_limiter_wait_seconds <= 0.05 + 0.1 + 0.15 + 0.2 + 1e-6


async def test_rate_limiter_off_does_not_wait(api: FakeApiServer, client: KubeClient) -> None:
    api.on("GET", PODS, reply({}))

    await asyncio.gather(*(client.request("GET", PODS) for _ in range(20)))

    assert client.statistics().rate_limiter_waits == 0


async def test_unlimited_requests_do_not_queue_behind_a_burst(api: FakeApiServer) -> None:
    api.on("GET", PODS, reply({}))
    async with KubeClient(ClusterConfig(api.url), qps=2, burst=1, retry=FAST_RETRY) as client:
        burst = asyncio.gather(*(client.request("GET", PODS) for _ in range(4)))
        await asyncio.sleep(0)  # every request of the burst has reserved its token
        await client.request("GET", PODS, rate_limited=False)  # e.g. the informer's LIST
        # The burst's last request waits 1.5 s in the limiter: ours did not queue behind it.
        jumped_the_queue = not burst.done()
        await burst

    assert jumped_the_queue
    assert client.statistics().rate_limiter_waits == 3


def test_token_bucket_reservations_are_spaced_by_qps() -> None:
    bucket = TokenBucket(qps=10, burst=3)
    now = time.monotonic()

    waits = [bucket.reserve(now) for _ in range(5)]

    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2])
    assert bucket.reserve(now + 1.0) == 0.0  # refilled after a quiet second


async def test_stream_budget_queues_visibly_and_requests_still_flow(
    api: FakeApiServer,
) -> None:
    api.on("GET", f"{PODS}/watch", stream_chunks([b"{}\n"], then="stall", api=api))
    api.on("GET", PODS, reply({"items": []}))
    config = ClusterConfig(api.url)
    async with KubeClient(config, qps=None, max_streams=2, max_requests=2) as client:
        opened: list[int] = []
        done = asyncio.Event()

        async def hold(n: int) -> None:
            async with client.stream("GET", f"{PODS}/watch"):
                opened.append(n)
                await done.wait()

        tasks = [asyncio.create_task(hold(n)) for n in range(3)]
        # A slot is taken before the stream opens: wait for both opens, not just the slots
        # (on a loaded machine the answers may take a while).
        for _ in range(1000):
            await asyncio.sleep(0.01)
            if client.statistics().streams_waiting and len(opened) == 2:
                break

        stats = client.statistics()
        assert (stats.streams_open, stats.streams_waiting, stats.stream_waits) == (2, 1, 1)
        assert len(opened) == 2
        assert "+1 waiting" in repr(client)
        # The pool was sized for both budgets: ordinary requests are not stuck behind streams.
        assert await asyncio.wait_for(client.request("GET", PODS), 2) == {"items": []}

        done.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        stats = client.statistics()

    assert sorted(opened) == [0, 1, 2]
    assert (stats.streams_open, stats.streams_waiting) == (0, 0)


async def test_stream_error_status_raises_typed_error_and_frees_slot(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("GET", f"{PODS}/gone/log", fail(404, "NotFound", 'pods "gone" not found'))

    with pytest.raises(NotFoundError, match='pods "gone" not found') as caught:
        async with client.stream("GET", f"{PODS}/gone/log", pod="ns/gone"):
            pytest.fail("a 404 stream must not be yielded")

    assert caught.value.pod == "ns/gone"
    assert client.statistics().streams_open == 0


async def test_stream_open_is_retried_on_503(api: FakeApiServer, client: KubeClient) -> None:
    api.on("GET", f"{PODS}/watch", fail(503), stream_chunks([b"abc"]))

    async with client.stream("GET", f"{PODS}/watch") as response:
        assert await response.read() == b"abc"

    assert len(api.seen()) == 2


async def test_relative_paths_are_rejected_before_anything_is_sent(
    api: FakeApiServer, client: KubeClient
) -> None:
    with pytest.raises(UsageError, match="start with '/'"):
        await client.request("GET", "api/v1/pods")
    assert api.requests == []


async def test_aclose_is_idempotent_and_later_use_raises_closed(api: FakeApiServer) -> None:
    client = KubeClient(ClusterConfig(api.url), qps=None)
    await client.aclose()
    await client.aclose()

    assert client.closed
    with pytest.raises(ClosedError):
        await client.request("GET", PODS)
    with pytest.raises(ClosedError):
        async with client.stream("GET", PODS):
            pass
    assert api.requests == []


async def test_unclosed_client_warns_on_garbage_collection(api: FakeApiServer) -> None:
    holder = [KubeClient(ClusterConfig(api.url))]
    session = holder[0]._session
    with pytest.warns(ResourceWarning, match="unclosed <KubeClient"):
        _forget(holder)
    await session.close()


def _forget(objects: list[KubeClient]) -> None:
    objects.clear()
    gc.collect()


async def test_repr_is_useful_and_never_shows_the_token(api: FakeApiServer) -> None:
    config = ClusterConfig(api.url, credentials=StaticToken(TOKEN), context="kind-dev")
    async with KubeClient(config, qps=5, burst=10, max_streams=7) as client:
        text = repr(client)
        config_text = repr(client.config)

    assert api.url in text
    assert "context=kind-dev" in text
    assert "streams=0/7" in text
    assert "qps=5/burst=10" in text
    assert TOKEN not in text
    assert TOKEN not in config_text


@pytest.mark.parametrize(
    ("method", "status", "headers", "expected"),
    [
        ("POST", 429, {}, True),
        ("GET", 500, {}, True),
        ("DELETE", 504, {}, True),
        ("POST", 500, {}, False),
        ("POST", 503, {}, False),
        ("POST", 503, {"Retry-After": "1"}, True),
        ("PATCH", 503, {"X-Kubernetes-PF-FlowSchema-UID": "x"}, True),
        ("GET", 501, {}, False),
        ("GET", 404, {}, False),
        ("GET", 409, {}, False),
    ],
)
def test_should_retry_status(
    method: str, status: int, headers: dict[str, str], expected: bool
) -> None:
    assert should_retry_status(method, status, headers) is expected


def test_should_retry_exception_distinguishes_sent_from_unsent() -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey(
            host="h",
            port=1,
            is_ssl=False,
            ssl=True,
            proxy=None,
            proxy_auth=None,
            proxy_headers_hash=None,
        ),
        OSError(111, "refused"),
    )
    disconnected = aiohttp.ServerDisconnectedError()
    assert should_retry_exception("POST", refused)
    assert not should_retry_exception("POST", disconnected)
    assert should_retry_exception("GET", disconnected)
    assert should_retry_exception("GET", asyncio.TimeoutError())
    assert not should_retry_exception("POST", asyncio.TimeoutError())


def test_retry_delay_is_jittered_bounded_and_honours_retry_after() -> None:
    policy = RetryPolicy(backoff_base=0.1, backoff_cap=1.0, max_retry_after=5.0)
    delays: list[float] = [policy.delay(n) for n in range(10) for _ in range(20)]
    assert all(0.05 <= d <= 1.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 10  # jittered, not a fixed schedule
    assert 2.0 <= policy.delay(0, retry_after=2.0) <= 2.1
    assert policy.delay(0, retry_after=3600) <= 5.1  # a silly hint is capped


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-1", 0.0), (None, None), ("soon", None)],
)
def test_parse_retry_after(value: str | None, expected: Any) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    value = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    parsed = parse_retry_after(value)
    assert parsed is not None
    assert 28 <= parsed <= 31


# ---------------------------------------------------------------------- one retry rule


def test_judge_answer_maps_status_to_error_and_retry() -> None:
    body = orjson.dumps(status_body(503, "ServiceUnavailable", "etcd is down"))

    get = judge_answer("GET", 503, {}, body, path="/p", pod="ns/p")
    post = judge_answer("POST", 503, {}, body, path="/p")
    shed = judge_answer("POST", 503, {"Retry-After": "2"}, body, path="/p")

    assert isinstance(get.error, ServerError)
    assert get.error.pod == "ns/p"
    assert "etcd is down" in str(get.error)
    assert get.retryable
    assert not post.retryable  # the server may have acted on it
    assert shed.retryable
    assert shed.retry_after == 2.0
    assert shed.error.retry_after == 2.0  # type: ignore[attr-defined]


def test_judge_answer_never_retries_a_usage_error() -> None:
    body = orjson.dumps(status_body(403, "Forbidden", 'cannot create resource "pods"'))

    verdict = judge_answer("GET", 403, {}, body, path="/p")

    assert isinstance(verdict.error, ForbiddenError)
    assert not verdict.retryable


def test_judge_transport_error_retries_only_what_was_not_sent() -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey(
            host="h",
            port=1,
            is_ssl=False,
            ssl=True,
            proxy=None,
            proxy_auth=None,
            proxy_headers_hash=None,
        ),
        OSError(111, "Connection refused"),
    )
    cut = aiohttp.ServerDisconnectedError()

    assert judge_transport_error("POST", refused, path="/p").retryable
    cut_post = judge_transport_error("POST", cut, path="/p", pod="ns/p")
    assert not cut_post.retryable
    assert isinstance(cut_post.error, ApiConnectionError)
    assert "pod ns/p" in str(cut_post.error)
    assert cut_post.error.__cause__ is cut
    timeout = judge_transport_error("GET", asyncio.TimeoutError(), path="/p")
    assert isinstance(timeout.error, ApiTimeoutError)
    assert timeout.retryable


def test_retry_policy_gives_up_by_count() -> None:
    policy = RetryPolicy(attempts=3, backoff_base=0.01, backoff_cap=0.01)

    assert policy.next_delay(0, elapsed=0) is not None
    assert policy.next_delay(1, elapsed=0) is not None
    assert policy.next_delay(2, elapsed=0) is None  # three tries made


def test_retry_policy_gives_up_by_window() -> None:
    policy = RetryPolicy(attempts=None, backoff_base=1.0, backoff_cap=1.0, window=60)

    assert policy.next_delay(500, elapsed=10) is not None  # no count limit
    assert policy.next_delay(3, elapsed=59.6) is None  # a wait of 0.5-1 s would pass 60
    assert policy.next_delay(3, elapsed=10, retry_after=55) is None  # the server says later


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"attempts": None}, {"backoff_base": -1}, {"window": -1}],
)
def test_retry_policy_refuses_nonsense_with_a_usage_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError, match="RetryPolicy"):
        RetryPolicy(**kwargs)


async def test_a_window_policy_rides_through_refusals(api: FakeApiServer) -> None:
    # Five refusals (503 + Retry-After: the server did nothing), then an answer.
    shed = fail(503, "ServiceUnavailable", headers={"Retry-After": "0"})
    api.on("POST", PODS, shed, shed, shed, shed, shed, reply(POD, 201))
    window = RetryPolicy(attempts=None, window=30, backoff_base=0.01, backoff_cap=0.01)

    async with KubeClient(ClusterConfig(api.url), qps=None, retry=window) as client:
        assert await client.request("POST", PODS, json={}) == POD
        assert client.statistics().retries == 5


async def test_the_stream_open_shares_the_request_rule(
    api: FakeApiServer, client: KubeClient
) -> None:
    # A POST stream open cut off is not retried, exactly like a POST request.
    async def cut(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    api.on("POST", f"{PODS}/s", cut)

    with pytest.raises(ApiConnectionError):
        async with client.stream("POST", f"{PODS}/s"):
            pass
    assert len(api.seen("POST")) == 1
    assert client.statistics().streams_open == 0


# ---------------------------------------------------------------------- only our errors


async def test_an_unencodable_body_is_a_usage_error(api: FakeApiServer, client: KubeClient) -> None:
    with pytest.raises(UsageError, match="not JSON-encodable"):
        await client.request("POST", PODS, json={"when": object()})
    assert api.requests == []


def test_a_client_made_outside_a_loop_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="running event loop"):
        KubeClient(ClusterConfig("http://127.0.0.1:1"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"qps": 0}, "qps"), ({"burst": 0}, "qps"), ({"max_streams": 0}, "max_streams")],
)
async def test_bad_client_budgets_are_usage_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        KubeClient(ClusterConfig("http://127.0.0.1:1"), **kwargs)


async def test_closing_while_a_request_waits_gives_closed_error(api: FakeApiServer) -> None:
    started = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        started.set()
        await api.release.wait()
        return web.Response()

    api.on("GET", f"{PODS}/slow", slow)
    client = KubeClient(ClusterConfig(api.url), qps=None, retry=FAST_RETRY)
    request = asyncio.create_task(client.request("GET", f"{PODS}/slow"))
    await started.wait()

    await client.aclose()

    with pytest.raises(ClosedError):
        await request


def test_an_interrupt_aiohttp_wrapped_into_a_payload_error_is_raised_again() -> None:
    # What aiohttp's body parser does when sys.exit() (a SIGTERM handler) lands in it.
    wrapped = aiohttp.ClientPayloadError("3")
    wrapped.__cause__ = SystemExit(3)
    with pytest.raises(SystemExit) as raised:
        translate_transport_error(wrapped, method="GET", path="/api/v1/pods")
    assert raised.value.code == 3
    deeper = aiohttp.ClientPayloadError("cut")
    deeper.__context__ = OSError("reset")
    deeper.__context__.__cause__ = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        translate_transport_error(deeper, method="GET", path="/api/v1/pods")


def test_an_interrupt_inside_an_exception_group_is_found() -> None:
    # What anyio's task group raises when sys.exit() lands in its host task.
    group_type: Any = getattr(builtins, "BaseExceptionGroup", None)
    if group_type is None:
        pytest.skip("exception groups are built in from Python 3.11")
    group = group_type("unhandled errors in a TaskGroup", [ValueError("x"), SystemExit(3)])
    found = swallowed_interrupt(group)
    assert isinstance(found, SystemExit)
    assert found.code == 3
    nested = group_type("outer", [group_type("inner", [KeyboardInterrupt()])])
    assert isinstance(swallowed_interrupt(nested), KeyboardInterrupt)
    assert swallowed_interrupt(group_type("plain", [ValueError("x"), OSError()])) is None


def test_an_ordinary_payload_error_is_a_connection_error() -> None:
    cut = aiohttp.ClientPayloadError("Not enough data")
    cut.__cause__ = ValueError("llhttp")
    error = translate_transport_error(cut, method="GET", path="/api/v1/pods")
    assert isinstance(error, ApiConnectionError)


def _cyclic_garbage_types() -> set[str]:
    """What one collection finds (the collector was off): its types' names."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return {type(thing).__name__ for thing in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_failed_and_retried_requests_leave_no_cycle(
    api: FakeApiServer, client: KubeClient
) -> None:
    """The retry loop lets go of its attempts' errors: a frame that kept the error its
    traceback holds would be a cycle only a full GC pass frees (asyncpod/cli/heap.py
    turns those off for a batch)."""

    async def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.05)
        return web.Response()

    api.on("GET", f"{PODS}/gone", fail(404, "NotFound", 'pods "gone" not found'))
    api.on("GET", PODS, fail(503, "ServiceUnavailable"), reply({"items": []}))
    await client.request("GET", PODS)  # connections and caches made before measuring
    api.on("GET", PODS, fail(503, "ServiceUnavailable"), reply({"items": []}))
    # aiohttp retries a cut reused connection once itself: the second cut is ours.
    api.on("GET", f"{PODS}/p", hang_up, hang_up, reply(POD))
    retries = client.statistics().retries
    gc.collect()
    gc.disable()
    try:
        with pytest.raises(NotFoundError):
            await client.request("GET", f"{PODS}/gone")
        assert await client.request("GET", PODS) == {"items": []}
        assert await client.request("GET", f"{PODS}/p") == POD  # after a cut connection
        left = _cyclic_garbage_types()
    finally:
        gc.enable()
    assert client.statistics().retries >= retries + 2  # the 503 and a cut were ours to retry
    assert not left & {"NotFoundError", "ApiConnectionError", "ServerError", "Verdict"}, left
    if type(asyncio.current_task()).__module__ == "_asyncio":
        # Not on 3.10: pytest-asyncio runs the test in backports.asyncio.runner's pure-Python
        # Task, whose __wakeup frame holds a connection error in a cycle; asyncio.run's C
        # Task, which an application gets there, does not.
        assert "frame" not in left, left
