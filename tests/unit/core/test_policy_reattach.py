"""clock_from_pod: a reattached pod that is bound but not started keeps its startup limits."""

from __future__ import annotations

from datetime import datetime, timezone

from asyncpod.core.policy import RunOptions, clock_from_pod, judge

NOW = datetime(2026, 1, 1, 0, 1, 0, tzinfo=timezone.utc)
PULLING = {
    "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
    "spec": {"nodeName": "n1", "containers": [{"name": "base"}]},
    "status": {
        "phase": "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ],
        "containerStatuses": [
            {"name": "base", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "x"}}}
        ],
    },
}


def test_a_bound_pod_pulling_its_image_is_not_started() -> None:
    clock = clock_from_pod(PULLING, now=1000.0, wall_now=NOW)
    assert clock.scheduled == 940.0
    assert clock.started is None


def test_its_startup_timeout_still_fires_after_a_reattach() -> None:
    clock = clock_from_pod(PULLING, now=1000.0, wall_now=NOW)
    options = RunOptions(startup_timeout=30, image_pull_timeout=None)
    verdict = judge(PULLING, clock, options, now=1000.0, main_container="base")
    assert verdict is not None
    assert verdict.reason == "ImagePullBackOff"
