"""Helpers of the CLI tests: the ``asyncpod`` command as a subprocess, cluster checks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncpod.testing import LocalControlPlane
from asyncpod.testing.pytest_plugin import TestCluster


@dataclass
class Process:
    """A running ``asyncpod`` command whose output goes to files (pipes could fill up)."""

    popen: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    def wait(self, timeout: float = 120) -> int:
        return self.popen.wait(timeout)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")


@dataclass
class Cli:
    kubeconfig: Path
    namespace: str
    workdir: Path
    started: list[Process] = field(default_factory=list)

    @property
    def cluster_args(self) -> list[str]:
        return ["--kubeconfig", str(self.kubeconfig), "--namespace", self.namespace]

    def start(self, *args: str) -> Process:
        index = len(self.started)
        out = self.workdir / f"cli-{index}.stdout"
        err = self.workdir / f"cli-{index}.stderr"
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env["PYTHONUNBUFFERED"] = "1"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            popen = subprocess.Popen(
                [sys.executable, "-m", "asyncpod.cli.main", *args],
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=env,
            )
        process = Process(popen, out, err)
        self.started.append(process)
        return process

    def run(self, *args: str, timeout: float = 120) -> Process:
        process = self.start(*args)
        process.wait(timeout)
        return process


def pods(kube_cluster: TestCluster, namespace: str, selector: str | None = None) -> list[Any]:
    path = f"/api/v1/namespaces/{namespace}/pods"
    if selector:
        path += f"?labelSelector={selector}"
    items: list[Any] = kube_cluster.admin.request("GET", path)["items"]
    return items


def wait_until(predicate: Callable[[], bool], *, timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.1)


@dataclass(frozen=True)
class PodCreates:
    """POST pods as the API server's metrics count them.

    ``certain``: answered 201. ``unsure``: answered 5xx, which a client that went away
    mid-request gets (its context cancelled, the server answers 504 while the create goes on
    and may still store the pod): a SIGKILLed batch leaves such a create behind."""

    certain: int
    unsure: int

    def allow(self, expected: int) -> bool:
        """Whether ``expected`` pods could have been made: every 201, some of the 5xx."""
        return self.certain <= expected <= self.certain + self.unsure

    def __sub__(self, before: PodCreates) -> PodCreates:
        return PodCreates(self.certain - before.certain, self.unsure - before.unsure)

    def __add__(self, other: PodCreates) -> PodCreates:
        """Both counts together (two API servers')."""
        return PodCreates(self.certain + other.certain, self.unsure + other.unsure)


def pod_creates(plane: LocalControlPlane) -> PodCreates:
    """The API server's POST pods so far."""
    return count_pod_creates(plane.metrics_text())


def count_pod_creates(metrics_text: str) -> PodCreates:
    """POST pods in the API server's metrics (a 409, a 4xx or a dry run is no create). Pure."""
    certain = unsure = 0.0
    for line in metrics_text.splitlines():
        if (
            line.startswith("apiserver_request_total{")
            and 'resource="pods"' in line
            and 'subresource=""' in line
            and 'verb="POST"' in line
            and 'dry_run="All"' not in line  # a dry run (the batch's preflight) stores nothing
        ):
            count = float(line.rsplit(" ", 1)[1])
            if 'code="201"' in line:
                certain += count
            elif 'code="5' in line:
                unsure += count
    return PodCreates(int(certain), int(unsure))


def pods_created(plane: LocalControlPlane) -> int:
    """Pods the API server has created so far (POST pods answered 201)."""
    return pod_creates(plane).certain
