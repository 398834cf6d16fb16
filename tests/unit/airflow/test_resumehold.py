"""The hold on an event that came soon after its task deferred (asyncpod/airflow/resumehold.py)."""

from __future__ import annotations

import time

import anyio
import pytest

from asyncpod.airflow.resumehold import RESUME_HOLD, configured_hold, resume_hold
from asyncpod.airflow.triggers import AsyncpodPodTrigger
from asyncpod.errors import ConfigError


@pytest.mark.parametrize(
    ("deferred_at", "now", "expected"),
    [
        (None, 1000.0, 0.0),  # not deferred by a worker (inline, started in the triggerer)
        (1000.0, 1000.0, RESUME_HOLD),  # fired at once: the whole hold
        (1000.0, 1003.0, RESUME_HOLD - 3),  # the rest of it
        (1000.0, 1000.0 + RESUME_HOLD, 0.0),  # held long enough already
        (1000.0, 5000.0, 0.0),  # a pod that ran for an hour, or a trigger rebuilt later
        (1000.0, 900.0, RESUME_HOLD),  # the worker's clock ahead: never more than the hold
    ],
)
def test_the_hold_is_the_rest_of_the_hold_since_the_deferral(
    deferred_at: float | None, now: float, expected: float
) -> None:
    assert resume_hold(deferred_at, now) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("setting", "seconds"),
    [(None, RESUME_HOLD), ("", RESUME_HOLD), (" 30 ", 30.0), ("2.5", 2.5), ("0", 0.0)],
)
def test_the_configured_hold_is_the_default_unless_set(setting: str | None, seconds: float) -> None:
    assert configured_hold(setting) == seconds


@pytest.mark.parametrize("setting", ["-1", "ten", "nan", "inf"])
def test_a_hold_that_is_no_duration_names_the_option(setting: str) -> None:
    with pytest.raises(ConfigError, match=r"\[asyncpod\] resume_hold must be .*" + setting):
        configured_hold(setting)


def test_a_hold_of_zero_holds_nothing() -> None:
    assert resume_hold(1000.0, 1000.0, hold=0.0) == 0.0


@pytest.mark.parametrize(
    ("setting", "expected"),
    [(None, RESUME_HOLD), ("25", 25.0), ("0", None), ("soon", RESUME_HOLD)],  # soon: logged
)
async def test_the_trigger_holds_for_the_configured_seconds(
    monkeypatch: pytest.MonkeyPatch, setting: str | None, expected: float | None
) -> None:
    """The trigger reads ``[asyncpod] resume_hold`` where it holds (the triggerer)."""
    if setting is not None:
        monkeypatch.setenv("AIRFLOW__ASYNCPOD__RESUME_HOLD", setting)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(anyio, "sleep", sleep)  # the module the trigger sleeps through
    deferred_at = time.time()
    trigger = AsyncpodPodTrigger(
        pod_name="p", pod_namespace="ns", pod_uid="u", deferred_at=deferred_at
    )
    await trigger._hold()
    if expected is None:
        assert slept == []
    else:
        (seconds,) = slept
        assert expected - 5 < seconds <= expected  # the rest of it, however slow this is
