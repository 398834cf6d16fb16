"""A session's metrics and traces, against the real API server and kwok's pods.

Traces: each run is one span in the SDK's in-memory exporter, a child of the span that
was current where it was started, with the pod's phases as events and the Kubernetes
attributes. Metrics: a launcher's runs, phases, watch and requests as a scrape shows
them. The SDK is given to the session explicitly (no global provider is set).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import asyncpod
from asyncpod import Launcher, Outcome, PodSpec
from asyncpod.testing import outcome
from asyncpod.traces import TRACEPARENT_ANNOTATION

from .conftest import TEST_OPTIONS

pytestmark = [pytest.mark.integration, pytest.mark.simulated]


async def test_each_run_is_a_span_of_its_callers_trace_with_the_pods_phases(
    sa_kubeconfig: Path, namespace: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    specs = [
        PodSpec("busybox:1.36", task_key="ok", annotations=outcome(duration=1.0)),
        PodSpec("busybox:1.36", task_key="bad", annotations=outcome(duration=0.5, exit_code=3)),
    ]
    async with asyncpod.connect(
        sa_kubeconfig, namespace=namespace, options=TEST_OPTIONS, qps=None,
        traces=asyncpod.Traces(provider),
    ) as cluster:  # fmt: skip
        with tracer.start_as_current_span("caller") as caller:
            results = {r.task_key: r async for r in Launcher(cluster).as_completed(specs)}
    assert results["ok"].outcome is Outcome.SUCCEEDED
    assert results["bad"].outcome is Outcome.FAILED

    spans = {}
    for span in exporter.get_finished_spans():
        if span.name == "asyncpod.run":
            spans[str(dict(span.attributes or {})["asyncpod.task_key"])] = span
    assert set(spans) == {"ok", "bad"}
    for key, span in spans.items():
        result = results[key]
        attributes = dict(span.attributes or {})
        assert span.parent is not None
        assert span.parent.span_id == caller.get_span_context().span_id
        assert span.context is not None
        assert span.context.trace_id == caller.get_span_context().trace_id
        assert [e.name for e in span.events] == [
            "created", "scheduled", "started", "finished", "result",
        ]  # fmt: skip
        assert attributes["k8s.pod.name"] == result.name
        assert attributes["k8s.pod.uid"] == result.uid
        assert attributes["k8s.namespace.name"] == namespace
        assert attributes["k8s.node.name"] == result.node_name
        assert attributes["asyncpod.outcome"] == result.outcome.value
        assert span.start_time is not None
        assert span.end_time is not None
        assert span.start_time <= span.end_time
    assert spans["ok"].status.status_code is trace.StatusCode.UNSET
    assert spans["bad"].status.status_code is trace.StatusCode.ERROR
    assert dict(spans["bad"].attributes or {})["asyncpod.exit_code"] == 3


async def test_a_launchers_runs_as_a_scrape_shows_them(sa_kubeconfig: Path, namespace: str) -> None:
    metrics = asyncpod.Metrics(CollectorRegistry())
    specs = [
        PodSpec("busybox:1.36", annotations=outcome(duration=0.5, exit_code=index % 2))
        for index in range(6)
    ]
    async with asyncpod.connect(
        sa_kubeconfig, namespace=namespace, options=TEST_OPTIONS, qps=None, metrics=metrics
    ) as cluster:
        results = [r async for r in Launcher(cluster, max_in_flight=3).as_completed(specs)]
        requests = dict(cluster.client.statistics().requests_sent)
        text = generate_latest(metrics.registry).decode()
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    outcomes = {r.outcome.value for r in results}
    assert outcomes == {"succeeded", "failed"}
    finished = {
        dict(labels)["outcome"]: value
        for (name, labels), value in got.items()
        if name == "asyncpod_runs_finished_total"
    }
    assert finished == {"succeeded": 3, "failed": 3}
    assert got[("asyncpod_runs_in_flight", ())] == 0
    assert got[("asyncpod_run_schedule_latency_seconds_count", ())] == 6
    # Every attempt the client put on the wire is in the metrics, verb by verb.
    counted: dict[str, float] = {}
    for (name, labels), value in got.items():
        if name == "asyncpod_api_requests_total":
            verb = dict(labels)["verb"]
            method = {"LIST": "GET", "WATCH": "GET"}.get(verb, verb)
            counted[method] = counted.get(method, 0) + value
    assert counted == requests
    assert got[("asyncpod_informer_cached_pods", ())] >= 0


async def test_inject_writes_the_starters_traceparent_into_the_pod(
    sa_kubeconfig: Path, namespace: str
) -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    async with asyncpod.connect(
        sa_kubeconfig, namespace=namespace, options=TEST_OPTIONS, qps=None,
        traces=asyncpod.Traces(provider, inject=True),
    ) as cluster:  # fmt: skip
        with tracer.start_as_current_span("caller") as caller:
            run = await cluster.start(PodSpec("busybox:1.36", annotations=outcome(duration=0.3)))
        result = await run
        assert run.pod is not None
        annotations = run.pod["metadata"]["annotations"]
    context = caller.get_span_context()
    assert result.ok
    assert annotations[TRACEPARENT_ANNOTATION] == (
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    )
