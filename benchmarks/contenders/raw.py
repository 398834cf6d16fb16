"""The raw reference: one watch for all pods, a POST and a DELETE per pod, nothing else.

Why: it is the ceiling of this control plane and this machine. No library logic (no
typed models, no retries, no reconnects, no cache): aiohttp with a pool of 100
connections for the requests and one connection of its own for the watch, events
decoded with orjson. Every other contender is compared with it. It would not survive a
real cluster (a watch cut by the server ends the run with an error); it is not meant to.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import orjson
from anyio.abc import TaskGroup

from benchmarks.contenders._rawhttp import Endpoint, RawPods
from benchmarks.workload import ChildConfig, PodTimes, pod_manifest

__all__ = ["run"]

TERMINAL = ("Succeeded", "Failed")


async def run(cfg: ChildConfig, times: list[PodTimes]) -> dict[str, Any]:
    pods = RawPods(Endpoint.from_kubeconfig(cfg.kubeconfig), cfg.namespace)
    by_name = {t.name: t for t in times}
    remaining = set(by_name)
    all_done = anyio.Event()

    def finished(t: PodTimes) -> None:
        remaining.discard(t.name)
        if not remaining:
            all_done.set()

    async def create(t: PodTimes) -> None:
        try:
            await pods.create(pod_manifest(cfg, t.name))
            t.created = time.time()
        except Exception as error:  # noqa: BLE001 - recorded per pod, reported
            t.error = f"create: {error}"
            finished(t)

    async def delete(t: PodTimes) -> None:
        try:
            await pods.delete(t.name)
            t.done = time.time()
        except Exception as error:  # noqa: BLE001 - recorded per pod, reported
            t.error = f"delete: {error}"
        finished(t)

    async def follow(tg: TaskGroup, ready: anyio.Event) -> None:
        # The one thing a raw client cannot skip: the API server cuts a watch whose reader
        # falls behind ("watcher close due to unresponsiveness"), so reopen it from the
        # last resourceVersion seen. A 410 (history gone) ends the run with an error.
        version: str | None = None
        async with pods.stream_session() as stream:
            while True:
                async with pods.watch(stream, version) as response:
                    if response.status != 200:
                        raise RuntimeError(f"WATCH {response.status}: {await response.text()}")
                    ready.set()
                    async for line in response.content:
                        if not line.strip():
                            continue
                        event = orjson.loads(line)
                        if event["type"] == "ERROR":
                            raise RuntimeError(f"watch error: {event['object']}")
                        pod = event["object"]
                        version = pod["metadata"]["resourceVersion"]
                        if event["type"] == "BOOKMARK":
                            continue
                        t = by_name.get(pod["metadata"]["name"])
                        phase = (pod.get("status") or {}).get("phase")
                        if t is not None and t.seen is None and phase in TERMINAL:
                            t.seen = time.time()
                            t.phase = phase
                            tg.start_soon(delete, t)

    try:
        async with anyio.create_task_group() as tg:
            ready = anyio.Event()
            tg.start_soon(follow, tg, ready)
            await ready.wait()
            for t in times:
                tg.start_soon(create, t)
            await all_done.wait()
            tg.cancel_scope.cancel()
    finally:
        await pods.aclose()
    return {"client_requests_sent": dict(pods.sent)}
