"""``python -m benchmarks.metrics_cost``: client CPU per pod with metrics off and on.

Issue 20's yardstick for :mod:`asyncpod.metrics`: with metrics off (the default, a
no-op object) a run costs what it did; with them on, at most 5 % more CPU per pod at
1,000 in flight. The same batch as :mod:`benchmarks.scale` (asyncpod's launcher, one
child process per run, the batch command's GC policy) runs ``--rounds`` times with
metrics off and on, alternating which goes first, so a machine whose load drifts
charges both alike. Reported per run: client CPU per pod, wall time, the load average
before and after (the machine is shared), and with metrics on the one final scrape's
CPU and the API requests the metrics counted beside the audit log's count of the
same ServiceAccount's requests.

    python -m benchmarks.metrics_cost                       # 2,000 pods at 1,000, 3 rounds
    python -m benchmarks.metrics_cost --pods 1000 --rounds 2
    python -m benchmarks.metrics_cost --hooks               # no cluster: the hooks alone

``--hooks`` times, without a cluster, the hook calls one pod's run makes (a create, a
delete and a LIST of events answered, four watch events, the run's start and end with
its phases), off and on: a figure the machine's load disturbs much less than a batch's.

Writes ``benchmarks/results/<date>-metrics-cost[-<label>].json`` and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.plane import bench_control_plane
from benchmarks.run import RESULTS, log, machine, run_one

__all__ = ["main"]


async def run_all(plane: Any, args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    audit = workdir / "audit.log"
    rows: list[dict[str, Any]] = []
    if args.warmup:
        log(f"warm-up: {args.warmup} pods (not reported) ...")
        await run_one(
            plane, contender="asyncpod", pods=args.warmup, duration=1.0, cap=300,
            workdir=workdir, audit_path=audit, overrides={"gc_policy": args.gc},
        )  # fmt: skip
    for round_ in range(args.rounds):
        order = (False, True) if round_ % 2 == 0 else (True, False)
        for metrics in order:
            log(f"round {round_ + 1}: metrics {'on' if metrics else 'off'} ...")
            row = await run_one(
                plane, contender="asyncpod", pods=args.pods, duration=args.duration,
                cap=args.cap, workdir=workdir, audit_path=audit,
                overrides={
                    "max_in_flight": args.in_flight, "gc_policy": args.gc, "metrics": metrics,
                },
            )  # fmt: skip
            row.pop("per_pod", None)
            row.pop("series", None)
            row["metrics"] = metrics
            row["round"] = round_ + 1
            s = row["summary"]
            log(
                f"  {s['status']}: {s.get('completed')} done, cpu {s.get('cpu_s', 0):.2f} s "
                f"({s.get('cpu_ms_per_pod', 0):.3f} ms/pod), load {row['loadavg_before'][0]:.1f}"
            )
            rows.append(row)
    return rows


def _cpu_ms(rows: Sequence[Mapping[str, Any]], metrics: bool) -> list[float]:
    return [
        r["summary"]["cpu_ms_per_pod"]
        for r in rows
        if r["metrics"] is metrics and r["summary"].get("status") == "ok"
    ]


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        (
            "| round | metrics | status | CPU ms/pod | wall s | load before → after | "
            "scrape CPU ms | requests (metrics / audit) |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = r["summary"]
        scraped = (r.get("extra") or {}).get("metrics") or {}
        totals = scraped.get("totals", {})
        counted = totals.get("asyncpod_api_requests_total")
        requests = f"{counted:,.0f} / {s.get('requests') or 0:,.0f}" if counted is not None else "–"
        scrape = f"{scraped['scrape_cpu_s'] * 1000:.1f}" if scraped else "–"
        lines.append(
            f"| {r['round']} | {'on' if r['metrics'] else 'off'} | {s.get('status')} | "
            f"{s.get('cpu_ms_per_pod', 0):.3f} | {s.get('wall_s', 0):.1f} | "
            f"{r['loadavg_before'][0]:.1f} → {r['loadavg_after'][0]:.1f} | {scrape} | {requests} |"
        )
    off, on = _cpu_ms(rows, metrics=False), _cpu_ms(rows, metrics=True)
    if off and on:
        m_off, m_on = statistics.median(off), statistics.median(on)
        lines.append("")
        lines.append(
            f"median CPU per pod: off {m_off:.3f} ms, on {m_on:.3f} ms "
            f"({(m_on / m_off - 1) * 100:+.1f} %); spread of off: "
            f"{min(off):.3f}–{max(off):.3f} ms"
        )
    return "\n".join(lines)


def hook_cost(pods: int = 100_000) -> dict[str, float]:
    """CPU seconds per pod of the hooks one run calls, metrics off and on (no cluster)."""
    from datetime import datetime, timedelta, timezone

    from prometheus_client import CollectorRegistry

    from asyncpod.metrics import OFF, Metrics, MetricsOff
    from asyncpod.results import ContainerKind, ContainerResult, Outcome, PodResult

    t0 = datetime(2026, 12, 5, tzinfo=timezone.utc)
    main = ContainerResult(
        "main", ContainerKind.MAIN, started_at=t0 + timedelta(seconds=3),
        finished_at=t0 + timedelta(seconds=6),
    )  # fmt: skip
    result = PodResult(
        "ns", "p", "u", outcome=Outcome.SUCCEEDED, reason="Completed", containers=(main,),
        created_at=t0, scheduled_at=t0 + timedelta(seconds=1),
        started_at=t0 + timedelta(seconds=2), finished_at=t0 + timedelta(seconds=6),
    )  # fmt: skip
    watch = {"watch": "true"}

    def one_pod(hooks: MetricsOff, name: str) -> None:
        hooks.run_started()
        hooks.api_request("POST", "/api/v1/namespaces/ns/pods", None, 201)
        for event in ("ADDED", "MODIFIED", "MODIFIED", "MODIFIED"):
            hooks.watch_event(event)
        hooks.api_request("DELETE", f"/api/v1/namespaces/ns/pods/{name}", None, 200)
        hooks.api_request("GET", "/api/v1/namespaces/ns/events", watch, 200)
        hooks.run_ended(result, None, 0.0)

    out: dict[str, float] = {}
    for label, hooks in (("off", OFF), ("on", Metrics(CollectorRegistry()))):
        names = [f"pod-{i}" for i in range(pods)]
        began = time.process_time()
        for name in names:
            one_pod(hooks, name)
        out[f"{label}_us_per_pod"] = (time.process_time() - began) / pods * 1e6
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metrics_cost", description=__doc__)
    parser.add_argument("--pods", type=int, default=2_000, help="pods per run (2,000)")
    parser.add_argument("--in-flight", type=int, default=1_000, help="max_in_flight (1,000)")
    parser.add_argument("--duration", type=float, default=3.0, help="pod run time (3 s)")
    parser.add_argument("--rounds", type=int, default=3, help="runs with metrics off and on")
    parser.add_argument("--cap", type=float, default=900.0, help="seconds per run")
    parser.add_argument("--gc", default="batch", help="the contender's GC policy (batch)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--label", default="")
    parser.add_argument("--hooks", action="store_true", help="time the hooks alone, no cluster")
    args = parser.parse_args(argv)
    if args.hooks:
        for _ in range(3):
            cost = hook_cost()
            print(
                f"hooks of one pod: off {cost['off_us_per_pod']:.2f} µs, "
                f"on {cost['on_us_per_pod']:.2f} µs (CPU, 100,000 pods)"
            )
        return 0
    command = shlex.join(["python", "-m", "benchmarks.metrics_cost", *argv])
    workdir = Path(tempfile.mkdtemp(prefix="asyncpod-metrics-cost-"))
    began = time.time()
    taken_on = machine()
    try:
        plane = bench_control_plane(args.in_flight, workdir)
        log(f"starting the local control plane ({plane.nodes} kwok nodes) ...")
        with plane:
            rows = asyncio.run(run_all(plane, args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    document = {
        "benchmark": "metrics_cost",
        "command": command,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "total_seconds": round(time.time() - began, 1),
        "machine": taken_on,
        "settings": vars(args),
        "runs": rows,
    }
    suffix = f"-{args.label}" if args.label else ""
    path = RESULTS / f"{dt.date.today().isoformat()}-metrics-cost{suffix}.json"
    path.write_text(json.dumps(document, indent=1))
    print(table(rows))
    log(f"results: {path}")
    return 0 if all(r["summary"].get("status") == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
