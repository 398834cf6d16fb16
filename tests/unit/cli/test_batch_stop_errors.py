"""What a batch's results loop raises reaches ``main()`` as itself, not in a group.

The loop runs inside an anyio task group (the deletions after each line), and anyio
wraps even its host's own exception in an ExceptionGroup: fail-fast and a full disk
once ended in that group's traceback (tests/cli/test_batch_stops.py runs both).
"""

from __future__ import annotations

import errno
from pathlib import Path

import anyio
import pytest

from asyncpod.cli.batch import _one_error_as_itself, _ResultsUnwritableError, _write_line
from asyncpod.cli.resultsfile import ResultsWriter
from asyncpod.results import Outcome, PodResult


class StopError(Exception):
    pass


async def loop_that_stops() -> None:
    """A loop like the batch's: its own error raised while a child task runs."""
    with _one_error_as_itself():
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.sleep, 0)
            raise StopError


async def test_the_loops_own_error_comes_out_as_itself() -> None:
    with pytest.raises(StopError):
        await loop_that_stops()


def test_an_error_outside_a_group_passes_unchanged() -> None:
    with pytest.raises(StopError), _one_error_as_itself():
        raise StopError


def test_a_line_that_cannot_be_written_says_which_file_and_what_now(tmp_path: Path) -> None:
    class FullDisk:
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            pass

    writer = ResultsWriter(tmp_path / "r.jsonl", run_id="r")
    writer._file = FullDisk()  # type: ignore[assignment]
    result = PodResult("ns", "p", "u", outcome=Outcome.SUCCEEDED, task_key="0")
    with pytest.raises(_ResultsUnwritableError) as raised:
        _write_line(writer, result, {})
    message = str(raised.value)
    assert message.startswith(f"cannot write the results file {writer.path}: No space left")
    assert "--resume" in message
