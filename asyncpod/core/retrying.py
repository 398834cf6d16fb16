"""The run's one retry loop: a create, a read or a delete, asked until it is answered.

Why a module of its own: the client (``kube/client.py``) retries each request within
its :class:`~asyncpod.RetryPolicy`, a few seconds. A run must ride out more than that:
an API server restarting for a minute must not lose a create (the pod may have been
made) or leak a pod (its delete must get through). So the runner asks again, for the
window its :class:`~asyncpod.RunOptions` give (``create_retry_window``,
``delete_retry_window``), with one loop for every request it makes; whether a failure
is worth another try is the pure :func:`asyncpod.core.policy.may_retry`.

What it deliberately does not do: decide what an answer means (a 409 or a 404 is the
caller's), or retry without a deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from asyncpod.core.policy import may_retry
from asyncpod.errors import AsyncpodError

__all__ = ["backoff", "until_answered"]

logger = logging.getLogger("asyncpod.runner")

T = TypeVar("T")


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive failures (0.5 s doubling to 5 s). Pure."""
    return float(min(0.25 * 2**failures, 5.0))


async def until_answered(
    call: Callable[[], Awaitable[T]],
    *,
    deadline: float,
    restarted: Callable[[], bool],
    what: str,
) -> T:
    """``await call()`` until it answers, retrying what :func:`may_retry` allows.

    ``deadline`` (``time.monotonic()``) ends the retries: the last error is raised.
    ``restarted()`` tells whether the API server was unreachable during the run (a
    401/403 may then be a restarted server's unsynced RBAC). ``what`` names the
    request in the log.
    """
    failures = 0
    while True:
        try:
            return await call()
        except AsyncpodError as error:
            past = time.monotonic() >= deadline
            if not may_retry(error, restarted=restarted(), past_deadline=past):
                raise
            failures += 1
            logger.info("%s: %s; retrying", what, error)
        await anyio.sleep(backoff(failures))
