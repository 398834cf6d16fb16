"""One asyncpod session per (cluster, namespace) and event loop, shared by every trigger.

Why it exists: a triggerer runs all its triggers as tasks of one event loop in one
process. If each trigger opened its own client, 1,000 deferred pods would mean 1,000
TLS sessions and 1,000 watches. Here the first trigger for a (cluster identity,
namespace) opens a :class:`~asyncpod.Cluster`; later ones join it; the last one to
leave closes it. Nothing is shared across event loops: ``dag.test()`` runs every
trigger under a fresh ``asyncio.run``, and a session must never outlive its loop, so
the registry is keyed by the running loop (weakly: a loop that is gone takes its keys
with it).

Client-side limits: the session is shared by every trigger of the process, so a rate
limit here delays every task's completion when many pods end together (measured: 1,000
triggers behind asyncpod's default 50 QPS waited up to 10 s to report). By default it
has none, like the reference provider's trigger; concurrency stays bounded by the
client's request and stream budgets, and a server that pushes back (429) is obeyed.
``[asyncpod] client_qps`` / ``client_burst`` in Airflow's configuration
(``AIRFLOW__ASYNCPOD__CLIENT_QPS``) set one (:func:`client_limits`).

Connection lookups: a trigger reads its Airflow connection through the triggerer's
supervisor (and, on Airflow 3, the API server behind it). :func:`shared_target` lets
the triggers of one loop that ask for the same connection within :data:`TARGET_TTL`
seconds share one lookup: 100 triggers arriving together (a DAG run, a triggerer
restart) make one, not 100. A failed lookup is not kept; a changed connection is seen
by the triggers that start after the TTL (the open session keeps what it opened with,
as it always did).

What it deliberately does not do: own pods. Triggers attach with the KEEP cleanup
policy, so closing a session (the last trigger leaving, a triggerer shutting down)
never deletes a pod; deleting is the trigger's explicit decision.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from asyncpod.airflow.connection import KubeTarget, open_client
from asyncpod.airflow.stats import triggerer_stats
from asyncpod.core.cluster import Cluster
from asyncpod.errors import ConfigError, UsageError

__all__ = [
    "TARGET_TTL",
    "SessionStatistics",
    "SharedCluster",
    "client_limits",
    "session_statistics",
    "shared_cluster",
    "shared_target",
]

_OFF = frozenset({"", "none", "off", "0"})

# Streams are budgeted explicitly (one per followed log, one per watch): a triggerer
# following 1,000 pods' logs needs more than asyncpod's default of 400.
DEFAULT_MAX_STREAMS = 1100


@dataclass(eq=False)
class _Entry:
    users: int = 0
    cluster: Cluster | None = None
    error: BaseException | None = None
    opened: asyncio.Event = field(default_factory=asyncio.Event)


_Key = tuple[object, ...]
_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, _Entry]] = (
    weakref.WeakKeyDictionary()
)


#: Seconds a connection lookup is shared by the triggers that start after it.
TARGET_TTL = 60.0
_targets: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[_Key, tuple[float, asyncio.Future[KubeTarget]]]
] = weakref.WeakKeyDictionary()


class _LookupAbandonedError(Exception):
    """The caller making a shared lookup was cancelled: one of its waiters makes it."""


async def shared_target(
    key: _Key, load: Callable[[], Awaitable[KubeTarget]], *, ttl: float = TARGET_TTL
) -> KubeTarget:
    """``load()``'s target, shared by the running loop's callers of the same ``key``.

    The first caller makes the lookup in its own task; callers within ``ttl`` seconds
    of it await its answer (shielded: a waiter's cancellation does not cancel it). If
    the caller making it is cancelled, a waiter makes it again; a lookup that fails is
    forgotten at once, so the next caller tries again. No task of its own: nothing
    outlives the callers (a lookup task left running after every trigger had gone
    could outlive the triggerer's loop).
    """
    loop = asyncio.get_running_loop()
    entries = _targets.setdefault(loop, {})
    while True:
        found = entries.get(key)
        if found is not None and loop.time() < found[0]:
            try:
                return await asyncio.shield(found[1])
            except _LookupAbandonedError:
                continue  # its maker was cancelled: make it here
        answer: asyncio.Future[KubeTarget] = loop.create_future()
        entry = (loop.time() + ttl, answer)
        entries[key] = entry
        try:
            target = await load()
        except BaseException as error:
            if entries.get(key) is entry:
                del entries[key]
            shared = error if isinstance(error, Exception) else _LookupAbandonedError()
            answer.set_exception(shared)
            answer.exception()  # retrieved: no warning when no caller waited for it
            raise
        answer.set_result(target)
        return target


@dataclass(frozen=True, slots=True)
class SessionStatistics:
    sessions: int
    users: int


def session_statistics(loop: asyncio.AbstractEventLoop | None = None) -> SessionStatistics:
    """Open sessions and their users on ``loop`` (default: the running loop)."""
    entries = _registry.get(loop or asyncio.get_running_loop(), {})
    return SessionStatistics(len(entries), sum(e.users for e in entries.values()))


def shared_cluster(target: KubeTarget, namespace: str, **client_options: Any) -> SharedCluster:
    """The shared session for ``target`` and ``namespace`` on the running loop, to use
    as ``async with shared_cluster(target, namespace) as cluster``.

    ``client_options`` only matter to the first user (they open the session).
    """
    return SharedCluster(target, namespace, client_options)


class SharedCluster:
    """One use of a shared session (:func:`shared_cluster`): joined on enter, left on
    exit; the last user to leave closes it.

    A class, not an ``asynccontextmanager``: every deferred task holds one for as long
    as it waits, and a generator-based one costs the process four GC-tracked objects
    more per task (the generator, the event loop's weak reference to it, the context
    manager's dict and arguments).
    """

    __slots__ = ("_entries", "_entry", "_key", "_namespace", "_options", "_target")

    def __init__(self, target: KubeTarget, namespace: str, options: dict[str, Any]) -> None:
        self._target = target
        self._namespace = namespace
        self._options = options
        self._entries: dict[_Key, _Entry] | None = None
        self._entry: _Entry | None = None
        self._key: _Key = ()

    async def __aenter__(self) -> Cluster:
        if self._entry is not None:
            raise UsageError(
                "a SharedCluster is entered once: call shared_cluster() again for another use"
            )
        entries = self._entries = _registry.setdefault(asyncio.get_running_loop(), {})
        key = self._key = (self._target.identity(), self._namespace)
        entry = entries.get(key)
        opener = entry is None
        if entry is None:
            entry = entries[key] = _Entry()
        entry.users += 1
        self._entry = entry
        try:
            await (self._open(entry) if opener else self._join(entry))
        except BaseException:
            await self._leave()
            raise
        assert entry.cluster is not None
        return entry.cluster

    async def _open(self, entry: _Entry) -> None:
        """The first user opens the session; the others wait for that (:meth:`_join`)."""
        try:
            entry.cluster = await _open(self._target, self._namespace, self._options)
        except BaseException as error:
            entry.error = error
            if self._entries is not None and self._entries.get(self._key) is entry:
                del self._entries[self._key]
            raise
        finally:
            entry.opened.set()

    @staticmethod
    async def _join(entry: _Entry) -> None:
        await entry.opened.wait()
        if entry.error is not None:
            raise entry.error

    async def __aexit__(self, *exc_info: object) -> None:
        await self._leave()

    async def _leave(self) -> None:
        entry, entries = self._entry, self._entries
        assert entry is not None
        assert entries is not None
        entry.users -= 1
        if entry.users == 0 and entry.cluster is not None:
            if entries.get(self._key) is entry:
                del entries[self._key]  # a newcomer from now on opens a fresh session
            with anyio.CancelScope(shield=True):
                await entry.cluster.aclose()


def client_limits(qps: str | None, burst: str | None) -> dict[str, Any]:
    """The session's rate limit from ``[asyncpod] client_qps`` and ``client_burst``.

    No ``client_qps`` (or ``none``/``off``/``0``): no client-side rate limit. Otherwise
    that many requests per second sustained, and ``client_burst`` at once (default:
    twice the rate). Anything else is a :class:`ConfigError` naming the option.
    """
    qps_text = (qps or "").strip().lower()
    if qps_text in _OFF:
        return {"qps": None}
    try:
        rate = float(qps_text)
    except ValueError:
        rate = -1.0
    if not rate > 0:
        raise ConfigError(
            f"[asyncpod] client_qps must be a positive number of requests per second, "
            f"or none for no client-side limit; got {qps!r}"
        )
    burst_text = (burst or "").strip()
    if not burst_text:
        return {"qps": rate, "burst": max(1, int(2 * rate))}
    if not burst_text.isdigit() or int(burst_text) < 1:
        raise ConfigError(f"[asyncpod] client_burst must be a whole number >= 1; got {burst!r}")
    return {"qps": rate, "burst": int(burst_text)}


def _configured_limits() -> dict[str, Any]:
    from airflow.configuration import conf

    return client_limits(
        conf.get("asyncpod", "client_qps", fallback=None),
        conf.get("asyncpod", "client_burst", fallback=None),
    )


async def _open(target: KubeTarget, namespace: str, client_options: dict[str, Any]) -> Cluster:
    options = {
        "max_streams": DEFAULT_MAX_STREAMS,
        "metrics": triggerer_stats(),  # Airflow's own metrics (asyncpod.airflow.stats)
        **_configured_limits(),
        **client_options,
    }
    client = await open_client(target, **options)
    cluster = Cluster(client, namespace=namespace)
    try:
        await cluster.__aenter__()
    except BaseException:
        await client.aclose()
        raise
    return cluster
