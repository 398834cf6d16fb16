"""The triggerer session's client-side rate limit, from Airflow's configuration."""

from __future__ import annotations

import pytest

from asyncpod.airflow.sessions import _configured_limits, client_limits
from asyncpod.errors import ConfigError


@pytest.mark.parametrize("qps", [None, "", "none", "OFF", " 0 "])
def test_no_client_side_limit_unless_one_is_configured(qps: str | None) -> None:
    assert client_limits(qps, None) == {"qps": None}
    assert client_limits(qps, "7") == {"qps": None}  # a burst alone sets nothing


def test_a_rate_with_its_burst_or_twice_the_rate() -> None:
    assert client_limits("50", None) == {"qps": 50.0, "burst": 100}
    assert client_limits("0.5", "") == {"qps": 0.5, "burst": 1}
    assert client_limits("20", "5") == {"qps": 20.0, "burst": 5}


@pytest.mark.parametrize(
    ("qps", "burst", "option"),
    [("fast", None, "client_qps"), ("-3", None, "client_qps"), ("10", "1.5", "client_burst"),
     ("10", "0", "client_burst")],
)  # fmt: skip
def test_a_value_that_is_no_limit_names_the_option(
    qps: str, burst: str | None, option: str
) -> None:
    with pytest.raises(ConfigError, match=rf"\[asyncpod\] {option}"):
        client_limits(qps, burst)


def test_read_from_airflows_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__ASYNCPOD__CLIENT_QPS", raising=False)
    monkeypatch.delenv("AIRFLOW__ASYNCPOD__CLIENT_BURST", raising=False)
    assert _configured_limits() == {"qps": None}
    monkeypatch.setenv("AIRFLOW__ASYNCPOD__CLIENT_QPS", "25")
    monkeypatch.setenv("AIRFLOW__ASYNCPOD__CLIENT_BURST", "40")
    assert _configured_limits() == {"qps": 25.0, "burst": 40}
