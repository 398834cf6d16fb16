"""Follow one container's log to its real end: no lost lines, no duplicates.

Why it exists: a followed log stream's EOF does not mean the container ended (kubelet
idle timeouts, log rotation, an API server restart). Peers either stop early and lose
the tail, or resume with whole-second ``sinceTime`` and repeat or drop lines. Here:

* The request asks for ``timestamps=true``; each line's RFC3339Nano prefix is split off
  and kept *as given* in :class:`LogLine`.
* On EOF (or a cut), an injected ``container_finished()`` (the informer's view of the
  container state) decides. Not finished: reopen after a jittered backoff with
  ``sinceTime`` = the last delivered timestamp. The kubelet only honours whole seconds,
  so the reopened stream replays lines we already have; they are dropped: everything
  older than the last timestamp, and at that timestamp exactly the lines already
  delivered (a multiset: several lines may share one timestamp, even with equal text).
* Finished: one last read without ``follow``, opened *after* the container was known
  to be finished, drains what the previous stream may have missed; its end is the end.
  A followed stream that stays open after its container ended (kwok never closes one)
  is noticed by asking ``container_finished()`` whenever it has been silent for
  ``finish_check_interval`` seconds; no request is made for that.
* A line cut off by a broken connection is not delivered; the resumed stream sends it
  whole (its timestamp is at or after the resume point).

Per line the loop does one ``find``, two decodes (UTF-8 with replacement, so bad bytes
never raise) and, only while replaying after a reconnect, a timestamp comparison. No
regexes, no datetime parsing on the common path.

What it deliberately does not do: it does not look at pod state itself (that is the
informer's; pass ``container_finished``), does not wait for the container to start (a
400 "waiting to start" is retried with backoff until it starts or is finished) and does
not multiplex containers (run one follower per container).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from asyncpod.errors import InvalidRequestError, TransientError, UsageError
from asyncpod.kube._lines import LineSplitter
from asyncpod.kube.client import KubeClient, RetryPolicy, translate_transport_error
from asyncpod.kube.pods import pod_path

__all__ = ["LogFollower", "LogFollowerStatistics", "LogLine"]

logger = logging.getLogger("asyncpod.kube")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a container's output, without its newline."""

    timestamp: str
    """RFC3339Nano exactly as the kubelet sent it (e.g. ``2024-05-01T10:00:00.123456789Z``)."""
    text: str
    container: str


@dataclass(frozen=True, slots=True)
class LogFollowerStatistics:
    opens: int
    """Log requests made (1 + reconnects + the final drain)."""
    lines: int
    """Lines delivered."""
    duplicates_dropped: int
    """Lines replayed by a resumed stream and dropped."""
    interrupted: int
    """Streams that ended in an error (cut, timeout, 5xx) rather than a clean EOF."""
    last_timestamp: str | None


class LogFollower:
    """Async-iterate to get every :class:`LogLine` of one container, once, in order.

    ``container_finished`` must answer from cached state (it is awaited at each EOF and
    before each open), e.g. the informer's latest view of the pod. ``since_time`` starts
    from a timestamp instead of the container's first line. ``max_failures`` bounds
    consecutive failed streams (failed opens, cuts) before the last error is raised.
    ``read_timeout`` (None: off) reopens a stream that sent nothing for that long: it
    catches half-open connections at the price of one request per quiet period.
    ``finish_check_interval`` (None: off) asks ``container_finished`` each time a
    followed stream has been silent that long, and drains and stops once it is: a
    followed stream that outlives its container (kwok's, a stuck kubelet's) then ends
    anyway. It costs no request, only a call of ``container_finished``.
    """

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        pod: str,
        *,
        container: str,
        container_finished: Callable[[], Awaitable[bool]],
        since_time: str | None = None,
        backoff: RetryPolicy | None = None,
        max_failures: int = 8,
        read_timeout: float | None = None,
        finish_check_interval: float | None = 5.0,
    ) -> None:
        self._client = client
        self._path = pod_path(namespace, pod, "log")
        self._pod = f"{namespace}/{pod}"
        self._container = container
        self._container_finished = container_finished
        self._since_time = since_time
        self._backoff = backoff or RetryPolicy(backoff_base=0.5, backoff_cap=10.0)
        self._max_failures = max_failures
        self._read_timeout = read_timeout
        self._finish_check = finish_check_interval
        self._iterating = False
        # Resume state: the last delivered timestamp and the lines delivered at it.
        self._last_ts: str | None = None
        self._last_key: tuple[str, int] | None = None
        self._at_last: Counter[str] = Counter()
        # While replaying after a reopen: the lines at _last_ts still to be skipped.
        self._replay: Counter[str] | None = None
        self._opens = 0
        self._lines = 0
        self._duplicates = 0
        self._interrupted = 0

    def __repr__(self) -> str:
        return (
            f"<LogFollower {self._pod} container={self._container} opens={self._opens} "
            f"lines={self._lines} last={self._last_ts}>"
        )

    def statistics(self) -> LogFollowerStatistics:
        return LogFollowerStatistics(
            opens=self._opens,
            lines=self._lines,
            duplicates_dropped=self._duplicates,
            interrupted=self._interrupted,
            last_timestamp=self._last_ts,
        )

    def __aiter__(self) -> AsyncGenerator[LogLine, None]:
        if self._iterating:
            raise UsageError(f"{self!r} is already being iterated; make one follower per reader")
        return self._follow()

    async def _follow(self) -> AsyncGenerator[LogLine, None]:
        self._iterating = True
        counted = self._lines  # lines delivered and counted in the metrics
        try:
            quiet = 0  # consecutive opens that delivered nothing new: drives the backoff
            failures = 0
            while True:
                finished_before_open = await self._container_finished()
                delivered_before = self._lines
                outcome = "error"
                tail = b""
                self._start_replay()
                try:
                    async with (
                        self._client.stream(
                            "GET",
                            self._path,
                            params=self._params(follow=not finished_before_open),
                            pod=self._pod,
                            read_timeout=self._read_timeout,
                        ) as response,
                        self._client.metrics.log_stream(),
                    ):
                        self._opens += 1
                        splitter = LineSplitter()
                        watch_finish = not finished_before_open
                        while True:
                            self._client.metrics.log_lines(self._lines - counted)
                            counted = self._lines
                            chunk = await self._next_chunk(response.content, watch_finish)
                            if chunk is None:
                                outcome = "finished"  # idle, and the container is done
                                break
                            if not chunk:
                                tail = splitter.flush()
                                outcome = "eof"
                                break
                            for raw in splitter.feed(chunk):
                                line = self._accept(raw)
                                if line is not None:
                                    yield line
                except InvalidRequestError as exc:
                    # 400: the container is not running yet (or never will).
                    if finished_before_open:
                        logger.debug("log of %s ends without output: %s", self._pod, exc)
                        return
                    outcome = "waiting"
                except TransientError as exc:
                    # Opening failed even after the client's own retries.
                    failures += 1
                    self._interrupted += 1
                    if failures >= self._max_failures:
                        raise
                    logger.debug("opening the log of %s failed: %s", self._pod, exc)
                except asyncio.TimeoutError:
                    # read_timeout passed without a byte: a quiet container or a dead
                    # connection; either way reopening is the cure, and not a failure.
                    self._interrupted += 1
                except aiohttp.ClientError as exc:
                    # Cut mid-body. The partial last line is dropped; the resumed stream
                    # sends it whole.
                    failures += 1
                    self._interrupted += 1
                    error = translate_transport_error(
                        exc, method="GET", path=self._path, pod=self._pod
                    )
                    if failures >= self._max_failures:
                        try:
                            raise error from exc
                        finally:
                            del error  # no frame → error → traceback → frame cycle
                    logger.debug("log stream of %s interrupted: %s", self._pod, error)
                if outcome == "finished":
                    # The followed stream outlived the container (some kubelets, and
                    # kwok, never close it): drop it and drain without follow.
                    failures = 0
                    continue
                if outcome == "eof":
                    failures = 0
                    if finished_before_open:
                        # Opened after the container ended: this stream had everything.
                        if tail:
                            line = self._accept(tail)
                            if line is not None:
                                yield line
                        return
                    if await self._container_finished():
                        continue  # drain once more, immediately; see the module docstring
                # Not finished (or it broke): reopen from the last timestamp, after a pause
                # that grows while reopens bring nothing new.
                quiet = 0 if self._lines > delivered_before else quiet + 1
                await asyncio.sleep(self._backoff.delay(quiet))
        finally:
            self._client.metrics.log_lines(self._lines - counted)
            self._iterating = False

    async def _next_chunk(self, reader: aiohttp.StreamReader, watch_finish: bool) -> bytes | None:
        """The next chunk (``b""`` at EOF), or None once idle and the container finished."""
        if self._finish_check is None or not watch_finish:
            return await reader.readany()
        while True:
            try:
                # Cancelling readany() on timeout is safe: it consumes data only when
                # it returns, so nothing buffered is lost.
                return await asyncio.wait_for(reader.readany(), self._finish_check)
            except asyncio.TimeoutError as exc:
                if isinstance(exc, aiohttp.ClientError):
                    raise  # aiohttp's own read_timeout, handled by the caller
                if await self._container_finished():
                    return None

    def _start_replay(self) -> None:
        """Before each open: arm the duplicate filter for the lines it may replay."""
        if self._last_ts is not None:
            self._replay = Counter(self._at_last)
        elif self._since_time:
            # The kubelet rounds sinceTime down to the second; drop what precedes it.
            self._last_key = timestamp_key(self._since_time)
            self._replay = Counter()
        else:
            self._replay = None

    def _params(self, *, follow: bool) -> dict[str, object]:
        # A finished container's log is complete: read it without follow, so the end
        # never depends on the kubelet noticing the exit and closing a followed stream.
        params: dict[str, object] = {
            "container": self._container,
            "follow": follow,
            "timestamps": True,
        }
        since = self._last_ts or self._since_time
        if since:
            params["sinceTime"] = since
        return params

    def _accept(self, raw: bytes) -> LogLine | None:
        """The line to deliver for ``raw``, or None if it is a replayed duplicate."""
        cut = raw.find(b" ")
        if cut < 0:
            stamp, body = raw, b""
        else:
            stamp, body = raw[:cut], raw[cut + 1 :]
        timestamp = stamp.decode("ascii", "replace")
        text = body.decode("utf-8", "replace")
        if self._replay is not None:
            key = timestamp_key(timestamp)
            assert self._last_key is not None
            if key < self._last_key:
                self._duplicates += 1
                return None
            if key == self._last_key and self._replay[text] > 0:
                self._replay[text] -= 1
                self._duplicates += 1
                return None
            self._replay = None  # past the resume point: everything from here is new
        if timestamp == self._last_ts:
            self._at_last[text] += 1
        else:
            self._last_ts = timestamp
            self._last_key = timestamp_key(timestamp)
            self._at_last = Counter((text,))
        self._lines += 1
        return LogLine(timestamp, text, self._container)


def timestamp_key(timestamp: str) -> tuple[str, int]:
    """A sortable key for an RFC3339(Nano) timestamp: (UTC seconds, nanoseconds).

    Plain string comparison is wrong because Go trims trailing zeros
    (``…05.1Z`` sorts after ``…05.12Z``). Offsets other than UTC are converted; an
    unparseable value sorts by its text (it will only ever equal itself).
    """
    base, rest = timestamp[:19], timestamp[19:]
    fraction = ""
    if rest.startswith("."):
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        fraction, rest = rest[1:end], rest[end:]
    nanos = int(fraction[:9].ljust(9, "0")) if fraction else 0
    if rest not in ("Z", "z", "+00:00", "-00:00"):
        try:
            moment = datetime.datetime.fromisoformat(base + rest)
        except ValueError:
            return timestamp, 0
        if moment.tzinfo is None:
            return timestamp, 0
        base = moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return base, nanos
