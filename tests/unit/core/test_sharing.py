"""ValueTable: repeated values of kept pods share one copy, and nothing else changes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson

from asyncpod.core import lifecycle
from asyncpod.core.sharing import ValueTable

RECORDED = Path(__file__).parents[1] / "pods" / "recorded"


def _pod(name: str, uid: str, *, ready: Any = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "jobs", "uid": uid, "labels": {"app": "x"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "main", "image": "busybox"}]},
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True", "lastProbeTime": None},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None},
            ],
            "hostIPs": [{"ip": "10.0.0.1"}],
            "containerStatuses": [
                {"name": "main", "ready": ready, "restartCount": 0, "state": {"running": {}}}
            ],
        },
    }


def test_shared_pods_equal_what_was_decoded() -> None:
    table = ValueTable()
    for name in ("a", "b", "c"):
        pod = _pod(name, f"uid-{name}")
        before = copy.deepcopy(pod)
        assert table.share(pod) is pod
        assert pod == before


def test_repeated_values_are_one_object() -> None:
    table = ValueTable()
    first = table.share(orjson.loads(orjson.dumps(_pod("a", "uid-a"))))
    second = table.share(orjson.loads(orjson.dumps(_pod("b", "uid-b"))))
    assert first["status"]["conditions"] is second["status"]["conditions"]
    assert first["status"]["hostIPs"] is second["status"]["hostIPs"]
    assert first["spec"]["containers"] is second["spec"]["containers"]
    assert first["metadata"]["labels"]["app"] is second["metadata"]["labels"]["app"]
    assert first["spec"]["nodeName"] is second["spec"]["nodeName"]
    assert first["metadata"]["namespace"] is second["metadata"]["namespace"]
    # What differs stays each pod's own; label sets are shared value by value.
    assert first["metadata"] is not second["metadata"]
    assert first["metadata"]["labels"] is not second["metadata"]["labels"]
    assert first["metadata"]["uid"] != second["metadata"]["uid"]


def test_equal_but_differently_typed_scalars_are_not_conflated() -> None:
    """True == 1 == 1.0 in Python; a pod must keep the JSON type it was sent."""
    table = ValueTable()
    with_true = table.share(_pod("a", "uid-a", ready=True))
    with_one = table.share(_pod("b", "uid-b", ready=1))
    with_float = table.share(_pod("c", "uid-c", ready=1.0))
    assert with_true["status"]["containerStatuses"][0]["ready"] is True
    assert type(with_one["status"]["containerStatuses"][0]["ready"]) is int
    assert type(with_float["status"]["containerStatuses"][0]["ready"]) is float


def test_the_table_starts_afresh_at_capacity() -> None:
    table = ValueTable(capacity=10)
    for index in range(50):
        table.share(_pod(f"p{index}", f"uid-{index}"))
        assert len(table) <= 10 + 20  # one pod's worth over the capacity at most
    shared = table.share(_pod("last", "uid-last"))
    assert shared == _pod("last", "uid-last")


def test_lifecycle_answers_the_same_for_shared_pods() -> None:
    """Every recorded pod version, projected and shared, judged as the original."""
    table = ValueTable()
    checked = 0
    for path in sorted(RECORDED.rglob("*.json")):
        if path.name.endswith(".events.json"):
            continue
        for event in json.loads(path.read_text()):  # the watch events of one pod
            pod = event["object"]
            original = copy.deepcopy(pod)
            shared = table.share(lifecycle.project(copy.deepcopy(pod)))
            assert lifecycle.pod_state(shared) == lifecycle.pod_state(original)
            assert lifecycle.blocking_reason(shared) == lifecycle.blocking_reason(original)
            assert lifecycle.is_terminal(shared) == lifecycle.is_terminal(original)
            checked += 1
    assert checked > 0
