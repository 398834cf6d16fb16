"""Prometheus metrics of a session: runs, phases, API requests, watches, logs, the loop.

Why it exists: an operator running asyncpod in a service, a triggerer or a 100,000-pod
batch must see how many runs are in flight, how long pods wait to be scheduled, how
many API requests each pod costs, whether the watch keeps reconnecting and whether the
loop stalls. The counters live where the work happens (``kube/client.py``,
``kube/logs.py``, ``core/informer.py``, ``core/runner.py``); this module holds them and
hands them to ``prometheus_client`` when it is scraped.

    metrics = asyncpod.Metrics()                  # the default registry, or registry=...
    async with asyncpod.connect(metrics=metrics) as cluster:
        ...
    # serve it yourself (prometheus_client.start_http_server), or on the loop:
    async with asyncpod.metrics.serve(metrics.registry, port=9464): ...

How it stays cheap:

* **Off** (the default: :data:`OFF`), every hook is a method of an object that does
  nothing: one attribute lookup and one call, no branch, no allocation.
* **On**, a hook adds to a plain ``int``, a dict keyed by bounded label values or a
  histogram's bucket list (no lock: the event loop is one thread). ``prometheus_client``
  sees them only at scrape time, through :meth:`Metrics.collect` (a custom collector),
  which snapshots each dict with ``dict.copy()`` (atomic under the GIL), so a scrape
  from ``start_http_server``'s thread is safe too. Nothing is made per run: a run adds
  to shared counters when it starts and when it ends.
* **Bounded labels.** Label values come from closed sets (verbs, outcomes, causes) or
  pass through :class:`Bounded`, which admits the first ``limit`` distinct values of an
  open set (Kubernetes reasons, resources) and names every later one ``other``. Never
  a pod name, a namespace or a task key.

The metrics and their meaning are listed in docs/metrics.md (and pinned by
tests/unit/test_metrics.py): names follow Prometheus' conventions (``asyncpod_``
prefix, base units, ``_total`` counters).

What it deliberately does not do: import ``prometheus_client`` before a
:class:`Metrics` is made (it is the ``metrics`` extra), start a thread, or keep
anything per pod. Traces are not here.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from asyncpod.errors import ApiError, ApiTimeoutError, OptionError, UsageError

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

    from asyncpod.results import PodResult

__all__ = [
    "METRICS_EXTRA",
    "OFF",
    "Bounded",
    "Histogram",
    "Metrics",
    "MetricsOff",
    "MetricsServer",
    "phase_latencies",
    "request_labels",
    "retry_cause",
    "serve",
]

#: What to install for metrics; named by the error when ``prometheus_client`` is missing.
METRICS_EXTRA: Final = "asyncpod[metrics]"

OTHER: Final = "other"
"""The label value of every value past a :class:`Bounded`'s limit."""

# Buckets, in seconds. Kubernetes' timestamps have whole seconds: the phase buckets
# start at one.
PHASE_BUCKETS: Final = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
RUN_BUCKETS: Final = (1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)
RESULT_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


# ---------------------------------------------------------------------- pure parts
class Bounded:
    """Label values of an open set, bounded: the first ``limit`` distinct values pass,
    every later one is :data:`OTHER`. ``known`` values always pass (and do not count)."""

    __slots__ = ("_known", "_seen", "limit")

    def __init__(self, limit: int, known: Iterable[str] = ()) -> None:
        self.limit = limit
        self._known = frozenset(known)
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._known or value in self._seen:
            return value
        if len(self._seen) >= self.limit:
            return OTHER
        self._seen.add(value)
        return value


def request_labels(
    method: str, path: str, query: Mapping[str, str] | None = None
) -> tuple[str, str, str]:
    """``(verb, resource, subresource)`` of a request, as the API server's
    ``apiserver_request_total`` spells them: a GET of a collection is ``LIST``, or
    ``WATCH`` with ``watch=true``; a DELETE of one is ``DELETECOLLECTION``. A path
    outside ``/api`` and ``/apis`` (``/version``) has no resource. Pure.
    """
    # Indexes into one split, no slicing: this runs for every request when metrics are on.
    parts = path.rstrip("/").split("/")  # ["", "api", "v1", "namespaces", "ns", "pods", ...]
    count = len(parts)
    if count > 1 and parts[1] == "api":
        at = 3
    elif count > 1 and parts[1] == "apis":
        at = 4
    else:
        return method, "", ""
    if count - at >= 3 and parts[at] == "namespaces":
        at += 2  # a namespaced resource
    if at >= count or not parts[at]:
        return method, "", ""
    resource = parts[at]
    subresource = parts[at + 2] if count - at > 2 else ""
    if count - at == 1:  # the collection
        if method == "GET":
            watching = query is not None and query.get("watch") in ("true", "1")
            return ("WATCH" if watching else "LIST"), resource, subresource
        if method == "DELETE":
            return "DELETECOLLECTION", resource, subresource
    return method, resource, subresource


def retry_cause(error: BaseException) -> str:
    """Why a request is tried again: ``throttled`` (429), ``server_error`` (5xx),
    ``timeout`` or ``connection`` (refused, reset, cut). Pure."""
    if isinstance(error, ApiError):
        if error.status == 429:
            return "throttled"
        if error.status >= 500:
            return "server_error"
        return "status"
    if isinstance(error, ApiTimeoutError):
        return "timeout"
    return "connection"


def _seconds(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, float((end - start).total_seconds()))


def phase_latencies(result: PodResult) -> tuple[float | None, float | None, float | None]:
    """Seconds a pod spent in each phase: schedule latency (created → scheduled),
    startup (scheduled → its main container running, else the pod started) and run
    time (running → finished). None where an end is unknown; a negative span (clocks
    of different components) counts as zero. The same rule as ``asyncpod report``'s
    (asyncpod/report/_records.py). Pure."""
    main = result.main
    running = main.started_at if main is not None and main.started_at else result.started_at
    return (
        _seconds(result.created_at, result.scheduled_at),
        _seconds(result.scheduled_at, running),
        _seconds(running, result.finished_at),
    )


class Histogram:
    """Bucket counts of observations, cumulated only when read (``le`` semantics)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative ``(le, count)`` pairs, ``+Inf`` last, as the exposition wants."""
        counts = list(self.counts)  # one snapshot (atomic): monotonic whatever happens
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, math.inf), counts, strict=True):
            running += count
            out.append(("+Inf" if bound == math.inf else _float_text(bound), running))
        return out


def _float_text(value: float) -> str:
    return repr(float(value))


# ---------------------------------------------------------------------- the hooks
class MetricsOff:
    """Metrics turned off: every hook does nothing (the default of every session)."""

    __slots__ = ()
    enabled: ClassVar[bool] = False

    def api_request(
        self, method: str, path: str, query: Mapping[str, str] | None, status: int
    ) -> None:
        pass

    def api_retry(self, error: BaseException) -> None:
        pass

    def api_throttled(self) -> None:
        pass

    def watch_opened(self) -> None:
        pass

    def watch_reconnect(self) -> None:
        pass

    def watch_relist(self) -> None:
        pass

    def watch_stalled(self) -> None:
        pass

    def watch_bookmark(self) -> None:
        pass

    def watch_event(self, event_type: str) -> None:
        pass

    def informer_started(self, informer: object, size: Callable[[], int]) -> None:
        pass

    def informer_stopped(self, informer: object) -> None:
        pass

    def log_stream(self) -> contextlib.AbstractAsyncContextManager[None]:
        return _NO_CONTEXT

    def log_lines(self, count: int) -> None:
        pass

    def run_started(self) -> None:
        pass

    def run_ended(self, result: PodResult | None, error: BaseException | None, seen: float) -> None:
        pass

    def queue_depth(self, source: Callable[[], int] | None) -> None:
        pass


_NO_CONTEXT: Final = contextlib.nullcontext()

#: The metrics of a session made without ``metrics=``: nothing is counted.
OFF: Final = MetricsOff()


class Metrics(MetricsOff):
    """asyncpod's metrics, collected on ``registry`` (default: prometheus_client's).

    Pass it to every session that should count (``asyncpod.connect(metrics=...)``);
    sessions sharing one :class:`Metrics` add up. A registry holds one: a second on the
    same registry is an :class:`~asyncpod.OptionError` (make one and share it).
    ``registry=None`` with ``register=False`` makes one that no registry scrapes (tests).
    """

    __slots__ = (
        "_cache_sizes",
        "_event_types",
        "_events",
        "_log_lines",
        "_log_streams",
        "_log_streams_open",
        "_queue",
        "_reasons",
        "_relists",
        "_request_keys",
        "_requests",
        "_resources",
        "_retries",
        "_runs_ended",
        "_runs_started",
        "_stalls",
        "_throttled",
        "_watch_bookmarks",
        "_watch_opens",
        "_watch_reconnects",
        "loop_lag",
        "registry",
        "result_latency",
        "run_time",
        "schedule_latency",
        "startup_latency",
    )
    enabled: ClassVar[bool] = True

    def __init__(self, registry: CollectorRegistry | None = None, *, register: bool = True) -> None:
        try:
            import prometheus_client
        except ImportError:
            raise UsageError(
                f"metrics need prometheus_client: pip install '{METRICS_EXTRA}'"
            ) from None
        self.registry = registry if registry is not None else prometheus_client.REGISTRY
        self._runs_started = 0
        self._runs_ended: dict[tuple[str, str], int] = {}
        self._reasons = Bounded(64)
        self._requests: dict[tuple[str, str, str, str], int] = {}
        self._request_keys: dict[tuple[str, str, str, int], tuple[str, str, str, str]] = {}
        self._resources = Bounded(32, ("pods", "events", "log", ""))
        self._retries: dict[str, int] = {}
        self._throttled = 0
        self._watch_opens = self._watch_reconnects = self._relists = 0
        self._stalls = self._watch_bookmarks = 0
        self._events: dict[str, int] = {}
        self._event_types = Bounded(8, ("ADDED", "MODIFIED", "DELETED", "ERROR"))
        self._cache_sizes: dict[int, Callable[[], int]] = {}
        self._log_streams = self._log_streams_open = self._log_lines = 0
        self._queue: Callable[[], int] | None = None
        self.schedule_latency = Histogram(PHASE_BUCKETS)
        self.startup_latency = Histogram(PHASE_BUCKETS)
        self.run_time = Histogram(RUN_BUCKETS)
        self.result_latency = Histogram(RESULT_BUCKETS)
        self.loop_lag = Histogram(LAG_BUCKETS)
        if register:
            try:
                self.registry.register(self)
            except ValueError as error:
                raise OptionError(
                    f"this registry already has asyncpod's metrics ({error}); make one "
                    "Metrics per registry and pass it to every session"
                ) from None

    def __repr__(self) -> str:
        ended = sum(self._runs_ended.values())
        return (
            f"<Metrics runs_started={self._runs_started} runs_ended={ended} "
            f"requests={sum(self._requests.values())}>"
        )

    # -------------------------------------------------------------- kube/client.py
    def api_request(
        self, method: str, path: str, query: Mapping[str, str] | None, status: int
    ) -> None:
        raw = (*request_labels(method, path, query), status)
        key = self._request_keys.get(raw)
        if key is None:  # first seen: its label values bounded once
            verb, resource, subresource, _ = raw
            key = (verb, self._resources(resource), self._resources(subresource), _code(status))
            if len(self._request_keys) < 1024:
                self._request_keys[raw] = key
        self._requests[key] = self._requests.get(key, 0) + 1

    def api_retry(self, error: BaseException) -> None:
        cause = retry_cause(error)
        self._retries[cause] = self._retries.get(cause, 0) + 1

    def api_throttled(self) -> None:
        self._throttled += 1

    # -------------------------------------------------------------- core/informer.py
    def watch_opened(self) -> None:
        self._watch_opens += 1

    def watch_reconnect(self) -> None:
        self._watch_reconnects += 1

    def watch_relist(self) -> None:
        self._relists += 1

    def watch_stalled(self) -> None:
        self._stalls += 1

    def watch_bookmark(self) -> None:
        self._watch_bookmarks += 1

    def watch_event(self, event_type: str) -> None:
        key = self._event_types(event_type)
        self._events[key] = self._events.get(key, 0) + 1

    def informer_started(self, informer: object, size: Callable[[], int]) -> None:
        self._cache_sizes[id(informer)] = size

    def informer_stopped(self, informer: object) -> None:
        self._cache_sizes.pop(id(informer), None)

    # -------------------------------------------------------------- kube/logs.py
    @contextlib.asynccontextmanager
    async def log_stream(self) -> AsyncIterator[None]:
        self._log_streams += 1
        self._log_streams_open += 1
        try:
            yield
        finally:
            self._log_streams_open -= 1

    def log_lines(self, count: int) -> None:
        self._log_lines += count

    # -------------------------------------------------------------- core/runner.py
    def run_started(self) -> None:
        self._runs_started += 1

    def run_ended(self, result: PodResult | None, error: BaseException | None, seen: float) -> None:
        """A run's end: its outcome and reason, its phases, and how long it took from
        the terminal state seen (``seen``, ``time.monotonic()``) to the result."""
        self.result_latency.observe(max(0.0, time.monotonic() - seen))
        if result is None:
            outcome = "error" if error is not None else "cancelled"
            reason = type(error).__name__ if error is not None else ""
        else:
            outcome, reason = result.outcome.value, result.reason or ""
            schedule, startup, run = phase_latencies(result)
            if schedule is not None:
                self.schedule_latency.observe(schedule)
            if startup is not None:
                self.startup_latency.observe(startup)
            if run is not None:
                self.run_time.observe(run)
        key = (outcome, self._reasons(reason))
        self._runs_ended[key] = self._runs_ended.get(key, 0) + 1

    # -------------------------------------------------------------- launchers
    def queue_depth(self, source: Callable[[], int] | None) -> None:
        """Read the launcher's queue depth from ``source()`` at scrape time (None: no
        queue). A batch passes the tasks it has not started yet."""
        self._queue = source

    # -------------------------------------------------------------- the loop
    async def probe_loop(self, interval: float = 0.1) -> None:
        """Measure the event loop's lag until cancelled: how much later than asked a
        sleep of ``interval`` seconds wakes up. Run it in your task group."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + interval
            await asyncio.sleep(interval)
            self.loop_lag.observe(max(0.0, loop.time() - asked))

    # -------------------------------------------------------------- scrape
    def describe(self) -> list[Any]:
        """The families without samples (the registry checks names with it)."""
        return list(self._families(empty=True))

    def collect(self) -> list[Any]:
        """Every family with its samples, read now (prometheus_client's collector)."""
        return list(self._families(empty=False))

    def _families(self, *, empty: bool) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Any:
            return CounterMetricFamily(f"asyncpod_{name}", doc, labels=labels)

        def gauge(name: str, doc: str) -> Any:
            return GaugeMetricFamily(f"asyncpod_{name}", doc)

        def each(family: Any, values: dict[Any, int]) -> Any:
            if not empty:
                for key, value in values.copy().items():
                    family.add_metric(key if isinstance(key, tuple) else (key,), value)
            return family

        def single(family: Any, value: float) -> Any:
            if not empty:
                family.add_metric((), value)
            return family

        def histogram(name: str, doc: str, data: Histogram) -> Any:
            family = HistogramMetricFamily(f"asyncpod_{name}", doc)
            if not empty:
                family.add_metric((), data.buckets(), data.total)
            return family

        ended = self._runs_ended.copy()
        started = self._runs_started
        yield single(counter("runs_started", "Runs whose driver started."), started)
        yield each(
            counter(
                "runs_finished", "Runs that ended, by outcome and reason.", ("outcome", "reason")
            ),
            ended,
        )
        yield single(
            gauge("runs_in_flight", "Runs started and not ended yet."),
            started - sum(ended.values()),
        )
        queue = self._queue
        yield single(
            gauge("launcher_queue_depth", "Tasks of a batch not started yet."),
            queue() if queue is not None and not empty else 0,
        )
        yield histogram(
            "run_schedule_latency_seconds",
            "Pod created to scheduled (Kubernetes timestamps, whole seconds).",
            self.schedule_latency,
        )
        yield histogram(
            "run_startup_latency_seconds",
            "Pod scheduled to its main container running.",
            self.startup_latency,
        )
        yield histogram(
            "run_duration_seconds", "Main container running to finished.", self.run_time
        )
        yield histogram(
            "run_result_latency_seconds",
            "Terminal state seen to the result delivered (events read, pod deleted).",
            self.result_latency,
        )
        yield each(
            counter(
                "api_requests",
                "API requests answered (code) or failed in transport (code=error), "
                "as the API server names verbs and resources; retries count again.",
                ("verb", "resource", "subresource", "code"),
            ),
            self._requests,
        )
        yield each(
            counter("api_retries", "Requests tried again, by cause.", ("cause",)), self._retries
        )
        yield single(counter("api_throttled", "429 Too Many Requests answers."), self._throttled)
        yield single(counter("watch_opens", "Watch streams opened."), self._watch_opens)
        yield single(
            counter("watch_reconnects", "Watches reopened after a failure."), self._watch_reconnects
        )
        yield single(counter("watch_relists", "Relists after 410 Gone."), self._relists)
        yield single(
            counter("watch_stalls", "Watches presumed dead after the inactivity timeout."),
            self._stalls,
        )
        yield single(counter("watch_bookmarks", "Bookmarks received."), self._watch_bookmarks)
        yield each(
            counter("watch_events", "Watch events received, by type.", ("type",)), self._events
        )
        sizes = list(self._cache_sizes.copy().values())
        yield single(
            gauge("informer_cached_pods", "Pods in the informers' caches."),
            0 if empty else sum(size() for size in sizes),
        )
        yield single(counter("log_streams_opened", "Log streams opened."), self._log_streams)
        yield single(gauge("log_streams_open", "Log streams open now."), self._log_streams_open)
        yield single(counter("log_lines", "Log lines delivered."), self._log_lines)
        yield histogram(
            "event_loop_lag_seconds",
            "How late the loop woke a sleeping probe (Metrics.probe_loop).",
            self.loop_lag,
        )


def _code(status: int) -> str:
    return str(status) if status else "error"


# ---------------------------------------------------------------------- serving
@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint (:func:`serve`)."""

    host: str
    port: int
    scrapes: int = 0
    _scraped: asyncio.Event | None = None

    async def next_scrape(self) -> None:
        """Return after the next scrape has been answered."""
        self._scraped = asyncio.Event()
        await self._scraped.wait()


@contextlib.asynccontextmanager
async def serve(
    registry: CollectorRegistry | None = None, *, port: int, host: str = "127.0.0.1"
) -> AsyncIterator[MetricsServer]:
    """Serve ``registry`` (default: prometheus_client's) at ``http://host:port/metrics``
    on the running loop, for the block's length. Port 0 picks a free one
    (``server.port``). Loopback by default: the endpoint has no authentication.

    A scrape is answered on the loop, between two steps of the runs (no thread reads
    the counters while they change); it costs about a millisecond.
    """
    try:
        import prometheus_client
        from prometheus_client.exposition import CONTENT_TYPE_LATEST
    except ImportError:
        raise UsageError(f"metrics need prometheus_client: pip install '{METRICS_EXTRA}'") from None
    from aiohttp import web

    source = registry if registry is not None else prometheus_client.REGISTRY
    state = MetricsServer(host, port)

    async def metrics(_: web.Request) -> web.Response:
        body = prometheus_client.generate_latest(source)
        state.scrapes += 1
        if state._scraped is not None:
            state._scraped.set()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as error:
            raise OptionError(f"cannot serve metrics on {host}:{port}: {error}") from None
        for address in runner.addresses:
            state.port = int(address[1])
        yield state
    finally:
        await runner.cleanup()
