"""``python -m benchmarks run``: every contender through the same workloads, in one run.

For each workload (pod run time × N, all N pods in flight at once) and each contender
(:mod:`benchmarks.contenders`, in the listed order): a fresh namespace, a ServiceAccount
bound to asyncpod's minimal Role (every contender authenticates with it, so all are
subject to API priority and fairness like a real workload), the runner's own admin
watch as witness (:class:`benchmarks.plane.Observer`), then the contender alone in its
own process (:mod:`benchmarks.child`). A contender that passes the time cap is cancelled
by its own process and reported as capped with what it had done; one whose process does
not end within a grace period after that is killed, and its row says so.

Writes ``benchmarks/results/<date>-contenders[-<label>].json``; ``python -m benchmarks
report`` turns it into the README's tables and plots.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from asyncpod.testing import LocalControlPlane
from benchmarks.contenders import BY_NAME, CONTENDERS, unavailable
from benchmarks.plane import (
    AuditLog,
    Observer,
    bench_control_plane,
    pod_requests,
    prepare_namespace,
)
from benchmarks.summary import summarize
from benchmarks.workload import ChildConfig, pod_description

__all__ = ["add_arguments", "machine", "main"]

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).with_name("results")
KILL_GRACE = 120.0
PACKAGES = (
    "asyncpod", "kubernetes_asyncio", "aiohttp", "orjson", "apache-airflow",
    "apache-airflow-providers-cncf-kubernetes", "kr8s", "httpx",
)  # fmt: skip


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """What the figures were taken on: CPU, memory, versions, commit, load."""
    cpu = memory = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    versions = {}
    for package in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    commit = dirty = None
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
            check=True, cwd=REPO,
        ).stdout.strip()  # fmt: skip
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                text=True, check=True, cwd=REPO,
            ).stdout.strip()
        )  # fmt: skip
    import platform

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "commit": commit,
        "dirty": dirty,
    }


def _compact_pods(
    records: list[dict[str, Any]], started: float, terminal: dict[str, float]
) -> dict[str, Any]:
    """Per-pod times as milliseconds after the start, column-wise (small JSON)."""

    def ms(value: float | None) -> int | None:
        return None if value is None else round((value - started) * 1000)

    return {
        "name": [p["name"] for p in records],
        "created_ms": [ms(p["created"]) for p in records],
        "terminal_ms": [ms(terminal.get(p["name"])) for p in records],
        "seen_ms": [ms(p["seen"]) for p in records],
        "done_ms": [ms(p["done"]) for p in records],
        "errors": {p["name"]: p["error"] for p in records if p["error"]},
    }


async def run_one(
    plane: LocalControlPlane,
    *,
    contender: str,
    pods: int,
    duration: float,
    cap: float,
    workdir: Path,
    audit_path: Path,
    overrides: Mapping[str, Any] | None = None,
    kill_grace: float = KILL_GRACE,
    during: Callable[[str], Awaitable[Any]] | None = None,
) -> dict[str, Any]:
    """One contender through one workload; its row of the results file.

    ``overrides``: further :class:`ChildConfig` fields (the launcher's ``max_in_flight``,
    the stream mode's settings). ``during``: a coroutine function started with the
    namespace once the contender's process is, in this process (not measured), and
    cancelled when that process has ended (:mod:`benchmarks.retries`' evictor).
    """
    entry = BY_NAME[contender]
    namespace = f"b-{contender}-{pods}-{duration:g}s-{secrets.token_hex(2)}".replace(".", "-")
    kubeconfig = await prepare_namespace(plane, namespace, workdir, entry.extra_rules)
    observer = Observer(plane.admin.server, plane.admin.ssl_context, namespace)
    watching = asyncio.ensure_future(observer.run())
    try:
        await asyncio.wait_for(observer.ready.wait(), 30)
        cfg = ChildConfig(
            contender=contender, kubeconfig=str(kubeconfig), namespace=namespace, pods=pods,
            duration=duration, cap_seconds=cap, pod=pod_description(duration),
            **(overrides or {}),
        )  # fmt: skip
        config_path = workdir / f"{namespace}.config.json"
        out_path = workdir / f"{namespace}.out.json"
        series_path = workdir / f"{namespace}.series.jsonl"
        config_path.write_text(json.dumps(cfg.to_json()))
        audit = AuditLog(audit_path)
        load_before = os.getloadavg()
        counts_before = await asyncio.to_thread(plane.request_counts)
        stderr_path = workdir / f"{namespace}.stderr"
        env = {**os.environ, "AIRFLOW_HOME": str(workdir / "airflow-home")}
        killed = False
        with stderr_path.open("wb") as stderr:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.child", str(config_path), str(out_path),
                str(series_path),
                stdout=stderr, stderr=stderr, cwd=REPO, env=env,
            )  # fmt: skip
            beside = asyncio.ensure_future(during(namespace)) if during is not None else None
            try:
                await asyncio.wait_for(child.wait(), cap + kill_grace)
            except asyncio.TimeoutError:
                killed = True
                child.kill()
                await child.wait()
            except BaseException:  # interrupted (SIGINT/SIGTERM): leave no process behind
                if child.returncode is None:
                    child.kill()
                    await asyncio.shield(child.wait())
                raise
            finally:
                if beside is not None:
                    beside.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await beside
        # A contender that finished deleted its pods (some may still be terminating); one
        # that failed left them for the namespace's deletion below.
        finished = out_path.exists() and json.loads(out_path.read_text())["status"] == "ok"
        all_gone = await observer.wait_gone(timeout=120 if finished else 10)
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watching
    await asyncio.sleep(2.0)  # a WATCH is counted when it ends; the audit log flushes each second
    counts_after = await asyncio.to_thread(plane.request_counts)
    load_after = os.getloadavg()
    requests = audit.requests_of(namespace)
    row: dict[str, Any] = {
        "contender": contender,
        "pods": pods,
        "duration": duration,
        "namespace": namespace,
        "exit_code": child.returncode,
        "killed_after_cap": killed,
        "all_pods_gone": all_gone,
        "requests": requests,
        "server_pod_requests": pod_requests(counts_after - counts_before),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "stderr_tail": stderr_path.read_text(errors="replace")[-2000:],
    }
    if out_path.exists():
        report = json.loads(out_path.read_text())
        # The stream mode is asked for a million pods and stops early: per pod means per
        # pod it ran.
        ran = report["extra"].get("results", pods) if cfg.stream_specs else pods
        row["summary"] = summarize(
            report, pods=ran, terminal_at=observer.terminal, audit_total=requests["total"]
        )
        row["failure"] = report["failure"]
        row["extra"] = report["extra"]
        row["loop_lag"] = report["loop_lag"]
        row["per_pod"] = _compact_pods(report["pods"], report["started"], observer.terminal)
    else:
        row["summary"] = {
            "status": "killed" if killed else f"exited {child.returncode} without results",
            "pods": pods,
            "completed": sum(1 for _ in observer.deleted),
            "observer_terminal": len(observer.terminal),
            "requests": requests["total"],
            "requests_per_pod": requests["total"] / pods,
        }
    with contextlib.suppress(OSError):
        row["series"] = [json.loads(line) for line in series_path.read_text().splitlines()]
    await asyncio.to_thread(plane.delete_namespace, namespace)
    return row


async def run_matrix(
    plane: LocalControlPlane, args: argparse.Namespace, workdir: Path, audit_path: Path
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    missing = {c.name: unavailable(c) for c in CONTENDERS if c.name in args.contenders}
    for name, why in missing.items():
        if why:
            log(f"{name}: {why}")
    if args.warmup:
        log(f"warm-up: {args.warmup} pods through the raw reference (not reported) ...")
        await run_one(
            plane, contender="raw", pods=args.warmup, duration=1.0, cap=120,
            workdir=workdir, audit_path=audit_path,
        )  # fmt: skip
    for duration in args.durations:
        for pods in args.pods:
            for contender in args.contenders:
                if missing[contender]:
                    rows.append({
                        "contender": contender, "pods": pods, "duration": duration,
                        "summary": {"status": missing[contender], "pods": pods},
                    })  # fmt: skip
                    continue
                log(f"{contender}: {pods} pods × {duration:g} s ...")
                row = await run_one(
                    plane, contender=contender, pods=pods, duration=duration, cap=args.cap,
                    workdir=workdir, audit_path=audit_path,
                )  # fmt: skip
                s = row["summary"]
                log(
                    f"{contender}: {s['status']}, {s.get('completed')}/{pods} done, "
                    f"wall {s.get('wall_s', 0):.1f} s, cpu {s.get('cpu_s', 0):.1f} s, "
                    f"requests {row['requests']['by_verb']}"
                )
                if row.get("failure") or row["exit_code"]:
                    log(f"{contender}: {row.get('failure') or row['stderr_tail']}")
                rows.append(row)
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = [c.name for c in CONTENDERS]
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=names,
        default=names,
        metavar="NAME",
        help=f"which to run, in this order (default: all: {' '.join(names)})",
    )
    parser.add_argument(
        "--pods",
        type=int,
        nargs="+",
        default=[200, 1000, 5000],
        metavar="N",
        help="pods in flight at once, per workload (default: 200 1000 5000)",
    )
    parser.add_argument(
        "--durations",
        type=float,
        nargs="+",
        default=[3.0, 60.0],
        metavar="S",
        help="each pod's run time in seconds (default: 3 60)",
    )
    parser.add_argument(
        "--cap",
        type=float,
        default=900.0,
        help="seconds a contender may take for one workload (default 900)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=50,
        help="untimed pods first, on the fresh cluster (default 50; 0: none)",
    )
    parser.add_argument("--label", default="", help="added to the results file's name")
    parser.add_argument("--out", type=Path, default=None, help="results file (default: "
                        "benchmarks/results/<date>-contenders[-<label>].json)")  # fmt: skip


def main(args: argparse.Namespace, argv: Sequence[str]) -> int:
    command = shlex.join(["python", "-m", "benchmarks", *argv])
    today = dt.date.today().isoformat()
    suffix = f"-{args.label}" if args.label else ""
    out = args.out or RESULTS / f"{today}-contenders{suffix}.json"
    workdir = Path(tempfile.mkdtemp(prefix="asyncpod-bench-"))
    began = time.time()
    taken_on = machine()  # the commit measured is the one checked out when the run began
    try:
        plane = bench_control_plane(max(args.pods), workdir)
        log(f"starting the local control plane ({plane.nodes} kwok nodes) ...")
        with plane:
            log(f"control plane ready in {plane.startup_seconds:.1f} s at {plane.server}")
            rows = asyncio.run(run_matrix(plane, args, workdir, workdir / "audit.log"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    document = {
        "benchmark": "contenders",
        "command": command,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "total_seconds": round(time.time() - began, 1),
        "machine": taken_on,
        "settings": {
            "contenders": args.contenders,
            "pods": args.pods,
            "durations": args.durations,
            "cap": args.cap,
            "warmup": args.warmup,
            "nodes": plane.nodes,
        },
        "runs": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1))
    log(f"results: {out}  (tables and plots: python -m benchmarks report {out})")
    return 0 if all(r["summary"]["status"] in ("ok",) or "not available" in r["summary"]["status"]
                    for r in rows) else 1  # fmt: skip
