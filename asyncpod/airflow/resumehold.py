"""How long a trigger holds an event that came soon after its task deferred (pure).

Why: Airflow fails a deferred task whose trigger fires too soon. The worker that
deferred exits, and its executor reports that exit as a success; if the trigger's event
has already resumed the task instance (scheduled, queued, or running again on a worker)
when the scheduler reads that stale report, the scheduler sees a state mismatch and
marks the task FAILED ("Executor ... reported that the task instance ... finished with
state success, but the task instance's state attribute is running"). Airflow 3.2 guards
the scheduled and queued states, no release guards running (apache/airflow#66374,
#71580, #72716, all seen here: Airflow 3.0.6's e2e test of a cleared task whose next try's
pod ran 1 s failed that way in 2 of 4 runs on a loaded machine, its worker's exit reported
6 s after it deferred). A pod that ends within seconds of the deferral is exactly that
case, whoever's trigger follows it.

So the trigger fires no earlier than :data:`RESUME_HOLD` seconds after the deferral (the
operator stamps the trigger with the worker's clock when it defers), which gives the
scheduler time to read the deferring worker's exit first. A trigger that fires later
(nearly every pod) waits for nothing; one rebuilt after a triggerer restart neither.

``[asyncpod] resume_hold`` in Airflow's configuration (``AIRFLOW__ASYNCPOD__RESUME_HOLD``)
sets another number of seconds (:func:`configured_hold`): longer for a scheduler that
reads its executor's events late, 0 for none.

What it deliberately does not do: read Airflow's state (nothing there tells that the
scheduler has read the exit), or hold more than :data:`RESUME_HOLD` whatever the clocks
of the worker and the triggerer say.
"""

from __future__ import annotations

import math

from asyncpod.errors import ConfigError

__all__ = ["RESUME_HOLD", "configured_hold", "resume_hold"]

#: Seconds from the deferral before an event may resume the task. Longer than the
#: longest defer-to-exit-report seen here under load (6 s), short beside a pod's life.
RESUME_HOLD = 10.0


def resume_hold(deferred_at: float | None, now: float, *, hold: float = RESUME_HOLD) -> float:
    """Seconds to wait before firing, at wall time ``now``, for a task deferred at
    ``deferred_at`` (wall time; None: not deferred by a worker, or unknown)."""
    if deferred_at is None:
        return 0.0
    return min(hold, max(0.0, deferred_at + hold - now))


def configured_hold(setting: str | None) -> float:
    """``[asyncpod] resume_hold`` in seconds: :data:`RESUME_HOLD` when unset, 0 for none;
    anything but a finite number >= 0 is a :class:`ConfigError` naming the option."""
    text = (setting or "").strip()
    if not text:
        return RESUME_HOLD
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ConfigError(
            f"[asyncpod] resume_hold must be a number of seconds >= 0 (0: no hold); got {setting!r}"
        )
    return seconds
