"""Warnings this suite turns into errors (``filterwarnings = error``) except where the
interpreter or a supported dependency, not asyncpod, raises them."""

from __future__ import annotations

import sys

import pytest


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
