"""Logs through the real ``pods/log`` endpoint (kwok serves the files we write)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import asyncpod
from asyncpod import ContainerSpec, PodSpec
from asyncpod.testing import outcome
from asyncpod.testing.proxy import FaultProxy

from .conftest import TEST_OPTIONS

# Outcomes come from kwok playing out sim.asyncpod.dev/* annotations.
pytestmark = [pytest.mark.integration, pytest.mark.simulated]


async def test_every_container_is_followed_and_tagged(
    cluster: asyncpod.Cluster, container_logs: Callable[..., dict[str, Any]]
) -> None:
    logs = container_logs("multi", ["setup", "main", "helper"])
    logs["setup"].write(["preparing", "prepared"])
    logs["main"].write(["working"])
    logs["helper"].write(["helping"])
    spec = PodSpec(
        "busybox:1.36",
        init_containers=[ContainerSpec("setup", "busybox:1.36")],
        sidecars=[ContainerSpec("helper", "busybox:1.36")],
        native_sidecars=False,
        annotations=outcome(duration=1.0, init_duration=0.3),
    )
    run = await cluster.start(spec, name="multi")
    lines = []
    async with contextlib.aclosing(run.logs()) as stream:
        async for line in stream:
            lines.append((line.container, line.text))
    assert (await run).ok
    assert lines[:2] == [("setup", "preparing"), ("setup", "prepared")]  # init first
    assert sorted(lines[2:]) == [("helper", "helping"), ("main", "working")]
    assert len(lines) == len(set(lines)) == 4  # each line once


async def test_lines_written_while_running_arrive_and_the_stream_ends_with_the_container(
    cluster: asyncpod.Cluster, container_logs: Callable[..., dict[str, Any]]
) -> None:
    logs = container_logs("live", ["main"])
    logs["main"].write(["line 1"])
    run = await cluster.start(
        PodSpec("busybox:1.36", annotations=outcome(duration=3.0)), name="live"
    )
    texts = []
    async with contextlib.aclosing(run.logs()) as stream:
        async for line in stream:
            texts.append(line.text)
            if line.text == "line 1":
                logs["main"].write(["line 2", "line 3"])
    assert texts == ["line 1", "line 2", "line 3"]
    assert (await run).ok


async def test_a_cut_stream_resumes_without_loss_or_duplicates(
    proxied_kubeconfig: Path,
    namespace: str,
    proxy: FaultProxy,
    container_logs: Callable[..., dict[str, Any]],
) -> None:
    logs = container_logs("cut", ["main"])
    # Three lines share one timestamp: resuming from it must skip exactly those three
    # and still deliver the two that arrive later with the same timestamp.
    same = dt.datetime.now(dt.timezone.utc)
    logs["main"].write(["a", "b", "a"], at=same)
    async with asyncpod.connect(proxied_kubeconfig, namespace=namespace, options=TEST_OPTIONS) as c:
        run = await c.start(PodSpec("busybox:1.36", annotations=outcome(duration=4.0)), name="cut")
        texts: list[str] = []
        async with contextlib.aclosing(run.logs()) as stream:
            async for line in stream:
                texts.append(line.text)
                if len(texts) == 3:
                    assert proxy.cut() >= 1  # the log stream (and the watch) are cut
                    logs["main"].write(["c", "a"], at=same)
                    logs["main"].write(["d"])
        result = await run
    assert result.ok
    assert texts == ["a", "b", "a", "c", "a", "d"]
    assert proxy.statistics().cut >= 1
