"""kr8s as its users write it: ``Pod(manifest).create()``, ``pod.wait(...)``, ``pod.delete()``.

``kr8s.asyncio.api(kubeconfig=...)`` once (one httpx client with its default pool), then
per pod: create, ``wait(["jsonpath='{.status.phase}'=Succeeded", ...=Failed])`` (a GET,
then a watch of that one pod by field selector) and delete. kr8s has no client-side
rate limit. Each wait holds one of httpx's connections for as long as it watches.
API discovery is warmed once before the pods start (see :func:`run`).
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from benchmarks.workload import ChildConfig, PodTimes, pod_manifest

__all__ = ["run"]

TERMINAL = [
    "jsonpath='{.status.phase}'=Succeeded",
    "jsonpath='{.status.phase}'=Failed",
]


async def run(cfg: ChildConfig, times: list[PodTimes]) -> dict[str, Any]:
    import kr8s.asyncio
    from kr8s.asyncio.objects import Pod

    api = await kr8s.asyncio.api(kubeconfig=cfg.kubeconfig, namespace=cfg.namespace)
    # kr8s looks the kind up in API discovery (~28 GETs) before each watch and caches the
    # answer for 6 h, but N waits started together all miss the cache at once (a smoke run
    # of 50 pods made 1,451 requests). One lookup first, as a long-lived program would
    # have done, so what is measured is kr8s's steady state.
    await api.api_resources()

    async def one(t: PodTimes) -> None:
        try:
            pod = await Pod(pod_manifest(cfg, t.name), api=api)
            await pod.create()
            t.created = time.time()
            await pod.wait(TERMINAL)
            t.seen = time.time()
            t.phase = pod.raw.get("status", {}).get("phase")
            await pod.delete()
            t.done = time.time()
        except Exception as error:  # noqa: BLE001 - recorded per pod, reported
            t.error = f"{type(error).__name__}: {error}"[:200]

    async with anyio.create_task_group() as tg:
        for t in times:
            tg.start_soon(one, t)
    return {"kr8s_version": kr8s.__version__}
