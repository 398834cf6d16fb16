"""Fixtures of the CLI tests: run ``asyncpod`` as a user would, against the test cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncpod.testing import LocalControlPlane
from asyncpod.testing.pytest_plugin import TestCluster
from tests.cli.helpers import Cli


@pytest.fixture
def cli(kube_cluster: TestCluster, namespace: str, tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(kube_cluster.kubeconfig, namespace, tmp_path)
    yield runner
    for process in runner.started:  # a failed assertion must not leave one running
        if process.popen.poll() is None:
            process.popen.kill()
            process.popen.wait(10)


@pytest.fixture
def simulated(control_plane: LocalControlPlane) -> LocalControlPlane:
    """Tests that need kwok to play outcomes from annotations (skipped on other clusters)."""
    return control_plane
