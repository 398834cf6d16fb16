"""Deleting the provider's pods through the pods API: what is sent, what is logged.

Against the loopback fake API server (:mod:`tests.unit.kube.fakeapi`); the trigger and
the operator call these functions and nothing else to delete a pod.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from asyncpod.airflow.deletion import delete_earlier_tries, delete_pod
from asyncpod.airflow.tries import TI_LABEL, TryKey
from asyncpod.errors import ForbiddenError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.pods import pod_path
from tests.unit.kube.fakeapi import FakeApiServer, fail, reply

LOG = logging.getLogger("tests.airflow.deletion")
KEY = TryKey("dag", "task", "run", -1, 3)


def pod(name: str, uid: str, try_number: int) -> dict[str, Any]:
    labels = {TI_LABEL: KEY.ti_hash(), "asyncpod.dev/airflow-try": str(try_number)}
    return {"metadata": {"name": name, "uid": uid, "labels": labels}}


async def test_delete_pod_by_uid_with_the_grace_period(
    api: FakeApiServer, client: KubeClient, caplog: pytest.LogCaptureFixture
) -> None:
    api.on("DELETE", pod_path("ns", "p"), reply(pod("p", "u1", 3)))
    caplog.set_level(logging.INFO, LOG.name)

    assert await delete_pod(client, "ns", "p", uid="u1", grace_period=5, log=LOG) is True

    body = orjson.loads(api.seen("DELETE")[0].body)
    assert body["preconditions"] == {"uid": "u1"}
    assert body["gracePeriodSeconds"] == 5
    assert body["propagationPolicy"] == "Background"
    assert "deleted pod ns/p" in caplog.messages


async def test_a_deletion_left_to_the_caller_to_announce_logs_only_a_pod_already_gone(
    api: FakeApiServer, client: KubeClient, caplog: pytest.LogCaptureFixture
) -> None:
    api.on("DELETE", pod_path("ns", "p"), reply(pod("p", "u1", 3)))
    api.on("DELETE", pod_path("ns", "gone"), fail(404, "NotFound", 'pods "gone" not found'))
    caplog.set_level(logging.INFO, LOG.name)

    assert await delete_pod(client, "ns", "p", uid="u1", grace_period=None, log=LOG, announce=False)
    gone = await delete_pod(
        client, "ns", "gone", uid="u2", grace_period=None, log=LOG, announce=False
    )

    assert gone is False
    said = [record.getMessage() for record in caplog.records if record.name == LOG.name]
    assert said == ["pod ns/gone is already gone"]


async def test_delete_pod_without_uid_or_grace_sends_neither(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("DELETE", pod_path("ns", "p"), reply(pod("p", "u1", 3)))

    assert await delete_pod(client, "ns", "p", uid="", grace_period=None, log=LOG) is True

    body = orjson.loads(api.seen("DELETE")[0].body)
    assert "preconditions" not in body
    assert "gracePeriodSeconds" not in body


@pytest.mark.parametrize(
    ("uid", "answer"),
    [
        ("u1", fail(404, "NotFound", 'pods "p" not found')),
        ("u1", fail(409, "Conflict", "Precondition failed: UID in precondition: u1")),
        (None, fail(409, "Conflict", "something else")),
    ],
    ids=["gone", "namesake", "conflict-without-uid"],
)
async def test_a_pod_not_ours_to_delete_is_already_gone(
    api: FakeApiServer,
    client: KubeClient,
    caplog: pytest.LogCaptureFixture,
    uid: str | None,
    answer: Any,
) -> None:
    api.on("DELETE", pod_path("ns", "p"), answer)
    caplog.set_level(logging.INFO, LOG.name)

    assert await delete_pod(client, "ns", "p", uid=uid, grace_period=None, log=LOG) is False
    told = [record.getMessage() for record in caplog.records if record.name == LOG.name]
    assert told == ["pod ns/p is already gone"]


async def test_other_failures_are_raised(api: FakeApiServer, client: KubeClient) -> None:
    api.on("DELETE", pod_path("ns", "p"), fail(403, "Forbidden", 'cannot delete resource "pods"'))

    with pytest.raises(ForbiddenError):
        await delete_pod(client, "ns", "p", uid="u1", grace_period=None, log=LOG)


async def test_earlier_tries_are_listed_once_and_deleted_by_uid(
    api: FakeApiServer, client: KubeClient, caplog: pytest.LogCaptureFixture
) -> None:
    listing = {
        "metadata": {"resourceVersion": "7"},
        "items": [pod("try1", "u1", 1), pod("try2", "u2", 2), pod("try3", "u3", 3)],
    }
    api.on("GET", pod_path("ns"), reply(listing))
    api.on("DELETE", pod_path("ns", "try1"), reply(pod("try1", "u1", 1)))
    api.on("DELETE", pod_path("ns", "try2"), fail(404, "NotFound", 'pods "try2" not found'))
    caplog.set_level(logging.INFO, LOG.name)

    deleted = await delete_earlier_tries(client, "ns", KEY, grace_period=0, log=LOG)

    assert deleted == ["try1"]
    (listed,) = api.seen("GET")
    assert listed.query["labelSelector"] == f"{TI_LABEL}={KEY.ti_hash()}"
    bodies = {seen.path: orjson.loads(seen.body) for seen in api.seen("DELETE")}
    assert bodies[pod_path("ns", "try1")]["preconditions"] == {"uid": "u1"}
    assert bodies[pod_path("ns", "try2")]["preconditions"] == {"uid": "u2"}
    assert all(body["gracePeriodSeconds"] == 0 for body in bodies.values())
    assert pod_path("ns", "try3") not in bodies
    assert "deleted pod try1 of an earlier try" in caplog.messages
    assert "pod ns/try2 is already gone" in caplog.messages
