"""One asyncpod session per (cluster, namespace) and event loop, shared by every trigger.

Why it exists: a triggerer runs all its triggers as tasks of one event loop in one
process. If each trigger opened its own client, 1,000 deferred pods would mean 1,000
TLS sessions and 1,000 watches. Here the first trigger for a (cluster identity,
namespace) opens a :class:`~asyncpod.Cluster`; later ones join it; the last one to
leave closes it. Nothing is shared across event loops: ``dag.test()`` runs every
trigger under a fresh ``asyncio.run``, and a session must never outlive its loop, so
the registry is keyed by the running loop (weakly: a loop that is gone takes its keys
with it).

What it deliberately does not do: own pods. Triggers attach with the KEEP cleanup
policy, so closing a session (the last trigger leaving, a triggerer shutting down)
never deletes a pod; deleting is the trigger's explicit decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio

from asyncpod.airflow.connection import KubeTarget, open_client
from asyncpod.core.cluster import Cluster

__all__ = ["SessionStatistics", "session_statistics", "shared_cluster"]

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


@dataclass(frozen=True, slots=True)
class SessionStatistics:
    sessions: int
    users: int


def session_statistics(loop: asyncio.AbstractEventLoop | None = None) -> SessionStatistics:
    """Open sessions and their users on ``loop`` (default: the running loop)."""
    entries = _registry.get(loop or asyncio.get_running_loop(), {})
    return SessionStatistics(len(entries), sum(e.users for e in entries.values()))


@contextlib.asynccontextmanager
async def shared_cluster(
    target: KubeTarget, namespace: str, **client_options: Any
) -> AsyncIterator[Cluster]:
    """The shared session for ``target`` and ``namespace`` on the running loop.

    ``client_options`` only matter to the first user (they open the session).
    """
    entries = _registry.setdefault(asyncio.get_running_loop(), {})
    key = (target.identity(), namespace)
    entry = entries.get(key)
    opener = entry is None
    if entry is None:
        entry = entries[key] = _Entry()
    entry.users += 1
    try:
        if opener:
            try:
                entry.cluster = await _open(target, namespace, client_options)
            except BaseException as error:
                entry.error = error
                if entries.get(key) is entry:
                    del entries[key]
                raise
            finally:
                entry.opened.set()
        else:
            await entry.opened.wait()
            if entry.error is not None:
                raise entry.error
        assert entry.cluster is not None
        yield entry.cluster
    finally:
        entry.users -= 1
        if entry.users == 0 and entry.cluster is not None:
            if entries.get(key) is entry:
                del entries[key]  # a newcomer from now on opens a fresh session
            with anyio.CancelScope(shield=True):
                await entry.cluster.aclose()


async def _open(target: KubeTarget, namespace: str, client_options: dict[str, Any]) -> Cluster:
    options = {"max_streams": DEFAULT_MAX_STREAMS, **client_options}
    client = await open_client(target, **options)
    cluster = Cluster(client, namespace=namespace)
    try:
        await cluster.__aenter__()
    except BaseException:
        await client.aclose()
        raise
    return cluster
