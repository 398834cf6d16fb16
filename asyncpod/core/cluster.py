"""The cluster session: one per API server, owning everything asyncpod starts there.

Why: the HTTP session, the rate limiter, the shared informers and every run's driver
task must live exactly as long as the caller's ``async with`` block, and not a moment
longer. Closing the session cancels the runs (their pods are deleted, shielded),
stops the informers and closes the connections; nothing it started outlives it.

    async with asyncpod.connect() as cluster:            # kubeconfig / in-cluster
        result = await cluster.run(PodSpec("busybox", ["echo", "hi"]))

Runs in one namespace share one informer per label selector: by default the selector
``app.kubernetes.io/managed-by=asyncpod``, so every asyncpod pod of a namespace is
followed by a single watch, whatever the number of runs. A session that only ever runs
pods carrying some label of its own narrows it (:attr:`Cluster.run_selector`): a
launcher shard of an in-cluster batch watches its own pods, not every shard's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from asyncpod.core.informer import InformerStatistics, PodInformer, PodSubscription
from asyncpod.core.runner import PodRun, RunOptions
from asyncpod.core.shielding import complete_despite_cancellation
from asyncpod.errors import ClosedError, NotFoundError
from asyncpod.kube.client import ClientStatistics, KubeClient, swallowed_interrupt
from asyncpod.kube.config import load_config
from asyncpod.kube.pods import Pods
from asyncpod.kube.settings import RetryPolicy, Settings
from asyncpod.metrics import OFF, MetricsOff
from asyncpod.results import PodResult
from asyncpod.spec import MANAGED_BY_LABEL, MANAGED_BY_VALUE, RUN_ID_LABEL, PodSpec
from asyncpod.traces import OFF as NO_TRACES
from asyncpod.traces import TracesOff

__all__ = ["Cluster", "ClusterStatistics", "connect"]

MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"

#: How long :meth:`Cluster.attach` waits for the namespace's watch to show a pod it
#: does not know yet before reading the pod with a GET: a pod created a moment ago is
#: usually on its way. Costs this much extra only when attaching to a pod that finished
#: before anyone followed it, or to a pod asyncpod did not make.
ATTACH_GRACE_SECONDS = 1.0

#: How long :meth:`Cluster.attach` waits for the namespace's watch to reach a pod's
#: creation resourceVersion: normally the time its ADDED event takes to arrive.
ATTACH_VERSION_WAIT_SECONDS = 10.0

logger = logging.getLogger("asyncpod.cluster")


@dataclass(frozen=True, slots=True)
class ClusterStatistics:
    runs_active: int
    runs_started: int
    informers: tuple[InformerStatistics, ...]
    client: ClientStatistics


class Cluster:
    """A session with one Kubernetes API server. Use :func:`connect` to make one."""

    def __init__(
        self,
        client: KubeClient,
        *,
        namespace: str = "default",
        options: RunOptions | None = None,
        inactivity_timeout: float = 70.0,
        reconnect_backoff: RetryPolicy | None = None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.options = options or RunOptions()
        self._inactivity_timeout = inactivity_timeout
        self._reconnect_backoff = reconnect_backoff
        self._informers: dict[tuple[str, str | None], PodInformer] = {}
        self._runs: set[PodRun] = set()
        # Bound once, handed to every run: ``self.start_task`` made a new bound method
        # (a GC-tracked object) per run in flight. (The first closes a cycle through
        # this session, which lives as long as its user holds it anyway.)
        self._spawn_for_runs = self.start_task
        self._forget_run = self._runs.discard
        self._started = 0
        self._group: anyio.abc.TaskGroup | None = None
        self._supervisor: asyncio.Future[None] | None = None
        self._stopping = asyncio.Event()
        self._closed = False
        self.run_selector = MANAGED_SELECTOR
        """The selector of the informer that follows this session's runs and attaches.
        Narrow it (``MANAGED_SELECTOR + ",key=value"``) only if every pod this session
        runs or attaches to carries that label: a pod outside it is never seen."""

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<Cluster {self.client.config.server} ns={self.namespace} {state} "
            f"runs={len(self._runs)} informers={len(self._informers)}>"
        )

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Cluster:
        if self._closed:
            raise ClosedError("this cluster session was closed; connect again")
        # The task group lives in a supervisor task of its own, so the session may be
        # entered and exited from different tasks (pytest-asyncio fixtures, Airflow
        # triggers), which an anyio task group entered by the caller would forbid.
        # The supervisor is not fire-and-forget: aclose() ends it and waits for it.
        ready = asyncio.Event()
        self._supervisor = asyncio.ensure_future(self._supervise(ready))
        try:
            await ready.wait()
        except BaseException:
            self._supervisor.cancel()
            raise
        if self._supervisor.done():
            self._supervisor.result()  # raises what went wrong
        return self

    async def _supervise(self, ready: asyncio.Event) -> None:
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                ready.set()
                await self._stopping.wait()
                group.cancel_scope.cancel()
        except BaseException as error:
            # A signal handler's sys.exit() lands wherever the loop is; landing in this
            # task, anyio hands it on inside an exception group, which asyncio does not
            # treat as an interrupt. In a session nobody closes, nobody awaits this task
            # and the program would never exit: the interrupt itself must escape.
            interrupt = swallowed_interrupt(error)
            if interrupt is not None and interrupt is not error:
                raise interrupt from None
            raise
        finally:
            self._group = None  # no run may be started in a task group that is gone
            ready.set()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel every run (pods deleted), stop the informers, close the connections.

        Bounded: each run's cleanup retries only within its windows. It completes even
        if the calling task is cancelled (again) meanwhile, and then re-raises that.
        """
        if self._closed:
            return
        self._closed = True
        await complete_despite_cancellation(self._close())

    async def _close(self) -> None:
        try:
            # Cancelling the task group cancels the launchers' pipelines, the runs (each
            # deletes its pod in its own `finally`) and the informers, all at once.
            self._stopping.set()
            if self._supervisor is not None:
                try:
                    await self._supervisor
                except Exception:
                    logger.exception("a background task of %r failed", self)
        finally:
            self._group = None
            await self.client.aclose()

    def start_soon(self, function: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``function`` in the session's task group (cancelled when it closes).

        For what belongs to the session rather than to one caller's task: a run's
        driver (:meth:`launch`), a launcher's pipeline.
        ClosedError once the session is closed.
        """
        self._require_open().start_soon(function)

    async def start_task(self, function: Callable[..., Coroutine[Any, Any, Any]]) -> Any:
        """Start ``function`` in the session's task group; return once it has called
        ``task_status.started()`` (its value). Unlike :meth:`start_soon`, the task is
        then known to run: one cancelled before its first step never runs its
        ``finally``, and whoever waits for that would wait for ever."""
        return await self._require_open().start(function)

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not getattr(self, "_closed", True) and getattr(self, "_group", None) is not None:
            _warn(f"unclosed {self!r}", ResourceWarning, stacklevel=1)

    def statistics(self) -> ClusterStatistics:
        return ClusterStatistics(
            runs_active=len(self._runs),
            runs_started=self._started,
            informers=tuple(i.statistics() for i in self._informers.values()),
            client=self.client.statistics(),
        )

    # ------------------------------------------------------------------ informers
    def informer(self, namespace: str | None = None, *, selector: str | None = None) -> PodInformer:
        """The shared informer for (namespace, selector), started on first use."""
        group = self._require_open()
        key = (namespace or self.namespace, selector)
        informer = self._informers.get(key)
        if informer is None or informer.failure is not None:
            informer = PodInformer(
                self.client,
                key[0],
                label_selector=selector,
                inactivity_timeout=self._inactivity_timeout,
                backoff=self._reconnect_backoff,
            )
            self._informers[key] = informer
            group.start_soon(informer.run)
        return informer

    # ------------------------------------------------------------------ runs
    async def start(
        self,
        spec: PodSpec,
        *,
        namespace: str | None = None,
        name: str | None = None,
        run_id: str | None = None,
        options: RunOptions | None = None,
    ) -> PodRun:
        """Create the pod and return its handle at once (the run goes on in the session).

        ``name`` (or ``spec.name``) makes creation idempotent: a 409 for a pod of the
        same run and task reattaches instead of failing. ``run_id`` labels the pod
        (``asyncpod.dev/run-id``) so a launcher can find its pods after a crash.
        """
        run = self.new_run(spec, namespace=namespace, name=name, run_id=run_id, options=options)
        self.launch(run)
        return run

    def new_run(
        self,
        spec: PodSpec,
        *,
        namespace: str | None = None,
        name: str | None = None,
        run_id: str | None = None,
        options: RunOptions | None = None,
        record_changes: bool = True,
    ) -> PodRun:
        """A run of this session that nothing drives yet (the launchers' protocol).

        The spec is validated here (a bad one raises before any request or task).
        Drive it once: ``await run.drive()`` in your own task (its result is what
        that returns), or :meth:`launch` in the session's task group. :meth:`start`
        is both steps. ``record_changes=False`` for a run whose handle nobody else
        sees: it keeps only the pod's latest version, no state changes (no
        ``states()``, no ``logs()``), a little less CPU and memory per event.
        """
        self._require_open()
        spec.validate()  # a bad spec raises here, before any request or task
        ns = namespace or self.namespace
        labels = {RUN_ID_LABEL: run_id} if run_id else {}
        run = PodRun(
            client=self.client,
            informer=self.informer(ns, selector=self.run_selector),
            namespace=ns,
            spec=spec,
            options=options or self.options,
            spawn=self._spawn_for_runs,
            name=name or spec.name,
            run_id=run_id,
            extra_labels=labels,
            on_done=self._forget_run,
            record_changes=record_changes,
        )
        self._runs.add(run)
        self._started += 1
        return run

    async def run(self, spec: PodSpec, **options: Any) -> PodResult:
        """Start ``spec`` and wait for its result (``start`` + ``await``)."""
        run = await self.start(spec, **options)
        return await run.result()

    async def attach(
        self,
        name: str,
        *,
        uid: str | None = None,
        namespace: str | None = None,
        options: RunOptions | None = None,
        resource_version: str | None = None,
    ) -> PodRun:
        """Follow an existing pod by name; with ``uid``, only if it is still that pod.

        A pod asyncpod made is answered from the namespace's shared watch, with no
        request of its own: a live pod is in its cache, and one that ended a short
        while ago unfollowed is remembered (``PodInformer.recall``). Given the pod's
        creation ``resource_version`` (from the create's answer: the Airflow trigger
        keeps it), attaching waits until the watch has reached that version, so a pod
        created a moment ago is known without a read. Without it, the watch gets
        :data:`ATTACH_GRACE_SECONDS` to show the pod. A GET is made only when the
        watch knows nothing of it (ended long ago, or not made by asyncpod: that one
        is followed on an unfiltered watch of the namespace).

        The run goes on in the session's task group; :meth:`follow` waits for the
        result in the calling task instead.
        """
        run = await self._attachment(
            name, uid=uid, namespace=namespace, options=options,
            resource_version=resource_version,
        )  # fmt: skip
        self.launch(run)
        await run.created()
        return run

    async def follow(
        self,
        name: str,
        *,
        uid: str | None = None,
        namespace: str | None = None,
        options: RunOptions | None = None,
        resource_version: str | None = None,
    ) -> PodResult:
        """Attach to an existing pod as :meth:`attach` does and follow it to its result
        in the calling task (raising what ``await run`` would raise).

        For a caller that wants the result only (an Airflow trigger that streams no
        logs): no task of the session's, so a pod followed this way costs the process
        a quarter fewer GC-tracked objects (102 → 76 per Airflow trigger,
        ``python -m benchmarks.gc_census --pods 5000 --trigger``). The run is parked
        while its pod runs (:meth:`PodRun.park`): the caller's task waits on one flag
        and wakes once, at the end, not on each of the pod's changes.
        Cancelling the caller ends the run as cancelling a run does.
        """
        run = await self._attachment(
            name, uid=uid, namespace=namespace, options=options,
            resource_version=resource_version, record_changes=False,
        )  # fmt: skip
        result = None
        try:
            if await run.start():
                await run.wait_decided()
        finally:
            # Completes even if the caller is cancelled: an undecided run is cancelled
            # then, its pod deleted as the cleanup policy says.
            result = await run.finish()
        if result is None:
            failure = run.exception()
            assert failure is not None
            raise failure
        return result

    async def _attachment(
        self,
        name: str,
        *,
        uid: str | None,
        namespace: str | None,
        options: RunOptions | None,
        resource_version: str | None,
        record_changes: bool = True,
    ) -> PodRun:
        """The run of an existing pod, not driven yet (:meth:`attach`, :meth:`follow`)."""
        self._require_open()
        ns = namespace or self.namespace
        informer = self.informer(ns, selector=self.run_selector)
        await informer.wait_synced()
        # Followed from now on, so the watch keeps the pod for the run even if it ends;
        # handed to the run, which follows the pod through it.
        probe: PodSubscription | None = informer.subscribe(name, uid=uid)
        try:
            assert probe is not None
            if probe.latest is None and resource_version is not None:
                with anyio.move_on_after(ATTACH_VERSION_WAIT_SECONDS):
                    await informer.wait_version(resource_version)
            if probe.latest is None and resource_version is None:
                # Attached right after its create (a deferred Airflow task, a batch
                # resumed at once), a pod may not have reached the watch yet: give it a
                # moment before reading it (measured: 0.9 GETs per pod otherwise).
                with anyio.move_on_after(ATTACH_GRACE_SECONDS):
                    await probe.wait_seen()
            if probe.latest is None:
                ended = informer.recall(name)
                if ended is not None and ended.deleted and uid in (None, _uid_of(ended.pod)):
                    raise NotFoundError(
                        f"pod {ns}/{name} not found (deleted)",
                        status=404, reason="NotFound", pod=f"{ns}/{name}",
                    )  # fmt: skip
                # Nothing known: finished before anyone followed it, or not ours.
                pod = await Pods(self.client).get(ns, name)
                labels = (pod.get("metadata") or {}).get("labels") or {}
                if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
                    probe.close()  # followed on the namespace's unfiltered watch
                    probe = None
                    informer = self.informer(ns, selector=None)
            run = PodRun(
                client=self.client,
                informer=informer,
                namespace=ns,
                spec=None,
                options=options or self.options,
                spawn=self._spawn_for_runs,
                name=name,
                uid=uid,
                on_done=self._forget_run,
                subscription=probe,
                record_changes=record_changes,
            )
            probe = None  # the run's now: closed when it ends
        finally:
            if probe is not None:
                probe.close()
        self._runs.add(run)
        self._started += 1
        return run

    def launch(self, run: PodRun) -> None:
        """Drive ``run`` (from :meth:`new_run`) in the session's task group."""
        self.start_soon(run.drive)

    def _require_open(self) -> anyio.abc.TaskGroup:
        if self._closed or self._group is None:
            raise ClosedError("use the cluster session inside `async with connect(...)`")
        return self._group


def _uid_of(pod: dict[str, Any]) -> str | None:
    uid = (pod.get("metadata") or {}).get("uid")
    return str(uid) if uid else None


class _Unset:
    """Sentinel type of :func:`connect`'s overrides: "take it from ``settings``"."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@contextlib.asynccontextmanager
async def connect(
    kubeconfig: str | os.PathLike[str] | None = None,
    *,
    context: str | None = None,
    namespace: str | None = None,
    in_cluster: bool | None = None,
    options: RunOptions | None = None,
    settings: Settings | None = None,
    qps: float | None = UNSET,
    burst: int = UNSET,
    max_streams: int = UNSET,
    inactivity_timeout: float = UNSET,
    metrics: MetricsOff | None = None,
    traces: TracesOff | None = None,
) -> AsyncIterator[Cluster]:
    """Open a :class:`Cluster` session; ``async with connect() as cluster: ...``.

    Where: ``kubeconfig`` (else ``KUBECONFIG``, else ``~/.kube/config``) and its
    ``context``; ``in_cluster=True`` uses the pod's service account (``None`` picks it
    automatically when running in a pod and no kubeconfig exists; the rule is
    :func:`asyncpod.kube.config.config_source`). ``namespace`` defaults to the
    context's namespace, else ``default``.

    How: ``settings`` (a :class:`~asyncpod.Settings`) holds every client-side knob:
    rate limit, budgets, request timeouts, retries, the watch's inactivity timeout and
    reconnect backoff. ``qps``, ``burst``, ``max_streams`` and ``inactivity_timeout``,
    when given, override the fields of the same name. ``options`` are the default
    :class:`RunOptions` of the session's runs. ``metrics`` (an
    :class:`asyncpod.Metrics`) counts the session's runs, requests, watches and logs
    (docs/metrics.md); without it nothing is counted. ``traces`` (an
    :class:`asyncpod.Traces`) makes an OpenTelemetry span of each run
    (:mod:`asyncpod.traces`).

    Entering it reaches the server once (``GET /version``): a server that cannot be
    reached (refused, unknown host, TLS failure) raises
    :class:`~asyncpod.errors.ServerUnreachableError` here, within seconds.
    """
    overrides = {
        name: value
        for name, value in (
            ("qps", qps),
            ("burst", burst),
            ("max_streams", max_streams),
            ("inactivity_timeout", inactivity_timeout),
        )
        if value is not UNSET
    }
    settings = (settings or Settings()).replace(**overrides)
    path = os.fspath(kubeconfig) if kubeconfig is not None else None
    config = await load_config(path, context=context, in_cluster=in_cluster)
    client = await KubeClient.from_config(
        config,
        metrics=metrics or OFF,
        traces=traces or NO_TRACES,
        **settings.client_options(),
    )
    ns = namespace or client.config.namespace or "default"
    try:
        # First contact now: a server never reached fails here, at once, naming itself;
        # one that was reached and dies later is an outage the runs ride through.
        await client.make_contact()
        cluster = Cluster(
            client,
            namespace=ns,
            options=options,
            inactivity_timeout=settings.inactivity_timeout,
            reconnect_backoff=settings.reconnect_backoff,
        )
        async with cluster:
            yield cluster
    finally:
        if not client.closed:
            await client.aclose()
