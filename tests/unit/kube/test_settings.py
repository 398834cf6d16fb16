"""Settings: one checked value for every client-side knob, and what the client gets of it."""

from __future__ import annotations

from typing import Any

import pytest

from asyncpod.errors import UsageError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.config import ClusterConfig
from asyncpod.kube.settings import RetryPolicy, Settings


def test_defaults_are_the_documented_ones() -> None:
    settings = Settings()

    assert (settings.qps, settings.burst, settings.max_streams) == (50.0, 100, 400)
    assert settings.request_timeout == 60.0
    assert settings.inactivity_timeout == 70.0
    assert settings.retry == RetryPolicy()
    assert settings.reconnect_backoff.backoff_base == 0.2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"qps": 0}, "qps"),
        ({"burst": 0}, "burst"),
        ({"max_streams": 1.5}, "max_streams"),
        ({"max_requests": True}, "max_requests"),
        ({"request_timeout": -1}, "request_timeout"),
        ({"inactivity_timeout": None}, "inactivity_timeout"),
        ({"retry": 3}, "retry"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(UsageError, match=f"Settings.{field}"):
        Settings(**changes)


def test_replace_checks_names_and_values() -> None:
    settings = Settings().replace(qps=None, request_timeout=None)

    assert settings.qps is None
    assert settings.request_timeout is None
    with pytest.raises(UsageError, match="no field bogus"):
        Settings().replace(bogus=1)
    with pytest.raises(UsageError, match="burst"):
        Settings().replace(burst=0)


async def test_the_client_gets_its_options() -> None:
    retry = RetryPolicy(attempts=None, window=90)
    settings = Settings(qps=5, burst=7, max_requests=3, max_streams=9, retry=retry)

    async with KubeClient(ClusterConfig("http://127.0.0.1:1"), **settings.client_options()) as kube:
        stats = kube.statistics()
        assert (stats.max_requests, stats.max_streams) == (3, 9)
        assert "qps=5/burst=7" in repr(kube)
