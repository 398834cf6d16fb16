"""connect(): settings, keyword overrides and the configuration source, without a server.

Opening a session sends no request (informers start with the first run), so a
kubeconfig naming an unreachable address is enough to see what connect() built.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import asyncpod
from asyncpod.errors import ConfigError, UsageError


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    doc = {
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t0k3n-for-tests"}}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}],
        "current-context": "dev",
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


async def test_settings_reach_the_client(kubeconfig: Path) -> None:
    settings = asyncpod.Settings(qps=5, burst=7, max_streams=9)

    async with asyncpod.connect(kubeconfig, settings=settings) as cluster:
        assert cluster.client.statistics().max_streams == 9
        assert "qps=5/burst=7" in repr(cluster.client)
        assert cluster.namespace == "ns"


async def test_keywords_override_the_settings(kubeconfig: Path) -> None:
    settings = asyncpod.Settings(qps=5, burst=7, max_streams=9)

    async with asyncpod.connect(kubeconfig, settings=settings, qps=None, max_streams=11) as cluster:
        assert cluster.client.statistics().max_streams == 11
        assert "qps=off" in repr(cluster.client)


async def test_a_bad_override_is_a_usage_error(kubeconfig: Path) -> None:
    with pytest.raises(UsageError, match=r"Settings\.burst"):
        async with asyncpod.connect(kubeconfig, burst=0):
            pass


async def test_in_cluster_with_a_kubeconfig_is_a_config_error(kubeconfig: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be combined"):
        async with asyncpod.connect(kubeconfig, in_cluster=True):
            pass
