"""``asyncpod batch --submit``: launcher shards as an Indexed Job, for real (issue 17).

The shards are the asyncpod image of this checkout running on the real node (kubelet +
containerd), reaching the API server on loopback through the host's network; the
batch's own pods run on kwok nodes, whose outcomes come from annotations. Results go
to a claim bound to a pre-created hostPath PersistentVolume (this control plane has no
storage provisioner; a real cluster's default storage class would make the claim).

What is checked from the outside, as a user would: every task has exactly one final
result in ``batch results``, equal to what a local batch of the same input gives; a
shard pod deleted and a shard process SIGKILLed mid-run are replaced by the Job, resume,
and no task's pod is created twice (POST pods answered 201, counted by the API server);
``batch status`` while running and after; ``batch cancel`` leaves no pod; a bad input,
a missing permission to create Jobs and a claim that does not exist are clear errors
with nothing created.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncpod.spec import RUN_ID_LABEL
from asyncpod.testing import images
from asyncpod.testing.binaries import cache_dir
from asyncpod.testing.pytest_plugin import RealNode, TestCluster
from asyncpod.testing.rbac import service_account_kubeconfig
from asyncpod.testing.simulate import outcome
from tests.cli.helpers import Cli, pod_creates, pods, wait_until

pytestmark = pytest.mark.integration

BATCH_LABEL = "asyncpod.dev/batch"
# What a user submitting a batch needs: the objects it makes and reads, and (to grant
# them to the shards' Role) the shards' own permissions.
SUBMITTER_RULES: tuple[dict[str, Any], ...] = (
    {"apiGroups": [""], "resources": ["configmaps", "serviceaccounts"],
     "verbs": ["create", "get", "list", "delete"]},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["pods"],
     "verbs": ["create", "get", "list", "watch", "delete", "patch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
     "verbs": ["create", "get", "delete"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "delete"]},
)  # fmt: skip


def write_input(path: Path, count: int, *, duration: float) -> Path:
    """``count`` tasks on kwok nodes; every 50th exits 3 (a failure a local batch records
    the same way: not retried by default)."""
    lines = []
    for i in range(count):
        annotations = outcome(duration=duration, exit_code=3 if i % 50 == 7 else 0)
        lines.append(
            json.dumps({"task_key": f"t{i:04d}", "image": "busybox", "annotations": annotations})
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def shard_image(kube_cluster: TestCluster, real_node: RealNode) -> str:
    """``localhost/asyncpod:dev`` of this checkout as it is now, in the real node."""
    try:
        image = images.ensure_asyncpod_image(cache_dir(), lambda _: None)
    except images.ImageBuildError as error:
        pytest.skip(f"the asyncpod image cannot be built here: {error}")
    assert kube_cluster.local is not None
    kube_cluster.local.import_images([image.archive])
    return image.name


@pytest.fixture
def shard_template(kube_cluster: TestCluster, real_node: RealNode, tmp_path: Path) -> Path:
    """Shards on the real node, on the host's network, told where the API server is (no
    kube-proxy here: the Service address leads nowhere)."""
    assert kube_cluster.local is not None
    url = urllib.parse.urlsplit(kube_cluster.local.server)
    env = [
        {"name": "KUBERNETES_SERVICE_HOST", "value": url.hostname},
        {"name": "KUBERNETES_SERVICE_PORT", "value": str(url.port)},
    ]
    template = {
        "spec": {
            "nodeSelector": dict(real_node.node_selector),
            "tolerations": [dict(t) for t in real_node.tolerations],
            "hostNetwork": True,
            "dnsPolicy": "ClusterFirstWithHostNet",
            "containers": [{"name": "shard", "env": env}],
        }
    }
    path = tmp_path / "shard-template.json"
    path.write_text(json.dumps(template))
    return path


@pytest.fixture
def results_claim(kube_cluster: TestCluster, namespace: str, tmp_path: Path) -> Iterator[str]:
    """A claim bound to a hostPath volume on this machine (where the real node runs)."""
    directory = tmp_path / "results-volume"
    directory.mkdir()
    directory.chmod(0o777)  # the image's user, 10001, writes there
    pv, claim = f"{namespace}-results", "results"
    admin = kube_cluster.admin
    admin.request("POST", "/api/v1/persistentvolumes", {
        "metadata": {"name": pv},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "asyncpod-test",
                 "hostPath": {"path": str(directory), "type": "Directory"},
                 "claimRef": {"namespace": namespace, "name": claim}},
    })  # fmt: skip
    admin.request("POST", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", {
        "metadata": {"name": claim},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "asyncpod-test",
                 "volumeName": pv, "resources": {"requests": {"storage": "1Gi"}}},
    })  # fmt: skip
    path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}"
    wait_until(
        lambda: admin.request("GET", path).get("status", {}).get("phase") == "Bound",
        timeout=60,
        what="the claim to bind",
    )
    yield claim
    with contextlib.suppress(Exception):  # best effort; the namespace goes anyway
        admin.request("DELETE", f"/api/v1/persistentvolumes/{pv}")


def submitted(kube_cluster: TestCluster, namespace: str, run_id: str) -> dict[str, int]:
    """Objects carrying the run's label, by kind (what --submit created)."""
    admin = kube_cluster.admin
    core = f"/api/v1/namespaces/{namespace}"
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    paths = {
        "configmaps": f"{core}/configmaps",
        "serviceaccounts": f"{core}/serviceaccounts",
        "roles": f"{rbac}/roles",
        "rolebindings": f"{rbac}/rolebindings",
        "jobs": f"/apis/batch/v1/namespaces/{namespace}/jobs",
    }
    return {
        kind: len(admin.request("GET", f"{path}?labelSelector={BATCH_LABEL}={run_id}")["items"])
        for kind, path in paths.items()
    }


def shard_pods(kube_cluster: TestCluster, namespace: str, run_id: str) -> list[Any]:
    return pods(kube_cluster, namespace, f"{BATCH_LABEL}={run_id},asyncpod.dev/batch-role=shard")


def progress_done(kube_cluster: TestCluster, namespace: str, run_id: str) -> int:
    total = 0
    for pod in shard_pods(kube_cluster, namespace, run_id):
        text = (pod["metadata"].get("annotations") or {}).get("asyncpod.dev/progress")
        if text:
            total = max(total, json.loads(text)["done"])
    return total


def job_done(kube_cluster: TestCluster, namespace: str, run_id: str) -> str | None:
    path = f"/apis/batch/v1/namespaces/{namespace}/jobs/{run_id}-shards"
    job = kube_cluster.admin.request("GET", path)
    for condition in job.get("status", {}).get("conditions") or ():
        if condition["status"] == "True" and condition["type"] in ("Complete", "Failed"):
            return str(condition["type"])
    return None


class PodWitness:
    """Every pod of the namespace seen by a LIST every 0.2 s, by name: its uids (a task's
    pod lives for seconds, so none goes unseen). A name with two uids was made twice."""

    def __init__(self, kube_cluster: TestCluster, namespace: str) -> None:
        self.uids: dict[str, set[str]] = {}
        self.labels: dict[str, dict[str, str]] = {}
        self._path = f"/api/v1/namespaces/{namespace}/pods"
        self._admin = kube_cluster.admin
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-witness", daemon=True)

    def __enter__(self) -> PodWitness:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            with contextlib.suppress(Exception):
                for pod in self._admin.request("GET", self._path)["items"]:
                    metadata = pod["metadata"]
                    self.uids.setdefault(metadata["name"], set()).add(metadata["uid"])
                    self.labels[metadata["name"]] = metadata.get("labels") or {}

    def made_twice(self) -> dict[str, int]:
        return {name: len(uids) for name, uids in self.uids.items() if len(uids) > 1}


@pytest.fixture
def witness(kube_cluster: TestCluster, namespace: str) -> Iterator[PodWitness]:
    with PodWitness(kube_cluster, namespace) as seen:
        yield seen


def shard_process(run_id: str, index: int) -> int | None:
    """The host pid of shard ``index``'s asyncpod process (the real node runs it here)."""
    found = subprocess.run(
        ["pgrep", "-f", "--", f"--run-id {run_id} --resume --shard {index}/"],
        capture_output=True,
        text=True,
        check=False,
    )
    pids = [int(p) for p in found.stdout.split()]
    return pids[0] if pids else None


@pytest.mark.real_node
@pytest.mark.simulated
def test_three_shards_survive_a_deleted_pod_and_a_sigkill_and_match_a_local_batch(
    cli: Cli,
    kube_cluster: TestCluster,
    namespace: str,
    shard_image: str,
    shard_template: Path,
    results_claim: str,
    witness: PodWitness,
) -> None:
    assert kube_cluster.local is not None
    tasks, run_id = 600, "shards-600"
    jobs = write_input(cli.workdir / "jobs.jsonl", tasks, duration=2.0)
    created_before = pod_creates(kube_cluster.local)
    submit = cli.run(
        "batch", str(jobs), *cli.cluster_args, "--submit", "--shards", "3",
        "--run-id", run_id, "--image", shard_image, "--results-claim", results_claim,
        "--shard-template", str(shard_template), "--max-in-flight", "60",
        "--qps", "0", "--schedule-timeout", "120", "--startup-timeout", "120",
    )  # fmt: skip
    assert submit.popen.returncode == 0, submit.stderr
    assert submit.stdout.splitlines()[0] == run_id
    assert f"asyncpod batch status {run_id}" in submit.stdout
    assert submitted(kube_cluster, namespace, run_id) == {
        "configmaps": 1, "serviceaccounts": 1, "roles": 1, "rolebindings": 1, "jobs": 1,
    }  # fmt: skip

    # Mid-run: shard 0's pod deleted, then shard 1's process SIGKILLed.
    wait_until(
        lambda: progress_done(kube_cluster, namespace, run_id) >= 20,
        timeout=300,
        what="the shards to publish progress",
    )
    status = cli.run("batch", "status", run_id, *cli.cluster_args)
    assert status.popen.returncode == 0, status.stderr
    assert "Running" in status.stdout, status.stdout
    assert "shard 2:" in status.stdout
    first = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p
             for p in shard_pods(kube_cluster, namespace, run_id)}  # fmt: skip
    victim = first["0"]["metadata"]["name"]
    kube_cluster.admin.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{victim}")
    wait_until(lambda: shard_process(run_id, 1) is not None, timeout=60, what="shard 1's process")
    pid = shard_process(run_id, 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    # Results while the run goes on: whole lines only, each a task of the input.
    partial = cli.workdir / "partial.jsonl"
    during = cli.run("batch", "results", run_id, *cli.cluster_args, "-o", str(partial), timeout=300)
    assert during.popen.returncode == 0, during.stderr
    assert {line["task_key"] for line in read_lines(partial)} <= {f"t{i:04d}" for i in range(tasks)}

    wait_until(
        lambda: job_done(kube_cluster, namespace, run_id) is not None,
        timeout=900,
        what="the Job to end",
    )
    assert job_done(kube_cluster, namespace, run_id) == "Complete"
    after = cli.run("batch", "status", run_id, *cli.cluster_args)
    assert "Complete" in after.stdout, after.stdout
    assert f"total: {tasks}/{tasks} done (588 succeeded, 12 failed) · 0 in flight" in after.stdout
    shards = shard_pods(kube_cluster, namespace, run_id)
    by_index = Counter(
        p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in shards
    )
    assert by_index["1"] == 2, by_index  # the SIGKILLed pod (Failed) and its replacement
    assert by_index["0"] == 1  # the deleted one is gone; its replacement
    assert victim not in {p["metadata"]["name"] for p in shards}

    merged = cli.workdir / "merged.jsonl"
    results = cli.run("batch", "results", run_id, *cli.cluster_args, "-o", str(merged), timeout=300)
    assert results.popen.returncode == 0, results.stderr
    lines = read_lines(merged)
    finals = [line for line in lines if line.get("final", True)]
    assert Counter(line["task_key"] for line in finals) == Counter(
        f"t{i:04d}" for i in range(tasks)
    )
    assert {line["attempt"] for line in lines} == {1}
    assert f"{tasks}/{tasks} finished · run {run_id}" in " ".join(results.stdout.split())

    # Every task pod created once: 600 tasks, the shard pods that exist, the one deleted,
    # and the two results readers. A create in flight when shard 1 was SIGKILLed may be
    # answered 504 and stored all the same: counted as one that may have happened.
    created = pod_creates(kube_cluster.local) - created_before
    witness.stop()
    task_pods = {n for n, labels in witness.labels.items() if labels.get(RUN_ID_LABEL) == run_id}
    assert witness.made_twice() == {}
    assert len(task_pods) == tasks
    assert created.allow(tasks + len(shards) + 1 + 2), created  # + the deleted shard pod, 2 readers
    assert not pods(kube_cluster, namespace, f"{RUN_ID_LABEL}={run_id}")

    # The same input as a local batch: the same outcome for every task.
    local = cli.run(
        "batch", str(jobs), *cli.cluster_args, "--run-id", "local-600",
        "--results", str(cli.workdir / "local.jsonl"), "--max-in-flight", "100",
        "--qps", "0", "--progress", "none", timeout=600,
    )  # fmt: skip
    assert local.popen.returncode == 1, local.stderr  # the 12 exit-3 tasks
    here = {ln["task_key"]: (ln["outcome"], ln["exit_code"], ln["reason"]) for ln in finals}
    there = {
        ln["task_key"]: (ln["outcome"], ln["exit_code"], ln["reason"])
        for ln in read_lines(cli.workdir / "local.jsonl")
    }
    assert here == there


@pytest.mark.real_node
@pytest.mark.simulated
def test_cancel_mid_run_deletes_the_job_and_every_pod(
    cli: Cli,
    kube_cluster: TestCluster,
    namespace: str,
    shard_image: str,
    shard_template: Path,
    results_claim: str,
) -> None:
    run_id = "cancel-me"
    jobs = write_input(cli.workdir / "jobs.jsonl", 300, duration=30.0)
    submit = cli.run(
        "batch", str(jobs), *cli.cluster_args, "--submit", "--shards", "2",
        "--run-id", run_id, "--image", shard_image, "--results-claim", results_claim,
        "--shard-template", str(shard_template), "--max-in-flight", "40", "--qps", "0",
    )  # fmt: skip
    assert submit.popen.returncode == 0, submit.stderr
    wait_until(
        lambda: len(pods(kube_cluster, namespace, f"{RUN_ID_LABEL}={run_id}")) >= 20,
        timeout=300,
        what="task pods in flight",
    )
    cancel = cli.run("batch", "cancel", run_id, *cli.cluster_args, timeout=300)
    assert cancel.popen.returncode == 0, cancel.stderr
    assert f"cancelled {run_id}: Job {run_id}-shards deleted; deleted 2 shard pods" in cancel.stdout
    assert not pods(kube_cluster, namespace, f"{RUN_ID_LABEL}={run_id}")
    assert not shard_pods(kube_cluster, namespace, run_id)
    time.sleep(3)  # nothing comes back: no Job to replace a shard, no shard to make a pod
    assert not pods(kube_cluster, namespace, f"{RUN_ID_LABEL}={run_id}")
    assert not shard_pods(kube_cluster, namespace, run_id)


def test_bad_input_creates_nothing(cli: Cli, kube_cluster: TestCluster, namespace: str) -> None:
    bad = cli.workdir / "bad.jsonl"
    bad.write_text('{"image": "busybox"}\n{"image": 3}\n')
    done = cli.run(
        "batch", str(bad), *cli.cluster_args, "--submit", "--run-id", "bad-1",
        "--image", "localhost/asyncpod:dev", "--results-size", "1Gi",
    )  # fmt: skip
    assert done.popen.returncode == 2
    assert "bad.jsonl:2" in done.stderr
    assert "nothing was created" in done.stderr
    assert set(submitted(kube_cluster, namespace, "bad-1").values()) == {0}


def test_a_claim_that_does_not_exist_creates_nothing(
    cli: Cli, kube_cluster: TestCluster, namespace: str
) -> None:
    jobs = write_input(cli.workdir / "jobs.jsonl", 5, duration=1.0)
    done = cli.run(
        "batch", str(jobs), *cli.cluster_args, "--submit", "--run-id", "noclaim-1",
        "--image", "localhost/asyncpod:dev", "--results-claim", "nowhere",
    )  # fmt: skip
    assert done.popen.returncode == 2, done.stderr
    assert "the results claim 'nowhere' does not exist" in done.stderr
    assert "nothing was created" in done.stderr
    assert set(submitted(kube_cluster, namespace, "noclaim-1").values()) == {0}


def test_no_permission_to_create_jobs_creates_nothing(
    cli: Cli, kube_cluster: TestCluster, namespace: str
) -> None:
    rules = [dict(r) for r in SUBMITTER_RULES]
    rules[-1] = {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list"]}
    kubeconfig = service_account_kubeconfig(
        kube_cluster.admin,
        kube_cluster.kubeconfig,
        namespace=namespace,
        out=cli.workdir / "submitter.kubeconfig",
        rules=rules,
        name="submitter",
    )
    jobs = write_input(cli.workdir / "jobs.jsonl", 5, duration=1.0)
    done = cli.run(
        "batch", str(jobs), "--kubeconfig", str(kubeconfig), "--namespace", namespace,
        "--submit", "--run-id", "nojobs-1", "--image", "localhost/asyncpod:dev",
        "--results-size", "1Gi",
    )  # fmt: skip
    assert done.popen.returncode == 2, done.stderr
    assert "jobs" in done.stderr
    assert "nothing was created" in done.stderr
    assert set(submitted(kube_cluster, namespace, "nojobs-1").values()) == {0}
    claims = kube_cluster.admin.request(
        "GET", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"
    )["items"]
    assert claims == []
