"""``python -m benchmarks.scale``: asyncpod's launcher at scale, on the local control plane.

Two parts (issue 7's yardstick):

- **batch**: 10,000 pods through one ``Launcher`` at ``max_in_flight`` 1,000 and
  10,000 (one child process each, :mod:`benchmarks.contenders.asyncpod_launcher`), every
  result checked: each task key exactly once, outcome succeeded, exit code 0. Reported:
  wall time, pods/s, client CPU per pod, RSS growth, longest loop stall, the client's own
  API requests per pod (audit log) and the server's request counters. The contender
  runs under the batch command's GC policy (``--gc batch``, :mod:`asyncpod.cli.heap`)
  unless told otherwise; the probe times every GC pass and the loop's CPU in its
  longest stall, so a stall says whether the loop worked, collected or waited for a CPU.
- **stream** (``--stream``, or both with ``--all``): a lazily generated input of
  1,000,000 specs at ``max_in_flight=100``, stopped after ``--stream-seconds`` (or
  ``--stream-pods`` results); RSS and ``len(asyncio.all_tasks())`` sampled every second
  show whether memory and tasks stay flat (O(in flight), not O(input)).

    python -m benchmarks.scale                      # batch: 10,000 pods at 1,000 and 10,000
    python -m benchmarks.scale --stream             # the 1,000,000-spec stream, ~150 s
    python -m benchmarks.scale --pods 500 --in-flight 100 500 --stream-seconds 30 --all
    python -m benchmarks.scale --render benchmarks/results/2026-11-30-scale-quiet-batch.json

Writes ``benchmarks/results/<date>-scale[-<label>].json`` and prints markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.contenders import GC_POLICIES
from benchmarks.plane import bench_control_plane
from benchmarks.report import fmt
from benchmarks.run import RESULTS, log, machine, run_one
from benchmarks.stats import flatness

__all__ = ["main"]

GC_LABELS = {
    "default": "default",
    "freeze": "frozen at start",
    "batch": "frozen, no full pass",
    "batch-before-young-passes": "frozen, no full pass (no paced young pass yet)",
}
"""How the tables name :data:`benchmarks.contenders.GC_POLICIES` (results files before
2026-11-30 say ``gc_freeze``: true is ``freeze``)."""


async def run_all(plane: Any, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    audit = workdir / "audit.log"
    out: dict[str, Any] = {"batch": [], "stream": None}
    if args.warmup:
        log(f"warm-up: {args.warmup} pods (not reported) ...")
        await run_one(
            plane, contender="raw", pods=args.warmup, duration=1.0, cap=120,
            workdir=workdir, audit_path=audit,
        )  # fmt: skip
    if args.batch:
        for in_flight in args.in_flight:
            log(f"batch: {args.pods} pods, max_in_flight {in_flight}, {args.duration:g} s each ...")
            row = await run_one(
                plane, contender="asyncpod", pods=args.pods, duration=args.duration,
                cap=args.cap, workdir=workdir, audit_path=audit,
                overrides={"max_in_flight": in_flight, "gc_policy": args.gc},
            )  # fmt: skip
            row["max_in_flight"] = in_flight
            row["gc_policy"] = args.gc
            s = row["summary"]
            log(
                f"batch {in_flight}: {s['status']}, {s.get('completed')} done, "
                f"{s.get('errors')} wrong"
            )
            out["batch"].append(row)
    if args.stream:
        log(
            f"stream: {args.stream_specs:,} specs at max_in_flight {args.stream_in_flight}, "
            f"stopping after {args.stream_seconds:g} s or {args.stream_pods} results ..."
        )
        row = await run_one(
            plane, contender="asyncpod-stream", pods=args.stream_specs,
            duration=args.stream_duration, cap=args.stream_seconds + 60, workdir=workdir,
            audit_path=audit, kill_grace=30,
            overrides={
                "max_in_flight": args.stream_in_flight, "stream_specs": args.stream_specs,
                "stop_after_seconds": args.stream_seconds, "stop_after_pods": args.stream_pods,
                "gc_policy": args.gc,
            },
        )  # fmt: skip
        row["flatness"] = {
            "rss_kib": flatness([(p["at"], p["rss_kib"]) for p in row.get("series", [])]),
            # -1: the sampler could not copy the task set (it changed under it too often)
            "tasks": flatness(
                [(p["at"], p["tasks"]) for p in row.get("series", []) if p["tasks"] >= 0]
            ),
        }
        row["gc_policy"] = args.gc
        out["stream"] = row
    return out


def _stall(summary: Mapping[str, Any]) -> str:
    longest = fmt(summary.get("loop_stall_max_ms"), 0)
    cpu = summary.get("loop_stall_max_cpu_ms")
    return longest if cpu is None else f"{longest} ({fmt(cpu, 0)})"


def _full_passes(summary: Mapping[str, Any]) -> str:
    passes = summary.get("gc_full_passes")
    if passes is None:
        return fmt(None)
    return f"{passes} ({fmt(summary.get('gc_full_longest_ms'), 0)})" if passes else "0"


def batch_table(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        (
            "| pods | max_in_flight | GC | status | correct results | wall s | pods/s "
            "| client CPU ms/pod | RSS growth MiB | longest loop stall ms (loop CPU in it) "
            "| stalls > 100 ms | full GC passes (longest ms) | API requests/pod "
            "| own requests by verb | load avg |"
        ),
        "|--:|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|",
    ]
    for r in rows:
        s = r["summary"]
        verbs = ", ".join(f"{k} {v:,}" for k, v in r["requests"]["by_verb"].items())
        load = f"{r['loadavg_before'][0]:.1f}→{r['loadavg_after'][0]:.1f}"
        correct = (
            s.get("completed", 0)
            if not s.get("errors")
            else f"{s.get('completed')} ({s['errors']} wrong)"
        )
        gc_policy = GC_LABELS[r.get("gc_policy") or ("freeze" if r.get("gc_freeze") else "default")]
        lines.append(
            f"| {r['pods']:,} | {r['max_in_flight']:,} | {gc_policy} | {s['status']} | {correct} "
            f"| {fmt(s.get('wall_s'))} | {fmt(s.get('pods_per_s'))} "
            f"| {fmt(s.get('cpu_ms_per_pod'), 2)} | {fmt(s.get('rss_growth_mib'))} "
            f"| {_stall(s)} | {fmt(s.get('loop_stalls_over_100ms'), 0)} | {_full_passes(s)} "
            f"| {fmt(s.get('requests_per_pod'), 2)} | {verbs} | {load} |"
        )
    return "\n".join(lines) + "\n"


def stream_table(row: Mapping[str, Any]) -> str:
    extra, s = row.get("extra", {}), row["summary"]
    f_rss, f_tasks = row["flatness"]["rss_kib"], row["flatness"]["tasks"]

    def mib(kib: float | None) -> str:
        return fmt(None if kib is None else kib / 1024)

    left = "none" if row.get("all_pods_gone") else "some (see the JSON)"
    facts = "No results: the process did not finish (see the status below).\n"
    if extra:
        facts = (
            f"Input {extra.get('input_length', 0):,} specs, generated lazily: "
            f"{extra.get('specs_generated', 0):,} generated, {extra.get('results', 0):,} results "
            f"({extra.get('outcomes')}) in {fmt(extra.get('ran_s'))} s. Stopping (``break``) "
            f"took {fmt(extra.get('stop_s'), 2)} s, closing the session "
            f"{fmt(extra.get('close_s'), 2)} s; pods left afterwards: {left}. "
            f"API requests/pod {fmt(s.get('requests_per_pod'), 2)}, client CPU ms/pod "
            f"{fmt(s.get('cpu_ms_per_pod'), 2)}, longest loop stall "
            f"{fmt(s.get('loop_stall_max_ms'), 0)} ms.\n"
        )
    header = (
        "| sampled every 1 s | first third (mean) | last third (mean) | min | max "
        "| slope per minute |\n|---|--:|--:|--:|--:|--:|"
    )
    rss = (
        f"| RSS MiB | {mib(f_rss['first'])} | {mib(f_rss['last'])} | {mib(f_rss['min'])} "
        f"| {mib(f_rss['max'])} | {mib(f_rss['slope_per_min'])} |"
    )
    tasks = (
        f"| asyncio tasks | {fmt(f_tasks['first'])} | {fmt(f_tasks['last'])} "
        f"| {fmt(f_tasks['min'], 0)} | {fmt(f_tasks['max'], 0)} "
        f"| {fmt(f_tasks['slope_per_min'])} |"
    )
    series = row.get("series") or [{}]
    last = series[-1]
    note = (
        f"\nStatus: {s.get('status')}. {f_rss['n']} samples after 10 s of ramp-up; the last, "
        f"at {fmt(last.get('at'))} s: RSS {mib(last.get('rss_kib'))} MiB, "
        f"{fmt(last.get('tasks'), 0)} tasks, CPU {fmt(last.get('cpu_s'))} s, event loop silent "
        f"for {fmt(last.get('loop_silent_s'))} s."
    )
    return "\n".join([facts, header, rss, tasks, note]) + "\n"


def render(document: Mapping[str, Any], name: str) -> str:
    """A results file's command line, tables and where its raw data is, as markdown."""
    m = document["machine"]
    heading = (
        f"`{document['command']}` — {document['date']}, commit `{m['commit']}`"
        f"{' (with uncommitted changes)' if m['dirty'] else ''}, {m['nproc']} CPUs; "
        f"raw data: `results/{name}`\n"
    )
    parts = [heading]
    if document.get("batch"):
        parts.append(batch_table(document["batch"]))
    if document.get("stream"):
        parts.append(stream_table(document["stream"]))
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument("--pods", type=int, default=10_000, help="batch size (10,000)")
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--duration", type=float, default=3.0, help="pod run time, batch (3 s)")
    parser.add_argument("--cap", type=float, default=1800.0, help="seconds per batch run")
    parser.add_argument(
        "--gc", choices=GC_POLICIES, default="batch",
        help="the collector policy: batch (what `asyncpod batch` does, the default), "
        "freeze (gc.freeze() after connecting, full passes on) or default (Python's)",
    )  # fmt: skip
    parser.add_argument(
        "--gc-freeze", dest="gc", action="store_const", const="freeze",
        help="the same as --gc freeze (the commands of earlier results say it)",
    )  # fmt: skip
    parser.add_argument("--stream", action="store_true", help="the stream part only")
    parser.add_argument("--all", action="store_true", help="batch and stream")
    parser.add_argument("--stream-specs", type=int, default=1_000_000)
    parser.add_argument("--stream-in-flight", type=int, default=100)
    parser.add_argument("--stream-seconds", type=float, default=150.0)
    parser.add_argument("--stream-pods", type=int, default=None)
    parser.add_argument("--stream-duration", type=float, default=1.0, help="pod run time (1 s)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--label", default="")
    parser.add_argument(
        "--render", nargs="+", metavar="RESULTS_JSON", type=Path,
        help="print the tables of results files written before, and run nothing",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.render:
        for path in args.render:
            print(render(json.loads(path.read_text()), path.name))
        return 0
    args.batch = args.all or not args.stream
    args.stream = args.all or args.stream
    command = shlex.join(["python", "-m", "benchmarks.scale", *argv])
    in_flight = max(
        [*args.in_flight, args.stream_in_flight] if args.batch else [args.stream_in_flight]
    )
    workdir = Path(tempfile.mkdtemp(prefix="asyncpod-scale-"))
    began = time.time()
    taken_on = machine()  # the commit measured is the one checked out when the run began
    try:
        plane = bench_control_plane(in_flight, workdir)
        log(f"starting the local control plane ({plane.nodes} kwok nodes) ...")
        with plane:
            result = asyncio.run(run_all(plane, args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for row in result["batch"]:
        row.pop("per_pod", None)
    document = {
        "benchmark": "scale",
        "command": command,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "total_seconds": round(time.time() - began, 1),
        "machine": taken_on,
        "settings": vars(args),
        **result,
    }
    suffix = f"-{args.label}" if args.label else ""
    path = RESULTS / f"{dt.date.today().isoformat()}-scale{suffix}.json"
    path.write_text(json.dumps(document, indent=1))
    print(render(document, path.name))
    log(f"results: {path}")
    ok = all(
        r["summary"]["status"] == "ok" and not r["summary"].get("errors") for r in result["batch"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
