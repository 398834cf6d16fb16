"""The projection the informer keeps changes no decision and no result.

Every version of every recorded pod (kwok's and a real kubelet's): each function of
lifecycle gives the same answer for ``project(pod)`` as for the pod itself, and each
transition between consecutive versions is the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from asyncpod.core import lifecycle
from asyncpod.results import Outcome

RECORDED = Path(__file__).parent / "pods" / "recorded"
SCENARIOS = sorted(
    p
    for p in [*RECORDED.glob("*.json"), *(RECORDED / "real").glob("*.json")]
    if not p.name.endswith(".events.json")
)


def versions(path: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(path.read_text())
    return [event["object"] for event in events]


def test_there_are_recordings_of_both_kinds() -> None:
    assert len(SCENARIOS) >= 14
    assert any(p.parent.name == "real" for p in SCENARIOS)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_projection_answers_like_the_pod(path: Path) -> None:
    previous: dict[str, Any] | None = None
    previous_projected: dict[str, Any] | None = None
    for pod in versions(path):
        projected = lifecycle.project(pod)
        assert lifecycle.pod_state(projected) == lifecycle.pod_state(pod)
        assert lifecycle.is_terminal(projected) == lifecycle.is_terminal(pod)
        assert lifecycle.blocking_reason(projected) == lifecycle.blocking_reason(pod)
        assert lifecycle.pod_reason(projected) == lifecycle.pod_reason(pod)
        assert lifecycle.main_container_name(projected) == lifecycle.main_container_name(pod)
        assert lifecycle.main_finished(projected) == lifecycle.main_finished(pod)
        assert lifecycle.container_results(projected) == lifecycle.container_results(pod)
        outcome = None if lifecycle.is_terminal(pod) else Outcome.CANCELLED
        assert lifecycle.build_result(projected, outcome=outcome) == lifecycle.build_result(
            pod, outcome=outcome
        )
        assert lifecycle.transition(previous_projected, projected) == lifecycle.transition(
            previous, pod
        )
        previous, previous_projected = pod, projected


def test_projection_drops_what_nothing_reads_and_keeps_the_rest() -> None:
    pod = versions(RECORDED / "success.json")[-1]
    pod = {**pod, "metadata": {**pod["metadata"], "managedFields": [{"manager": "kubelet"}]}}
    projected = lifecycle.project(pod)
    assert "managedFields" not in projected["metadata"]
    assert projected["status"] == pod["status"]
    assert "volumes" in pod["spec"]
    assert "volumes" not in projected["spec"]
    assert projected["spec"]["nodeName"] == pod["spec"]["nodeName"]
    assert [c["name"] for c in projected["spec"]["containers"]] == [
        c["name"] for c in pod["spec"]["containers"]
    ]
    assert set(projected["spec"]["containers"][0]) <= {"name", "image", "restartPolicy"}
    assert pod["metadata"]["managedFields"]  # the input is not mutated
