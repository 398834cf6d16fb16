"""The suite's order (tests/conftest.py): the real Airflow deployments first, so that
``.ci/run`` can start the version matrix beside the rest once they are over."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from tests.conftest import AIRFLOW_DEPLOYMENTS, airflow_first

TESTS = AIRFLOW_DEPLOYMENTS.parent.parent


@dataclass
class Item:
    path: Path
    nodeid: str


def items(*paths: str) -> list[pytest.Item]:
    return cast(list[pytest.Item], [Item(TESTS / path, f"tests/{path}::t") for path in paths])


def test_the_airflow_deployments_go_first_each_part_in_its_order() -> None:
    ordered, last = airflow_first(
        items(
            "cli/test_batch.py",
            "integration/airflow/test_airflow_e2e.py",
            "integration/core/test_runs.py",
            "integration/airflow/test_failover.py",
            "unit/airflow/test_operator.py",
        )
    )
    assert [item.nodeid for item in ordered] == [
        "tests/integration/airflow/test_airflow_e2e.py::t",
        "tests/integration/airflow/test_failover.py::t",
        "tests/cli/test_batch.py::t",
        "tests/integration/core/test_runs.py::t",
        "tests/unit/airflow/test_operator.py::t",
    ]
    assert last == "tests/integration/airflow/test_failover.py::t"


def test_a_selection_without_them_keeps_its_order_and_names_no_last() -> None:
    given = items("unit/test_spec.py", "cli/test_run.py")
    ordered, last = airflow_first(given)
    assert ordered == given
    assert last is None
