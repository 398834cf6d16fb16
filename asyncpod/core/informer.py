"""One shared LIST+WATCH per (namespace, label selector), fanned out to per-pod subscribers.

Why: following 1,000 pods with 1,000 GET loops (what Airflow's trigger does) costs
~500 requests a second and a blocked event loop; one watch costs one long request.
This informer keeps the latest version of every matching pod that somebody follows or
that is still running, and hands each change to the subscribers of that pod, in order,
without ever blocking the stream. A pod that ends while nobody follows it is kept a
little longer (:class:`RecentlyEnded`: ``recent_for`` seconds, at most
``recent_capacity`` of them), so that attaching to it right after (an Airflow trigger
deferred a moment after its create, a triggerer restarted, a batch resumed) needs no
GET; then it is dropped, and memory follows what runs, not the namespace's history.
Subscribers get their changes
each subscription has a small buffer and, when it is full, the newest state replaces
the last buffered one ("latest state wins" - a slow consumer skips intermediate
states, never the final one).

Keeping the stream honest (the facts that bit every peer):

* LIST, then WATCH from the list's resourceVersion with bookmarks, so a reconnect
  resumes from a recent version even when nothing we watch has changed.
* 410 Gone: relist and diff against the cache; pods that vanished in the gap get a
  synthetic DELETED, changed ones a synthetic MODIFIED, so no subscriber misses its
  pod's end.
* No event or bookmark for ``inactivity_timeout`` seconds: the connection is presumed
  dead (half-open TCP) and reopened.
* Reconnects back off with jitter; errors that retrying cannot fix (401, 403, 404 of
  the namespace) fail every subscriber with that error instead of spinning.

What it deliberately does not do: build typed models (events stay orjson dicts), poll,
or know what a "run" is (that is :mod:`asyncpod.core.runner`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from asyncpod.core import lifecycle
from asyncpod.core.flag import Flag
from asyncpod.core.kepterrors import without_tracebacks
from asyncpod.core.sharing import ValueTable
from asyncpod.errors import (
    AsyncpodError,
    ClosedError,
    ForbiddenError,
    GoneError,
    TransientError,
    UnauthorizedError,
)
from asyncpod.kube.client import KubeClient, RetryPolicy
from asyncpod.kube.pods import Pods, pod_path
from asyncpod.kube.watch import ADDED, BOOKMARK, DELETED, MODIFIED
from asyncpod.metrics import OFF, MetricsOff

__all__ = [
    "InformerStatistics",
    "PodChange",
    "PodInformer",
    "PodSubscription",
    "WaitInterruptedError",
]

logger = logging.getLogger("asyncpod.informer")


@dataclass(frozen=True, slots=True)
class PodChange:
    """A change to one pod: ``type`` is ADDED, MODIFIED or DELETED; ``pod`` the raw dict.

    ``synthetic`` is true when the change was inferred by a relist after 410 Gone
    rather than seen on the stream (a deletion in the gap, for example).
    """

    type: str
    pod: dict[str, Any]
    synthetic: bool = False


@dataclass(frozen=True, slots=True)
class InformerStatistics:
    namespace: str
    label_selector: str | None
    synced: bool
    cached_pods: int
    subscribers: int
    lists: int
    watches_opened: int
    events: int
    bookmarks: int
    gone: int
    stalls: int
    reconnects: int
    coalesced: int
    resource_version: str
    recently_ended: int = 0
    """Pods kept a while after they ended unfollowed (:class:`RecentlyEnded`)."""
    watches_ended: int = 0
    """Watches the server ended cleanly (its timeout, or a consumer it found too slow),
    each resumed from the last version seen: neither a reconnect nor a relist."""


@dataclass(frozen=True, slots=True)
class Ended:
    """What is known of a pod that ended while nobody followed it."""

    pod: dict[str, Any]
    """Its last version (projected), as the watch last showed it."""
    deleted: bool
    """Gone from the API server (not only finished)."""
    at: float
    """When it was seen ending (``time.monotonic()``)."""


class RecentlyEnded:
    """Pods that ended while nobody followed them, kept for a while, oldest out first.

    Bounded twice: an entry lives ``keep_for`` seconds, and at most ``capacity`` live
    at once. Pure but for the clock, which callers pass in.
    """

    __slots__ = ("_entries", "capacity", "keep_for")

    def __init__(self, *, keep_for: float, capacity: int) -> None:
        self.keep_for = keep_for
        self.capacity = capacity
        self._entries: dict[str, Ended] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, name: str, pod: dict[str, Any], *, deleted: bool, now: float) -> None:
        """Keep ``pod`` (a deleted one only as its identity: all an attach needs to say
        "gone" without a read, and a batch deletes thousands a minute)."""
        self._entries.pop(name, None)  # re-inserted: newest last
        if self.capacity > 0 and self.keep_for > 0:
            kept = _identity(pod) if deleted else pod
            self._entries[name] = Ended(kept, deleted, now)
        self.prune(now)

    def recall(self, name: str, *, now: float) -> Ended | None:
        self.prune(now)
        return self._entries.get(name)

    def forget(self, name: str) -> Ended | None:
        return self._entries.pop(name, None)

    def prune(self, now: float) -> None:
        entries = self._entries
        while entries:
            oldest = next(iter(entries))
            if len(entries) <= self.capacity and now - entries[oldest].at < self.keep_for:
                return
            del entries[oldest]


def _identity(pod: dict[str, Any]) -> dict[str, Any]:
    metadata = pod.get("metadata") or {}
    return {"metadata": {k: metadata[k] for k in ("name", "namespace", "uid") if k in metadata}}


class WaitInterruptedError(ClosedError):
    """Raised by a subscription's waits once :meth:`PodSubscription.interrupt` was called:
    its subscriber was asked to stop waiting (a run cancelled while following its pod).
    Closed to that subscriber, so code that ends on :class:`ClosedError` ends on it too;
    it never leaves the run."""


class PodSubscription:
    """The stream of changes to one pod (by name; pinned to a uid once known).

    Async-iterate it, or call :meth:`next`. The informer pushes without waiting; when
    ``buffer`` changes are queued the newest replaces the last queued one.

    One exists per run in flight, so it is kept small: slots, and a plain list for the
    queue (it holds one or two changes; a deque's first block alone is 624 bytes).
    """

    __slots__ = (
        "_buffer",
        "_closed",
        "_error",
        "_informer",
        "_interrupted",
        "_listener",
        "_queue",
        "_wakeup",
        "coalesced",
        "latest",
        "name",
        "uid",
    )

    def __init__(self, informer: PodInformer, name: str, *, uid: str | None, buffer: int) -> None:
        self._informer = informer
        self.name = name
        self.uid = uid
        self._queue: list[PodChange] = []
        self._buffer = max(1, buffer)
        self._wakeup = Flag()
        self._error: BaseException | None = None
        self._closed = False
        self._interrupted = False
        self.latest: dict[str, Any] | None = None
        self.coalesced = 0
        self._listener: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<PodSubscription {self.name} uid={self.uid} queued={len(self._queue)}>"

    def pin(self, uid: str) -> None:
        """Only accept events of this incarnation of the pod from now on."""
        self.uid = uid
        self._queue = [e for e in self._queue if _uid(e.pod) == uid]

    def _push(self, event: PodChange) -> None:
        if self._closed:
            return
        if self.uid is not None and _uid(event.pod) != self.uid:
            return  # an earlier pod of the same name
        self.latest = event.pod if event.type != DELETED else self.latest or event.pod
        if len(self._queue) >= self._buffer:
            self._queue[-1] = event  # latest state wins; order is kept
            self.coalesced += 1
        else:
            self._queue.append(event)
        self._wake()

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._wake()

    def _wake(self) -> None:
        self._wakeup.set()
        if self._listener is not None:
            self._listener()

    def listen(self, listener: Callable[[], None] | None) -> None:
        """Call ``listener()`` (in the informer's task, or the caller's) whenever
        :meth:`take_nowait` may have something new: a change pushed, the informer
        failed, the wait interrupted, the subscription closed. None: stop calling.

        For a subscriber that waits without a task (a parked run,
        :meth:`asyncpod.core.runner.PodRun.park`); the listener must not raise.
        """
        self._listener = listener

    def interrupt(self) -> None:
        """End the subscriber's wait: :meth:`next` and :meth:`next_within` raise
        :class:`WaitInterruptedError` from now on (what is queued is not handed out). One flag
        checked per wait, where a cancel scope per subscriber would cost its scope and
        two sets for as long as it waits."""
        self._interrupted = True
        self._wake()

    async def next(self) -> PodChange:
        """The next change; raises the informer's error if the watch cannot continue,
        :class:`WaitInterruptedError` once interrupted."""
        if self._interrupted:
            raise WaitInterruptedError(f"wait on pod {self.name} interrupted")
        while not self._queue:
            self._check_open()
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.pop(0)  # at most ``buffer`` long, mostly one

    def take_nowait(self) -> PodChange | None:
        """:meth:`next` without waiting: the next queued change, or None when none is.

        Raises as :meth:`next` does when no change can come any more.
        """
        if self._interrupted:
            raise WaitInterruptedError(f"wait on pod {self.name} interrupted")
        if self._queue:
            return self._queue.pop(0)
        self._check_open()
        return None

    async def next_within(self, seconds: float) -> PodChange | None:
        """:meth:`next`, or None once ``seconds`` passed without a change.

        A timer, not a cancel scope: the follower of every run asks this on every
        event while a deadline is pending (:func:`asyncpod.core.policy.next_deadline`).
        """
        deadline = time.monotonic() + seconds
        if self._interrupted:
            raise WaitInterruptedError(f"wait on pod {self.name} interrupted")
        while not self._queue:
            self._check_open()
            self._wakeup.clear()
            if not await self._wakeup.wait_for(deadline - time.monotonic()):
                return None  # not woken: nothing was pushed
        return self._queue.pop(0)

    async def wait_seen(self) -> dict[str, Any]:
        """The pod as the informer first delivers it (at once if it is cached).

        Consumes nothing: :meth:`next` still yields that change. Raises the informer's
        error, or :class:`ClosedError` once the subscription is closed.
        """
        while self.latest is None:
            self._check_open()
            self._wakeup.clear()
            await self._wakeup.wait()
        return self.latest

    def _check_open(self) -> None:
        """Raise the informer's error, or ClosedError, if no push can come any more;
        WaitInterruptedError once interrupted."""
        if self._interrupted:
            raise WaitInterruptedError(f"wait on pod {self.name} interrupted")
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ClosedError(f"subscription to pod {self.name} is closed")

    def __aiter__(self) -> AsyncIterator[PodChange]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[PodChange]:
        while True:
            try:
                yield await self.next()
            except ClosedError:
                return

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._wake()
            self._informer._unsubscribe(self)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _uid(pod: dict[str, Any]) -> str | None:
    uid = pod.get("metadata", {}).get("uid")
    return str(uid) if uid else None


def _name(pod: dict[str, Any]) -> str:
    return str(pod.get("metadata", {}).get("name", ""))


def _finished(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _rv(pod: dict[str, Any]) -> str:
    return str(pod.get("metadata", {}).get("resourceVersion", ""))


class PodInformer:
    """Watch the pods of ``namespace`` matching ``label_selector``; see the module doc.

    Run :meth:`run` in a task group; :meth:`subscribe` any time (before the pod
    exists, too). :meth:`wait_synced` returns after the first LIST.
    """

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        *,
        label_selector: str | None = None,
        inactivity_timeout: float = 70.0,
        watch_timeout: int = 290,
        backoff: RetryPolicy | None = None,
        buffer: int = 32,
        page_size: int = 500,
        auth_retry_window: float = 60.0,
        recent_for: float = 120.0,
        recent_capacity: int = 2048,
    ) -> None:
        self._client = client
        # asyncpod.metrics (OFF does nothing); a stand-in client of a unit test has none
        self._metrics: MetricsOff = getattr(client, "metrics", OFF)
        self._pods = Pods(client)
        self.namespace = namespace
        self.label_selector = label_selector
        self._path = pod_path(namespace)  # for messages
        self._inactivity_timeout = inactivity_timeout
        self._watch_timeout = watch_timeout
        self._backoff = backoff or RetryPolicy(backoff_base=0.2, backoff_cap=10.0)
        self._buffer = buffer
        self._page_size = page_size
        self._auth_retry_window = auth_retry_window
        self._cache: dict[str, dict[str, Any]] = {}
        self._values = ValueTable()
        self._recent = RecentlyEnded(keep_for=recent_for, capacity=recent_capacity)
        # A list per name: mostly one subscription (a set is 216 bytes even then).
        self._subscribers: dict[str, list[PodSubscription]] = {}
        self._synced = Flag()
        self._settled = Flag()  # synced, or failed for good
        self._resource_version = ""
        # wait_version's waiters, a heap by the version each waits for: an advance wakes
        # only those it reached. (One flag for all of them woke every waiting trigger on
        # every watch event, and each went back to wait: 0.8 s of one loop iteration at
        # 5,000 triggers attaching, benchmarks/README.md "One flag per run".)
        self._version_waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._version_waits = 0
        self._failure: BaseException | None = None
        self._stopped = False
        self._lists = self._watches = self._events = self._bookmarks = 0
        #: A watch was allowed once (it delivered something, or ended cleanly).
        self._watch_answered = False
        self._gone = self._stalls = self._reconnects = self._watches_ended = 0
        self._connection_errors_at_start = 0  # taken when the loop starts

    # ------------------------------------------------------------------ public
    def __repr__(self) -> str:
        stats = self.statistics()
        return (
            f"<PodInformer ns={self.namespace} selector={self.label_selector!r} "
            f"synced={stats.synced} pods={stats.cached_pods} subscribers={stats.subscribers} "
            f"watches={stats.watches_opened} events={stats.events} gone={stats.gone} "
            f"rv={stats.resource_version}>"
        )

    def statistics(self) -> InformerStatistics:
        return InformerStatistics(
            namespace=self.namespace,
            label_selector=self.label_selector,
            synced=self._synced.is_set(),
            cached_pods=len(self._cache),
            subscribers=sum(len(s) for s in self._subscribers.values()),
            lists=self._lists,
            watches_opened=self._watches,
            events=self._events,
            bookmarks=self._bookmarks,
            gone=self._gone,
            stalls=self._stalls,
            reconnects=self._reconnects,
            coalesced=sum(s.coalesced for subs in self._subscribers.values() for s in subs),
            resource_version=self._resource_version,
            recently_ended=len(self._recent),
            watches_ended=self._watches_ended,
        )

    @property
    def failure(self) -> BaseException | None:
        """The error that stopped this informer for good, if any."""
        return self._failure

    async def wait_synced(self) -> None:
        """Return once the first LIST has filled the cache (raise if that failed)."""
        if self._failure is not None:
            raise self._failure
        await self._settled.wait()
        if self._failure is not None:
            raise self._failure

    def get(self, name: str) -> dict[str, Any] | None:
        """The latest cached version of pod ``name`` (None if unknown or deleted).

        The cache holds the pods somebody subscribed to and the pods still running;
        a finished pod nobody follows is not kept. Pods are kept (and delivered) as
        :func:`lifecycle.project` makes them: metadata and status whole, the spec's
        scalars and its containers' names, images and restart policies.
        """
        return self._cache.get(name)

    def recall(self, name: str) -> Ended | None:
        """What is known of pod ``name`` if it ended (finished or was deleted) while
        nobody followed it, a short while ago (:class:`RecentlyEnded`); else None."""
        return self._recent.recall(name, now=time.monotonic())

    def has_seen(self, resource_version: str) -> bool | None:
        """Whether the stream has reached ``resource_version`` (so every change up to
        it is in the cache). None when versions cannot be compared (not integers: the
        API contract calls them opaque; etcd-backed servers hand out integers)."""
        if not resource_version.isdigit():
            return None
        mine = self._resource_version
        return mine.isdigit() and int(mine) >= int(resource_version)

    async def wait_version(self, resource_version: str) -> bool:
        """Wait until the stream has reached ``resource_version``; False at once if the
        versions cannot be compared. Raises the informer's error if it stops."""
        while True:
            seen = self.has_seen(resource_version)
            if seen is not False:
                return bool(seen)
            if self._failure is not None:
                raise self._failure
            if self._stopped:
                raise ClosedError(f"informer for {self.namespace} is stopped")
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._version_waits += 1
            heapq.heappush(
                self._version_waiters, (int(resource_version), self._version_waits, waiter)
            )
            try:
                await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()  # left in the heap, passed over when it comes up

    def pods(self) -> list[dict[str, Any]]:
        """Every cached pod (a snapshot list; the dicts are shared, do not mutate)."""
        return list(self._cache.values())

    def subscribe(self, name: str, *, uid: str | None = None) -> PodSubscription:
        """Follow pod ``name``; if it is cached, its current state is delivered first."""
        if self._failure is not None:
            raise self._failure
        if self._stopped:
            raise ClosedError(f"informer for {self.namespace} is stopped")
        subscription = PodSubscription(self, name, uid=uid, buffer=self._buffer)
        self._subscribers.setdefault(name, []).append(subscription)
        ended = self._recent.recall(name, now=time.monotonic())
        if name not in self._cache and ended is not None and not ended.deleted:
            self._recent.forget(name)
            self._cache[name] = ended.pod  # followed now: cached while followed
        cached = self._cache.get(name)
        if cached is not None:
            subscription._push(PodChange(MODIFIED, cached))
        return subscription

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        """LIST+WATCH until cancelled; reconnect on anything transient."""
        failures = 0
        need_list = True
        denied_since: float | None = None
        self._connection_errors_at_start = self._client.statistics().connection_errors
        self._metrics.informer_started(self, self._cache.__len__)
        try:
            while True:
                try:
                    if need_list:
                        await self._relist()
                        need_list = False
                    await self._watch_once()
                    self._watch_answered = True
                    failures = 0  # a clean server-side end: resume from the last version
                    self._watches_ended += 1
                except GoneError:
                    self._gone += 1
                    self._metrics.watch_relist()
                    need_list = True
                    logger.info("%s: resourceVersion expired (410); relisting", self._path)
                except (TransientError, OSError, asyncio.TimeoutError) as error:
                    if type(error).__name__ == "WatchStalledError":
                        self._stalls += 1
                        self._metrics.watch_stalled()
                    failures += 1
                    self._reconnects += 1
                    self._metrics.watch_reconnect()
                    delay = self._backoff.delay(min(failures - 1, 10))
                    logger.warning(
                        "%s: watch interrupted (%s); reconnecting in %.1fs",
                        self._path, error, delay,
                    )  # fmt: skip
                    await anyio.sleep(delay)
                except (ForbiddenError, UnauthorizedError) as error:
                    # A 401/403 is a missing permission: say so at once. Unless the
                    # watch was allowed before (one answered) or the server was
                    # unreachable a moment ago: an API server that has just restarted
                    # answers 403 until its RBAC caches sync, so retry for a while
                    # before believing it. A LIST that worked says nothing of the watch
                    # verb: a Role without it failed only after this whole window.
                    denied_since = denied_since or time.monotonic()
                    # The client's own retries hide connection failures from us: count
                    # them on the client (as the runner does).
                    restarted = (
                        self._watch_answered
                        or self._reconnects > 0
                        or self._client.statistics().connection_errors
                        > self._connection_errors_at_start
                    )
                    if not restarted or (time.monotonic() - denied_since > self._auth_retry_window):
                        self._fail_all(error)
                        return
                    failures += 1
                    self._reconnects += 1
                    self._metrics.watch_reconnect()
                    await anyio.sleep(self._backoff.delay(min(failures - 1, 10)))
                    continue
                except AsyncpodError as error:
                    # 400/404 and the like: retrying cannot help. Say why and stop.
                    self._fail_all(error)
                    return
                except Exception as error:
                    # A bug of ours: fail the runs that wait on this watch (they end with
                    # this error and delete their pods) instead of the whole session.
                    logger.exception("%s: informer failed unexpectedly", self._path)
                    failure = AsyncpodError(
                        f"the watch of {self._path} failed: {type(error).__name__}: {error}"
                    )
                    failure.__cause__ = error
                    self._fail_all(failure)
                    return
                denied_since = None
        finally:
            self._stopped = True
            self._metrics.informer_stopped(self)
            if self._failure is None:
                self._fail_all(ClosedError(f"informer for {self.namespace} stopped"))

    async def _relist(self) -> None:
        # Not behind the client's rate limiter: every run waits on this informer, so
        # its LIST and WATCH must not queue behind a burst of thousands of creates.
        listed = await self._pods.list(
            self.namespace,
            label_selector=self.label_selector,
            page_size=self._page_size,
            rate_limited=False,
            managed_fields=False,  # project() drops it: not decoded at all
        )
        items, version = listed.items, listed.resource_version
        self._lists += 1
        fresh = {_name(pod): lifecycle.project(pod) for pod in items}
        first = not self._synced.is_set()
        # Diff against the cache: deletions that happened while we were not watching,
        # then additions and changes. On the first list this only fills the cache.
        for name, old in list(self._cache.items()):
            new = fresh.get(name)
            if new is None or _uid(new) != _uid(old):
                del self._cache[name]
                if name not in self._subscribers:
                    self._recent.remember(name, old, deleted=True, now=time.monotonic())
                self._deliver(PodChange(DELETED, old, synthetic=True))
        for name, pod in fresh.items():
            previous = self._cache.get(name)
            self._keep(name, pod)
            if previous is None:
                self._deliver(PodChange(ADDED, pod, synthetic=not first))
            elif _rv(previous) != _rv(pod):
                self._deliver(PodChange(MODIFIED, pod, synthetic=True))
        self._advance(version)
        self._synced.set()
        self._settled.set()

    async def _watch_once(self) -> None:
        self._watches += 1
        self._metrics.watch_opened()
        stream = self._pods.watch(
            self.namespace,
            resource_version=self._resource_version,
            label_selector=self.label_selector,
            timeout_seconds=self._watch_timeout,
            inactivity_timeout=self._inactivity_timeout,
            rate_limited=False,
            managed_fields=False,  # project() drops it: not decoded at all
        )
        async with contextlib.aclosing(stream) as events:
            async for event_type, obj in events:
                self._watch_answered = True
                version = _rv(obj)
                if event_type == BOOKMARK:
                    self._bookmarks += 1
                    self._metrics.watch_bookmark()
                    if version:
                        self._advance(version)
                    continue
                self._events += 1
                self._metrics.watch_event(event_type)
                obj = lifecycle.project(obj)  # what runs read; half the memory
                name = _name(obj)
                if event_type == DELETED:
                    self._cache.pop(name, None)
                    if name not in self._subscribers:
                        self._recent.remember(name, obj, deleted=True, now=time.monotonic())
                else:
                    self._keep(name, obj)
                if version:
                    self._advance(version)
                self._deliver(PodChange(event_type, obj))

    def _keep(self, name: str, pod: dict[str, Any]) -> None:
        """Cache what a subscriber may need: pods somebody follows, and live pods.

        A finished pod that nobody follows is dropped (memory follows what runs, not
        the namespace's history); a live one is kept so that attaching to it needs no
        GET. The dicts are the decoded events themselves, shared, never copied; their
        repeated values are replaced by one copy each (:mod:`asyncpod.core.sharing`).
        """
        if name in self._subscribers or not _finished(pod):
            self._cache[name] = self._values.share(pod)  # in place: subscribers' too
            self._recent.forget(name)
        else:
            self._cache.pop(name, None)
            self._recent.remember(name, pod, deleted=False, now=time.monotonic())

    def _advance(self, version: str) -> None:
        self._resource_version = version
        waiters = self._version_waiters
        if waiters and version.isdigit():
            reached = int(version)
            while waiters and waiters[0][0] <= reached:
                _wake(heapq.heappop(waiters)[2])

    def _wake_version_waiters(self) -> None:
        """Every wait_version waiter, to see the informer's failure or end."""
        waiters, self._version_waiters = self._version_waiters, []
        for _, _, waiter in waiters:
            _wake(waiter)

    # ------------------------------------------------------------------ fan-out
    def _deliver(self, event: PodChange) -> None:
        subscribers = self._subscribers.get(_name(event.pod))
        if subscribers:
            for subscription in tuple(subscribers):
                subscription._push(event)

    def _fail_all(self, error: AsyncpodError) -> None:
        # Its traceback runs through this informer's own frames (a bug's cause too,
        # logged already): kept as it is, a failed informer that its session replaces
        # would be garbage only a full GC pass frees (core/kepterrors.py).
        self._failure = without_tracebacks(error)
        self._settled.set()
        self._wake_version_waiters()
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription._fail(error)

    def _unsubscribe(self, subscription: PodSubscription) -> None:
        subscribers = self._subscribers.get(subscription.name)
        if subscribers is not None:
            if subscription in subscribers:
                subscribers.remove(subscription)
            if not subscribers:
                del self._subscribers[subscription.name]
                cached = self._cache.get(subscription.name)
                if cached is not None and _finished(cached):
                    del self._cache[subscription.name]
