"""asyncpod.metrics' pure parts: label bounding, request labels, phases from a result,
histograms, and what a scrape shows after the hooks ran (no cluster, no loop)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import asyncpod
from asyncpod.cli._traces import exporter_names
from asyncpod.errors import (
    ApiConnectionError,
    ApiTimeoutError,
    OptionError,
    ServerError,
    TooManyRequestsError,
)
from asyncpod.metrics import (
    OFF,
    OTHER,
    Bounded,
    Histogram,
    Metrics,
    phase_latencies,
    request_labels,
    retry_cause,
)
from asyncpod.results import ContainerKind, ContainerResult, Outcome, PodResult
from asyncpod.traces import span_plan

T0 = datetime(2026, 12, 5, 12, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def fresh() -> Metrics:
    return Metrics(CollectorRegistry())


def test_bounded_admits_the_first_values_then_names_the_rest_other() -> None:
    bounded = Bounded(2, known=("Completed",))
    assert [bounded(v) for v in ("A", "B", "Completed", "C", "A", "D")] == [
        "A", "B", "Completed", OTHER, "A", OTHER,
    ]  # fmt: skip


def test_a_thousand_distinct_reasons_make_at_most_65_series() -> None:
    metrics = fresh()
    result = PodResult("ns", "p", "u", outcome=Outcome.FAILED)
    for index in range(1000):
        metrics.run_ended(
            PodResult("ns", f"p{index}", "u", outcome=Outcome.FAILED, reason=f"R{index}"),
            None,
            time.monotonic(),
        )
    metrics.run_ended(result, None, time.monotonic())
    finished = {k: v for k, v in samples(metrics).items() if k[0] == "asyncpod_runs_finished_total"}
    assert len(finished) <= 66
    assert sum(finished.values()) == 1001
    assert (
        finished[("asyncpod_runs_finished_total", (("outcome", "failed"), ("reason", OTHER)))] > 0
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "labels"),
    [
        ("POST", "/api/v1/namespaces/ns/pods", None, ("POST", "pods", "")),
        ("GET", "/api/v1/namespaces/ns/pods", {"labelSelector": "a=b"}, ("LIST", "pods", "")),
        ("GET", "/api/v1/namespaces/ns/pods", {"watch": "true"}, ("WATCH", "pods", "")),
        ("GET", "/api/v1/namespaces/ns/pods/p-1", None, ("GET", "pods", "")),
        ("DELETE", "/api/v1/namespaces/ns/pods/p-1", None, ("DELETE", "pods", "")),
        ("GET", "/api/v1/namespaces/ns/pods/p-1/log", {"follow": "true"}, ("GET", "pods", "log")),
        ("POST", "/api/v1/namespaces/ns/pods/p/eviction", None, ("POST", "pods", "eviction")),
        ("GET", "/api/v1/namespaces/ns/events", None, ("LIST", "events", "")),
        ("GET", "/api/v1/namespaces/ns", None, ("GET", "namespaces", "")),
        ("GET", "/api/v1/namespaces", None, ("LIST", "namespaces", "")),
        ("GET", "/apis/batch/v1/namespaces/ns/jobs", None, ("LIST", "jobs", "")),
        ("DELETE", "/api/v1/namespaces/ns/pods", None, ("DELETECOLLECTION", "pods", "")),
        ("GET", "/version", None, ("GET", "", "")),
    ],
)
def test_request_labels_spell_verbs_and_resources_as_the_api_server(
    method: str, path: str, query: dict[str, str] | None, labels: tuple[str, str, str]
) -> None:
    assert request_labels(method, path, query) == labels


def test_retry_causes() -> None:
    assert retry_cause(TooManyRequestsError("x", status=429)) == "throttled"
    assert retry_cause(ServerError("x", status=503)) == "server_error"
    assert retry_cause(ApiTimeoutError("x")) == "timeout"
    assert retry_cause(ApiConnectionError("x")) == "connection"


def test_phase_latencies_from_a_result() -> None:
    main = ContainerResult("main", ContainerKind.MAIN, started_at=at(7), finished_at=at(19))
    result = PodResult(
        "ns", "p", "u", outcome=Outcome.SUCCEEDED, containers=(main,),
        created_at=at(0), scheduled_at=at(2), started_at=at(3), finished_at=at(19),
    )  # fmt: skip
    assert phase_latencies(result) == (2.0, 5.0, 12.0)  # running: the main container's start


def test_phase_latencies_leave_out_unknown_ends_and_clamp_skew() -> None:
    never_scheduled = PodResult("ns", "p", "u", outcome=Outcome.TIMED_OUT, created_at=at(0))
    assert phase_latencies(never_scheduled) == (None, None, None)
    skewed = PodResult(
        "ns", "p", "u", outcome=Outcome.SUCCEEDED,
        created_at=at(5), scheduled_at=at(4), started_at=at(6), finished_at=at(9),
    )  # fmt: skip
    assert phase_latencies(skewed) == (0.0, 2.0, 3.0)  # no main container: the pod's start


def test_histogram_buckets_are_cumulative_with_le_semantics() -> None:
    histogram = Histogram((1.0, 2.0))
    for value in (0.5, 1.0, 1.5, 3.0):
        histogram.observe(value)
    assert histogram.buckets() == [("1.0", 2), ("2.0", 3), ("+Inf", 4)]
    assert histogram.total == 6.0


def test_a_scrape_shows_what_the_hooks_counted() -> None:
    metrics = fresh()
    metrics.run_started()
    metrics.run_started()
    main = ContainerResult("main", ContainerKind.MAIN, started_at=at(3), finished_at=at(13))
    result = PodResult(
        "ns", "p", "u", outcome=Outcome.FAILED, reason="OOMKilled", containers=(main,),
        created_at=at(0), scheduled_at=at(1), started_at=at(2), finished_at=at(13),
    )  # fmt: skip
    metrics.run_ended(result, None, time.monotonic())
    metrics.api_request("POST", "/api/v1/namespaces/ns/pods", None, 201)
    metrics.api_request("GET", "/api/v1/namespaces/ns/pods", {"watch": "true"}, 200)
    metrics.api_request("DELETE", "/api/v1/namespaces/ns/pods/p", None, 0)
    metrics.api_retry(TooManyRequestsError("x", status=429))
    metrics.api_throttled()
    metrics.watch_opened()
    metrics.watch_event("ADDED")
    metrics.watch_event("MODIFIED")
    metrics.watch_bookmark()
    metrics.watch_relist()
    metrics.informer_started(metrics, lambda: 7)
    metrics.log_lines(3)
    metrics.queue_depth(lambda: 12)
    got = samples(metrics)
    assert got[("asyncpod_runs_started_total", ())] == 2
    assert got[("asyncpod_runs_in_flight", ())] == 1
    key = ("asyncpod_runs_finished_total", (("outcome", "failed"), ("reason", "OOMKilled")))
    assert got[key] == 1
    assert got[("asyncpod_run_schedule_latency_seconds_sum", ())] == 1.0
    assert got[("asyncpod_run_startup_latency_seconds_sum", ())] == 2.0
    assert got[("asyncpod_run_duration_seconds_sum", ())] == 10.0
    assert got[("asyncpod_run_result_latency_seconds_count", ())] == 1
    requests = {
        dict(labels)["verb"] + " " + dict(labels)["code"]: value
        for (name, labels), value in got.items()
        if name == "asyncpod_api_requests_total"
    }
    assert requests == {"POST 201": 1, "WATCH 200": 1, "DELETE error": 1}
    assert got[("asyncpod_api_retries_total", (("cause", "throttled"),))] == 1
    assert got[("asyncpod_api_throttled_total", ())] == 1
    assert got[("asyncpod_watch_events_total", (("type", "ADDED"),))] == 1
    assert got[("asyncpod_watch_bookmarks_total", ())] == 1
    assert got[("asyncpod_watch_relists_total", ())] == 1
    assert got[("asyncpod_informer_cached_pods", ())] == 7
    assert got[("asyncpod_log_lines_total", ())] == 3
    assert got[("asyncpod_launcher_queue_depth", ())] == 12
    metrics.informer_stopped(metrics)
    assert samples(metrics)[("asyncpod_informer_cached_pods", ())] == 0


def test_every_name_follows_the_conventions() -> None:
    for family in text_string_to_metric_families(generate_latest(fresh().registry).decode()):
        assert family.name.startswith("asyncpod_")
        assert family.documentation
        if family.type == "histogram":
            assert family.name.endswith("_seconds")


def test_one_metrics_per_registry() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    with pytest.raises(OptionError, match="one Metrics per registry"):
        Metrics(registry)


def test_off_does_nothing_and_is_the_default_of_a_client() -> None:
    assert OFF.enabled is False
    OFF.run_started()
    OFF.api_request("GET", "/version", None, 200)
    assert asyncpod.Metrics is Metrics


async def test_log_stream_counts_open_streams() -> None:
    metrics = fresh()
    async with metrics.log_stream():
        assert samples(metrics)[("asyncpod_log_streams_open", ())] == 1
    async with OFF.log_stream():
        pass
    got = samples(metrics)
    assert got[("asyncpod_log_streams_open", ())] == 0
    assert got[("asyncpod_log_streams_opened_total", ())] == 1


def _exposed_names() -> set[str]:
    """Every sample name a scrape can show (histograms' _bucket/_sum/_count included)."""
    text = generate_latest(fresh().registry).decode()
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


DOCS = Path(__file__).parents[2] / "docs"


def test_the_docs_list_every_metric_and_name_no_other() -> None:
    page = (DOCS / "metrics.md").read_text()
    exposed = _exposed_names()
    documented = set(re.findall(r"`(asyncpod_[a-z_]+)`", page))
    base = {n for n in exposed if not n.endswith(("_bucket", "_sum", "_count"))}
    base |= {n.removesuffix("_bucket") for n in exposed if n.endswith("_bucket")}
    assert documented == base
    for name in re.findall(r"\b(asyncpod_[a-z_]+)", page):
        assert name in exposed or name in base, name


def test_the_grafana_dashboard_queries_only_metrics_that_exist() -> None:
    dashboard = json.loads((DOCS / "grafana" / "asyncpod.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\b(asyncpod_[a-z_]+)", expr)}
    assert used <= _exposed_names()
    assert len(used) >= 15


def test_a_session_without_metrics_never_imports_prometheus_client() -> None:
    code = (
        "import sys, asyncpod, asyncpod.core.cluster, asyncpod.cli.batch, asyncpod.cli.run; "
        "sys.exit('prometheus_client' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=120).returncode == 0


def test_a_runs_span_plan_from_its_result() -> None:
    main = ContainerResult("main", ContainerKind.MAIN, started_at=at(3), finished_at=at(9))
    result = PodResult(
        "ns", "p", "uid-1", outcome=Outcome.FAILED, reason="Error", containers=(main,),
        created_at=at(0), scheduled_at=at(1), started_at=at(2), finished_at=at(9),
        node_name="n1", task_key="k",
    )  # fmt: skip
    start, events, attributes, failed = span_plan(
        result, None, namespace="ns", name="p", task_key="k", now=at(10)
    )
    second = 1_000_000_000
    t0 = int(T0.timestamp()) * second
    assert start == t0
    assert events == [
        ("created", t0), ("scheduled", t0 + second), ("started", t0 + 3 * second),
        ("finished", t0 + 9 * second), ("result", t0 + 10 * second),
    ]  # fmt: skip
    assert attributes == {
        "k8s.namespace.name": "ns", "k8s.pod.name": "p", "k8s.pod.uid": "uid-1",
        "k8s.node.name": "n1", "asyncpod.task_key": "k", "asyncpod.outcome": "failed",
        "asyncpod.reason": "Error",
    }  # fmt: skip
    assert failed


def test_a_span_plan_without_a_result() -> None:
    start, events, attributes, failed = span_plan(
        None, OptionError("no"), namespace="ns", name=None, task_key=None, now=at(5)
    )
    assert events == [("result", start)]
    assert attributes["asyncpod.outcome"] == "error"
    assert attributes["asyncpod.error"] == "OptionError: no"
    assert failed


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp, console"}, ["otlp", "console"]),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, []),
    ],
)
def test_which_otel_variables_turn_on_the_commands_traces(
    environ: dict[str, str], names: list[str]
) -> None:
    assert exporter_names(environ) == names
