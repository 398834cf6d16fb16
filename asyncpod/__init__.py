"""asyncpod: run Kubernetes pods from asyncio, at scale, without polling.

    import asyncpod

    async with asyncpod.connect() as cluster:
        result = await cluster.run(asyncpod.PodSpec("busybox", ["echo", "hello"]))
        result.raise_for_outcome()

One cluster session multiplexes every run over shared watch streams (one per
namespace), follows logs with async readers, and bounds concurrency with a
:class:`Launcher`. See the README for the design and the CLI.
"""

from __future__ import annotations

from asyncpod.core.cluster import Cluster, ClusterStatistics, connect
from asyncpod.core.informer import InformerStatistics, PodChange, PodInformer
from asyncpod.core.lifecycle import PodState, StateChange
from asyncpod.core.runner import Cleanup, PodRun, RunOptions
from asyncpod.core.scheduler import Launcher, LauncherStatistics
from asyncpod.errors import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    AsyncpodError,
    ClosedError,
    ConfigError,
    ConflictError,
    ForbiddenError,
    GoneError,
    InvalidRequestError,
    NamespaceNotFoundError,
    NotFoundError,
    PodFailedError,
    RunTimeoutError,
    ServerError,
    SpecError,
    TooManyRequestsError,
    TransientError,
    UnauthorizedError,
    UsageError,
)
from asyncpod.kube.logs import LogLine
from asyncpod.kube.settings import RetryPolicy, Settings
from asyncpod.results import ContainerKind, ContainerResult, Outcome, PodEvent, PodResult, Reason
from asyncpod.spec import (
    ContainerSpec,
    EnvFrom,
    EnvVar,
    PodSpec,
    Resources,
    Toleration,
    VolumeMount,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "AsyncpodError",
    "Cleanup",
    "ClosedError",
    "Cluster",
    "ClusterStatistics",
    "ConfigError",
    "ConflictError",
    "ContainerKind",
    "ContainerResult",
    "ContainerSpec",
    "EnvFrom",
    "EnvVar",
    "ForbiddenError",
    "GoneError",
    "InformerStatistics",
    "InvalidRequestError",
    "Launcher",
    "LauncherStatistics",
    "LogLine",
    "NamespaceNotFoundError",
    "NotFoundError",
    "Outcome",
    "PodChange",
    "PodEvent",
    "PodFailedError",
    "PodInformer",
    "PodResult",
    "PodRun",
    "PodSpec",
    "PodState",
    "Reason",
    "Resources",
    "RetryPolicy",
    "RunOptions",
    "RunTimeoutError",
    "ServerError",
    "Settings",
    "SpecError",
    "StateChange",
    "Toleration",
    "TooManyRequestsError",
    "TransientError",
    "UnauthorizedError",
    "UsageError",
    "VolumeMount",
    "__version__",
    "connect",
]
