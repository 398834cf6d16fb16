"""The contenders: one module each, the same pods, each run alone in its own process.

Every module has ``async def run(cfg, times) -> dict``: it runs the workload of
:class:`benchmarks.workload.ChildConfig`, fills in the :class:`PodTimes` it is given
(so a run cut short by the time cap still reports what it had done) and returns extra
facts for the results file. :data:`CONTENDERS` lists them in the order they run and
says what each needs; :func:`unavailable` tells why one cannot run here.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from benchmarks.workload import ChildConfig, PodTimes

__all__ = [
    "BY_NAME",
    "CONTENDERS",
    "GC_POLICIES",
    "RETRIES",
    "STREAM",
    "Contender",
    "gc_policy",
    "load",
    "unavailable",
]

RunFunction = Callable[[ChildConfig, list[PodTimes]], Awaitable[dict[str, Any]]]

#: The Role's rules beyond asyncpod's minimal Role that a contender needs to behave as
#: it does in production: Airflow's trigger watches the pod's events while it starts
#: (it falls back to polling them every 30 s when the watch is forbidden).
EVENTS_WATCH = ({"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]},)


@dataclass(frozen=True)
class Contender:
    name: str
    module: str
    summary: str
    requires: tuple[str, ...] = ()
    """Modules that must be importable; otherwise the contender is "not available"."""
    extra_rules: tuple[dict[str, Any], ...] = field(default=())
    preload: tuple[str, ...] = ()
    """Imported before the memory baseline, so RSS growth is the work's, not the imports'."""


# ``import asyncpod`` is light on purpose; the session's modules (aiohttp, the
# kubeconfig loader and with it kubernetes_asyncio's client package: ~860 modules, ~0.3 s)
# load on first use of ``asyncpod.connect``. Preloaded like every peer's library, so
# neither the measured loop stall nor the RSS growth is an import.
ASYNCPOD_SESSION_MODULES = (
    "asyncpod",
    "asyncpod.core.cluster",
    "asyncpod.core.scheduler",
    "asyncpod.kube.client",
    "asyncpod.kube.config",
)

CONTENDERS: tuple[Contender, ...] = (
    Contender(
        "raw",
        "benchmarks.contenders.raw",
        "aiohttp, one watch for all pods, POST + DELETE per pod, no library logic",
        preload=("aiohttp", "orjson", "yaml"),
    ),
    Contender(
        "asyncpod",
        "benchmarks.contenders.asyncpod_launcher",
        "asyncpod Launcher.as_completed, max_in_flight=N, qps=None",
        preload=ASYNCPOD_SESSION_MODULES,
    ),
    Contender(
        "asyncpod-trigger",
        "benchmarks.contenders.asyncpod_trigger",
        "asyncpod's AsyncpodPodTrigger, N on one loop",
        requires=("asyncpod.airflow.triggers", "airflow"),
        preload=("asyncpod.airflow.triggers", "aiohttp", "yaml"),
    ),
    Contender(
        "airflow-trigger",
        "benchmarks.contenders.airflow_trigger",
        "Airflow's KubernetesPodTrigger (cncf provider), N on one loop",
        requires=("airflow.providers.cncf.kubernetes.triggers.pod",),
        extra_rules=EVENTS_WATCH,
        preload=("airflow.providers.cncf.kubernetes.triggers.pod", "aiohttp", "yaml"),
    ),
    Contender(
        "kubernetes-asyncio",
        "benchmarks.contenders.kubernetes_asyncio_watch",
        "kubernetes_asyncio: create, one Watch per pod, delete",
        requires=("kubernetes_asyncio",),
        preload=(
            "kubernetes_asyncio.client",
            "kubernetes_asyncio.config",
            "kubernetes_asyncio.watch",
        ),
    ),
    Contender(
        "kr8s",
        "benchmarks.contenders.kr8s_wait",
        "kr8s: create, Pod.wait() per pod, delete",
        requires=("kr8s",),
        preload=("kr8s.asyncio", "kr8s.asyncio.objects"),
    ),
)
#: Not a contender of ``python -m benchmarks run``: the stream mode of benchmarks.scale.
STREAM = Contender(
    "asyncpod-stream",
    "benchmarks.contenders.asyncpod_stream",
    "asyncpod Launcher fed a lazily generated input, stopped after a while",
    preload=ASYNCPOD_SESSION_MODULES,
)
#: Not a contender of ``python -m benchmarks run``: the launcher of benchmarks.retries.
RETRIES = Contender(
    "asyncpod-retries",
    "benchmarks.contenders.asyncpod_retries",
    "asyncpod Launcher.attempts under the --retries N policy (or none), every attempt counted",
    preload=(*ASYNCPOD_SESSION_MODULES, "asyncpod.cli.batch"),
)
BY_NAME = {c.name: c for c in (*CONTENDERS, STREAM, RETRIES)}


def unavailable(contender: Contender) -> str | None:
    """Why ``contender`` cannot run in this environment, or ``None`` if it can.

    Each required module is imported in a throwaway interpreter, so that the runner
    neither pays for (Airflow's import takes ~190 MiB) nor keeps what it checked.
    """
    with tempfile.TemporaryDirectory(prefix="asyncpod-bench-airflow-") as airflow_home:
        return _first_missing(contender.requires, airflow_home)


def _first_missing(modules: tuple[str, ...], airflow_home: str) -> str | None:
    for module in modules:
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import importlib, sys; importlib.import_module(sys.argv[1])",
                module,
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "AIRFLOW_HOME": airflow_home},
        )
        if probe.returncode != 0:
            return f"not available ({module} cannot be imported)"
    return None


def load(name: str) -> RunFunction:
    run: RunFunction = importlib.import_module(BY_NAME[name].module).run
    return run


GC_POLICIES = ("default", "freeze", "batch")


@contextlib.contextmanager
def gc_policy(name: str) -> Iterator[None]:
    """The collector policy asyncpod's launcher is measured under (``ChildConfig.gc_policy``).

    ``batch`` is what ``asyncpod batch`` does (:func:`asyncpod.cli.heap.batch_collector`);
    ``freeze`` what it did before (one :func:`gc.freeze` after connecting, full passes
    left on); ``default`` leaves Python's collector as it is.
    """
    if name == "batch":
        from asyncpod.cli.heap import batch_collector

        with batch_collector():
            yield
    elif name == "freeze":
        gc.collect()
        gc.freeze()
        yield
    elif name == "default":
        yield
    else:
        raise ValueError(f"unknown GC policy {name!r}; one of {', '.join(GC_POLICIES)}")
