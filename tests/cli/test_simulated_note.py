"""``asyncpod run`` and ``asyncpod batch`` say so when a pod ran on a simulated node.

Issue 18: ``asyncpod run busybox:1.36 -- sh -c 'echo hi; exit 3'`` on the demo's
control plane printed nothing and exited 0, and nothing said that no container ran.
Against the local control plane (kwok nodes) each command says it once on stderr; the
decision itself is tested in tests/unit/cli/test_simulated.py.
"""

from __future__ import annotations

import json

import pytest

from asyncpod.testing.pytest_plugin import RealNode, TestCluster
from asyncpod.testing.realnode import namespace_annotations
from tests.cli.helpers import Cli

pytestmark = pytest.mark.integration

SIM = "sim.asyncpod.dev/"


@pytest.mark.simulated
def test_run_on_a_kwok_node_says_no_container_ran(cli: Cli, namespace: str) -> None:
    process = cli.run(
        "run", "busybox:1.36", *cli.cluster_args, "--name", "played",
        "-a", f"{SIM}duration=200ms", "--", "sh", "-c", "echo hi; exit 3",
    )  # fmt: skip

    # kwok's default outcome is a success: that is exactly why it must be said.
    assert process.popen.returncode == 0, process.stderr
    [said] = process.stderr.splitlines()
    assert said.startswith(
        f"asyncpod run: note: pod {namespace}/played ran on kwok node kwok-node-"
    ), said
    assert "(simulated): no container ran" in said


@pytest.mark.simulated
def test_batch_says_it_once(cli: Cli) -> None:
    jobs = cli.workdir / "jobs.jsonl"
    specs = [
        {"image": "busybox:1.36", "task_key": f"t{i}", "annotations": {f"{SIM}duration": "200ms"}}
        for i in range(6)
    ]
    jobs.write_text("".join(json.dumps(spec) + "\n" for spec in specs))

    process = cli.run(
        "batch", str(jobs), *cli.cluster_args, "--run-id", "sim-note", "--progress", "none"
    )

    assert process.popen.returncode == 0, process.stderr
    notes = [line for line in process.stderr.splitlines() if "note:" in line]
    assert len(notes) == 1, process.stderr
    assert notes[0].startswith("asyncpod batch: note: pod "), notes
    assert " ran on kwok node kwok-node-" in notes[0]


@pytest.mark.real_node
def test_run_on_a_real_node_says_nothing_of_the_kind(
    cli: Cli, kube_cluster: TestCluster, namespace: str, real_node: RealNode
) -> None:
    # As admin (who may read nodes): the node is read, and it is not kwok's.
    kube_cluster.admin.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}",
        {"metadata": {"annotations": namespace_annotations()}},
    )
    process = cli.run(
        "run", "busybox:1.36", *cli.cluster_args, "-v", "--", "sh", "-c", "echo hi; exit 3"
    )

    assert (process.stdout, process.popen.returncode) == ("hi\n", 3), process.stderr
    assert f"on {real_node.name}" in process.stderr  # -v names the node it ran on
    assert "note:" not in process.stderr
