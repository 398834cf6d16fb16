"""Fixtures of the CLI tests: run ``asyncpod`` as a user would, against the test cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
