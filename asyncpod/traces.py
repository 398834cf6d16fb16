"""OpenTelemetry traces of runs: one span per run, its pod's phases as events.

Why it exists: a run is one step of somebody's larger work (a DAG's task, a request of a
service); its span belongs in that trace, with the pod's phases on it, so that a slow
schedule or an image pull shows where the time went.

    traces = asyncpod.Traces()                        # the global TracerProvider
    async with asyncpod.connect(traces=traces) as cluster:
        with tracer.start_as_current_span("train"):
            await cluster.run(spec)                   # a child span of "train"

One span per run, named ``asyncpod.run``, made when the run ends from what its result
says (no object is kept per run while it runs): it starts at the pod's creation
(``creationTimestamp``, whole seconds; the moment the run ended when no pod was made)
and ends when the result is delivered. Its events are the pod's phases at their
Kubernetes times, ``created``, ``scheduled``, ``started`` (the main container
running) and ``finished``, and ``result`` when the result was delivered. Its attributes
follow OpenTelemetry's Kubernetes semantic conventions (``k8s.pod.name``,
``k8s.pod.uid``, ``k8s.namespace.name``, ``k8s.node.name``) plus ``asyncpod.outcome``,
``asyncpod.reason``, ``asyncpod.exit_code`` and ``asyncpod.task_key``; a run that did
not succeed has an error status. Its parent is the context that was current where the
run was started (``cluster.start``/``run``, a launcher's iteration): the driver's task
copies its starter's context.

Only ``opentelemetry-api`` is used (the ``traces`` extra); the SDK and exporters are the
application's. Without an SDK the API's tracer makes non-recording spans; without
``traces=`` nothing is called at all.

``Traces(inject=True)`` writes the W3C ``traceparent`` of the context current where the
run was started into the pod's annotation ``asyncpod.dev/traceparent``, so the program in
the pod can continue the trace (the downward API puts an annotation into an environment
variable: ``TRACEPARENT`` from ``metadata.annotations['asyncpod.dev/traceparent']``). It is
the starter's span, not the run's (made only at the end): the pod's spans are siblings of
``asyncpod.run`` in the same trace.

What it deliberately does not do: keep a span per run while it runs, or make spans for
the API requests.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

from asyncpod.errors import UsageError

logger = logging.getLogger("asyncpod.traces")

if TYPE_CHECKING:
    from asyncpod.results import PodResult

__all__ = ["OFF", "TRACEPARENT_ANNOTATION", "TRACES_EXTRA", "Traces", "TracesOff", "span_plan"]

#: What to install for traces; named by the error when ``opentelemetry-api`` is missing.
TRACES_EXTRA: Final = "asyncpod[traces]"
SPAN_NAME: Final = "asyncpod.run"
#: Where ``Traces(inject=True)`` writes the W3C trace context into the pod.
TRACEPARENT_ANNOTATION: Final = "asyncpod.dev/traceparent"

_Spec = TypeVar("_Spec")


def _ns(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1_000_000_000)


def span_plan(
    result: PodResult | None,
    error: BaseException | None,
    *,
    namespace: str,
    name: str | None,
    task_key: str | None,
    now: datetime,
) -> tuple[int, list[tuple[str, int]], dict[str, Any], bool]:
    """What a run's span says: its start (ns), its events ``(name, ns)`` in time order,
    its attributes, and whether it is an error. Pure (``now`` is the result's delivery).
    """
    end = _ns(now)
    assert end is not None
    attributes: dict[str, Any] = {"k8s.namespace.name": namespace}
    if name:
        attributes["k8s.pod.name"] = name
    if task_key is not None:
        attributes["asyncpod.task_key"] = task_key
    events: list[tuple[str, int]] = []
    if result is None:
        attributes["asyncpod.outcome"] = "error" if error is not None else "cancelled"
        if error is not None:
            attributes["asyncpod.error"] = f"{type(error).__name__}: {error}"[:500]
        events.append(("result", end))
        return end, events, attributes, True
    main = result.main
    running = main.started_at if main is not None and main.started_at else result.started_at
    for event, when in (
        ("created", result.created_at),
        ("scheduled", result.scheduled_at),
        ("started", running),
        ("finished", result.finished_at),
    ):
        at = _ns(when)
        if at is not None:
            events.append((event, min(at, end)))
    events.append(("result", end))
    events.sort(key=lambda e: e[1])
    attributes["asyncpod.outcome"] = result.outcome.value
    if result.uid:
        attributes["k8s.pod.uid"] = result.uid
    if result.node_name:
        attributes["k8s.node.name"] = result.node_name
    if result.reason:
        attributes["asyncpod.reason"] = result.reason
    if result.exit_code is not None:
        attributes["asyncpod.exit_code"] = result.exit_code
    start = events[0][1]
    return start, events, attributes, not result.ok


class TracesOff:
    """Traces turned off: nothing is called (the default of every session)."""

    __slots__ = ()
    enabled: ClassVar[bool] = False

    def carried(self, spec: _Spec) -> _Spec:
        """``spec``, with the trace context to carry into the pod when injecting."""
        return spec

    def run_ended(
        self,
        result: PodResult | None,
        error: BaseException | None,
        *,
        namespace: str,
        name: str | None,
        task_key: str | None,
    ) -> None:
        pass


#: The traces of a session made without ``traces=``: none.
OFF: Final = TracesOff()


class Traces(TracesOff):
    """Spans of runs on ``tracer_provider`` (default: OpenTelemetry's global one)."""

    __slots__ = ("_inject", "_status", "_tracer")
    enabled: ClassVar[bool] = True

    def __init__(self, tracer_provider: Any = None, *, inject: bool = False) -> None:
        try:
            from opentelemetry import trace
        except ImportError:
            raise UsageError(
                f"traces need opentelemetry-api: pip install '{TRACES_EXTRA}'"
            ) from None
        try:
            version: str | None = importlib.metadata.version("asyncpod")
        except importlib.metadata.PackageNotFoundError:
            version = None
        self._tracer = trace.get_tracer("asyncpod", version, tracer_provider=tracer_provider)
        self._status = (trace.Status, trace.StatusCode)
        self._inject = inject

    def carried(self, spec: _Spec) -> _Spec:
        if not self._inject:
            return spec
        from opentelemetry import propagate

        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the current context: where the run was started
        traceparent = carrier.get("traceparent")
        annotations = getattr(spec, "annotations", None)
        if traceparent is None or annotations is None:
            return spec
        changed = {**annotations, TRACEPARENT_ANNOTATION: traceparent}
        return dataclasses.replace(spec, annotations=changed)  # type: ignore[type-var]

    def run_ended(
        self,
        result: PodResult | None,
        error: BaseException | None,
        *,
        namespace: str,
        name: str | None,
        task_key: str | None,
    ) -> None:
        now = datetime.now(timezone.utc)
        start, events, attributes, failed = span_plan(
            result, error, namespace=namespace, name=name, task_key=task_key, now=now
        )
        try:
            span = self._tracer.start_span(SPAN_NAME, start_time=start, attributes=attributes)
            for event, at in events:
                span.add_event(event, timestamp=at)
            if failed:
                status, code = self._status
                span.set_status(status(code.ERROR, str(attributes["asyncpod.outcome"])))
            span.end(end_time=events[-1][1])
        except Exception:  # an SDK's or exporter's failure must not fail the run's end
            logger.warning("the span of run %s/%s failed", namespace, name, exc_info=True)
