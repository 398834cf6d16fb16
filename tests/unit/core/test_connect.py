"""connect(): first contact, settings, keyword overrides and the configuration source.

Opening a session sends one request, ``GET /version`` (informers start with the first
run): a loopback stand-in that answers it is enough to see what connect() built, and
a closed port shows what a server never reached does.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

import asyncpod
from asyncpod.errors import ConfigError, ServerUnreachableError, UsageError


async def _serve(status: int) -> TestServer:
    async def version(_: web.Request) -> web.Response:
        return web.json_response({"gitVersion": "v1.34.4"}, status=status)

    app = web.Application()
    app.router.add_get("/version", version)
    server = TestServer(app)
    await server.start_server()
    return server


@pytest.fixture
async def server() -> AsyncIterator[str]:
    running = await _serve(200)
    try:
        yield f"http://127.0.0.1:{running.port}"
    finally:
        await running.close()


def _kubeconfig(path: Path, server: str) -> Path:
    doc = {
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t0k3n-for-tests"}}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}],
        "current-context": "dev",
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.fixture
def kubeconfig(tmp_path: Path, server: str) -> Path:
    return _kubeconfig(tmp_path / "kubeconfig", server)


async def test_a_server_never_reached_fails_on_entry_naming_it(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = _kubeconfig(tmp_path / "closed", f"http://127.0.0.1:{port}")

    with pytest.raises(ServerUnreachableError, match=rf"http://127.0.0.1:{port} \(kubeconfig "):
        async with asyncpod.connect(path):
            pass  # pragma: no cover - never entered


async def test_any_answer_is_contact_even_an_error(tmp_path: Path) -> None:
    failing = await _serve(500)
    try:
        path = _kubeconfig(tmp_path / "failing", f"http://127.0.0.1:{failing.port}")
        settings = asyncpod.Settings(retry=asyncpod.RetryPolicy(attempts=1))
        async with asyncpod.connect(path, settings=settings) as cluster:
            assert cluster.client.answered
    finally:
        await failing.close()


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
