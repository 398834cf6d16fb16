"""The trigger runner's GC policy (asyncpod/airflow/triggergc.py): where it freezes, and
how the setting reads. The freeze itself runs in fresh interpreters, never in this one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from asyncpod.airflow.triggergc import freeze_wanted, in_trigger_runner
from asyncpod.errors import ConfigError


@pytest.mark.parametrize(
    ("setting", "wanted"),
    [(None, True), ("", True), ("True", True), (" on ", True), ("1", True),
     ("False", False), ("off", False), ("0", False), ("no", False)],
)  # fmt: skip
def test_the_setting_is_on_unless_turned_off(setting: str | None, wanted: bool) -> None:
    assert freeze_wanted(setting) is wanted


def test_a_setting_that_is_no_boolean_names_the_option() -> None:
    with pytest.raises(ConfigError, match=r"\[asyncpod\] triggerer_gc_freeze .* 'sometimes'"):
        freeze_wanted("sometimes")


class _Decoder:
    pass


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        ({}, False),  # no Airflow at all
        ({"airflow.jobs.triggerer_job_runner": SimpleNamespace(TriggerCommsDecoder=_Decoder)},
         False),  # the triggerer imported (a test, a CLI), but no runner's comms
        ({"airflow.jobs.triggerer_job_runner": SimpleNamespace(TriggerCommsDecoder=_Decoder),
          "airflow.sdk.execution_time.task_runner": SimpleNamespace(SUPERVISOR_COMMS=None)},
         False),
        ({"airflow.jobs.triggerer_job_runner": SimpleNamespace(TriggerCommsDecoder=_Decoder),
          "airflow.sdk.execution_time.task_runner": SimpleNamespace(SUPERVISOR_COMMS=object())},
         False),  # a task's worker: another supervisor's comms
        ({"airflow.jobs.triggerer_job_runner": SimpleNamespace(TriggerCommsDecoder=_Decoder),
          "airflow.sdk.execution_time.task_runner": SimpleNamespace(SUPERVISOR_COMMS=_Decoder())},
         True),
    ],
)  # fmt: skip
def test_only_the_trigger_runner_s_comms_mark_the_trigger_runner(
    modules: dict[str, object], expected: bool
) -> None:
    assert in_trigger_runner(modules) is expected


def test_this_process_is_no_trigger_runner() -> None:
    assert not in_trigger_runner(sys.modules)


_AS_THE_TRIGGER_RUNNER = textwrap.dedent(
    """
    import gc, sys
    from airflow.jobs.triggerer_job_runner import TriggerCommsDecoder
    from airflow.sdk.execution_time import task_runner
    from asyncpod.airflow.triggergc import freeze_in_trigger_runner

    before = freeze_in_trigger_runner()  # not yet the runner: nothing
    task_runner.SUPERVISOR_COMMS = object.__new__(TriggerCommsDecoder)
    first = freeze_in_trigger_runner()
    frozen = gc.get_freeze_count()
    again = freeze_in_trigger_runner()
    print("counts:", before, first, frozen, again, gc.get_freeze_count())
    """
)


def _as_the_trigger_runner(**environment: str) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-c", _AS_THE_TRIGGER_RUNNER],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    counts = [line for line in done.stdout.splitlines() if line.startswith("counts:")]
    assert counts, done.stdout
    return [int(word) for word in counts[-1].split()[1:]]


def test_the_trigger_runner_freezes_once() -> None:
    before, first, frozen, again, after = _as_the_trigger_runner()
    assert before == 0
    assert first > 10_000  # Airflow's imports: tens of thousands of objects
    assert again == 0
    # Still frozen after (a frozen object that its last reference leaves is freed all
    # the same, so the count may drop by a few).
    assert min(frozen, after) > first - 1_000


def test_the_setting_turns_the_freeze_off() -> None:
    before, first, frozen, again, after = _as_the_trigger_runner(
        AIRFLOW__ASYNCPOD__TRIGGERER_GC_FREEZE="false"
    )
    assert (before, first, again) == (0, 0, 0)
    assert max(frozen, after) < 10_000  # only the interpreter's own (3.12+), if any


def test_a_setting_that_is_no_boolean_is_logged_and_freezes_nothing() -> None:
    """The worker refuses it before a pod exists (triggersettings.py); the triggerer,
    whose pods exist already, sets it aside rather than fail their triggers."""
    before, first, frozen, again, after = _as_the_trigger_runner(
        AIRFLOW__ASYNCPOD__TRIGGERER_GC_FREEZE="sometimes"
    )
    assert (before, first, again) == (0, 0, 0)
    assert max(frozen, after) < 10_000
