"""A batch's deletes after its lines: shielded from Ctrl-C, bounded behind a dead server,
and the pods they could not delete counted for the summary.

The server's failures are faked here (a delete that fails as an unreachable server's
would, after a while): a real dead server's timing cannot be set by a test.
"""

from __future__ import annotations

import logging
from typing import cast

import anyio
import anyio.lowlevel
import pytest

from asyncpod.cli.batch import _delete_recorded, _PodsLeft
from asyncpod.core.policy import RunOptions
from asyncpod.errors import ApiConnectionError, UnauthorizedError
from asyncpod.kube.pods import Pods


def as_pods(fake: object) -> Pods:
    """A fake with ``Pods.delete``'s signature, passed where a ``Pods`` goes."""
    return cast("Pods", fake)


class DeadServerPods:
    """``Pods.delete`` against a server that takes ``seconds`` to fail each time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    async def delete(self, namespace: str, name: str, **_: object) -> bool:
        self.calls += 1
        await anyio.sleep(self.seconds)
        raise ApiConnectionError(f"DELETE {namespace}/{name}: connection refused")


class LivePods:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str | None]] = []

    async def delete(
        self, namespace: str, name: str, *, uid: str | None = None, **_: object
    ) -> bool:
        await anyio.sleep(0.01)
        self.deleted.append((name, uid))
        return True


async def test_a_backlog_behind_a_dead_server_ends_with_one_window() -> None:
    pods = DeadServerPods(seconds=0.2)
    options = RunOptions(delete_retry_window=0.5)
    limiter = anyio.CapacityLimiter(2)
    left = _PodsLeft()
    async with anyio.create_task_group() as group:
        for i in range(40):
            group.start_soon(
                _delete_recorded, as_pods(pods), "ns", f"p{i}", f"u{i}", options, limiter, left
            )
    # 40 deletes, 2 at a time, 0.2 s a try: one window each would be 40 / 2 * 0.5 s.
    # Counted in tries, not seconds: the window lets each slot try a few times at
    # most, then every delete still queued gives up without asking.
    assert pods.calls <= 2 * 6
    assert left.count == 40  # every one, for the summary
    assert left.first == "ApiConnectionError"  # the full text is in the one warning


def test_pods_left_are_said_once_and_counted_with_how_to_delete_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    left = _PodsLeft()
    refused = UnauthorizedError("401 Unauthorized | DELETE ...", status=401, reason="Unauthorized")
    with caplog.at_level(logging.WARNING, logger="asyncpod.cli.batch"):
        for i in range(3):
            left.add("ns", f"p{i}", refused)
    assert [r.getMessage() for r in caplog.records] == [
        f"could not delete pod ns/p0: {refused} (any others are counted in the summary)"
    ]
    assert left.summary_line("jobs-1a2b") == (
        "3 pods not deleted (first: 401 Unauthorized); a --resume of this run deletes them, "
        "or kubectl delete pods -l asyncpod.dev/run-id=jobs-1a2b"
    )


async def test_pending_deletes_complete_despite_cancellation() -> None:
    pods = LivePods()
    options = RunOptions()
    limiter = anyio.CapacityLimiter(2)
    left = _PodsLeft()
    async with anyio.create_task_group() as group:
        for i in range(10):
            group.start_soon(
                _delete_recorded, as_pods(pods), "ns", f"p{i}", f"u{i}", options, limiter, left
            )
        await anyio.lowlevel.checkpoint()
        group.cancel_scope.cancel()  # a Ctrl-C right after the lines were written
    assert sorted(pods.deleted) == sorted((f"p{i}", f"u{i}") for i in range(10))
    assert left.count == 0
