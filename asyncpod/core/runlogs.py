"""Every container's log of one run, merged into one stream of tagged lines.

Why a module of its own: a pod's log is several logs (init containers one after
another, then the main containers and sidecars at once), each of which must be opened
only once its container has started (thousands of followers asking "waiting to start"
would hammer the API server) and read to its real end (``kube/logs.py``). Merging them
is concurrency, not policy, and it is the same for every run: it lives apart from the
run's decisions (``core/policy.py``) and from its handle (``core/runner.py``).

The readers ("pumps", one per container) run in the cluster session's task group,
not in the consumer's async generator: a generator that yields from inside a task
group breaks anyio's cancel scopes when it is closed from another task, and a log
iterator is closed from wherever its consumer stops. The generator owns the pumps all
the same: its ``finally`` cancels them and waits until they have ended, so none
outlives the iteration. Lines travel through a bounded anyio memory stream (a slow
consumer slows the readers, never the loop or memory).

When a container has started or finished is read from the run's latest pod
(:func:`container_started`, :func:`container_finished`: pure).

What it deliberately does not do: decide when a run ends or when its pod is deleted
(the run waits for its open readers before deleting: ``PodRun``), nor buffer whole logs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, Final, Protocol

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectSendStream

from asyncpod.core import lifecycle
from asyncpod.errors import NotFoundError, OptionError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.logs import LogFollower, LogLine

__all__ = [
    "FollowedRun",
    "container_finished",
    "container_names",
    "container_started",
    "merged_logs",
]

logger = logging.getLogger("asyncpod.runner")

#: Lines buffered between the readers and the consumer.
BUFFER: Final = 1024

Spawn = Callable[[Callable[..., Coroutine[Any, Any, Any]]], Awaitable[Any]]
"""Starts a task in the session's task group and returns once it reported started."""


class FollowedRun(Protocol):
    """What the merged log needs of a run: its pod as the watch shows it, and changes."""

    namespace: str

    @property
    def name(self) -> str | None: ...

    @property
    def ref(self) -> str: ...

    @property
    def pod(self) -> dict[str, Any] | None: ...

    @property
    def winding_down(self) -> bool:
        """Whether the run is ending: every container counts as finished then."""
        ...

    def done(self) -> bool: ...

    async def created(self) -> None: ...

    async def changed(self) -> None:
        """Return after the run's next state change (or its end)."""
        ...


def _status(pod: Mapping[str, Any] | None, container: str) -> Mapping[str, Any] | None:
    status = (pod or {}).get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for item in status.get(key) or ():
            if item.get("name") == container:
                return item  # type: ignore[no-any-return]
    return None


def container_started(pod: Mapping[str, Any] | None, container: str) -> bool:
    """Whether ``container`` runs or ran (it has a log to read). Pure."""
    state = (_status(pod, container) or {}).get("state") or {}
    return "running" in state or "terminated" in state


def container_finished(pod: Mapping[str, Any] | None, container: str) -> bool:
    """Whether ``container`` will write nothing more: it terminated, or the pod did. Pure."""
    if pod is not None and lifecycle.is_terminal(dict(pod)):
        return True
    state = (_status(pod, container) or {}).get("state") or {}
    return "terminated" in state


def container_names(
    pod: Mapping[str, Any] | None, wanted: Sequence[str] | None, *, ref: str
) -> tuple[list[str], list[str]]:
    """(init containers, the others) of ``pod``, limited to ``wanted``; OptionError
    naming any wanted container the pod does not have. Pure."""
    spec = (pod or {}).get("spec") or {}
    inits = [c["name"] for c in spec.get("initContainers") or ()]
    mains = [c["name"] for c in spec.get("containers") or ()]
    if wanted is None:
        return inits, mains
    unknown = set(wanted) - set(inits) - set(mains)
    if unknown:
        raise OptionError(f"pod {ref} has no container {sorted(unknown)}")
    return [c for c in inits if c in wanted], [c for c in mains if c in wanted]


async def merged_logs(
    run: FollowedRun,
    *,
    client: KubeClient,
    spawn: Spawn,
    containers: Sequence[str] | None,
    follow: bool,
    since: Mapping[str, str],
) -> AsyncGenerator[LogLine, None]:
    """Every line of the run's containers (init containers first), as they come.

    ``spawn`` starts the readers in the session's task group (``Cluster.start_task``,
    which returns once they run); closing the generator
    cancels them and waits for them. A reader's error ends the iteration with it.
    """
    await run.created()
    inits, mains = container_names(run.pod, containers, ref=run.ref)
    send, receive = anyio.create_memory_object_stream[LogLine](BUFFER)
    scope = anyio.CancelScope()
    ended = anyio.Event()
    failures: list[Exception] = []

    name = str(run.name)

    async def read_one(container: str, out: MemoryObjectSendStream[LogLine]) -> None:
        try:
            async with out:
                await _read_container(
                    run, client=client, name=name, container=container,
                    out=out, follow=follow, since=since.get(container),
                )  # fmt: skip
        except Exception as error:  # noqa: BLE001 - handed to the consumer below
            failures.append(error)
            scope.cancel()  # the other readers too: the iteration ends with this error

    async def pump(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            task_status.started()  # from here on, `ended` is set whatever happens
            with scope:
                async with send:
                    for container in inits:  # init containers run one after another
                        await read_one(container, send.clone())
                    async with anyio.create_task_group() as group:
                        for container in mains:
                            group.start_soon(read_one, container, send.clone())
        finally:
            ended.set()

    # Started, not merely scheduled: a task cancelled before its first step would never
    # run its `finally`, and the wait for `ended` below would never end.
    await spawn(pump)
    try:
        async with receive:
            async for line in receive:
                yield line
        if failures:
            raise failures.pop()  # not kept in this frame: no reference cycle
    finally:
        scope.cancel()
        with anyio.CancelScope(shield=True):
            await ended.wait()


async def _read_container(
    run: FollowedRun,
    *,
    client: KubeClient,
    name: str,
    container: str,
    out: MemoryObjectSendStream[LogLine],
    follow: bool,
    since: str | None,
) -> None:
    def finished() -> bool:
        return run.winding_down or container_finished(run.pod, container)

    # Open the log only once the container has started (or the pod is over).
    while not (container_started(run.pod, container) or finished()):
        if run.done():
            break
        await run.changed()
    if not container_started(run.pod, container):
        return  # it never ran: no log to read

    async def stop_following() -> bool:
        return not follow or finished()

    follower = LogFollower(
        client, run.namespace, name,
        container=container, container_finished=stop_following, since_time=since,
    )  # fmt: skip
    try:
        async for line in follower:
            await out.send(line)
    except NotFoundError:
        return  # the pod is gone; what was delivered is all there is
    except anyio.BrokenResourceError:
        return  # the consumer stopped reading
