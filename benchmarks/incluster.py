"""``python -m benchmarks.incluster``: one batch through 1, 2 and 4 launcher shards in the
cluster, beside the single local launcher (issue 17).

One control plane with kwok nodes for the batch's pods and the real node for the shards
(the asyncpod image of this checkout; root only). The same input (``--pods`` tasks of
``--duration`` s, at most ``--in-flight`` pods at once in total) runs:

- **local**: ``asyncpod batch`` on this machine, as one process;
- **K shards** for each K of ``--shards``: ``asyncpod batch --submit --shards K`` (each
  shard ``--in-flight / K``), results on a hostPath volume of this machine.

Each run gets a fresh namespace and ``--qps 0`` (no client-side limit: the server and
the CPU are what bound it). Reported per run: wall time (submit to the Job's Complete
condition, polled every 0.5 s; for the local run, the process's), pods/s (tasks per
wall second), and CPU per pod: the local process's own CPU (``getrusage``), and for the
shards the CPU each shard process reports in its progress annotation (``cpu_ms``,
``time.process_time()`` at its end) over the tasks it ran. The load average before and
after says how loaded the machine was.

On one 2-core machine the K shards, the API server, etcd, kwok and the kubelet all share
the same two cores: more shards cannot be faster here, only show their overhead. In a
real cluster each shard has a node's CPU and the API server its own machines, so the
rate grows with K until the API server is the limit.

    python -m benchmarks.incluster                           # 20,000 tasks; 1, 2, 4 shards
    python -m benchmarks.incluster --pods 2000 --label n2000 # a smaller batch

Writes ``benchmarks/results/<date>-incluster[-<label>].json`` and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from asyncpod.testing import LocalControlPlane, images
from asyncpod.testing.binaries import cache_dir
from asyncpod.testing.realnode import REAL_NODE_SELECTOR, REAL_NODE_TOLERATIONS
from asyncpod.testing.simulate import outcome
from benchmarks.plane import APISERVER_INFLIGHT, PODS_PER_NODE, SCHEDULER_QPS, nodes_for
from benchmarks.run import RESULTS, log, machine

__all__ = ["main", "per_pod_cpu", "table"]


def write_input(path: Path, pods: int, duration: float) -> Path:
    annotations = outcome(duration=duration)
    with path.open("w") as out:
        for i in range(pods):
            out.write(
                json.dumps(
                    {"task_key": f"t{i:05d}", "image": "busybox", "annotations": annotations}
                )
                + "\n"
            )
    return path


def per_pod_cpu(shards: list[dict[str, int]]) -> list[float]:
    """Each shard's CPU milliseconds per task it ran. Pure."""
    return [round(s["cpu_ms"] / s["tasks"], 3) if s.get("tasks") else 0.0 for s in shards]


def _cli(*args: str, timeout: float, workdir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "asyncpod.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=workdir,
        env=env,
        check=False,
    )


def run_local(
    plane: LocalControlPlane, jobs: Path, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    namespace = "bench-local"
    plane.create_namespace(namespace)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = _cli(
        "batch", str(jobs), "--kubeconfig", str(plane.kubeconfig), "--namespace", namespace,
        "--max-in-flight", str(args.in_flight), "--qps", "0", "--progress", "none",
        "--results", str(workdir / "local.jsonl"), timeout=args.cap, workdir=workdir,
    )  # fmt: skip
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "run": "local",
        "exit": done.returncode,
        "wall_s": round(wall, 1),
        "pods_per_s": round(args.pods / wall, 1),
        "cpu_ms_per_pod": [round(cpu * 1000 / args.pods, 3)],
    }


def run_shards(
    plane: LocalControlPlane, jobs: Path, shards: int, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    namespace = f"bench-shards-{shards}"
    plane.create_namespace(namespace)
    admin = plane.admin
    assert admin is not None
    volume = workdir / f"volume-{shards}"
    volume.mkdir()
    volume.chmod(0o777)
    admin.request("POST", "/api/v1/persistentvolumes", {
        "metadata": {"name": namespace},
        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany"],
                 "storageClassName": "bench", "hostPath": {"path": str(volume)},
                 "claimRef": {"namespace": namespace, "name": "results"}},
    })  # fmt: skip
    admin.request("POST", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", {
        "metadata": {"name": "results"},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "bench",
                 "volumeName": namespace, "resources": {"requests": {"storage": "10Gi"}}},
    })  # fmt: skip
    url = urllib.parse.urlsplit(plane.server)
    template = workdir / f"template-{shards}.json"
    template.write_text(json.dumps({"spec": {
        "nodeSelector": dict(REAL_NODE_SELECTOR),
        "tolerations": [dict(t) for t in REAL_NODE_TOLERATIONS],
        "hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet",
        "containers": [{"name": "shard", "env": [
            {"name": "KUBERNETES_SERVICE_HOST", "value": url.hostname},
            {"name": "KUBERNETES_SERVICE_PORT", "value": str(url.port)}]}],
    }}))  # fmt: skip
    run_id = f"bench-{shards}"
    started = time.monotonic()
    submit = _cli(
        "batch", str(jobs), "--kubeconfig", str(plane.kubeconfig), "--namespace", namespace,
        "--submit", "--shards", str(shards), "--run-id", run_id, "--image", images.ASYNCPOD_TAG,
        "--results-claim", "results", "--shard-template", str(template),
        "--max-in-flight", str(args.in_flight), "--qps", "0", timeout=120, workdir=workdir,
    )  # fmt: skip
    if submit.returncode != 0:
        raise RuntimeError(f"submit failed: {submit.stderr}")
    job_path = f"/apis/batch/v1/namespaces/{namespace}/jobs/{run_id}-shards"
    state = None
    while state is None and time.monotonic() - started < args.cap:
        time.sleep(0.5)
        job = admin.request("GET", job_path)
        for condition in job.get("status", {}).get("conditions") or ():
            if condition["status"] == "True" and condition["type"] in ("Complete", "Failed"):
                state = condition["type"]
    wall = time.monotonic() - started
    pods = admin.request(
        "GET",
        f"/api/v1/namespaces/{namespace}/pods?labelSelector=asyncpod.dev/batch={run_id},"
        "asyncpod.dev/batch-role=shard",
    )["items"]
    counts = [
        json.loads(p["metadata"].get("annotations", {}).get("asyncpod.dev/progress", "{}"))
        for p in sorted(
            pods,
            key=lambda p: p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"],
        )
    ]
    return {
        "run": f"{shards} shards",
        "state": state or "capped",
        "wall_s": round(wall, 1),
        "pods_per_s": round(args.pods / wall, 1),
        "tasks_per_shard": [c.get("tasks", 0) for c in counts],
        "cpu_ms_per_pod": per_pod_cpu(counts),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| run | wall s | pods/s | CPU ms per pod (each shard) |",
        "|---|---:|---:|---|",
    ]
    for row in rows:
        cpu = ", ".join(f"{c:.2f}" for c in row["cpu_ms_per_pod"])
        lines.append(f"| {row['run']} | {row['wall_s']} | {row['pods_per_s']} | {cpu} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.incluster")
    parser.add_argument("--pods", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds each task runs")
    parser.add_argument("--in-flight", type=int, default=400, help="pods at once, in total")
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--cap", type=float, default=3600.0, help="seconds per run at most")
    parser.add_argument("--label", default="")
    args = parser.parse_args(argv)
    log("building the asyncpod image of this checkout (cached when the sources did not change)")
    image = images.ensure_asyncpod_image(cache_dir(), log)
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-incluster-") as tmp:
        workdir = Path(tmp)
        jobs = write_input(workdir / "jobs.jsonl", args.pods, args.duration)
        plane = LocalControlPlane(
            nodes=nodes_for(args.in_flight),
            real_nodes=1,
            scheduler_args=SCHEDULER_QPS,
            node_capacity={"cpu": "1000", "memory": "4Ti", "pods": str(PODS_PER_NODE)},
            apiserver_args=APISERVER_INFLIGHT,
            ready_timeout=180.0,
        )
        with plane:
            # This build, whatever the checkout holds by the time the node started.
            plane.import_images([image.archive])
            log(f"local launcher: {args.pods} tasks, {args.in_flight} in flight")
            rows.append(run_local(plane, jobs, args, workdir))
            log(f"  {rows[-1]}")
            for shards in args.shards:
                log(f"{shards} shards")
                rows.append(run_shards(plane, jobs, shards, args, workdir))
                log(f"  {rows[-1]}")
    record = {
        "benchmark": "incluster",
        "args": vars(args),
        "machine": machine(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "rows": rows,
    }
    label = f"-{args.label}" if args.label else ""
    out = RESULTS / f"{dt.date.today().isoformat()}-incluster{label}.json"
    out.write_text(json.dumps(record, indent=1))
    print(table(rows))
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
