"""A small event flag for objects that exist by the thousand (runs, subscriptions).

Why: ``asyncio.Event`` allocates a deque of waiters when it is made, about 850 bytes
measured here (Python 3.11), and a run used six of them: at 10,000 runs in flight that
is 50 MB of flags that mostly nobody waits on. :class:`Flag` has the same ``set`` /
``clear`` / ``is_set`` / ``wait`` semantics and allocates nothing until a task waits.
:meth:`Flag.wait_for` waits at most a while with a timer on the loop, not a cancel
scope: a run's follower waits with a deadline on every watch event, and an anyio
scope per wait (enter, exit, its deadline bookkeeping) was the run's most frequent one.

What it deliberately does not do: work across event loops or threads (one loop, as
everything in a cluster session).
"""

from __future__ import annotations

import asyncio
import contextvars

__all__ = ["Flag"]


class Flag:
    """``asyncio.Event`` semantics; waiters are allocated only when somebody waits."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[bool]] | None = None

    def __repr__(self) -> str:
        waiting = len(self._waiters) if self._waiters else 0
        return f"<Flag {'set' if self._set else 'unset'} waiters={waiting}>"

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(True)  # woken by set(): off the list already

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        waiter = self._enlist()
        try:
            await waiter
        finally:
            self._forget(waiter)

    async def wait_for(self, seconds: float) -> bool:
        """:meth:`wait`, for at most ``seconds``; whether the flag is set."""
        if self._set:
            return True
        waiter = self._enlist()
        timer = waiter.get_loop().call_later(
            max(seconds, 0.0), _wake, waiter, context=_TIMER_CONTEXT
        )
        try:
            await waiter
        finally:
            timer.cancel()
            self._forget(waiter)
        return self._set

    def _enlist(self) -> asyncio.Future[bool]:
        """A new waiter, woken by :meth:`set` (made only when somebody waits)."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        return waiter

    def _forget(self, waiter: asyncio.Future[bool]) -> None:
        """Take a waiter that is done waiting off the list, unless :meth:`set` did.

        Without that check, a flag many tasks wait on, set and waited on again, cost
        each woken waiter a search of the list the others had already rejoined:
        quadratic in the waiters.
        """
        if waiter.done() and not waiter.cancelled() and waiter.result():
            return
        if self._waiters is not None and waiter in self._waiters:
            self._waiters.remove(waiter)


# The timers' context: by default each timer copies the caller's (a GC-tracked object
# per waiting run with a deadline), and ``_wake`` reads no context variable.
_TIMER_CONTEXT = contextvars.Context()


def _wake(waiter: asyncio.Future[bool]) -> None:
    """The timer of :meth:`Flag.wait_for`: the wait is over, set or not."""
    if not waiter.done():
        waiter.set_result(False)  # still on the list: _forget takes it off
