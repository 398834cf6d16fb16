"""Every exception asyncpod raises, under one root.

Why one module: callers decide what to do by *who caused* a failure, so the tree is
split that way, as in trio/anyio. "You asked for something invalid" (a bad spec, a
broken kubeconfig, a missing permission) will not get better by retrying; "it broke"
(a dropped connection, a 5xx, a timeout) may. A pod that ran and failed is neither:
it is a normal :class:`~asyncpod.results.PodResult`, and only
:meth:`PodResult.raise_for_outcome` turns it into :class:`PodFailedError`.

The tree::

    AsyncpodError
    ├── UsageError                 you asked for something invalid; fix, don't retry
    │   ├── SpecError              a spec or batch file failed validation (names the field)
    │   ├── ConfigError            kubeconfig / context / credentials unusable
    │   │   └── ServerUnreachableError  never reached the server: refused, unknown
    │   │                               host, TLS failure before its first answer
    │   ├── OptionError            a run option or launcher parameter out of range
    │   ├── InvalidRequestError    400 / 422; lists the server's causes       [ApiError]
    │   ├── UnauthorizedError      401                                        [ApiError]
    │   └── ForbiddenError         403; names the missing verb and resource   [ApiError]
    ├── ApiError                   any non-success answer of the API server
    │   ├── NotFoundError          404
    │   │   └── NamespaceNotFoundError  the namespace itself does not exist  [UsageError]
    │   ├── ConflictError          409 (AlreadyExists, or a stale update)
    │   ├── GoneError              410: a watch's resourceVersion was compacted
    │   ├── TooManyRequestsError   429 after retries ran out            [TransientError]
    │   └── ServerError            5xx after retries ran out            [TransientError]
    ├── TransientError             it broke; a later try may work
    │   ├── ApiConnectionError     TCP / TLS / a stream cut mid-body
    │   │   └── WatchStalledError  a watch sent nothing for its inactivity timeout
    │   └── ApiTimeoutError        a request took too long (also asyncio.TimeoutError)
    ├── RunTimeoutError            a run's schedule / startup / overall deadline passed
    │                              (also asyncio.TimeoutError)
    ├── PodFailedError             raised by PodResult.raise_for_outcome()
    └── ClosedError                the session or launcher was already closed

Errors carry the pod reference (namespace/name) where there is one and the API
server's own message. Credentials never appear in them: request headers are not kept.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncpod.results import PodResult

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "AsyncpodError",
    "ClosedError",
    "ConfigError",
    "ConflictError",
    "ForbiddenError",
    "GoneError",
    "InvalidRequestError",
    "NamespaceNotFoundError",
    "NotFoundError",
    "OptionError",
    "PodFailedError",
    "RunTimeoutError",
    "ServerError",
    "ServerUnreachableError",
    "SpecError",
    "TooManyRequestsError",
    "TransientError",
    "UnauthorizedError",
    "UsageError",
    "WatchStalledError",
    "api_error_from_status",
]


class AsyncpodError(Exception):
    """The root: ``except AsyncpodError`` catches everything asyncpod raises."""


class UsageError(AsyncpodError):
    """Something the caller asked for is invalid; retrying will not help."""


class TransientError(AsyncpodError):
    """Something broke on the way; the same request may succeed later."""


class SpecError(UsageError, ValueError):
    """A spec failed validation before any request was sent.

    ``field`` is a dotted path such as ``containers[0].resources.limits.memory``;
    ``line`` is set when the spec came from a file.
    """

    def __init__(self, field: str, problem: str, *, line: int | None = None) -> None:
        self.field = field
        self.problem = problem
        self.line = line
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{field}: {problem}")


class ConfigError(UsageError):
    """The cluster configuration (kubeconfig, context, token, exec plugin) is unusable."""


class ServerUnreachableError(ConfigError):
    """A session could not reach its API server before it ever had an answer from it.

    A refused connection, an unknown host name or a failed TLS handshake at first
    contact is a configuration problem (a typo in the server address, a stopped local
    cluster, a VPN that is off, the wrong CA), not an outage to ride through: it is
    reported after a couple of quick attempts (``Settings.first_contact``), naming the
    server and the kubeconfig and context it came from. Nothing was created: the
    request never reached the server. Once a session has had any answer, the same
    failures are outages and are retried within their windows
    (:class:`ApiConnectionError`).

    ``server`` is the URL tried, ``source`` the configuration it came from.
    """

    def __init__(self, message: str, *, server: str = "", source: str = "") -> None:
        super().__init__(message)
        self.server = server
        self.source = source


class OptionError(UsageError, ValueError):
    """A run option or launcher parameter that cannot be honoured (names the field)."""


class ApiError(AsyncpodError):
    """The API server answered with a non-success status.

    Attributes mirror the Kubernetes ``Status`` object: ``status`` (HTTP code),
    ``reason`` (e.g. ``AlreadyExists``), ``message`` (the server's words) and
    ``causes`` (field-level details of a 422), ``details_name`` (the name in its
    ``details``: the object the answer is about). ``pod`` is ``namespace/name`` when the
    request was about one pod.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        reason: str = "",
        causes: tuple[str, ...] = (),
        method: str = "",
        path: str = "",
        pod: str | None = None,
        retry_after: float | None = None,
        details_name: str = "",
    ) -> None:
        self.message = message
        self.details_name = details_name
        self.status = status
        self.reason = reason
        self.causes = causes
        self.method = method
        self.path = path
        self.pod = pod
        self.retry_after = retry_after
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"{self.status} {self.reason}".strip()]
        if self.method or self.path:
            parts.append(f"{self.method} {self.path}".strip())
        if self.pod:
            parts.append(f"pod {self.pod}")
        text = " | ".join(parts) + f": {self.message}"
        if self.causes:
            text += "".join(f"\n  - {cause}" for cause in self.causes)
        return text


class InvalidRequestError(ApiError, UsageError):
    """400 or 422: the server rejected what we sent; ``causes`` lists each field."""


class UnauthorizedError(ApiError, UsageError):
    """401: the credentials were not accepted (expired token, wrong certificate)."""


class ForbiddenError(ApiError, UsageError):
    """403: the identity lacks a permission; the message names verb and resource."""


class NotFoundError(ApiError):
    """404: the object (or namespace) does not exist."""


class NamespaceNotFoundError(NotFoundError, UsageError):
    """404 because the namespace named in the request does not exist (a typo, or not made yet).

    A usage error: no retry creates the namespace. ``namespace`` names it.
    """

    @property
    def namespace(self) -> str:
        return self.details_name


class ConflictError(ApiError):
    """409: the object already exists, or an update raced another writer."""


class GoneError(ApiError):
    """410: the resourceVersion is older than etcd keeps; relist."""


class TooManyRequestsError(ApiError, TransientError):
    """429 that outlasted the retry budget; ``retry_after`` is the server's hint."""


class ServerError(ApiError, TransientError):
    """5xx that outlasted the retry budget."""


class ApiConnectionError(TransientError):
    """The connection failed or was cut, before or during a response body."""


class WatchStalledError(ApiConnectionError):
    """A watch sent no event or bookmark for its inactivity timeout (half-open TCP).

    A connection error, not a timeout: nothing was slow, the stream is presumed dead.
    Reopen it from the last resourceVersion.
    """


class ApiTimeoutError(TransientError, asyncio.TimeoutError):
    """A single request exceeded its timeout."""


class RunTimeoutError(AsyncpodError, asyncio.TimeoutError):
    """A run's deadline passed (``phase`` says which: schedule, startup or run)."""

    def __init__(self, message: str, *, pod: str | None = None, phase: str = "run") -> None:
        self.pod = pod
        self.phase = phase
        super().__init__(message)


class PodFailedError(AsyncpodError):
    """A pod finished unsuccessfully; ``result`` holds everything we know about it."""

    def __init__(self, result: PodResult) -> None:
        self.result = result
        super().__init__(result.describe())


class ClosedError(AsyncpodError):
    """The session, launcher or handle was used after it was closed."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: InvalidRequestError,
    429: TooManyRequestsError,
}


def api_error_from_status(
    http_status: int,
    body: Any,
    *,
    method: str = "",
    path: str = "",
    pod: str | None = None,
    retry_after: float | None = None,
) -> ApiError:
    """Build the typed error for a non-2xx answer from its (decoded) Status body.

    ``body`` may be a decoded Kubernetes ``Status`` dict, raw text, or ``None``.
    Pure: no I/O, so the mapping is unit-tested without a server.
    """
    message = ""
    reason = ""
    causes: tuple[str, ...] = ()
    details_kind = details_name = ""
    if isinstance(body, dict):
        message = str(body.get("message") or "")
        reason = str(body.get("reason") or "")
        details = body.get("details") or {}
        if isinstance(details, dict):
            details_kind = str(details.get("kind") or "")
            details_name = str(details.get("name") or "")
        raw_causes = details.get("causes") or [] if isinstance(details, dict) else []
        causes = tuple(
            f"{c.get('field', '')}: {c.get('message', '')}".strip(": ")
            for c in raw_causes
            if isinstance(c, dict)
        )
    elif isinstance(body, (bytes, str)):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        message = text.strip()[:500]
    if not message:
        message = f"HTTP {http_status}"
    if http_status >= 500:
        cls: type[ApiError] = ServerError
    elif http_status == 404 and details_kind == "namespaces" and details_name:
        cls = NamespaceNotFoundError
    else:
        cls = _BY_STATUS.get(http_status, ApiError)
    return cls(
        message,
        status=http_status,
        reason=reason,
        causes=causes,
        method=method,
        path=path,
        pod=pod,
        retry_after=retry_after,
        details_name=details_name,
    )
