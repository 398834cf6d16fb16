"""The installed Airflow's version, and marks for tests of what differs below 3.3.

Airflow 3.3 starts deferrable tasks in the triggerer (``start_from_trigger``) and calls
a trigger's ``on_kill`` on a user's clear or mark; 3.0-3.2 do neither. A test of either
side carries the mark of its side, so the version matrix (noxfile.py) runs each where it
holds and says why it skipped elsewhere.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

import pytest


def installed_airflow() -> tuple[int, int]:
    """(major, minor) of the installed Airflow; (0, 0) when there is none."""
    for distribution in ("apache-airflow-core", "apache-airflow"):  # 3.x has both, 2.x one
        try:
            text = version(distribution)
        except PackageNotFoundError:
            continue
        major, minor = (int(part) for part in re.findall(r"\d+", text)[:2])
        return major, minor
    return 0, 0


AIRFLOW = installed_airflow()

#: Airflow 3.3 and later: starts in the triggerer, on_kill in the triggerer.
from_3_3 = pytest.mark.skipif(
    AIRFLOW < (3, 3), reason=f"Airflow {AIRFLOW}: needs 3.3 (start_from_trigger, on_kill)"
)
#: Airflow 3.0 to 3.2: neither (3.3's side is tested by the tests marked from_3_3).
before_3_3 = pytest.mark.skipif(
    not (3, 0) <= AIRFLOW < (3, 3), reason=f"Airflow {AIRFLOW}: tests 3.0-3.2's behaviour"
)
