"""kubernetes_asyncio as its users write it: create, one ``watch.Watch`` per pod, delete.

``config.load_kube_config()`` into the default configuration; creates and deletes on one
shared ``ApiClient`` (the library's default pool of 100 connections); each pod followed
by its own ``Watch().stream(list_namespaced_pod, field_selector=metadata.name=...)`` on
a second shared ``ApiClient`` whose pool has a connection per pod (the per-pod watch's
best case: with the default pool, watches past the 100th would queue). Events arrive as
typed ``V1Pod`` models, as the library delivers them. No client-side rate limit exists.
"""

from __future__ import annotations

import time
from typing import Any, cast

import anyio

from benchmarks.workload import ChildConfig, PodTimes, pod_manifest

__all__ = ["run"]


def _short(error: BaseException) -> str:
    status = getattr(error, "status", None)
    if status is not None:
        return f"{type(error).__name__} {status} {getattr(error, 'reason', '')}".strip()
    return f"{type(error).__name__}: {error}"[:200]


async def run(cfg: ChildConfig, times: list[PodTimes]) -> dict[str, Any]:
    from kubernetes_asyncio import client, config, watch

    sent: dict[str, int] = {}

    def count(verb: str) -> None:
        sent[verb] = sent.get(verb, 0) + 1

    await config.load_kube_config(config_file=cfg.kubeconfig)
    requests_client = client.ApiClient()
    core = client.CoreV1Api(requests_client)
    watch_conf = client.Configuration.get_default_copy()
    watch_conf.connection_pool_maxsize = cfg.pods
    watch_client = client.ApiClient(configuration=watch_conf)
    watch_core = client.CoreV1Api(watch_client)

    async def one(t: PodTimes) -> None:
        try:
            count("POST")
            await core.create_namespaced_pod(
                namespace=cfg.namespace, body=cast(Any, pod_manifest(cfg, t.name))
            )
            t.created = time.time()
            count("WATCH")
            w = watch.Watch()
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
            count("DELETE")
            try:
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
        async with anyio.create_task_group() as tg:
            for t in times:
                tg.start_soon(one, t)
    finally:
        with anyio.CancelScope(shield=True):
            await requests_client.close()
            await watch_client.close()
    return {"client_requests_sent": sent, "watch_pool": cfg.pods}
