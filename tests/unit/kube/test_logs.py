"""LogFollower against a fake kubelet that ends streams early, cuts lines and rounds sinceTime."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from asyncpod.errors import NotFoundError, ServerError, UsageError
from asyncpod.kube.client import KubeClient, RetryPolicy
from asyncpod.kube.logs import LogFollower, LogLine, timestamp_key
from tests.unit.kube.fakeapi import FakeApiServer, fail

LOG = "/api/v1/namespaces/ns/pods/p/log"
QUICK = RetryPolicy(backoff_base=0.01, backoff_cap=0.02)

# A container's whole log. Traps: Go trims trailing zeros (".1Z" vs ".12Z"), several
# lines share one timestamp (two even share their text), and a whole-second stamp.
LINES = [
    ("2024-05-01T10:00:00.1Z", "start"),
    ("2024-05-01T10:00:00.12Z", "a"),
    ("2024-05-01T10:00:01.5Z", "same ts 1"),
    ("2024-05-01T10:00:01.5Z", "same ts 2"),
    ("2024-05-01T10:00:01.5Z", "same ts 1"),
    ("2024-05-01T10:00:01.7Z", "b"),
    ("2024-05-01T10:00:02Z", "c"),
    ("2024-05-01T10:00:02.000000001Z", "d"),
]


@dataclass
class Serve:
    """What the fake kubelet does for one request, counted from the sinceTime point."""

    lines: int | None = None  # how many to send (None: all that remain)
    partial: bool = False  # then half of the next line, and cut the connection
    finish: bool = False  # the container has finished once this request is served
    stall: bool = False  # then keep the stream open and silent (kwok does, after exit)


@dataclass
class FakeKubelet:
    log: list[tuple[str, str]]
    plan: list[Serve]
    finished: bool = False
    since: list[str | None] = field(default_factory=list)
    follow: list[str] = field(default_factory=list)
    finished_calls: int = 0
    hold: asyncio.Event = field(default_factory=asyncio.Event)

    async def container_finished(self) -> bool:
        self.finished_calls += 1
        return self.finished

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.follow.append(request.query["follow"])
        assert request.query["timestamps"] == "true"
        assert request.query["container"] == "main"
        since = request.query.get("sinceTime")
        self.since.append(since)
        # The API server passes sinceTime to the kubelet with whole seconds only.
        start = 0
        if since is not None:
            second = since[:19]
            start = next((i for i, (ts, _) in enumerate(self.log) if ts[:19] >= second), 0)
        step = self.plan.pop(0) if len(self.plan) > 1 else self.plan[0]
        end = len(self.log) if step.lines is None else start + step.lines
        response = web.StreamResponse()
        response.content_type = "text/plain"
        await response.prepare(request)
        for ts, text in self.log[start:end]:
            await response.write(f"{ts} {text}\n".encode())
        if step.finish:
            self.finished = True
        if step.partial:
            ts, text = self.log[end]
            await response.write(f"{ts} {text}"[:-1].encode())
            assert request.transport is not None
            request.transport.close()
            return response
        if step.stall:
            await self.hold.wait()  # until the client hangs up (the handler is cancelled)
        await response.write_eof()
        return response


def make_follower(client: KubeClient, kubelet: FakeKubelet, **kwargs: object) -> LogFollower:
    return LogFollower(
        client,
        "ns",
        "p",
        container="main",
        container_finished=kubelet.container_finished,
        backoff=QUICK,
        **kwargs,  # type: ignore[arg-type]
    )


async def follow(client: KubeClient, kubelet: FakeKubelet, **kwargs: object) -> list[LogLine]:
    return [line async for line in make_follower(client, kubelet, **kwargs)]


async def test_eof_midway_resumes_without_loss_or_duplicates(
    api: FakeApiServer, client: KubeClient
) -> None:
    kubelet = FakeKubelet(
        LINES,
        plan=[
            Serve(lines=4),  # ends between lines that share one timestamp
            Serve(lines=5, partial=True),  # replays from 10:00:01, then cuts mid-line
            Serve(finish=True),  # the rest; the container ends meanwhile
            Serve(),  # the drain read, opened once it is known to be finished
        ],
    )
    api.on("GET", LOG, kubelet.handle)

    follower = make_follower(client, kubelet)
    lines = [line async for line in follower]

    assert [(line.timestamp, line.text) for line in lines] == LINES
    assert {line.container for line in lines} == {"main"}
    assert kubelet.since == [
        None,
        "2024-05-01T10:00:01.5Z",
        "2024-05-01T10:00:02Z",
        "2024-05-01T10:00:02.000000001Z",
    ]
    # The drain of a finished container's log does not follow: it must end by itself.
    assert kubelet.follow == ["true", "true", "true", "false"]
    stats = follower.statistics()
    assert stats.opens == 4
    assert stats.lines == len(LINES)
    assert stats.duplicates_dropped == 2 + 1 + 2
    assert stats.interrupted == 1
    assert stats.last_timestamp == LINES[-1][0]


async def test_already_finished_container_takes_one_request(
    api: FakeApiServer, client: KubeClient
) -> None:
    kubelet = FakeKubelet(LINES, plan=[Serve()], finished=True)
    api.on("GET", LOG, kubelet.handle)

    lines = await follow(client, kubelet)

    assert [line.text for line in lines] == [text for _, text in LINES]
    assert kubelet.since == [None]
    assert kubelet.follow == ["false"]


async def test_eof_that_races_the_finish_is_drained(api: FakeApiServer, client: KubeClient) -> None:
    # The stream ends early, and the container finishes right after: one more read
    # (opened after the finish) must pick up the lines the first stream never sent.
    kubelet = FakeKubelet(LINES, plan=[Serve(lines=3, finish=True), Serve()])
    api.on("GET", LOG, kubelet.handle)

    lines = await follow(client, kubelet)

    assert [(line.timestamp, line.text) for line in lines] == LINES
    assert len(kubelet.since) == 2


async def test_followed_stream_that_outlives_its_container_is_dropped_and_drained(
    api: FakeApiServer, client: KubeClient
) -> None:
    kubelet = FakeKubelet(LINES, plan=[Serve(lines=3, stall=True), Serve()])
    api.on("GET", LOG, kubelet.handle)

    async def exit_later() -> None:
        await asyncio.sleep(0.3)
        kubelet.finished = True

    exiting = asyncio.create_task(exit_later())
    started = time.monotonic()
    lines = await asyncio.wait_for(follow(client, kubelet, finish_check_interval=0.1), 5)
    await exiting

    assert [(line.timestamp, line.text) for line in lines] == LINES
    assert 0.3 <= time.monotonic() - started < 1.5
    assert kubelet.follow == ["true", "false"]
    assert kubelet.since == [None, LINES[2][0]]
    assert client.statistics().streams_open == 0


async def test_silent_stream_keeps_following_while_the_container_runs(
    api: FakeApiServer, client: KubeClient
) -> None:
    kubelet = FakeKubelet(LINES, plan=[Serve(lines=3, stall=True), Serve()])
    api.on("GET", LOG, kubelet.handle)
    follower = make_follower(client, kubelet, finish_check_interval=0.05)

    lines = aiter(follower)
    async with contextlib.aclosing(lines):
        got = [await anext(lines) for _ in range(3)]
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(anext(lines), 0.4)

    assert [line.text for line in got] == ["start", "a", "same ts 1"]
    assert kubelet.finished_calls >= 5  # checked while idle, without a request
    assert len(kubelet.since) == 1  # and the stream was not reopened


async def test_unterminated_last_line_of_a_finished_container_is_kept(
    api: FakeApiServer, client: KubeClient
) -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=b"2024-05-01T10:00:00Z one\n2024-05-01T10:00:01Z no newline at the end"
        )

    api.on("GET", LOG, handle)
    kubelet = FakeKubelet([], plan=[Serve()], finished=True)

    lines = await follow(client, kubelet)

    assert [line.text for line in lines] == ["one", "no newline at the end"]


async def test_invalid_utf8_is_replaced_not_raised(api: FakeApiServer, client: KubeClient) -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"2024-05-01T10:00:00Z bad \xff\xfe bytes\n2024-05-01T10:00:01Z\n")

    api.on("GET", LOG, handle)
    kubelet = FakeKubelet([], plan=[Serve()], finished=True)

    lines = await follow(client, kubelet)

    assert [line.text for line in lines] == ["bad \ufffd\ufffd bytes", ""]
    assert lines[1].timestamp == "2024-05-01T10:00:01Z"


async def test_since_time_drops_earlier_lines_of_the_same_second(
    api: FakeApiServer, client: KubeClient
) -> None:
    kubelet = FakeKubelet(LINES, plan=[Serve()], finished=True)
    api.on("GET", LOG, kubelet.handle)

    lines = await follow(client, kubelet, since_time="2024-05-01T10:00:01.6Z")

    assert [line.text for line in lines] == ["b", "c", "d"]
    assert kubelet.since == ["2024-05-01T10:00:01.6Z"]


async def test_waiting_container_is_retried_until_it_starts(
    api: FakeApiServer, client: KubeClient
) -> None:
    kubelet = FakeKubelet(LINES, plan=[Serve(finish=True), Serve()])
    waiting = fail(400, "BadRequest", 'container "main" in pod "p" is waiting to start')
    api.on("GET", LOG, waiting, waiting, kubelet.handle)

    lines = await follow(client, kubelet)

    assert len(lines) == len(LINES)
    assert len(api.seen("GET", LOG)) == 4  # 400, 400, the stream, the drain


async def test_container_that_never_started_ends_quietly(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("GET", LOG, fail(400, "BadRequest", "container is waiting to start: ErrImagePull"))
    kubelet = FakeKubelet([], plan=[Serve()], finished=True)

    assert await follow(client, kubelet) == []


async def test_deleted_pod_raises_not_found(api: FakeApiServer, client: KubeClient) -> None:
    api.on("GET", LOG, fail(404, "NotFound", 'pods "p" not found'))
    kubelet = FakeKubelet([], plan=[Serve()])

    with pytest.raises(NotFoundError) as caught:
        await follow(client, kubelet)
    assert caught.value.pod == "ns/p"


async def test_persistent_server_errors_give_up_after_max_failures(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("GET", LOG, fail(500, "InternalError", "kubelet unreachable"))
    kubelet = FakeKubelet([], plan=[Serve()])

    with pytest.raises(ServerError, match="kubelet unreachable"):
        await follow(client, kubelet, max_failures=2)
    # Each open is retried by the client (4 attempts), twice.
    assert len(api.seen("GET", LOG)) == 8


async def test_follower_cannot_be_iterated_twice_at_once(
    api: FakeApiServer, client: KubeClient
) -> None:
    kubelet = FakeKubelet(LINES, plan=[Serve()], finished=True)
    api.on("GET", LOG, kubelet.handle)
    follower = LogFollower(
        client, "ns", "p", container="main", container_finished=kubelet.container_finished
    )
    lines = aiter(follower)
    async with contextlib.aclosing(lines):
        first = await anext(lines)
        assert first.text == "start"
        with pytest.raises(UsageError, match="already being iterated"):
            aiter(follower)
    assert client.statistics().streams_open == 0


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("2024-05-01T10:00:00.1Z", "2024-05-01T10:00:00.12Z"),
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000000001Z"),
        ("2024-05-01T10:00:00.999999999Z", "2024-05-01T10:00:01Z"),
        ("2024-05-01T11:59:59+02:00", "2024-05-01T10:00:00.5Z"),
    ],
)
def test_timestamp_key_orders_rfc3339nano(earlier: str, later: str) -> None:
    assert timestamp_key(earlier) < timestamp_key(later)


def test_timestamp_key_equates_offsets_and_zero_padding() -> None:
    assert timestamp_key("2024-05-01T12:00:00.5+02:00") == timestamp_key("2024-05-01T10:00:00.5Z")
    assert timestamp_key("2024-05-01T10:00:00.500Z") == timestamp_key("2024-05-01T10:00:00.5Z")
