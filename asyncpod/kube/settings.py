"""How patient and how busy a session is: one frozen value for every client-side knob.

Why it exists: the knobs of a session (rate limit, connection budgets, request
timeouts, retries, the watch's inactivity timeout and reconnect backoff) were keyword
arguments spread over ``connect()``, :class:`~asyncpod.kube.client.KubeClient` and the
informer. A :class:`Settings` value names them all in one place, can be built once
(from a config file, per environment) and passed to ``asyncpod.connect(settings=...)``,
and each part reads its own fields from it.

:class:`RetryPolicy` lives here too: it is the value the client's retries, the
informer's reconnects and the log follower's reopen pauses are made of.

What it deliberately does not do: per-run policy (timeouts of a run, cleanup: that is
``RunOptions``), or where the cluster is (that is :mod:`asyncpod.kube.config`).
Values are checked when built; a bad one is a :class:`~asyncpod.errors.UsageError`
naming the field.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any

from asyncpod.errors import UsageError

__all__ = ["RetryPolicy", "Settings"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, how patiently and for how long to retry.

    ``attempts`` counts the first try (None: no limit by count, ``window`` decides).
    The n-th retry waits a random time in ``[d/2, d]`` with
    ``d = min(backoff_cap, backoff_base * 2**n)`` ("equal jitter": spread out, but
    never a zero wait), and at least the server's ``Retry-After`` (capped by
    ``max_retry_after``). ``window`` (None: no limit by time) is how long after the
    first try a retry may still start: ``RetryPolicy(attempts=None, window=60)`` rides
    through a minute-long outage of the API server.
    """

    attempts: int | None = 5
    backoff_base: float = 0.25
    backoff_cap: float = 10.0
    max_retry_after: float = 60.0
    window: float | None = None

    def __post_init__(self) -> None:
        if self.attempts is not None and self.attempts < 1:
            raise UsageError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")
        if self.attempts is None and self.window is None:
            raise UsageError("RetryPolicy needs attempts or window (or both): it would never stop")
        if min(self.backoff_base, self.backoff_cap, self.max_retry_after) < 0:
            raise UsageError("RetryPolicy backoff values must not be negative")
        if self.window is not None and self.window < 0:
            raise UsageError(f"RetryPolicy.window must not be negative, got {self.window}")

    def delay(self, retry: int, *, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based). Pure but for jitter."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2.0 ** min(retry, 30)))
        wait = ceiling * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto
        if retry_after is not None:
            floor = min(max(retry_after, 0.0), self.max_retry_after)
            # A little jitter on top, so everyone told "1 s" does not return at once.
            wait = max(wait, floor + random.random() * self.backoff_base)  # noqa: S311
        return wait

    def next_delay(
        self, retries: int, *, elapsed: float, retry_after: float | None = None
    ) -> float | None:
        """After a failed try: seconds to wait before the next, or None to give up.

        ``retries`` is how many retries were already made, ``elapsed`` the seconds
        since the first try. Gives up when ``attempts`` tries were made, or when the
        next one would start after ``window``. Pure but for jitter.
        """
        if self.attempts is not None and retries + 1 >= self.attempts:
            return None
        wait = self.delay(retries, retry_after=retry_after)
        if self.window is not None and elapsed + wait > self.window:
            return None
        return wait


_DEFAULT_RECONNECT = RetryPolicy(backoff_base=0.2, backoff_cap=10.0)
# A server never reached is a configuration problem until proven otherwise: a couple
# of quick tries (a DNS or connection blip), then say so (ServerUnreachableError).
_DEFAULT_FIRST_CONTACT = RetryPolicy(attempts=3, backoff_base=0.2, backoff_cap=1.0, window=5.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every client-side knob of a cluster session; ``asyncpod.connect(settings=...)``.

    Rate and budgets: ``qps``/``burst`` configure the client's token bucket (``qps=None``
    turns it off; the server's 429s are honoured either way); ``max_requests`` bounds
    concurrent ordinary requests and ``max_streams`` open watches and followed logs
    (the connection pool holds both, so a stream never silently queues).

    Patience: ``request_timeout`` limits each attempt of an ordinary request (None: no
    limit), ``connect_timeout`` each connection attempt; ``retry`` is the policy of every
    request and stream open (429, 5xx and connection failures; see
    :mod:`asyncpod.kube.client` for which are safe to retry).

    First contact: until the server has answered once, a refused connection, an unknown
    host or a failed TLS handshake is retried by ``first_contact`` only (a couple of
    quick tries), then raised as :class:`~asyncpod.errors.ServerUnreachableError`
    naming the server and the kubeconfig; after the first answer the same failures are
    outages, retried by ``retry`` (and the runs' own windows). A service that starts
    before its cluster can widen it: ``first_contact=RetryPolicy(attempts=None, window=300)``.

    Watches: a watch that sends nothing, not even a bookmark, for ``inactivity_timeout``
    seconds is presumed dead and reopened; ``reconnect_backoff`` paces the reopening.
    """

    qps: float | None = 50.0
    burst: int = 100
    max_requests: int = 64
    max_streams: int = 400
    request_timeout: float | None = 60.0
    connect_timeout: float = 10.0
    retry: RetryPolicy = RetryPolicy()
    first_contact: RetryPolicy = _DEFAULT_FIRST_CONTACT
    inactivity_timeout: float = 70.0
    reconnect_backoff: RetryPolicy = _DEFAULT_RECONNECT

    def __post_init__(self) -> None:
        if self.qps is not None and not self.qps > 0:
            raise UsageError(f"Settings.qps must be positive or None, got {self.qps}")
        for name in ("burst", "max_requests", "max_streams"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"Settings.{name} must be a whole number >= 1, got {value!r}")
        for name in ("request_timeout", "connect_timeout", "inactivity_timeout"):
            value = getattr(self, name)
            if value is None and name == "request_timeout":
                continue
            if not isinstance(value, (int, float)) or not value > 0:
                raise UsageError(f"Settings.{name} must be positive seconds, got {value!r}")
        for name in ("retry", "first_contact", "reconnect_backoff"):
            if not isinstance(getattr(self, name), RetryPolicy):
                raise UsageError(f"Settings.{name} must be a RetryPolicy")

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (checked like a new value)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise UsageError(f"Settings has no field {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def client_options(self) -> dict[str, Any]:
        """The :class:`~asyncpod.kube.client.KubeClient` keywords these settings give."""
        return {
            "qps": self.qps,
            "burst": self.burst,
            "max_requests": self.max_requests,
            "max_streams": self.max_streams,
            "timeout": self.request_timeout,
            "connect_timeout": self.connect_timeout,
            "retry": self.retry,
            "first_contact": self.first_contact,
        }
