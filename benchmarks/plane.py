"""The control plane a benchmark runs on, and what it counts for each contender.

Why: every contender must meet the same server, set up like a cluster sized for the
load rather than like the test suite's small one:

- kube-apiserver's in-flight limits raised (``--max-requests-inflight``,
  ``--max-mutating-requests-inflight``; API priority and fairness divides these seats
  among its priority levels, so a ServiceAccount's share grows with them) so that no
  contender is throttled by the server before it is measured;
- kube-scheduler's own client limit raised from 50 QPS (one binding per pod: at 50 QPS
  5,000 pods take 100 s to bind, which would measure the scheduler, not the client);
- enough kwok nodes for every pod to be in flight at once;
- an audit log of ServiceAccount requests outside kube-system, so each contender's own
  requests are counted exactly (by verb and resource), apart from what kwok, the
  scheduler and the controller-manager send at the same time. The API server's
  ``apiserver_request_total`` (``LocalControlPlane.request_counts()``) is kept beside it:
  it is cluster-wide, so it includes kwok's status PATCHes and DELETEs.

It also holds the runner's own witness, :class:`Observer`: an admin watch on the
contender's namespace that timestamps each pod's terminal update, the start of every
notification latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from asyncpod.testing import LocalControlPlane, RequestCounts
from asyncpod.testing.rbac import MINIMAL_ROLE_RULES, service_account_kubeconfig

__all__ = [
    "AuditLog",
    "Observer",
    "bench_control_plane",
    "nodes_for",
    "pod_requests",
    "prepare_namespace",
]

SERVICE_ACCOUNT = "bench-runner"
PODS_PER_NODE = 2000
#: kube-apiserver defaults are 400 and 200.
APISERVER_INFLIGHT = ("--max-requests-inflight=3000", "--max-mutating-requests-inflight=1500")
SCHEDULER_QPS = ("--kube-api-qps=1000", "--kube-api-burst=2000")

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: None
  userGroups: ["system:serviceaccounts:kube-system"]
- level: Metadata
  userGroups: ["system:serviceaccounts"]
- level: None
"""

#: The audit log's verbs as the API server's metrics name them.
VERBS = {"create": "POST", "get": "GET", "list": "LIST", "watch": "WATCH", "delete": "DELETE",
         "patch": "PATCH", "update": "PUT", "deletecollection": "DELETECOLLECTION"}  # fmt: skip


def nodes_for(pods_in_flight: int) -> int:
    """kwok nodes for that many pods at once (2,000 pods each, one spare, at least 3)."""
    return max(3, math.ceil(pods_in_flight / PODS_PER_NODE) + 1)


def bench_control_plane(pods_in_flight: int, workdir: Path) -> LocalControlPlane:
    """A control plane sized for ``pods_in_flight`` pods, auditing ServiceAccount requests."""
    policy = workdir / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY)
    return LocalControlPlane(
        nodes=nodes_for(pods_in_flight),
        scheduler_args=SCHEDULER_QPS,
        node_capacity={"cpu": "1000", "memory": "4Ti", "pods": str(PODS_PER_NODE)},
        apiserver_args=(
            *APISERVER_INFLIGHT,
            f"--audit-policy-file={policy}",
            f"--audit-log-path={workdir / 'audit.log'}",
            "--audit-log-format=json",
            "--audit-log-mode=batch",
            "--audit-log-batch-max-wait=1s",
            "--audit-log-maxsize=1000000",  # MB: never rotate (0 means 100 MB)
        ),
        ready_timeout=120.0,
    )


async def prepare_namespace(
    plane: LocalControlPlane,
    namespace: str,
    workdir: Path,
    extra_rules: Sequence[dict[str, Any]] = (),
) -> Path:
    """A fresh namespace and a kubeconfig for a ServiceAccount bound to the minimal Role."""
    await asyncio.to_thread(plane.create_namespace, namespace)
    return await asyncio.to_thread(
        service_account_kubeconfig,
        plane.admin,
        plane.kubeconfig,
        namespace=namespace,
        out=workdir / f"{namespace}.kubeconfig",
        rules=(*MINIMAL_ROLE_RULES, *extra_rules),
        name=SERVICE_ACCOUNT,
        token_seconds=6 * 3600,
    )


def pod_requests(delta: RequestCounts) -> dict[str, float]:
    """A metrics delta's requests on pods, keyed ``VERB`` or ``VERB pods/<subresource>``."""
    out: dict[str, float] = {}
    for (verb, resource, sub), value in sorted(delta.counts.items()):
        if resource == "pods" and value:
            out[f"{verb} pods/{sub}" if sub else verb] = value
    return out


class AuditLog:
    """The requests one ServiceAccount made, read from the API server's audit log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def requests_of(self, namespace: str, account: str = SERVICE_ACCOUNT) -> dict[str, Any]:
        """Since this object was made: counts by ``VERB resource[/sub]`` and by HTTP code."""
        user = f"system:serviceaccount:{namespace}:{account}"
        by_verb: dict[str, int] = {}
        by_code: dict[str, int] = {}
        with contextlib.suppress(OSError), self.path.open("rb") as log:
            log.seek(self.offset)
            for line in log:
                if user.encode() not in line:
                    continue
                entry = json.loads(line)
                if entry.get("user", {}).get("username") != user:
                    continue
                ref = entry.get("objectRef") or {}
                resource = ref.get("resource") or entry.get("requestURI", "?").split("?")[0]
                if ref.get("subresource"):
                    resource += "/" + ref["subresource"]
                verb = VERBS.get(entry.get("verb", ""), entry.get("verb", "?").upper())
                key = f"{verb} {resource}"
                by_verb[key] = by_verb.get(key, 0) + 1
                code = str((entry.get("responseStatus") or {}).get("code", "?"))
                if not code.startswith("2"):
                    by_code[f"{key} {code}"] = by_code.get(f"{key} {code}", 0) + 1
        return {"by_verb": dict(sorted(by_verb.items())), "not_2xx": by_code,
                "total": sum(by_verb.values())}  # fmt: skip


@dataclass
class Observer:
    """An admin watch on one namespace: when each pod turned terminal, and was deleted.

    It runs in the runner, not in the measured process, and authenticates as the
    control plane's admin (exempt from API priority and fairness), so its timestamps do
    not depend on the contender under test. Both read the same host clock.
    """

    server: str
    ssl_context: ssl.SSLContext | None
    namespace: str
    added: dict[str, float] = field(default_factory=dict)
    terminal: dict[str, float] = field(default_factory=dict)
    deleted: dict[str, float] = field(default_factory=dict)
    watches_opened: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        url = f"{self.server}/api/v1/namespaces/{self.namespace}/pods"
        version = ""
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=10)
        async with aiohttp.ClientSession(timeout=timeout, read_bufsize=2**21) as session:
            while True:
                params = {"watch": "1", "timeoutSeconds": "3600", "allowWatchBookmarks": "true"}
                if version:
                    params["resourceVersion"] = version
                verify: ssl.SSLContext | bool = self.ssl_context or True  # True: the default
                async with session.get(url, params=params, ssl=verify) as response:
                    response.raise_for_status()
                    self.watches_opened += 1
                    self.ready.set()
                    async for line in response.content:
                        now = time.time()
                        if not line.strip():
                            continue
                        event = orjson.loads(line)
                        pod = event.get("object") or {}
                        if event.get("type") == "ERROR":
                            version = ""  # 410: start over from now (not expected in minutes)
                            break
                        version = pod.get("metadata", {}).get("resourceVersion", version)
                        if event.get("type") != "BOOKMARK":
                            self._record(event["type"], pod, now)

    def _record(self, kind: str, pod: dict[str, Any], now: float) -> None:
        name = pod.get("metadata", {}).get("name", "")
        self.added.setdefault(name, now)
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            self.terminal.setdefault(name, now)
        if kind == "DELETED":
            self.deleted.setdefault(name, now)
        self._changed.set()

    async def wait_gone(self, timeout: float) -> bool:
        """Until every pod seen was deleted (``False`` if ``timeout`` passed first)."""
        deadline = time.monotonic() + timeout
        while set(self.added) - set(self.deleted):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))
        return True
