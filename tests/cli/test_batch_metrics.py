"""``asyncpod batch --metrics-port``: what a Prometheus scrape of a real batch shows.

The batch runs as a subprocess against the local control plane; the test scrapes its
``/metrics`` while it runs, and the last scrape (``--metrics-linger`` keeps the endpoint
up after the end until one more scrape) is parsed with prometheus_client's own parser.
Runs by outcome and reason must equal the results file; API requests by verb, resource
and subresource must equal what the API server itself counted (``apiserver_request_total``)
for the requests only this command makes. Nothing here depends on timing.
"""

from __future__ import annotations

import json
import textwrap
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from asyncpod.testing import LocalControlPlane
from asyncpod.testing.controlplane import free_port
from asyncpod.testing.pytest_plugin import TestCluster
from tests.cli.helpers import Cli, Process, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.simulated]

Labels = tuple[tuple[str, str], ...]


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text: str = answer.read().decode()
            return text
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def samples(text: str) -> dict[tuple[str, Labels], float]:
    out: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def by(got: dict[tuple[str, Labels], float], name: str, *keys: str) -> Counter[tuple[str, ...]]:
    """The samples of ``name`` summed by the label values of ``keys``."""
    out: Counter[tuple[str, ...]] = Counter()
    for (sample, labels), value in got.items():
        if sample == name:
            values = dict(labels)
            out[tuple(values[k] for k in keys)] += int(value)
    return out


def server_counts(plane: LocalControlPlane) -> Counter[tuple[str, ...]]:
    """``apiserver_request_total`` by (verb, resource, subresource); LIST and WATCH only
    namespace-scoped (the scheduler's, kwok's and the controllers' are cluster-wide)."""
    out: Counter[tuple[str, ...]] = Counter()
    for family in text_string_to_metric_families(plane.metrics_text()):
        for sample in family.samples:
            if sample.name != "apiserver_request_total":
                continue
            labels = sample.labels
            verb = labels.get("verb", "")
            if verb in ("LIST", "WATCH") and labels.get("scope") != "namespace":
                continue
            key = (verb, labels.get("resource", ""), labels.get("subresource", ""))
            out[key] += int(sample.value)
    return out


def no_namespace_terminating(kube_cluster: TestCluster) -> bool:
    """A namespace being deleted (an earlier test's) has the namespace controller LIST
    and DELETE in it: namespace-scoped requests that are not ours."""
    items = kube_cluster.admin.request("GET", "/api/v1/namespaces")["items"]
    return all(ns.get("status", {}).get("phase") != "Terminating" for ns in items)


def scrape_until_exit(process: Process, port: int, *, timeout: float) -> tuple[str, int]:
    """Scrape every 0.2 s until the command has exited; its last scrape and how many
    scrapes saw runs in flight."""
    last: str | None = None
    busy = 0
    deadline = time.monotonic() + timeout
    while process.popen.poll() is None:
        assert time.monotonic() < deadline, "the batch did not end"
        text = scrape(port)
        if text is not None:
            last = text
            if samples(text).get(("asyncpod_runs_in_flight", ()), 0) > 0:
                busy += 1
        time.sleep(0.2)
    assert last is not None, process.stderr
    return last, busy


def test_a_batch_serves_metrics_that_match_its_results_and_the_api_servers_counts(
    cli: Cli, control_plane: LocalControlPlane, kube_cluster: TestCluster, namespace: str
) -> None:
    jobs = cli.workdir / "jobs.yaml"
    jobs.write_text(
        textwrap.dedent(
            """\
            template:
              task_key: "m-{n}"
              image: busybox:1.36
              annotations: "{sim}"
            defaults: {sim: {sim.asyncpod.dev/duration: 1s}}
            parameters:
              - {n: 1}
              - {n: 2}
              - {n: 3, sim: {sim.asyncpod.dev/duration: 500ms, sim.asyncpod.dev/exit-code: "3"}}
              - {n: 4}
              - {n: 5, sim: {sim.asyncpod.dev/exit-code: "137", sim.asyncpod.dev/reason: OOMKilled}}
              - {n: 6}
              - {n: 7}
              - {n: 8, sim: {sim.asyncpod.dev/duration: 2s}}
            """
        )
    )
    results = cli.workdir / "results.jsonl"
    port = free_port()
    wait_until(lambda: no_namespace_terminating(kube_cluster), timeout=120, what="quiet cluster")
    before = server_counts(control_plane)

    process = cli.start(
        "batch", str(jobs), *cli.cluster_args, "--run-id", "metrics-1",
        "--results", str(results), "--max-in-flight", "3", "--progress", "none",
        "--metrics-port", str(port), "--metrics-linger", "120",
    )  # fmt: skip
    last, busy = scrape_until_exit(process, port, timeout=240)

    assert process.popen.returncode == 1, process.stderr  # two tasks failed
    assert f"metrics at http://127.0.0.1:{port}/metrics" in process.stderr
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(lines) == 8
    got = samples(last)
    print(f"\n{busy} scrapes saw runs in flight")

    # Runs: what the results file says, outcome by outcome and reason by reason.
    expected = Counter((line["outcome"], line["reason"] or "") for line in lines)
    assert expected == {("succeeded", "Completed"): 6, ("failed", "Error"): 1,
                        ("failed", "OOMKilled"): 1}  # fmt: skip
    finished = by(got, "asyncpod_runs_finished_total", "outcome", "reason")
    assert finished == expected
    assert got[("asyncpod_runs_started_total", ())] == 8
    assert got[("asyncpod_runs_in_flight", ())] == 0
    assert got[("asyncpod_launcher_queue_depth", ())] == 0
    # Every pod was scheduled, started and finished: one observation per run and phase.
    for phase in ("schedule_latency", "startup_latency", "duration", "result_latency"):
        assert got[(f"asyncpod_run_{phase}_seconds_count", ())] == 8, phase
    # The run time of pods told to run 1 s and more: their phases are measured.
    assert got[("asyncpod_run_duration_seconds_sum", ())] >= 6
    assert got[("asyncpod_watch_opens_total", ())] >= 1
    # Each pod changed on the watch (its first version may come in the first LIST).
    assert sum(by(got, "asyncpod_watch_events_total", "type").values()) >= 8
    assert got[("asyncpod_event_loop_lag_seconds_count", ())] > 0

    # API requests: ours, by verb/resource/subresource, against the server's own counts.
    ours = by(got, "asyncpod_api_requests_total", "verb", "resource", "subresource")
    assert ours[("POST", "pods", "")] == 8 + 1  # the creates and the preflight's dry run
    assert ours[("LIST", "events", "")] == 2  # the failed pods' events
    assert ours[("DELETE", "pods", "")] == 8
    assert ours[("WATCH", "pods", "")] >= 1
    assert ours[("LIST", "pods", "")] >= 2  # the informer's and the resume check's
    # The API server counts a WATCH when it ends: the command's ended with it.
    mine = [key for key in ours if key[1] in ("pods", "events")]
    wait_until(
        lambda: (server_counts(control_plane) - before)[("WATCH", "pods", "")]
        >= ours[("WATCH", "pods", "")],
        timeout=30, what="the API server to count the closed watch",
    )  # fmt: skip
    spent = server_counts(control_plane) - before
    for key in mine:
        if key == ("DELETE", "pods", ""):
            # kwok, the simulated kubelet, deletes each pod once more (grace period 0).
            assert ours[key] <= spent[key], (key, ours[key], spent[key])
        else:
            assert ours[key] == spent[key], (key, ours[key], spent[key])
    # And the other way round: every create and read of pods, and every namespaced LIST
    # and WATCH of pods and events the server counted was ours (the scheduler's and
    # kwok's own requests are bindings, status patches, event posts, cluster-wide).
    theirs = [("POST", "pods", ""), ("GET", "pods", ""), ("LIST", "pods", ""),
              ("WATCH", "pods", ""), ("LIST", "events", ""), ("WATCH", "events", "")]  # fmt: skip
    for key in theirs:
        assert spent[key] == ours[key], (key, ours[key], spent[key])


def test_a_port_in_use_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        jobs = tmp_path / "one.jsonl"
        jobs.write_text(json.dumps({"image": "busybox"}) + "\n")
        process = cli.run("batch", str(jobs), *cli.cluster_args, "--metrics-port", str(port))
    assert process.popen.returncode == 2, process.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in process.stderr


def test_run_serves_metrics_too(cli: Cli) -> None:
    port = free_port()
    process = cli.start(
        "run", "busybox:1.36", *cli.cluster_args, "--no-logs",
        "-a", "sim.asyncpod.dev/duration=500ms", "-a", "sim.asyncpod.dev/exit-code=3",
        "--metrics-port", str(port), "--metrics-linger", "120",
    )  # fmt: skip
    last, _ = scrape_until_exit(process, port, timeout=120)
    assert process.popen.returncode == 3, process.stderr
    got = samples(last)
    assert by(got, "asyncpod_runs_finished_total", "outcome", "reason") == {("failed", "Error"): 1}
    assert by(got, "asyncpod_api_requests_total", "verb", "resource")[("POST", "pods")] == 1
    assert got[("asyncpod_runs_in_flight", ())] == 0


def test_otel_variables_turn_on_traces_a_span_per_run_under_the_commands(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "nightly")
    process = cli.run(
        "run", "busybox:1.36", *cli.cluster_args, "--no-logs",
        "-a", "sim.asyncpod.dev/duration=300ms",
    )  # fmt: skip
    assert process.popen.returncode == 0, process.stderr
    spans: list[dict[str, Any]] = []
    decoder, text = json.JSONDecoder(), process.stdout.strip()
    while text:
        span, end = decoder.raw_decode(text)
        spans.append(span)
        text = text[end:].strip()
    by_name = {span["name"]: span for span in spans}
    command, run = by_name["asyncpod run"], by_name["asyncpod.run"]
    assert run["parent_id"] == command["context"]["span_id"]
    assert run["context"]["trace_id"] == command["context"]["trace_id"]
    assert [e["name"] for e in run["events"]][-1] == "result"
    assert run["attributes"]["asyncpod.outcome"] == "succeeded"
    assert run["resource"]["attributes"]["service.name"] == "nightly"
