"""The commands' traces, turned on by OpenTelemetry's standard ``OTEL_*`` variables.

Why it exists: ``asyncpod run`` and ``asyncpod batch`` own their process, so they may
set up the OpenTelemetry SDK the way every OpenTelemetry program reads its environment:
``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``, ``none``; ``otlp`` by default once an
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` is set), ``OTEL_EXPORTER_OTLP_*`` for the
exporter, ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES`` for the resource (service
``asyncpod`` unless told), ``OTEL_SDK_DISABLED=true`` for off. The command's spans are
one ``asyncpod batch``/``asyncpod run`` span with every run's ``asyncpod.run`` span under
it (:mod:`asyncpod.traces`). ``ASYNCPOD_TRACEPARENT=1`` also writes the trace context
into each pod (``Traces(inject=True)``).

Without any of these variables nothing is imported. The SDK (``opentelemetry-sdk``) and
the OTLP exporter are the user's to install; when a variable asks for them and they are
missing, the command says so (exit 2).

What it deliberately does not do: read the variables the SDK reads itself (sampler,
batch sizes, headers, timeouts: the SDK and the exporter read those).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from asyncpod.errors import UsageError
from asyncpod.traces import OFF, Traces, TracesOff

__all__ = ["exporter_names", "traced"]

SDK_HINT = "pip install opentelemetry-sdk"


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The span exporters ``environ`` asks for (empty: traces off). Pure."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [n for n in named if n]
    if not names and (
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        names = ["otlp"]
    return [n for n in names if n != "none"]


def _exporter(name: str, environ: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise UsageError(f"OTEL_TRACES_EXPORTER: unknown exporter {name!r} (otlp, console, none)")
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    try:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter,
            )
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
                OTLPSpanExporter,
            )
    except ImportError:
        raise UsageError(
            f"OTEL_TRACES_EXPORTER=otlp ({protocol}) needs the OTLP exporter: "
            "pip install opentelemetry-exporter-otlp"
        ) from None
    return OTLPSpanExporter()


@contextlib.asynccontextmanager
async def traced(title: str, environ: Mapping[str, str] | None = None) -> AsyncIterator[TracesOff]:
    """The traces to pass to ``connect`` (None unless ``OTEL_*`` asks for them), under
    one span named ``title`` for the block; the spans are flushed at its end."""
    environ = os.environ if environ is None else environ
    names = exporter_names(environ)
    if not names:
        yield OFF
        return
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise UsageError(f"OTEL_* asks for traces, which need the SDK: {SDK_HINT}") from None
    service = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": "asyncpod"}
    provider = TracerProvider(resource=Resource.create(service))
    try:
        for name in names:
            provider.add_span_processor(BatchSpanProcessor(_exporter(name, environ)))
        inject = environ.get("ASYNCPOD_TRACEPARENT", "").strip().lower() in ("1", "true")
        traces = Traces(provider, inject=inject)
        with provider.get_tracer("asyncpod").start_as_current_span(title):
            yield traces
    finally:
        # Flushes what is queued (the exporter's own timeouts bound it), off the loop.
        await asyncio.to_thread(provider.shutdown)
