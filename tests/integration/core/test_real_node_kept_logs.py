"""Kept logs on the real node: the file holds the bytes the container wrote.

A launcher with ``keep_logs`` reads a failed attempt's log once, after its container
ended and before its pod is deleted; here a real process writes the bytes (tabs,
repeated spaces, UTF-8 and a byte that is not UTF-8) and the kept file, its timestamps
taken off, must hold exactly them. Skipped where a real node cannot run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import asyncpod
from asyncpod import KeepLogs, Launcher, Outcome, PodSpec, Toleration
from asyncpod.testing.pytest_plugin import RealNode

from .conftest import TEST_OPTIONS

pytestmark = [pytest.mark.integration, pytest.mark.real_node]

REAL_NODE_OPTIONS = dataclasses.replace(TEST_OPTIONS, schedule_timeout=180, startup_timeout=300)

WRITTEN = b"first line\n\tindented  with  spaces  \n\xc3\xbc non-ascii\n\xff not utf-8\nlast\n"


@pytest.fixture
async def cluster(sa_kubeconfig: Path, namespace: str) -> AsyncIterator[asyncpod.Cluster]:
    async with asyncpod.connect(
        sa_kubeconfig, namespace=namespace, options=REAL_NODE_OPTIONS, qps=None
    ) as c:
        yield c


async def test_a_failed_attempts_kept_log_holds_the_bytes_the_container_wrote(
    cluster: asyncpod.Cluster, real_node: RealNode, tmp_path: Path
) -> None:
    octal = "".join(f"\\{byte:03o}" for byte in WRITTEN)
    spec = PodSpec(
        "busybox:1.36",
        command=["sh", "-c", f"printf '{octal}'; exit 4"],
        task_key="writer",
        node_selector=real_node.node_selector,
        tolerations=[
            Toleration(t["key"], t["operator"], effect=t["effect"]) for t in real_node.tolerations
        ],
    )
    launcher = Launcher(cluster, run_id="kept-real", keep_logs=KeepLogs(tmp_path / "logs"))
    (attempt,) = [a async for a in launcher.attempts([spec])]

    assert attempt.result.outcome is Outcome.FAILED, attempt.result.describe()
    assert attempt.result.exit_code == 4
    assert attempt.log == tmp_path / "logs" / "writer" / "1.log"
    assert attempt.log_missing is None
    header, *lines = attempt.log.read_bytes().split(b"\n")[:-1]
    assert header == b"==> container main <=="
    stamps = [line.split(b" ", 1)[0] for line in lines]
    assert all(stamp.endswith(b"Z") and b"T" in stamp for stamp in stamps)
    assert b"".join(line.split(b" ", 1)[1] + b"\n" for line in lines) == WRITTEN
