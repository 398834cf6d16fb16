"""The API server's request counters, read from its ``/metrics`` text."""

from __future__ import annotations

from asyncpod.testing.controlplane import parse_request_counts

METRICS = """\
# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="cluster",subresource="",verb="LIST",version="v1"} 4
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 7
apiserver_request_total{code="404",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 1
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="GET",version="v1"} 3
apiserver_request_duration_seconds_count{resource="pods",scope="namespace",verb="LIST"} 99
"""


def test_samples_are_summed_over_codes_and_scopes() -> None:
    counts = parse_request_counts(METRICS)
    assert counts.get("LIST", "pods") == 12
    assert counts.get("POST", "pods", "binding") == 2
    assert counts.get("GET", "pods") == 3
    assert counts.get("DELETE", "pods") == 0


def test_namespaced_lists_only_leaves_out_cluster_wide_lists_and_nothing_else() -> None:
    own = parse_request_counts(METRICS, namespaced_lists_only=True)
    assert own.get("LIST", "pods") == 8
    assert own.get("POST", "pods", "binding") == 2  # scope="resource", not a list
    assert own.get("GET", "pods") == 3


def test_a_difference_counts_only_what_happened_between() -> None:
    before = parse_request_counts(METRICS, namespaced_lists_only=True)
    after = parse_request_counts(METRICS.replace("} 7\n", "} 10\n"), namespaced_lists_only=True)
    assert (after - before).get("LIST", "pods") == 3
    assert (after - before).get("POST", "pods", "binding") == 0
