"""Warnings this suite turns into errors (``filterwarnings = error``) except where the
interpreter or a supported dependency, not asyncpod, raises them; and the suite's order:
the real Airflow deployments first, and a mark when they are done.

Why the order: ``.ci/run`` starts the version matrix beside the rest of ``make test``
once the Airflow deployments (``tests/integration/airflow``) are over, so that those
run with the machine to themselves (a triggerer fail-over hung once with the matrix
beside it: docs/airflow.md, "A triggerer that hangs on a take-over"). The mark is a file
written where ``ASYNCPOD_CI_AIRFLOW_DONE`` says, after the last of them (its module's
deployment stopped); without the variable nothing is written.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

AIRFLOW_DEPLOYMENTS = Path(__file__).parent / "integration" / "airflow"
AIRFLOW_DONE_ENV = "ASYNCPOD_CI_AIRFLOW_DONE"
_LAST_AIRFLOW_TEST = pytest.StashKey[str]()


def airflow_first(items: list[pytest.Item]) -> tuple[list[pytest.Item], str | None]:
    """``items`` with those under :data:`AIRFLOW_DEPLOYMENTS` first, each part in its
    own order; and the node id of the last of those, None when there is none (pure)."""
    airflow = [item for item in items if AIRFLOW_DEPLOYMENTS in item.path.parents]
    rest = [item for item in items if AIRFLOW_DEPLOYMENTS not in item.path.parents]
    return airflow + rest, airflow[-1].nodeid if airflow else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items[:], last = airflow_first(items)
    if last is not None:
        config.stash[_LAST_AIRFLOW_TEST] = last


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    try:
        return (yield)
    finally:  # the item's teardown is over, its module's fixtures (the deployment) too
        marker = os.environ.get(AIRFLOW_DONE_ENV)
        if marker and item.config.stash.get(_LAST_AIRFLOW_TEST, None) == item.nodeid:
            Path(marker).write_text(item.nodeid + "\n")


def pytest_configure(config: pytest.Config) -> None:
    # Airflow 3.0's own use of anyio's old alias (its BlockingPortal import).
    config.addinivalue_line(
        "filterwarnings",
        "ignore:The anyio.abc.BlockingPortal alias is deprecated:DeprecationWarning",
    )
    if sys.version_info < (3, 11):
        # Python 3.10's SSL transport (the old asyncio sslproto, replaced in 3.11) warns
        # "unclosed transport" when a TLS connection the server cut is collected, though
        # aiohttp closed it; 3.11+ do not, and the suite checks no transport leaks there
        # (make test's run, on 3.11, keeps unraisable exceptions errors).
        config.addinivalue_line(
            "filterwarnings",
            "ignore:unclosed transport <asyncio.sslproto._SSLProtocolTransport:ResourceWarning",
        )
        config.addinivalue_line("filterwarnings", "ignore::pytest.PytestUnraisableExceptionWarning")
