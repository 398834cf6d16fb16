"""One HTTP session per API server: budgets, rate limit, retries, error mapping.

Why it exists: every request asyncpod makes goes through :class:`KubeClient`, so the
things that bite at scale are decided in one place:

* **Connection budget.** On HTTP/1.1 each watch and followed log holds a connection for
  minutes. aiohttp's pool (100 by default) would silently queue the 101st stream behind
  them and stall ordinary requests too. The pool is sized for ``max_requests +
  max_streams``, and each kind takes a slot from its own semaphore first, so the pool
  itself never queues; waiting happens on our semaphores, where ``statistics()`` shows it.
* **Client-side rate limit** (token bucket) on requests and stream opens, so a batch of
  ten thousand creates does not arrive as one burst.
* **Retries** with jittered exponential backoff that honours ``Retry-After``: 429 always
  (priority-and-fairness rejected it before doing anything); 5xx and connection errors
  for idempotent verbs only; POST/PATCH only when the server provably did nothing (429, a
  503 that carries ``Retry-After`` or APF headers, or a connection that never opened).
  A POST create that was processed but whose answer was lost is *not* retried; if you
  retry one yourself, a 409 AlreadyExists means the first attempt worked: reattach to
  the existing object (asyncpod names pods deterministically for exactly this).
  (aiohttp itself also resends an idempotent request once when a kept-alive connection
  turns out to be closed, per RFC 9112; it never does so for POST or PATCH.)
  Which failure is retried, and with which error, is decided once for requests and
  stream opens alike by the pure :func:`judge_answer` and :func:`judge_transport_error`;
  when to stop by :meth:`RetryPolicy.next_delay` (a count of attempts, a time window,
  or both).
* **First contact fails fast.** Until this client has once opened a connection to its
  server (TCP and TLS), a refused connection, an unknown host or a TLS failure is judged by
  :func:`judge_first_contact`: a couple of quick tries (``Settings.first_contact``),
  then :class:`~asyncpod.errors.ServerUnreachableError` naming the server and the
  kubeconfig it came from. A server we never reached is a typo, a stopped cluster or a
  VPN that is off, not an outage to wait out; after the first answer it is.
* **Error mapping** to :mod:`asyncpod.errors`: non-2xx → :func:`api_error_from_status`
  with method, path and pod; transport failures → :class:`ApiConnectionError`;
  timeouts → :class:`ApiTimeoutError`. Request headers are never kept, so credentials
  cannot leak into errors or logs.

What it deliberately does not do: no typed Kubernetes models (responses stay orjson
dicts, see docs/architecture.md, "Facts"), no watch or log parsing (``watch.py``,
``logs.py`` read the raw response from :meth:`KubeClient.stream`), no caching.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import functools
import logging
import os
import ssl
import time
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import aiohttp
import orjson
from yarl import URL

from asyncpod.errors import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    AsyncpodError,
    ClosedError,
    ConfigError,
    ServerUnreachableError,
    TransientError,
    UsageError,
    api_error_from_status,
)
from asyncpod.kube._managedfields import loads_without_managed_fields
from asyncpod.kube.config import ClusterConfig, build_ssl_context, load_incluster, load_kubeconfig
from asyncpod.kube.settings import RetryPolicy, Settings
from asyncpod.metrics import OFF, MetricsOff
from asyncpod.traces import OFF as NO_TRACES
from asyncpod.traces import TracesOff

__all__ = [
    "DEFAULT",
    "IDEMPOTENT_METHODS",
    "ClientStatistics",
    "KubeClient",
    "RetryPolicy",
    "TokenBucket",
    "Verdict",
    "judge_answer",
    "judge_first_contact",
    "judge_transport_error",
    "parse_retry_after",
    "should_retry_exception",
    "should_retry_status",
    "translate_transport_error",
]

logger = logging.getLogger("asyncpod.kube")

_DEFAULTS: Final = Settings()  # the one place the defaults live; the keywords mirror it

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_RETRYABLE_5XX: Final = frozenset({500, 502, 503, 504})
# Headers the API server's priority-and-fairness filter sets on requests it handled
# itself; a 503 carrying them was rejected before reaching storage.
_APF_HEADERS: Final = ("X-Kubernetes-PF-FlowSchema-UID", "X-Kubernetes-PF-PriorityLevel-UID")
_MAX_ERROR_BODY: Final = 64 * 1024


class _Default:
    """Sentinel type: "use the client's default" (None already means "no timeout")."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = _Default()


def should_retry_status(method: str, status: int, headers: Mapping[str, str]) -> bool:
    """Whether a response with ``status`` may be retried for ``method``. Pure."""
    if status == 429:
        return True
    if status not in _RETRYABLE_5XX:
        return False
    if method in IDEMPOTENT_METHODS:
        return True
    # Non-idempotent: only when the server says it did not process the request.
    return status == 503 and ("Retry-After" in headers or any(h in headers for h in _APF_HEADERS))


def should_retry_exception(method: str, exc: BaseException) -> bool:
    """Whether a transport failure may be retried for ``method``. Pure."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return False  # a wrong CA does not fix itself
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        return True  # the connection never opened: nothing was sent
    if method in IDEMPOTENT_METHODS:
        return isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError))
    return False


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), None if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - time.time(), 0.0)


def swallowed_interrupt(exc: BaseException) -> BaseException | None:
    """A ``SystemExit``/``KeyboardInterrupt`` that a library wrapped into another error.

    aiohttp's body parser catches ``BaseException`` while it feeds a response's payload
    and sets a ``ClientPayloadError`` caused by it (``_http_parser.pyx``, ``cb_on_body``);
    anyio's task group raises an exception group holding it. A SIGTERM handler's
    ``sys.exit()`` that lands there would otherwise be retried as a cut watch, or end a
    task nobody awaits, and the program would never exit (found by
    tests/integration/core/test_cancellation.py under load). Pure: walks the cause and
    context chain and the members of exception groups.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (SystemExit, KeyboardInterrupt)):
            return current
        members = getattr(current, "exceptions", None)  # a (Base)ExceptionGroup
        if isinstance(members, tuple):
            pending.extend(m for m in members if isinstance(m, BaseException))
        pending.extend(e for e in (current.__context__, current.__cause__) if e is not None)
    return None


def translate_transport_error(
    exc: BaseException, *, method: str, path: str, pod: str | None = None
) -> AsyncpodError:
    """The asyncpod error for an aiohttp/asyncio failure during a request or stream.

    Never chains exceptions that carry ``request_info`` (it holds the request headers,
    i.e. the token): callers raise the result ``from None`` for those, see
    :func:`_cause_is_safe`. An interrupt (``SystemExit``, ``KeyboardInterrupt``) that
    aiohttp wrapped is raised again instead: it is the program's, not the network's
    (:func:`swallowed_interrupt`).
    """
    interrupt = swallowed_interrupt(exc)
    if interrupt is not None:
        raise interrupt
    where = f"{method} {path}" + (f" (pod {pod})" if pod else "")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return ConfigError(
            f"{where}: TLS verification of the API server failed ({exc.certificate_error}); "
            "check certificate-authority and tls-server-name in the kubeconfig"
        )
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ApiTimeoutError(f"{where}: timed out connecting to the API server")
    if isinstance(exc, asyncio.TimeoutError):
        return ApiTimeoutError(f"{where}: timed out waiting for the API server")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ApiConnectionError(f"{where}: response cut off mid-body ({exc})")
    if isinstance(exc, aiohttp.ClientResponseError):
        return ApiConnectionError(f"{where}: {type(exc).__name__} (status {exc.status})")
    detail = str(exc) or type(exc).__name__
    return ApiConnectionError(f"{where}: {type(exc).__name__}: {detail}")


def _cause_is_safe(exc: BaseException) -> bool:
    # ClientResponseError and its kin keep request_info, which includes our headers.
    return not isinstance(exc, aiohttp.ClientResponseError)


def _with_cause(error: AsyncpodError, exc: BaseException) -> AsyncpodError:
    if _cause_is_safe(exc):
        error.__cause__ = exc
    error.__suppress_context__ = True
    return error


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one failed attempt means: the error it raises, and whether to try again."""

    error: AsyncpodError
    retryable: bool
    retry_after: float | None = None
    """The server's ``Retry-After`` in seconds: the least wait before a retry."""


def judge_answer(
    method: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    path: str,
    pod: str | None = None,
) -> Verdict:
    """The verdict on a non-2xx answer: its typed error (from the Status body) and
    whether ``method`` may be retried after it. Pure; the one status → error → retry
    rule of both :meth:`KubeClient.request` and :meth:`KubeClient.stream`.
    """
    retry_after = parse_retry_after(headers.get("Retry-After"))
    error = api_error_from_status(
        status, _decode_error_body(body), method=method, path=path, pod=pod, retry_after=retry_after
    )
    return Verdict(error, should_retry_status(method, status, headers), retry_after)


def judge_transport_error(
    method: str, exc: BaseException, *, path: str, pod: str | None = None
) -> Verdict:
    """The verdict on a transport failure (refused, cut, timed out). Pure.

    The error's cause is the aiohttp exception unless that carries the request's
    headers (see :func:`translate_transport_error`).
    """
    error = _with_cause(translate_transport_error(exc, method=method, path=path, pod=pod), exc)
    return Verdict(error, should_retry_exception(method, exc))


def judge_first_contact(exc: BaseException, *, server: str, source: str) -> Verdict | None:
    """The verdict on a transport failure before the server ever answered; None when
    ``exc`` is not a failure to reach it (a cut mid-request is judged as usual). Pure.

    A refused connection, an unknown host and a connect timeout may be a blip: the
    verdict is retryable, under the ``first_contact`` policy's few quick tries. A
    failed TLS handshake (the wrong CA, a plain-http port) will not fix itself.
    """
    retryable = True
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        retryable = False
        problem = (
            f"TLS verification failed ({exc.certificate_error}); check "
            "certificate-authority and tls-server-name in the kubeconfig"
        )
    elif isinstance(exc, aiohttp.ClientSSLError):
        retryable = False
        problem = f"the TLS handshake failed ({exc}); is this an https port of an API server?"
    elif isinstance(exc, aiohttp.ClientConnectorDNSError):
        problem = f"unknown host {exc.host!r} ({exc.os_error.strerror or exc.os_error})"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        reason = (
            "connection refused"
            if isinstance(exc.os_error, ConnectionRefusedError)
            else exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
        )
        problem = f"{reason} at {exc.host}:{exc.port}; {_IS_IT_RUNNING}"
    elif isinstance(exc, aiohttp.ConnectionTimeoutError):
        problem = f"timed out connecting; {_IS_IT_RUNNING}"
    else:
        return None
    error = ServerUnreachableError(
        f"cannot reach the API server {server} ({source}): {problem}", server=server, source=source
    )
    return Verdict(error, retryable=retryable)


_IS_IT_RUNNING: Final = "is the cluster running, and is this its address?"


@dataclass(frozen=True)
class _Answer:
    """One attempt's answer: the value on success, else status, headers and body."""

    status: int
    value: Any = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class TokenBucket:
    """A token-bucket rate limiter: ``qps`` sustained, ``burst`` at once.

    Each caller *reserves* a token (the balance may go negative) and sleeps for its
    own computed wait, so waiters are served in arrival order without a lock or a
    background task. A cancelled waiter returns its token.
    """

    __slots__ = ("_burst", "_last", "_qps", "_tokens", "wait_seconds", "waits")

    def __init__(self, qps: float, burst: int) -> None:
        if qps <= 0 or burst < 1:
            raise UsageError(f"the rate limit needs qps > 0 and burst >= 1, got {qps}/{burst}")
        self._qps = float(qps)
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = time.monotonic()
        self.waits = 0
        self.wait_seconds = 0.0

    @property
    def qps(self) -> float:
        return self._qps

    @property
    def burst(self) -> int:
        return int(self._burst)

    def reserve(self, now: float | None = None) -> float:
        """Take one token; return how long the caller must wait before using it."""
        now = time.monotonic() if now is None else now
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._qps

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds waited."""
        delay = self.reserve()
        if delay <= 0:
            return 0.0
        self.waits += 1
        self.wait_seconds += delay
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self._tokens = min(self._burst, self._tokens + 1.0)
            raise
        return delay

    def __repr__(self) -> str:
        return f"<TokenBucket qps={self._qps:g} burst={self.burst} waits={self.waits}>"


class _Budget:
    """A semaphore that counts who waits on it, for ``statistics()``."""

    __slots__ = ("_sem", "in_use", "limit", "waiting", "waits")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise UsageError(f"max_requests and max_streams must be at least 1, got {limit}")
        self.limit = limit
        self.in_use = 0
        self.waiting = 0
        self.waits = 0
        self._sem = asyncio.Semaphore(limit)

    async def __aenter__(self) -> None:
        if self._sem.locked():
            self.waiting += 1
            self.waits += 1
            try:
                await self._sem.acquire()
            finally:
                self.waiting -= 1
        else:
            await self._sem.acquire()
        self.in_use += 1

    async def __aexit__(self, *exc_info: object) -> None:
        self.in_use -= 1
        self._sem.release()


@dataclass(frozen=True, slots=True)
class ClientStatistics:
    """A snapshot of a :class:`KubeClient`'s counters (cumulative unless noted)."""

    requests_sent: Mapping[str, int]
    """Attempts put on the wire, by verb (retries count again; stream opens too)."""
    responses: Mapping[int, int]
    """Answers received, by HTTP status."""
    retries: int
    throttled: int
    """429 answers received (each one, retried or not)."""
    auth_refreshes: int
    """401s answered by fetching fresh credentials and retrying."""
    connection_errors: int
    """Transport failures: refused/reset/cut connections and timeouts."""
    requests_in_flight: int
    """Now: ordinary requests holding a request slot."""
    requests_waiting: int
    """Now: requests waiting for a request slot."""
    max_requests: int
    streams_open: int
    """Now: watches/log follows holding a stream slot."""
    streams_waiting: int
    """Now: streams waiting because ``max_streams`` are open."""
    stream_waits: int
    """Times a stream had to wait for the stream budget."""
    max_streams: int
    rate_limiter_waits: int
    rate_limiter_wait_seconds: float


class KubeClient:
    """The HTTP session for one API server. Use as ``async with``; ``aclose()`` is idempotent.

    Prefer the async constructors (:meth:`from_kubeconfig`, :meth:`from_incluster`,
    :meth:`from_config`): they build the TLS context in a thread. The plain constructor
    must run inside the event loop and builds it synchronously when not given one.

    ``max_requests`` bounds concurrent ordinary requests; ``max_streams`` bounds open
    watches and followed logs; the connection pool holds both. ``qps``/``burst``
    configure the rate limiter (``qps=None`` turns it off). ``timeout`` is the default
    per-attempt time limit of ordinary requests (None: no limit).
    """

    def __init__(
        self,
        config: ClusterConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_requests: int = _DEFAULTS.max_requests,
        max_streams: int = _DEFAULTS.max_streams,
        qps: float | None = _DEFAULTS.qps,
        burst: int = _DEFAULTS.burst,
        retry: RetryPolicy | None = None,
        first_contact: RetryPolicy | None = None,
        timeout: float | None = _DEFAULTS.request_timeout,
        connect_timeout: float = _DEFAULTS.connect_timeout,
        user_agent: str = "asyncpod",
        trust_env: bool = False,
        metrics: MetricsOff = OFF,
        traces: TracesOff = NO_TRACES,
    ) -> None:
        self._closed = True  # until the session exists, so __del__ stays quiet
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise UsageError(
                "KubeClient must be created inside a running event loop "
                "(use `await KubeClient.from_kubeconfig()` or asyncpod.connect())"
            ) from None
        self._config = config
        self.metrics = metrics  # asyncpod.metrics: OFF does nothing
        self.traces = traces  # asyncpod.traces: OFF does nothing
        self._base = config.server.rstrip("/")
        self._requests = _Budget(max_requests)
        self._streams = _Budget(max_streams)
        self._limiter = TokenBucket(qps, burst) if qps is not None else None
        self._retry = retry or _DEFAULTS.retry
        self._first_contact = first_contact or _DEFAULTS.first_contact
        # Until a connection to the server has opened once, failing to reach it is a
        # configuration problem (judge_first_contact); after, an outage. The trace
        # config tells us when; it is dropped then, so requests pay nothing for it.
        self._contact = _Contact()
        self._answered = False
        reached = aiohttp.TraceConfig()
        reached.on_connection_create_end.append(functools.partial(_connected, self._contact))
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        if ssl_context is None and config.uses_tls:
            ssl_context = build_ssl_context(config)
        self._sent: Counter[str] = Counter()
        self._responses: Counter[int] = Counter()
        self._retries = 0
        self._throttled = 0
        self._auth_refreshes = 0
        self._connection_errors = 0
        connector = aiohttp.TCPConnector(
            # Both budgets fit, so aiohttp's pool never queues a request behind streams.
            limit=max_requests + max_streams,
            limit_per_host=0,
            ssl=ssl_context if ssl_context is not None else True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"Accept": "application/json", "User-Agent": user_agent},
            trust_env=trust_env,
            raise_for_status=False,
            trace_configs=[reached],
        )
        self._closed = False

    # ------------------------------------------------------------------ constructors

    @classmethod
    async def from_config(cls, config: ClusterConfig, **options: Any) -> KubeClient:
        """A client for ``config``; ``options`` are the constructor's keywords."""
        if "ssl_context" not in options:
            options["ssl_context"] = await asyncio.to_thread(build_ssl_context, config)
        return cls(config, **options)

    @classmethod
    async def from_kubeconfig(
        cls,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        *,
        context: str | None = None,
        **options: Any,
    ) -> KubeClient:
        """Load a kubeconfig (``KUBECONFIG`` / ``~/.kube/config`` when ``path`` is None)."""
        return await cls.from_config(await load_kubeconfig(path, context=context), **options)

    @classmethod
    async def from_incluster(cls, **options: Any) -> KubeClient:
        """Use the pod's service account."""
        return await cls.from_config(await load_incluster(), **options)

    # ------------------------------------------------------------------ lifecycle

    @property
    def config(self) -> ClusterConfig:
        return self._config

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def max_requests(self) -> int:
        """How many ordinary requests may be in flight at once (the rest wait)."""
        return self._requests.limit

    @property
    def answered(self) -> bool:
        """Whether the server has answered this client at least once (any status)."""
        return self._answered

    @property
    def reached(self) -> bool:
        """Whether a connection to the server has opened (TCP and TLS) at least once."""
        return self._contact.reached

    async def aclose(self) -> None:
        """Close the session and every connection. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        await self._session.close()
        if self._config.uses_tls and self._sent:
            # TLS transports finish closing on later loop iterations; aiohttp's
            # documented graceful shutdown waits a moment, or a loop closed right after
            # us (pytest-asyncio, asyncio.run) warns about unclosed transports.
            await asyncio.sleep(0.25)

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self, _warnings: Any = warnings) -> None:
        if not getattr(self, "_closed", True):
            _warnings.warn(
                f"unclosed {self!r}; use `async with` or await aclose()",
                ResourceWarning,
                source=self,
                stacklevel=1,
            )

    def __repr__(self) -> str:
        server = URL(self._base).with_user(None)
        state = "closed" if self._closed else "open"
        limiter = (
            f"qps={self._limiter.qps:g}/burst={self._limiter.burst}" if self._limiter else "qps=off"
        )
        context = f" context={self._config.context}" if self._config.context else ""
        return (
            f"<KubeClient {server}{context} {state} "
            f"requests={self._requests.in_use}/{self._requests.limit} "
            f"streams={self._streams.in_use}/{self._streams.limit}"
            f"{f' (+{self._streams.waiting} waiting)' if self._streams.waiting else ''} "
            f"{limiter} sent={sum(self._sent.values())} retries={self._retries}>"
        )

    def statistics(self) -> ClientStatistics:
        """Live counters: what was sent, what waited, what was retried."""
        limiter = self._limiter
        return ClientStatistics(
            requests_sent=dict(self._sent),
            responses=dict(self._responses),
            retries=self._retries,
            throttled=self._throttled,
            auth_refreshes=self._auth_refreshes,
            connection_errors=self._connection_errors,
            requests_in_flight=self._requests.in_use,
            requests_waiting=self._requests.waiting,
            max_requests=self._requests.limit,
            streams_open=self._streams.in_use,
            streams_waiting=self._streams.waiting,
            stream_waits=self._streams.waits,
            max_streams=self._streams.limit,
            rate_limiter_waits=limiter.waits if limiter else 0,
            rate_limiter_wait_seconds=limiter.wait_seconds if limiter else 0.0,
        )

    async def make_contact(self) -> None:
        """Reach the server once (``GET /version``), or raise ServerUnreachableError.

        Any answer, whatever its status, proves the server is there, and so does a
        connection that opened and was then cut: from then on, failing to reach it is
        an outage, ridden through by the retries. What is not contact: a refused
        connection, an unknown host, a failed TLS handshake (see
        :func:`judge_first_contact`). One request; the server's version is logged.
        """
        try:
            answer = await self.request("GET", "/version", rate_limited=False)
        except ServerUnreachableError:
            raise
        except (ApiError, TransientError) as error:
            if not self.reached:
                raise
            logger.debug("%s answered /version with: %s", self._base, error)
            return
        version = answer.get("gitVersion") if isinstance(answer, dict) else None
        logger.debug("reached %s (Kubernetes %s)", self._base, version or "?")

    # ------------------------------------------------------------------ requests

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        pod: str | None = None,
        timeout: float | _Default | None = DEFAULT,
        content_type: str | None = None,
        rate_limited: bool = True,
        decode: bool = True,
        managed_fields: bool = True,
    ) -> Any:
        """Send one request and return its decoded body.

        JSON bodies come back as orjson-decoded objects, an empty body as None and any
        other content type as ``bytes``. ``json`` is encoded with orjson;
        ``content_type`` overrides its type (PATCH defaults to a JSON merge patch).
        ``pod`` (``namespace/name``) is only used to label errors.

        Retries follow the client's :class:`RetryPolicy` (see the module docstring). A
        POST that comes back 409 AlreadyExists after *your own* retry of a create whose
        first answer was lost means that first attempt succeeded: reattach.

        ``rate_limited=False`` skips the client-side limiter (never the server's 429s):
        for the few requests that must not queue behind a burst, such as the shared
        informer's LIST, which every run waits on.

        ``decode=False`` reads a success's body and drops it (None is returned): for a
        DELETE, whose answer is the whole pod (~8 KB of JSON) that nobody reads.

        ``managed_fields=False`` cuts each pod's ``metadata.managedFields`` out of a
        success's body before decoding it (:mod:`asyncpod.kube._managedfields`), for a
        reader that has no use for it.
        """
        method = method.upper()
        self._check_path(path)
        body: bytes | None = None
        base_headers: dict[str, str] = {}
        if json is not None:
            try:
                body = orjson.dumps(json)
            except orjson.JSONEncodeError as exc:
                raise UsageError(
                    f"{method} {path}: the body is not JSON-encodable: {exc}"
                ) from None
            if content_type is None:
                content_type = (
                    "application/merge-patch+json" if method == "PATCH" else "application/json"
                )
            base_headers["Content-Type"] = content_type
        limit = self._timeout if isinstance(timeout, _Default) else timeout
        client_timeout = aiohttp.ClientTimeout(total=limit, connect=self._connect_timeout)
        query = _query(params)

        async def send(auth: dict[str, str]) -> _Answer:
            async with (
                self._requests,
                self._session.request(
                    method,
                    self._base + path,
                    params=query,
                    data=body,
                    headers={**base_headers, **auth},
                    timeout=client_timeout,
                    proxy=self._config.proxy,
                    server_hostname=self._config.tls_server_name,
                ) as response,
            ):
                payload = await response.read()
                if 200 <= response.status < 300:
                    if not decode:
                        return _Answer(response.status, value=None)
                    value = _decode_success(
                        payload,
                        response.content_type,
                        method=method,
                        path=path,
                        managed_fields=managed_fields,
                    )
                    return _Answer(response.status, value=value)
                return _Answer(response.status, headers=response.headers, body=payload)

        return await self._with_retries(
            method, path, send, pod=pod, rate_limited=rate_limited, query=query
        )

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        pod: str | None = None,
        read_timeout: float | None = None,
        rate_limited: bool = True,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Open a long-lived response (watch, followed log) and yield it, status checked.

        Takes a slot from the stream budget first (waiting visibly if ``max_streams``
        are open), then opens with the same rate limit and retries as
        :meth:`request`. A non-2xx answer raises the typed error from its body. The
        caller reads ``response.content`` raw; errors while reading are the caller's
        to translate (:func:`translate_transport_error`). ``read_timeout`` fails a
        read after that many seconds without data (aiohttp's ``sock_read``), which
        also bounds the wait for the response headers. ``rate_limited`` as for
        :meth:`request`.
        """
        method = method.upper()
        self._check_path(path)
        client_timeout = aiohttp.ClientTimeout(
            total=None, connect=self._connect_timeout, sock_read=read_timeout
        )
        query = _query(params)

        async def send(auth: dict[str, str]) -> _Answer:
            response = await self._session.request(
                method,
                self._base + path,
                params=query,
                headers=auth,
                timeout=client_timeout,
                proxy=self._config.proxy,
                server_hostname=self._config.tls_server_name,
            )
            if 200 <= response.status < 300:
                return _Answer(response.status, value=response)
            try:
                payload = await response.content.read(_MAX_ERROR_BODY)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                payload = b""
            finally:
                response.close()
            return _Answer(response.status, headers=response.headers, body=payload)

        async with self._streams:
            response: aiohttp.ClientResponse = await self._with_retries(
                method, path, send, pod=pod, rate_limited=rate_limited, query=query
            )
            try:
                yield response
            finally:
                if response.content.at_eof():
                    response.release()  # body fully read: the connection can be reused
                else:
                    response.close()  # abandoned mid-body: the connection is unusable

    async def _with_retries(
        self,
        method: str,
        path: str,
        send: Callable[[dict[str, str]], Awaitable[_Answer]],
        *,
        pod: str | None,
        rate_limited: bool,
        query: Mapping[str, str] | None = None,
    ) -> Any:
        """The one attempt loop of :meth:`request` and :meth:`stream`.

        ``send`` makes one attempt with the given auth header and returns the answer;
        what a failed attempt means (which error, whether to try again) is decided by
        the pure :func:`judge_answer` / :func:`judge_transport_error`, and when to stop
        by :meth:`RetryPolicy.next_delay`. A 401 is answered once by fetching fresh
        credentials (not counted as a retry).
        """
        retries = 0
        refreshed = False
        started = time.monotonic()
        while True:
            await self._before_attempt(rate_limited=rate_limited)
            verdict: Verdict
            policy = self._retry
            try:
                auth = await self._authorization()
                self._sent[method] += 1
                answer = await send({"Authorization": auth} if auth is not None else {})
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self.metrics.api_request(method, path, query, 0)
                verdict = judge_transport_error(method, exc, path=path, pod=pod)
                verdict = self._count_transport_error(verdict, exc, method=method, path=path)
                first = (
                    None
                    if self._contact.reached or self._closed
                    else self._first_contact_verdict(exc)
                )
                if first is not None:
                    verdict, policy = first, self._first_contact
            except RuntimeError as exc:
                # aiohttp: "Session is closed", when aclose() raced this attempt.
                if not self._closed:
                    raise
                raise ClosedError(f"{method} {path}: the client was closed") from exc
            else:
                self._answered = self._contact.reached = True
                self._responses[answer.status] += 1
                self.metrics.api_request(method, path, query, answer.status)
                if answer.ok:
                    return answer.value
                if answer.status == 401 and not refreshed and await self._refresh_auth():
                    refreshed = True
                    continue
                if answer.status == 429:
                    self._throttled += 1
                    self.metrics.api_throttled()
                verdict = judge_answer(
                    method, answer.status, answer.headers, answer.body, path=path, pod=pod
                )
            delay = (
                policy.next_delay(
                    retries, elapsed=time.monotonic() - started, retry_after=verdict.retry_after
                )
                if verdict.retryable
                else None
            )
            if delay is None:
                try:
                    raise verdict.error
                finally:
                    # This frame must not keep the error its traceback holds: that is a
                    # reference cycle, which only a full GC pass would free (the batch
                    # command turns those off: asyncpod/cli/heap.py).
                    del verdict
            retries += 1
            self._retries += 1
            self.metrics.api_retry(verdict.error)
            logger.debug("retrying in %.2fs after: %s", delay, verdict.error)
            del verdict  # nor once a retry succeeds: its cause's traceback holds this frame
            await asyncio.sleep(delay)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _check_path(path: str) -> None:
        if not path.startswith("/"):
            raise UsageError(f"API paths start with '/', got {path!r}")

    async def _before_attempt(self, *, rate_limited: bool) -> None:
        if self._closed:
            raise ClosedError(f"{self!r} is closed")
        if self._limiter is not None and rate_limited:
            await self._limiter.acquire()

    async def _authorization(self) -> str | None:
        credentials = self._config.credentials
        if credentials is None:
            return None
        return await credentials.authorization()

    async def _refresh_auth(self) -> bool:
        credentials = self._config.credentials
        if credentials is None or not await credentials.invalidate():
            return False
        self._auth_refreshes += 1
        return True

    def _first_contact_verdict(self, exc: BaseException) -> Verdict | None:
        server = str(URL(self._base).with_user(None))
        verdict = judge_first_contact(exc, server=server, source=self._config.source)
        if verdict is not None and _cause_is_safe(exc):
            verdict.error.__cause__ = exc
            verdict.error.__suppress_context__ = True
        return verdict

    def _count_transport_error(
        self, verdict: Verdict, exc: BaseException, *, method: str, path: str
    ) -> Verdict:
        if self._closed:
            # aclose() raced this request; say so instead of "connection error".
            closed = _with_cause(ClosedError(f"{method} {path}: the client was closed"), exc)
            return Verdict(closed, retryable=False)
        self._connection_errors += 1
        return verdict


class _Contact:
    """Whether a client has reached its server; apart from the client, so the trace
    config that sets it holds no reference back to the client (no cycle)."""

    __slots__ = ("reached",)

    def __init__(self) -> None:
        self.reached = False


async def _connected(contact: _Contact, session: aiohttp.ClientSession, *_: object) -> None:
    """aiohttp's ``on_connection_create_end``: a connection opened (TCP and TLS)."""
    contact.reached = True
    session.trace_configs.clear()  # nothing more to learn: later requests skip tracing


def _query(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Query parameters as strings (``True`` → ``"true"`` as Kubernetes spells it)."""
    if not params:
        return None
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


def _decode_success(
    payload: bytes, content_type: str, *, method: str, path: str, managed_fields: bool = True
) -> Any:
    if not payload:
        return None
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            if not managed_fields:
                return loads_without_managed_fields(payload)
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise ApiConnectionError(
                f"{method} {path}: the API server sent undecodable JSON"
            ) from None
    return payload


def _decode_error_body(payload: bytes) -> Any:
    if not payload:
        return None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload
