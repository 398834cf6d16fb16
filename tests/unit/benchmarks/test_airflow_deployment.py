"""The Airflow deployment benchmark's pure parts: how requests and loop blocks are read.

The figures in benchmarks/README.md's Airflow section come from these; the benchmark
itself (real Airflow, a control plane) is run by hand, never by the suite.
"""

from __future__ import annotations

import ast
from typing import Any

import pytest

from benchmarks.airflow_deployment import (
    CONTENDERS,
    classify_request,
    dag_source,
    parse_blocked,
    spread,
)


def entry(verb: str, uri: str, resource: str = "pods", sub: str = "") -> dict[str, Any]:
    ref = {"resource": resource, **({"subresource": sub} if sub else {})}
    return {"verb": verb, "requestURI": uri, "objectRef": ref}


@pytest.mark.parametrize(
    ("audit", "expected"),
    [
        (entry("get", "/api/v1/namespaces/n/pods/p"), "GET pods"),
        (entry("create", "/api/v1/namespaces/n/pods"), "POST pods"),
        (entry("get", "/api/v1/namespaces/n/pods/p/log", sub="log"), "GET pods/log"),
        (
            entry("list", "/api/v1/namespaces/n/pods?labelSelector=asyncpod.dev%2Fti%3Dabc"),
            "LIST pods [ti]",
        ),
        (
            entry(
                "watch",
                "/api/v1/namespaces/n/pods?watch=1&labelSelector="
                "app.kubernetes.io%2Fmanaged-by%3Dasyncpod",
            ),
            "WATCH pods [managed]",
        ),
        (entry("list", "/api/v1/namespaces/n/pods?labelSelector=dag_id%3Dd"), "LIST pods [other]"),
        (entry("list", "/api/v1/namespaces/n/pods"), "LIST pods [none]"),
        (entry("list", "/api/v1/namespaces/n/events", resource="events"), "LIST events [none]"),
    ],
)
def test_requests_are_counted_by_verb_resource_and_selector(
    audit: dict[str, Any], expected: str
) -> None:
    assert classify_request(audit) == expected


def test_airflows_blocked_warnings_are_read_from_the_triggerer_log() -> None:
    text = (
        "[info] Triggerer's async thread was blocked for 0.82 seconds, exceeding the "
        "configured warning threshold of 0.20 seconds.\n"
        "[info] trigger starting\n"
        "Triggerer's async thread was blocked for 3.10 seconds, exceeding ...\n"
    )
    assert parse_blocked(text) == [0.82, 3.10]
    assert parse_blocked("nothing here") == []


def test_spread() -> None:
    assert spread([]) == {"n": 0, "median": None, "p95": None, "max": None}
    assert spread([3.0, 1.0, 2.0]) == {"n": 3, "median": 2.0, "p95": 3.0, "max": 3.0}


@pytest.mark.parametrize("contender", sorted(CONTENDERS))
def test_the_dag_file_is_python_with_every_task(contender: str) -> None:
    source = dag_source(contender, 7, 3, 30.0)
    ast.parse(source)
    assert CONTENDERS[contender][0] in source
    assert "[3, 2, 2]" in source  # 7 tasks over 3 DAGs
    assert ("start_from_trigger=True" in source) == (contender == "asyncpod-start")
