"""One variant of the follow-pods benchmark, alone in its own process.

Why a process per variant: peak RSS (``VmHWM``) is per process and never goes down,
CPU seconds should be this variant's alone, and a variant that stalls its event loop
must not stall another's. :mod:`benchmarks.follow_pods` starts this module once
per (variant, pod count) with ``python -m benchmarks.follow_pods_child`` and reads the
JSON it writes.

The variants follow the same pods (:func:`pod_description`: one ``PodSpec`` and its
manifest):

- ``asyncpod`` / ``asyncpod-default-qps``: ``asyncpod.connect`` and ``cluster.start``
  per spec; every pod is followed through the session's one shared watch. The first
  runs without the client-side rate limiter (``qps=None``, like the peers, which have
  none); the second keeps ``connect``'s defaults (50 QPS, burst 100).
- ``airflow-poll``: the Airflow cncf.kubernetes deferrable ``KubernetesPodTrigger``
  reimplemented with kubernetes_asyncio (Airflow itself is not installed): per pod, a
  hook that loads the kubeconfig once (static credentials are cached per hook), then a
  NEW ``ApiClient`` per call and a typed ``read_namespaced_pod``: every
  ``startup_check_interval`` (5 s) while the pod is Pending, then every
  ``poll_interval`` (2 s) until the base container has terminated; then a delete,
  also through a new ``ApiClient``, as ``AsyncKubernetesHook.delete_pod`` does.
- ``k8s-watch``: kubernetes_asyncio's own ``watch.Watch`` per pod
  (``field_selector=metadata.name=<pod>``) on one shared ``ApiClient`` whose
  connection pool has room for every watch; ``k8s-watch-pool100`` keeps the
  library's default pool of 100, so watches past the 100th wait for a connection.

Each pod's times are wall-clock (``time.time()``) so the runner can line them up
with its independent admin watch: ``created`` (the create call returned), ``seen``
(the variant's code learned the pod is terminal), ``done`` (the pod's delete
returned: the result is in the caller's hand and nothing is left to clean up).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import importlib
import json
import math
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["VARIANTS", "LoopProbe", "PodTimes", "main"]

POD_PREFIX = "fp-"


@dataclass
class PodTimes:
    """What one variant saw of one pod (wall-clock seconds; ``None``: never)."""

    name: str
    created: float | None = None
    seen: float | None = None
    done: float | None = None
    phase: str | None = None
    error: str | None = None


@dataclass
class Config:
    variant: str
    kubeconfig: str
    namespace: str
    pods: int
    duration: float
    poll_interval: float
    startup_check_interval: float
    pod: dict[str, Any]


@dataclass
class LoopProbe:
    """Measures event-loop stalls: a task that sleeps 10 ms and records the oversleep.

    A loop that is busy parsing or handshaking cannot wake the probe on time; the
    oversleep is how late *any* callback on that loop would have run at that moment.
    """

    interval: float = 0.010
    samples: list[float] = field(default_factory=list)
    rss_max_kib: int = 0
    worst: float = 0.0
    worst_at: float = 0.0
    """When (wall clock) the longest oversleep ended."""
    """The largest current RSS seen, sampled every tenth wake-up (~100 ms)."""
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        clock = time.perf_counter
        wakeups = 0
        while True:
            before = clock()
            await asyncio.sleep(self.interval)
            lag = max(0.0, clock() - before - self.interval)
            self.samples.append(lag)
            if lag > self.worst:
                self.worst, self.worst_at = lag, time.time()
            wakeups += 1
            if wakeups % 10 == 0:
                self.rss_max_kib = max(self.rss_max_kib, current_rss_kib())

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.samples)
        if not ordered:
            return {"samples": 0, "max_ms": 0.0, "p99_ms": 0.0, "p50_ms": 0.0}
        return {
            "samples": len(ordered),
            "max_ms": ordered[-1] * 1000,
            "p99_ms": _nearest_rank(ordered, 0.99) * 1000,
            "p50_ms": _nearest_rank(ordered, 0.50) * 1000,
            "over_100ms": sum(1 for s in ordered if s > 0.1),
        }


def peak_rss_kib() -> int:
    """This process's peak resident set (``VmHWM``).

    Not ``ru_maxrss``: on Linux that survives fork + exec, so a child reads at least
    the RSS its parent had when it forked (the runner's ~100 MiB here).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_rss_kib() -> int:
    """This process's resident set now (``ru_maxrss`` only ever gives the peak)."""
    pages = int(Path("/proc/self/statm").read_bytes().split()[1])
    return pages * (os.sysconf("SC_PAGESIZE") // 1024)


def _nearest_rank(ordered: list[float], q: float) -> float:
    index = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def pod_names(count: int) -> list[str]:
    return [f"{POD_PREFIX}{i:05d}" for i in range(count)]


def pod_description(duration: float) -> dict[str, Any]:
    """What every pod is, as JSON: the runner builds it once and hands it to each child.

    ``spec`` is what the asyncpod variants pass to ``PodSpec``; ``manifest`` is that
    spec's own ``to_manifest()`` (name left out), which the peers POST as is. So the
    peers' processes never import asyncpod, and every variant creates the same pods.
    """
    from asyncpod import PodSpec
    from asyncpod.testing import outcome

    spec: dict[str, Any] = {
        "image": "busybox:1.36",
        "command": ["sh", "-c", f"sleep {duration:g}"],
        "annotations": outcome(duration=duration, exit_code=0),
    }
    manifest = PodSpec(**spec).to_manifest(namespace="placeholder", name="placeholder")
    del manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    return {"spec": spec, "manifest": manifest}


def manifests(cfg: Config) -> dict[str, dict[str, Any]]:
    template = cfg.pod["manifest"]
    out = {}
    for name in pod_names(cfg.pods):
        manifest = copy.deepcopy(template)
        manifest["metadata"].update(name=name, namespace=cfg.namespace)
        out[name] = manifest
    return out


# ---------------------------------------------------------------------- asyncpod
async def run_asyncpod(cfg: Config, *, qps: float | None) -> tuple[list[PodTimes], dict[str, Any]]:
    import asyncpod
    from asyncpod import PodSpec, PodState

    spec = PodSpec(**cfg.pod["spec"])
    times = [PodTimes(n) for n in pod_names(cfg.pods)]
    terminal = {PodState.SUCCEEDED, PodState.FAILED}
    extra: dict[str, Any] = {}

    async with asyncpod.connect(cfg.kubeconfig, namespace=cfg.namespace, qps=qps) as cluster:

        async def follow(t: PodTimes) -> None:
            try:
                run = await cluster.start(spec, name=t.name)
                await run.created()
                t.created = time.time()
                async for change in run.states():
                    if t.seen is None and change.state in terminal:
                        t.seen = time.time()
                result = await run.result()
                t.done = time.time()
                t.phase = result.phase
            except Exception as error:  # noqa: BLE001 - recorded per pod, reported
                t.error = _short(error)

        await asyncio.gather(*(follow(t) for t in times))
        stats = cluster.statistics()
        extra["informers"] = [asdict(i) for i in stats.informers]
        extra["client_requests_sent"] = dict(stats.client.requests_sent)
        extra["client_throttled_429"] = stats.client.throttled
        extra["client_retries"] = stats.client.retries
    return times, extra


# ---------------------------------------------------------------------- peers
# Both peers create and delete through kubernetes_asyncio with the library's defaults
# (typed models, a connection pool of 100), so they differ only in how they follow.
# ``sent`` counts the requests each peer put on the wire, by verb (retries included),
# to tell its share of the server's counters from the rest of the cluster's.
def _load_kubernetes_asyncio() -> Any:
    import kubernetes_asyncio

    return kubernetes_asyncio


async def _create_all(
    k8s: Any, api_client: Any, cfg: Config, times: list[PodTimes], sent: Counter[str]
) -> tuple[dict[str, asyncio.Event], list[asyncio.Task[None]]]:
    """Start creating every pod at once on a shared client; one Event per pod."""
    bodies = manifests(cfg)
    core = k8s.client.CoreV1Api(api_client)
    created = {t.name: asyncio.Event() for t in times}

    async def create(t: PodTimes) -> None:
        try:
            sent["POST"] += 1
            await core.create_namespaced_pod(namespace=cfg.namespace, body=bodies[t.name])
            t.created = time.time()
        except Exception as error:  # noqa: BLE001 - recorded per pod, reported
            t.error = f"create: {_short(error)}"
        finally:
            created[t.name].set()

    tasks = [asyncio.ensure_future(create(t)) for t in times]
    return created, tasks


def _short(error: BaseException) -> str:
    status = getattr(error, "status", None)
    if status is not None:
        return f"{type(error).__name__} {status} {getattr(error, 'reason', '')}".strip()
    return f"{type(error).__name__}: {error}"


async def _retry(call: Callable[[], Awaitable[Any]], attempts: int = 3) -> Any:
    """tenacity's stop_after_attempt(3) + wait_exponential(), as Airflow wraps its calls."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except Exception:
            if attempt == attempts:
                raise
            await asyncio.sleep(min(2.0**attempt, 10.0))
    raise AssertionError("unreachable")


async def run_airflow_poll(cfg: Config) -> tuple[list[PodTimes], dict[str, Any]]:
    k8s = _load_kubernetes_asyncio()
    client = k8s.client
    times = [PodTimes(n) for n in pod_names(cfg.pods)]
    sent: Counter[str] = Counter()
    container = "main"  # the spec's main container: the trigger's base_container_name

    shared_conf = client.Configuration()
    await k8s.config.load_kube_config(config_file=cfg.kubeconfig, client_configuration=shared_conf)
    creator = client.ApiClient(configuration=shared_conf)
    created, creating = await _create_all(k8s, creator, cfg, times, sent)

    def container_state(pod: Any) -> str:
        """KubernetesPodTrigger.define_container_state."""
        statuses = pod.status.container_statuses
        if statuses is None:
            return "undefined"
        status = next(c for c in statuses if c.name == container)
        for state in ("running", "waiting", "terminated"):
            obj = getattr(status.state, state)
            if obj is not None:
                if state != "terminated":
                    return state
                return "terminated" if obj.exit_code == 0 else "failed"
        return "undefined"

    async def trigger(t: PodTimes) -> None:
        await created[t.name].wait()
        if t.error is not None:
            return
        try:
            # AsyncKubernetesHook._load_config: once per hook (one hook per trigger)
            # for static credentials; the ApiClient is still new for every call.
            conf = client.Configuration()
            await k8s.config.load_kube_config(config_file=cfg.kubeconfig, client_configuration=conf)

            async def get_pod() -> Any:
                sent["GET"] += 1
                async with client.ApiClient(configuration=conf) as api:
                    return await client.CoreV1Api(api).read_namespaced_pod(
                        name=t.name, namespace=cfg.namespace
                    )

            # _wait_for_pod_start
            while True:
                pod = await _retry(get_pod)
                if pod.status.phase != "Pending":
                    state = container_state(pod)
                    break
                await asyncio.sleep(cfg.startup_check_interval)
            # _wait_for_container_completion
            while state not in ("terminated", "failed"):
                await asyncio.sleep(cfg.poll_interval)
                pod = await _retry(get_pod)
                state = container_state(pod)
            t.seen = time.time()
            t.phase = pod.status.phase

            # AsyncKubernetesHook.delete_pod: a new ApiClient as well.
            async def delete_pod() -> None:
                sent["DELETE"] += 1
                async with client.ApiClient(configuration=conf) as api:
                    try:
                        await client.CoreV1Api(api).delete_namespaced_pod(
                            name=t.name, namespace=cfg.namespace, body=client.V1DeleteOptions()
                        )
                    except client.ApiException as error:
                        if error.status != 404:
                            raise

            await _retry(delete_pod)
            t.done = time.time()
        except Exception as error:  # noqa: BLE001 - recorded per pod, reported
            t.error = _short(error)

    try:
        await asyncio.gather(*creating, *(trigger(t) for t in times))
    finally:
        await creator.close()
    return times, {"client_requests_sent": dict(sent)}


async def run_k8s_watch(cfg: Config, *, pool: int | None) -> tuple[list[PodTimes], dict[str, Any]]:
    """A ``watch.Watch`` per pod; ``pool``: the watches' connection limit (None: one per pod)."""
    k8s = _load_kubernetes_asyncio()
    client = k8s.client
    times = [PodTimes(n) for n in pod_names(cfg.pods)]
    sent: Counter[str] = Counter()
    # The usual setup: load the kubeconfig into the default configuration, which
    # every Watch() then copies for the ApiClient it builds for itself.
    await k8s.config.load_kube_config(config_file=cfg.kubeconfig)
    requests_client = client.ApiClient()  # creates and deletes, pool of 100 like airflow-poll
    core = client.CoreV1Api(requests_client)
    watch_conf = client.Configuration.get_default_copy()
    watch_conf.connection_pool_maxsize = pool or cfg.pods
    watch_client = client.ApiClient(configuration=watch_conf)
    watch_core = client.CoreV1Api(watch_client)
    created, creating = await _create_all(k8s, requests_client, cfg, times, sent)

    async def follow(t: PodTimes) -> None:
        await created[t.name].wait()
        if t.error is not None:
            return
        try:
            sent["WATCH"] += 1
            w = k8s.watch.Watch()
            async with w.stream(
                watch_core.list_namespaced_pod,
                namespace=cfg.namespace,
                field_selector=f"metadata.name={t.name}",
            ) as stream:
                async for event in stream:
                    pod = event["object"]
                    if event["type"] != "DELETED" and pod.status.phase in ("Succeeded", "Failed"):
                        t.seen = time.time()
                        t.phase = pod.status.phase
                        break
            try:
                sent["DELETE"] += 1
                await core.delete_namespaced_pod(
                    name=t.name, namespace=cfg.namespace, body=client.V1DeleteOptions()
                )
            except client.ApiException as error:
                if error.status != 404:
                    raise
            t.done = time.time()
        except Exception as error:  # noqa: BLE001 - recorded per pod, reported
            t.error = _short(error)

    try:
        await asyncio.gather(*creating, *(follow(t) for t in times))
    finally:
        await requests_client.close()
        await watch_client.close()
    return times, {"client_requests_sent": dict(sent), "watch_pool": pool or cfg.pods}


VARIANTS: dict[str, Callable[[Config], Awaitable[tuple[list[PodTimes], dict[str, Any]]]]] = {
    "asyncpod": lambda cfg: run_asyncpod(cfg, qps=None),
    "asyncpod-default-qps": lambda cfg: run_asyncpod(cfg, qps=50.0),
    "airflow-poll": run_airflow_poll,
    "k8s-watch": lambda cfg: run_k8s_watch(cfg, pool=None),
    "k8s-watch-pool100": lambda cfg: run_k8s_watch(cfg, pool=100),
}


# ---------------------------------------------------------------------- measuring
def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def measure(cfg: Config) -> dict[str, Any]:
    """Run the variant once; everything from opening its client to closing it counts."""
    variant = VARIANTS[cfg.variant]
    # The variant's libraries are imported before the RSS baseline.
    if cfg.variant.startswith("asyncpod"):
        importlib.import_module("asyncpod")
    else:
        for module in ("client", "config", "watch"):
            importlib.import_module(f"kubernetes_asyncio.{module}")
    rss_before = peak_rss_kib()
    rss_current_before = current_rss_kib()
    probe = LoopProbe()
    probe.start()
    # The idle baseline: on a shared machine, oversleep also counts the time this
    # process waited for a CPU, which no client code can avoid.
    await asyncio.sleep(0.5)
    idle = probe.summary()
    probe.samples.clear()
    probe.worst = 0.0
    user0, sys0 = _cpu()
    started = time.time()
    times, extra = await variant(cfg)
    ended = time.time()
    user1, sys1 = _cpu()
    await probe.stop()
    return {
        "variant": cfg.variant,
        "config": asdict(cfg),
        "started": started,
        "ended": ended,
        "cpu_user_s": user1 - user0,
        "cpu_sys_s": sys1 - sys0,
        "rss_before_kib": rss_before,
        "rss_peak_kib": peak_rss_kib(),
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_current_before_kib": rss_current_before,
        "rss_current_max_kib": max(probe.rss_max_kib, current_rss_kib()),
        "loop_lag": {**probe.summary(), "max_at": probe.worst_at},
        "idle_loop_lag": idle,
        "pods": [asdict(t) for t in times],
        "extra": extra,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--pods", type=int, required=True)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--poll-interval", type=float, default=2.0)
    parser.add_argument("--startup-check-interval", type=float, default=5.0)
    parser.add_argument("--pod", type=Path, required=True, help="from pod_description()")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    cfg = Config(
        variant=args.variant,
        kubeconfig=args.kubeconfig,
        namespace=args.namespace,
        pods=args.pods,
        duration=args.duration,
        poll_interval=args.poll_interval,
        startup_check_interval=args.startup_check_interval,
        pod=json.loads(args.pod.read_text()),
    )
    report = asyncio.run(measure(cfg))  # a failure's traceback goes to the runner's log
    args.out.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
