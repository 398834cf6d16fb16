"""What every contender is asked to do, and what it reports back, as plain JSON values.

Why: the runner and each contender's process share only files, so the workload (how
many pods, which manifest, where) and the per-pod record (when it was created, when
the contender's code knew it had finished, when its result was in hand) are small
dataclasses that round-trip through JSON. Every contender creates the same pods:
asyncpod's ``PodSpec(...).to_manifest()``, built once by the runner
(:func:`pod_description`), so the peers' processes never import asyncpod.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ChildConfig", "PodTimes", "pod_description", "pod_manifest", "pod_names"]

POD_PREFIX = "bench-"


@dataclass
class PodTimes:
    """What one contender saw of one pod (wall-clock ``time.time()``; ``None``: never).

    ``seen``: the contender's code knew the pod had reached a terminal state;
    ``done``: the pod's result was in hand *and* its delete had returned.
    """

    name: str
    created: float | None = None
    seen: float | None = None
    done: float | None = None
    phase: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ChildConfig:
    """Everything a contender's process needs; written by the runner as JSON."""

    contender: str
    kubeconfig: str
    namespace: str
    pods: int
    duration: float
    cap_seconds: float
    pod: dict[str, Any] = field(default_factory=dict)
    """From :func:`pod_description`: ``spec`` (PodSpec kwargs) and ``manifest``."""
    max_in_flight: int | None = None
    """asyncpod's launcher only: defaults to ``pods`` (everything in flight at once)."""
    stream_specs: int | None = None
    """The stream mode of :mod:`benchmarks.scale`: a lazily generated input this long..."""
    stop_after_seconds: float | None = None
    """...of which the contender stops taking results after this long..."""
    stop_after_pods: int | None = None
    """...or after this many results, whichever comes first."""
    gc_policy: str = "default"
    """asyncpod's launcher and stream only (:func:`benchmarks.contenders.gc_policy`):
    ``default`` (Python's collector as it is), ``freeze`` (:func:`gc.freeze` after
    connecting, the batch command's policy until 2026-11-30) or ``batch`` (the batch
    command's :func:`asyncpod.cli.heap.batch_collector`)."""
    metrics: bool = False
    """asyncpod's launcher only: count with an :class:`asyncpod.Metrics` (on a registry of
    its own, scraped once at the end) instead of the default, metrics off
    (:mod:`benchmarks.metrics_cost`)."""
    retries: int | None = None
    """The retries contender only (:mod:`benchmarks.retries`): the policy of ``asyncpod
    batch --retries N`` (the default rules, N + 1 attempts); ``None``: no policy, the
    launcher's default (no retry)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChildConfig:
        return cls(**data)


def pod_names(count: int) -> list[str]:
    return [f"{POD_PREFIX}{i:05d}" for i in range(count)]


def pod_description(duration: float) -> dict[str, Any]:
    """The one pod every contender runs: ``spec`` for asyncpod, ``manifest`` for the rest.

    ``manifest`` is ``PodSpec(**spec).to_manifest()`` without name and namespace. The
    kwok annotation ``sim.asyncpod.dev/duration`` makes the simulated kubelet run it for
    ``duration`` seconds and exit 0.
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


def pod_manifest(cfg: ChildConfig, name: str) -> dict[str, Any]:
    """The workload's manifest for one pod name, in the workload's namespace."""
    manifest: dict[str, Any] = copy.deepcopy(cfg.pod["manifest"])
    manifest["metadata"].update(name=name, namespace=cfg.namespace)
    return manifest
