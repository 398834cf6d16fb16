"""A run keeps its error without the reference cycle a traceback would close.

Pure: no cluster. The run's task catches the error in a frame that holds the run, so
the error's traceback (and its cause's) would hold the run that holds the error; only
a full GC pass frees that, and ``asyncpod batch`` runs without those.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator

import pytest

from asyncpod.core.kepterrors import without_tracebacks


class _Run:
    def __init__(self, keep: Callable[[BaseException], BaseException]) -> None:
        self.keep = keep
        self.error: BaseException | None = None

    def drive(self) -> None:
        try:
            self._create()
        except ValueError as error:
            self.error = self.keep(error)

    def _create(self) -> None:
        try:
            self._send()
        except KeyError as cause:
            raise ValueError("create failed") from cause

    def _send(self) -> None:
        raise KeyError("the answer was lost")


@pytest.fixture
def no_collector() -> Iterator[None]:
    """Only reference counting frees anything: what a cycle would keep, stays."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def _freed_without_a_collection(keep: Callable[[BaseException], BaseException]) -> bool:
    run = _Run(keep)
    run.drive()
    assert run.error is not None
    alive = weakref.ref(run)
    del run
    return alive() is None


@pytest.mark.usefixtures("no_collector")
def test_a_run_that_keeps_its_error_is_freed_by_reference_counting() -> None:
    assert _freed_without_a_collection(without_tracebacks)


@pytest.mark.usefixtures("no_collector")
def test_kept_as_caught_the_error_would_hold_the_run() -> None:
    """The control: the test above can fail."""
    assert not _freed_without_a_collection(lambda error: error)


def test_the_kept_error_still_says_what_failed_and_why() -> None:
    run = _Run(without_tracebacks)
    run.drive()
    error = run.error
    assert isinstance(error, ValueError)
    assert str(error) == "create failed"
    assert isinstance(error.__cause__, KeyError)
    assert error.__traceback__ is None
    assert error.__cause__.__traceback__ is None
