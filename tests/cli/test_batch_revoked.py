"""A batch whose credentials are revoked while its pods run: it ends, and says what it left.

The batch's service account is deleted once its 10 pods are running: from then on
the API server answers 401 to each new request. The runs still end (their pods
finish), every task gets its final line, and the deletes that follow are refused.
Those pods cannot be deleted by this process; the command must not hang on them nor
print a warning per pod, but say once why, and in the summary how many are left and
how to delete them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncpod.spec import RUN_ID_LABEL
from asyncpod.testing import outcome
from asyncpod.testing.pytest_plugin import TestCluster
from asyncpod.testing.rbac import service_account_kubeconfig
from tests.cli.helpers import Cli, pods, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.simulated]

TASKS = 10


def test_credentials_revoked_mid_batch_end_it_with_the_pods_left_counted_once(
    kube_cluster: TestCluster, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = service_account_kubeconfig(
        kube_cluster.admin, kube_cluster.kubeconfig, namespace=namespace,
        out=tmp_path / "sa.kubeconfig", name="revoked",
    )  # fmt: skip
    jobs = tmp_path / "jobs.jsonl"
    line = json.dumps({"image": "busybox", "annotations": outcome(duration=10)})
    jobs.write_text(f"{line}\n" * TASKS)
    results = tmp_path / "results.jsonl"
    cli = Cli(kubeconfig, namespace, tmp_path)
    running = cli.start(
        "batch", str(jobs), *cli.cluster_args, "--run-id", "revoked",
        "--max-in-flight", str(TASKS), "--progress", "none", "--results", str(results),
    )  # fmt: skip
    selector = f"{RUN_ID_LABEL}=revoked"

    def all_running() -> bool:
        found = pods(kube_cluster, namespace, selector)
        return len(found) == TASKS and all(p["status"].get("phase") == "Running" for p in found)

    wait_until(all_running, timeout=120, what="every pod running")
    kube_cluster.admin.request("DELETE", f"/api/v1/namespaces/{namespace}/serviceaccounts/revoked")

    code = running.wait(300)
    finals = [
        entry for entry in map(json.loads, results.read_text().splitlines()) if entry["final"]
    ]
    assert sorted(entry["task_key"] for entry in finals) == sorted(str(i) for i in range(TASKS))
    # The watch open before the revocation is not asked again: the pods' ends arrive on
    # it (seen), and the tasks succeed. Had the server closed it, the reopening would
    # be refused and the runs end in that error: then the batch has failed.
    failed = [entry for entry in finals if entry["outcome"] != "succeeded"]
    assert all("401" in (entry["message"] or "") for entry in failed), failed
    assert code == (1 if failed else 0), running.stderr
    left = pods(kube_cluster, namespace, selector)
    assert len(left) == TASKS  # the deletes came after the revocation: all refused
    assert f"{TASKS} pods not deleted (first: " in running.stdout
    assert f"kubectl delete pods -l {selector}" in running.stdout
    warnings = [text for text in running.stderr.splitlines() if "could not delete pod" in text]
    assert len(warnings) == 1, running.stderr
    assert "401" in warnings[0]
