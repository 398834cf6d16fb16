"""Which Airflow asyncpod.airflow runs on, and what differs between the supported ones.

The version matrix (noxfile.py) runs this module on Airflow 3.0.6, 3.1.8, 3.2.2 and 3.3.2,
and the ``airflow_2`` test beside Airflow 2.11. Each behaviour that differs below 3.3 has
a test for each side, skipped on the other: below 3.3 a DAG asking to start in the
triggerer is refused when parsed, and the triggerer never calls a trigger's ``on_kill``
(a cleared try's pod is deleted by the next try's sweep instead, asserted end to end in
tests/integration/airflow/test_airflow_e2e.py).
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from tests.unit.airflow.versions import AIRFLOW, before_3_3, from_3_3

airflow_3 = pytest.mark.skipif(AIRFLOW[0] != 3, reason=f"Airflow {AIRFLOW} is not 3.x")


def test_the_version_check_refuses_airflow_2_naming_the_supported_versions() -> None:
    from asyncpod.airflow import SUPPORTED_AIRFLOW, UnsupportedAirflowError, check_airflow_version

    with pytest.raises(UnsupportedAirflowError) as caught:
        check_airflow_version("2.11.0")
    assert isinstance(caught.value, ImportError)
    message = str(caught.value)
    assert "Airflow 2.11.0" in message
    assert SUPPORTED_AIRFLOW in message
    assert "3.0, 3.1, 3.2 and 3.3" in message
    with pytest.raises(UnsupportedAirflowError):
        check_airflow_version("4.0.0")
    for supported in ("3.0.6", "3.1.8", "3.2.2", "3.3.2", "3.3.3rc1", None):
        check_airflow_version(supported)


def test_the_extra_and_the_message_name_the_same_range() -> None:
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    from asyncpod.airflow import SUPPORTED_AIRFLOW

    (pinned,) = [
        Requirement(r)
        for r in requires("asyncpod") or []
        if r.startswith("apache-airflow") and "extra == 'airflow'" in r
    ]
    assert pinned.name == "apache-airflow"
    assert pinned.specifier == Requirement(SUPPORTED_AIRFLOW.split(" ")[0]).specifier


@pytest.mark.skipif(AIRFLOW[0] != 2, reason=f"Airflow {AIRFLOW} is not 2.x (nox -s airflow2)")
def test_importing_under_airflow_2_names_the_supported_versions() -> None:
    """In a fresh interpreter, as a DAG file would: the message, not Airflow's traceback."""
    code = "import asyncpod.airflow"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("asyncpod.airflow.UnsupportedAirflowError: asyncpod.airflow supports")
    assert "3.0, 3.1, 3.2 and 3.3" in last
    assert "Airflow 2.11" in last
    # Refused before anything of Airflow's was imported.
    probe = "import sys\ntry:\n import asyncpod.airflow\nexcept ImportError:\n print('airflow' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.strip() == "False", done.stderr


@airflow_3
@before_3_3
def test_before_3_3_a_dag_asking_to_start_in_the_triggerer_is_refused() -> None:
    from asyncpod.airflow import KubernetesPodOperator
    from asyncpod.airflow.operators import supports_start_from_trigger
    from asyncpod.errors import UsageError

    assert supports_start_from_trigger() is False
    with pytest.raises(UsageError, match=r"start_from_trigger=True needs Airflow 3\.3 or later"):
        KubernetesPodOperator(task_id="t", image="busybox", start_from_trigger=True)
    op = KubernetesPodOperator(task_id="t", image="busybox")
    assert op.start_from_trigger is False
    assert op.start_trigger_args is None


@airflow_3
@from_3_3
def test_from_3_3_a_dag_can_ask_to_start_in_the_triggerer() -> None:
    from asyncpod.airflow import KubernetesPodOperator
    from asyncpod.airflow.operators import supports_start_from_trigger

    assert supports_start_from_trigger() is True
    op = KubernetesPodOperator(task_id="t", image="busybox", start_from_trigger=True)
    assert op.start_from_trigger is True
    assert op.start_trigger_args is not None


def _triggerer_calls_on_kill() -> bool:
    from airflow.jobs import triggerer_job_runner

    return "trigger.on_kill()" in inspect.getsource(triggerer_job_runner)


@airflow_3
@before_3_3
def test_before_3_3_the_triggerer_never_calls_a_triggers_on_kill() -> None:
    """So a cleared or marked try's pod is left to the next try's sweep
    (``delete_earlier_tries``), or kept when no next try comes: the README's limits."""
    assert not _triggerer_calls_on_kill()


@airflow_3
@from_3_3
def test_from_3_3_the_triggerer_calls_on_kill_on_a_user_action() -> None:
    assert _triggerer_calls_on_kill()
