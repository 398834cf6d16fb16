"""The triggerer's settings, checked on the worker (asyncpod/airflow/triggersettings.py)."""

from __future__ import annotations

import pytest

from asyncpod.airflow.triggersettings import check_triggerer_settings
from asyncpod.errors import ConfigError


def test_unset_settings_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RESUME_HOLD", "TRIGGERER_GC_FREEZE", "CLIENT_QPS", "CLIENT_BURST"):
        monkeypatch.delenv(f"AIRFLOW__ASYNCPOD__{name}", raising=False)
    check_triggerer_settings()


def test_sensible_settings_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__ASYNCPOD__RESUME_HOLD", "30")
    monkeypatch.setenv("AIRFLOW__ASYNCPOD__TRIGGERER_GC_FREEZE", "false")
    monkeypatch.setenv("AIRFLOW__ASYNCPOD__CLIENT_QPS", "50")
    check_triggerer_settings()


@pytest.mark.parametrize(
    ("name", "value", "option"),
    [
        ("RESUME_HOLD", "-3", "resume_hold"),
        ("TRIGGERER_GC_FREEZE", "maybe", "triggerer_gc_freeze"),
        ("CLIENT_QPS", "fast", "client_qps"),
        ("CLIENT_BURST", "lots", "client_burst"),
    ],
)
def test_each_bad_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, option: str
) -> None:
    if name == "CLIENT_BURST":
        monkeypatch.setenv("AIRFLOW__ASYNCPOD__CLIENT_QPS", "50")  # a burst needs a rate
    monkeypatch.setenv(f"AIRFLOW__ASYNCPOD__{name}", value)
    with pytest.raises(ConfigError, match=rf"\[asyncpod\] {option} .*{value}"):
        check_triggerer_settings()
