"""The only code that speaks HTTP to the Kubernetes API server.

It knows requests, statuses, streams and JSON; it knows nothing of runs, results or
schedulers (those live in ``asyncpod.core``, which imports this package, never the
reverse; import-linter enforces it).

``config`` says where the server is and who we are; ``client`` owns the HTTP session
(budgets, rate limit, retries, error mapping); ``watch`` and ``logs`` are the raw
streaming primitives built on ``KubeClient.stream``; ``pods`` is the typed pods API
(create, get, delete with a uid precondition, list, watch, events of a uid) and
``nodes`` reads one Node, so no code outside this package spells a REST path;
``settings`` is the one value holding every client-side knob (rate, budgets,
timeouts, retries, the watch's patience).
"""

from __future__ import annotations

from asyncpod.kube.client import ClientStatistics, KubeClient, RetryPolicy, TokenBucket
from asyncpod.kube.config import (
    ClusterConfig,
    Credentials,
    StaticToken,
    build_ssl_context,
    load_config,
    load_incluster,
    load_kubeconfig,
)
from asyncpod.kube.logs import LogFollower, LogFollowerStatistics, LogLine
from asyncpod.kube.pods import PodList, Pods, pod_path
from asyncpod.kube.settings import Settings
from asyncpod.kube.watch import list_objects, watch_stream

__all__ = [
    "ClientStatistics",
    "ClusterConfig",
    "Credentials",
    "KubeClient",
    "LogFollower",
    "LogFollowerStatistics",
    "LogLine",
    "PodList",
    "Pods",
    "RetryPolicy",
    "Settings",
    "StaticToken",
    "TokenBucket",
    "build_ssl_context",
    "list_objects",
    "load_config",
    "load_incluster",
    "load_kubeconfig",
    "pod_path",
    "watch_stream",
]
