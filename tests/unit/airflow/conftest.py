"""Fixtures of the Airflow unit tests: the kube tests' loopback API server and client.

The worker's create and the pod deletions need only a client, pointed at the same
stand-in API server the client's own tests use (``tests/unit/kube/conftest.py``).
"""

from __future__ import annotations

from tests.unit.kube.conftest import api, client

__all__ = ["api", "client"]
