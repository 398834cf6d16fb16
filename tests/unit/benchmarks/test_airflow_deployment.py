"""The Airflow deployment benchmark's pure parts: how requests and loop blocks are read.

The figures in benchmarks/README.md's Airflow section come from these; the benchmark
itself (real Airflow, a control plane) is run by hand, never by the suite.
"""

from __future__ import annotations

import ast
import datetime as dt
from typing import Any

import pytest

from benchmarks.airflow_deployment import (
    CONTENDERS,
    classify_request,
    dag_source,
    parse_blocked,
    parse_blocked_at,
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


def test_when_each_blocked_warning_came_is_read_from_its_line() -> None:
    text = (
        "2026-12-06 02:02:52 [info     ] Triggerer's async thread was blocked for 0.21 "
        "seconds, likely by a badly-written trigger.\n"
        "2026-12-06T11:49:08.5Z [info     ] Triggerer's async thread was blocked for 0.72 "
        "seconds, exceeding the configured warning threshold of 0.20 seconds.\n"
        "[2026-12-06T11:49:09.000+0000] {x.py:1} INFO - trigger starting\n"
        "Triggerer's async thread was blocked for 3.10 seconds\n"
    )
    first = dt.datetime(2026, 12, 6, 2, 2, 52, tzinfo=dt.timezone.utc).timestamp()
    second = dt.datetime(2026, 12, 6, 11, 49, 8, 500000, tzinfo=dt.timezone.utc).timestamp()
    assert parse_blocked_at(text) == [(first, 0.21), (second, 0.72), (None, 3.10)]


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
