"""asyncpod: run Kubernetes pods from asyncio, at scale, without polling.

    import asyncpod

    async with asyncpod.connect() as cluster:
        result = await cluster.run(asyncpod.PodSpec("busybox", ["echo", "hello"]))
        result.raise_for_outcome()

One cluster session multiplexes every run over shared watch streams (one per
namespace), follows logs with async readers, and bounds concurrency with a
:class:`Launcher`. See docs/architecture.md for the design, the README for the CLI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

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
    OptionError,
    PodFailedError,
    RunTimeoutError,
    ServerError,
    ServerUnreachableError,
    SpecError,
    TooManyRequestsError,
    TransientError,
    UnauthorizedError,
    UsageError,
)
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

if TYPE_CHECKING:
    from asyncpod.core.cluster import Cluster, ClusterStatistics, connect
    from asyncpod.core.failurepolicy import ExitCodes, FailureAction, FailurePolicy, FailureRule
    from asyncpod.core.fleet import Fleet, FleetAttempt, FleetMember, FleetStatistics
    from asyncpod.core.informer import InformerStatistics, PodChange, PodInformer
    from asyncpod.core.keptlogs import KeepLogs
    from asyncpod.core.lifecycle import PodState, StateChange
    from asyncpod.core.runner import Cleanup, PodRun, RunOptions
    from asyncpod.core.scheduler import Attempt, Launcher, LauncherStatistics, TaskHistory
    from asyncpod.kube.logs import LogLine
    from asyncpod.kube.settings import RetryPolicy, Settings
    from asyncpod.metrics import Metrics
    from asyncpod.traces import Traces

__version__ = "0.1.0.dev0"

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "AsyncpodError",
    "Attempt",
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
    "ExitCodes",
    "FailureAction",
    "FailurePolicy",
    "FailureRule",
    "Fleet",
    "FleetAttempt",
    "FleetMember",
    "FleetStatistics",
    "ForbiddenError",
    "GoneError",
    "InformerStatistics",
    "InvalidRequestError",
    "KeepLogs",
    "Launcher",
    "LauncherStatistics",
    "LogLine",
    "Metrics",
    "NamespaceNotFoundError",
    "NotFoundError",
    "OptionError",
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
    "ServerUnreachableError",
    "Settings",
    "SpecError",
    "StateChange",
    "TaskHistory",
    "Toleration",
    "TooManyRequestsError",
    "Traces",
    "TransientError",
    "UnauthorizedError",
    "UsageError",
    "VolumeMount",
    "__version__",
    "connect",
]

# The vocabulary above (errors, specs, results) is plain Python. The session, the runs
# and the launcher pull in aiohttp and kubernetes_asyncio, so they are imported when
# first used: a program that only builds specs, and every pytest run (which loads our
# plugin through this package), stays light. See docs/architecture.md, "Imports".
_LAZY: Final = {
    "Attempt": "asyncpod.core.scheduler",
    "Cleanup": "asyncpod.core.runner",
    "Cluster": "asyncpod.core.cluster",
    "ClusterStatistics": "asyncpod.core.cluster",
    "ExitCodes": "asyncpod.core.failurepolicy",
    "FailureAction": "asyncpod.core.failurepolicy",
    "FailurePolicy": "asyncpod.core.failurepolicy",
    "FailureRule": "asyncpod.core.failurepolicy",
    "Fleet": "asyncpod.core.fleet",
    "FleetAttempt": "asyncpod.core.fleet",
    "FleetMember": "asyncpod.core.fleet",
    "FleetStatistics": "asyncpod.core.fleet",
    "InformerStatistics": "asyncpod.core.informer",
    "KeepLogs": "asyncpod.core.keptlogs",
    "Launcher": "asyncpod.core.scheduler",
    "LauncherStatistics": "asyncpod.core.scheduler",
    "LogLine": "asyncpod.kube.logs",
    "Metrics": "asyncpod.metrics",
    "PodChange": "asyncpod.core.informer",
    "PodInformer": "asyncpod.core.informer",
    "PodRun": "asyncpod.core.runner",
    "PodState": "asyncpod.core.lifecycle",
    "RetryPolicy": "asyncpod.kube.settings",
    "RunOptions": "asyncpod.core.runner",
    "Settings": "asyncpod.kube.settings",
    "StateChange": "asyncpod.core.lifecycle",
    "TaskHistory": "asyncpod.core.scheduler",
    "Traces": "asyncpod.traces",
    "connect": "asyncpod.core.cluster",
}

if not TYPE_CHECKING:  # type checkers see the imports above, and no catch-all

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'asyncpod' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_LAZY})
