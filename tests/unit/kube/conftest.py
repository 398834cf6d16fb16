"""Fixtures: a fake API server on loopback and a client pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from asyncpod.kube.client import KubeClient
from asyncpod.kube.config import ClusterConfig, StaticToken
from tests.unit.kube.fakeapi import FAST_RETRY, TOKEN, FakeApiServer


@pytest.fixture
async def api() -> AsyncIterator[FakeApiServer]:
    server = FakeApiServer()
    test_server = TestServer(server.app)
    await test_server.start_server()
    server.url = f"http://127.0.0.1:{test_server.port}"
    try:
        yield server
    finally:
        server.release.set()
        await asyncio.sleep(0)
        await test_server.close()


@pytest.fixture
async def client(api: FakeApiServer) -> AsyncIterator[KubeClient]:
    config = ClusterConfig(api.url, credentials=StaticToken(TOKEN))
    async with KubeClient(config, qps=None, retry=FAST_RETRY) as kube:
        yield kube
