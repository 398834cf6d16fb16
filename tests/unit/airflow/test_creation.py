"""The worker path's create: what it sends, how a 409 is resolved, what the trigger gets.

Against the loopback fake API server (:mod:`tests.unit.kube.fakeapi`), which records
every request: the worker must make one POST, no WATCH and no namespace-wide LIST; on
409 one LIST selected to the task instance's pods, shared with the earlier-tries sweep.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiohttp import web

from asyncpod.airflow.creation import create_try_pod, try_selector
from asyncpod.airflow.operators import KubernetesPodOperator
from asyncpod.airflow.tries import TI_LABEL, TRY_LABEL, TryKey, pod_name_for
from asyncpod.core.policy import CREATE_ATTEMPT_ANNOTATION
from asyncpod.errors import ConfigError, ConflictError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.pods import pod_path
from asyncpod.spec import TASK_KEY_ANNOTATION, PodSpec
from tests.unit.kube.fakeapi import TOKEN, FakeApiServer, fail, json_response, reply

KEY = TryKey("dag", "mapped", "run", 2, 1)
NAME = "mapped-pod-1"


def spec_for(key: TryKey) -> PodSpec:
    template = {"metadata": {"labels": key.labels()}}  # as the operator's manifest has them
    return PodSpec("busybox", container_name="base", task_key=key.task_key(), template=template)


def stored(manifest: dict[str, Any], uid: str = "u-1", rv: str = "101") -> dict[str, Any]:
    """``manifest`` as the API server stores it."""
    pod: dict[str, Any] = json.loads(json.dumps(manifest))
    pod["metadata"].update(uid=uid, resourceVersion=rv)
    return pod


def echo(uid: str = "u-1", rv: str = "101") -> Any:
    """A POST handler answering 201 with the posted pod, as stored."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return json_response(stored(orjson.loads(await request.read()), uid, rv), 201)

    return handler


async def test_one_post_and_nothing_else_hands_back_uid_and_resource_version(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("POST", pod_path("ns"), echo())
    spec = spec_for(KEY)

    pod = await create_try_pod(client, "ns", spec, NAME, KEY)

    assert (pod.name, pod.uid, pod.resource_version, pod.reattached) == (NAME, "u-1", "101", False)
    assert pod.listed is None
    assert [(r.method, r.path) for r in api.requests] == [("POST", pod_path("ns"))]
    # The very pod a session's run posts: the spec's manifest, plus the attempt token.
    posted = orjson.loads(api.requests[0].body)
    token = posted["metadata"]["annotations"].pop(CREATE_ATTEMPT_ANNOTATION)
    assert len(token) == 16
    assert posted == spec.to_manifest(namespace="ns", name=NAME, labels={})


async def test_409_for_this_try_reattaches_from_one_selected_list(
    api: FakeApiServer, client: KubeClient
) -> None:
    spec = spec_for(KEY)
    earlier = stored(spec.to_manifest(namespace="ns", name=NAME), uid="u-old", rv="77")
    api.on("POST", pod_path("ns"), fail(409, "AlreadyExists", f'pods "{NAME}" already exists'))
    api.on(
        "GET", pod_path("ns"), reply({"metadata": {"resourceVersion": "90"}, "items": [earlier]})
    )

    pod = await create_try_pod(client, "ns", spec, NAME, KEY)

    assert (pod.uid, pod.resource_version, pod.reattached) == ("u-old", "77", True)
    assert pod.listed == [earlier]
    (listed,) = api.seen("GET")
    assert listed.path == pod_path("ns")
    assert listed.query["labelSelector"] == try_selector(KEY) == f"{TI_LABEL}={KEY.ti_hash()}"
    assert "watch" not in listed.query
    assert [r.method for r in api.requests] == ["POST", "GET"]


async def test_a_create_answered_late_is_adopted_by_its_token(
    api: FakeApiServer, client: KubeClient
) -> None:
    posted: list[dict[str, Any]] = []

    async def lost(request: web.Request) -> web.StreamResponse:
        posted.append(orjson.loads(await request.read()))
        return web.Response(status=503, text="the answer was lost")

    async def listing(request: web.Request) -> web.StreamResponse:
        return json_response({"metadata": {"resourceVersion": "5"}, "items": [stored(posted[0])]})

    api.on("POST", pod_path("ns"), lost, fail(409, "AlreadyExists", "exists"))
    api.on("GET", pod_path("ns"), listing)

    pod = await create_try_pod(client, "ns", spec_for(KEY), NAME, KEY, retry_window=5)

    assert (pod.uid, pod.reattached) == ("u-1", False)  # ours: created, not reattached


async def test_a_namesake_of_another_task_is_refused_as_the_runner_does(
    api: FakeApiServer, client: KubeClient
) -> None:
    other = {"metadata": {"name": NAME, "uid": "x", "annotations": {TASK_KEY_ANNOTATION: "t"}}}
    api.on("POST", pod_path("ns"), fail(409, "AlreadyExists", "exists"))
    api.on("GET", pod_path("ns"), reply({"metadata": {"resourceVersion": "5"}, "items": []}))
    api.on("GET", pod_path("ns", NAME), reply(other))

    with pytest.raises(ConflictError, match="belongs to another run or task"):
        await create_try_pod(client, "ns", spec_for(KEY), NAME, KEY)
    assert len(api.seen("POST")) == 1


# ---------------------------------------------------------------- the operator
def kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}],
        "current-context": "x",
    }
    path.write_text(json.dumps(config))
    return path


def worker_operator(api: FakeApiServer, tmp_path: Path, task_id: str) -> KubernetesPodOperator:
    """An operator on ``api``, which answers its create (uid u-1, resourceVersion 4242)
    and an empty sweep of earlier tries."""
    api.on("POST", pod_path("ns"), echo(rv="4242"))
    api.on("GET", pod_path("ns"), reply({"metadata": {"resourceVersion": "5"}, "items": []}))
    return KubernetesPodOperator(
        task_id=task_id, image="busybox", config_file=str(kubeconfig(tmp_path, api.url)),
        kubernetes_conn_id=None,
    )  # fmt: skip


def defer(op: KubernetesPodOperator, key: TryKey) -> Any:
    """Run the worker path (execute) as a worker does; the trigger it defers to."""
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow 3.0 and 3.1
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

    ti = SimpleNamespace(
        dag_id=key.dag_id, task_id=key.task_id, run_id=key.run_id,
        map_index=key.map_index, try_number=key.try_number,
    )  # fmt: skip
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": ti})
    return deferred.value.trigger


@pytest.mark.parametrize("try_number", [1, 3])
async def test_a_deferring_worker_posts_once_and_lists_only_to_sweep_earlier_tries(
    api: FakeApiServer, tmp_path: Path, try_number: int
) -> None:
    key = TryKey("dag", "mapped", "run", 2, try_number)
    name = pod_name_for("mapped", **{f: getattr(key, f) for f in (
        "dag_id", "task_id", "run_id", "map_index", "try_number")})  # fmt: skip
    op = worker_operator(api, tmp_path, "mapped")

    trigger = await asyncio.to_thread(defer, op, key)

    _, kwargs = trigger.serialize()
    assert (kwargs["pod_name"], kwargs["pod_namespace"]) == (name, "ns")
    assert (kwargs["pod_uid"], kwargs["pod_resource_version"]) == ("u-1", "4242")
    methods = [r.method for r in api.requests]
    if try_number == 1:
        assert methods == ["POST"]  # a first try has no earlier try to sweep
    else:
        assert methods == ["POST", "GET"]
        assert api.seen("GET")[0].query["labelSelector"] == try_selector(key)
    posted = orjson.loads(api.seen("POST")[0].body)["metadata"]
    assert posted["labels"][TRY_LABEL] == str(try_number)
    assert posted["annotations"][TASK_KEY_ANNOTATION] == key.task_key()


async def test_a_409_on_a_later_try_lists_once_for_both_the_conflict_and_the_sweep(
    api: FakeApiServer, tmp_path: Path
) -> None:
    key = TryKey("dag", "mapped", "run", 2, 3)
    op = KubernetesPodOperator(
        task_id="mapped", image="busybox", config_file=str(kubeconfig(tmp_path, api.url)),
        kubernetes_conn_id=None,
    )  # fmt: skip
    name = pod_name_for("mapped", dag_id="dag", task_id="mapped", run_id="run", map_index=2,
                        try_number=3)  # fmt: skip
    spec = PodSpec(
        "busybox",
        container_name="base",
        task_key=key.task_key(),
        template=op.build_manifest(extra_labels=key.labels()),
    )
    ours = stored(spec.to_manifest(namespace="ns", name=name), uid="u-3", rv="33")
    first_try = stored(spec.to_manifest(namespace="ns", name="old"), uid="u-1", rv="11")
    first_try["metadata"]["labels"][TRY_LABEL] = "1"
    api.on("POST", pod_path("ns"), fail(409, "AlreadyExists", "exists"))
    api.on(
        "GET",
        pod_path("ns"),
        reply({"metadata": {"resourceVersion": "5"}, "items": [first_try, ours]}),
    )
    api.on("DELETE", pod_path("ns", "old"), reply(first_try))

    trigger = await asyncio.to_thread(defer, op, key)

    assert (trigger.pod_uid, trigger.pod_resource_version) == ("u-3", "33")
    assert [r.method for r in api.requests] == ["POST", "GET", "DELETE"]
    assert orjson.loads(api.seen("DELETE")[0].body)["preconditions"] == {"uid": "u-1"}


@pytest.mark.parametrize(
    ("variable", "value", "option"),
    [("RESUME_HOLD", "soon", "resume_hold"), ("TRIGGERER_GC_FREEZE", "maybe", "triggerer_gc_freeze"),
     ("CLIENT_QPS", "fast", "client_qps")],
)  # fmt: skip
async def test_a_bad_triggerer_setting_fails_the_deferring_task_before_any_pod(
    api: FakeApiServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    option: str,
) -> None:
    """The triggerer would meet it with the pod running; the worker refuses it first."""
    monkeypatch.setenv(f"AIRFLOW__ASYNCPOD__{variable}", value)
    op = worker_operator(api, tmp_path, "t")
    ti = SimpleNamespace(dag_id="dag", task_id="t", run_id="run", map_index=-1, try_number=1)

    with pytest.raises(ConfigError, match=rf"\[asyncpod\] {option} .*{value}"):
        await asyncio.to_thread(op.execute, {"ti": ti})
    assert api.seen("POST") == []
