"""One run's figures, from what the contender's process and the runner's watch recorded.

Pure: a child report (:mod:`benchmarks.child`), the runner's witness times and the
request counts in; the summary the tables and plots are made of out. Definitions (the
README repeats them):

- ``wall_s``: from the contender's first call to the last pod's result in hand (for a
  capped or crashed run: to the moment it stopped);
- ``pods_per_s``: pods completed (result in hand, no error) per wall second;
- ``notify``: per pod, the runner's watch saw the terminal update → the contender's code
  knew (``seen``); ``result``: the same → result in hand with the pod deleted (``done``);
- ``requests_per_pod``: the contender's own requests (audit log) per pod asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks.stats import latencies, per_pod, summarize_latencies

__all__ = ["summarize"]


def summarize(
    report: Mapping[str, Any],
    *,
    pods: int,
    terminal_at: Mapping[str, float],
    audit_total: float | None,
) -> dict[str, Any]:
    records = report["pods"]
    started = report["started"]
    done = [p["done"] for p in records if p["done"] is not None and not p["error"]]
    stopped = report["ended"] if report["status"] != "ok" or not done else max(done)
    wall = stopped - started
    notify = latencies(terminal_at, ((p["name"], p["seen"]) for p in records))
    result = latencies(terminal_at, ((p["name"], p["done"]) for p in records))
    errors = [p["error"] for p in records if p["error"]]
    return {
        "status": report["status"],
        "pods": pods,
        "completed": len(done),
        "seen": sum(1 for p in records if p["seen"] is not None),
        "created": sum(1 for p in records if p["created"] is not None),
        "errors": len(errors),
        "first_errors": sorted(set(errors))[:5],
        "wall_s": wall,
        "pods_per_s": len(done) / wall if wall > 0 else None,
        "cpu_s": report["cpu_s"],
        "cpu_ms_per_pod": (per_pod(report["cpu_s"], pods) or 0.0) * 1000,
        "rss_peak_mib": report["rss_peak_kib"] / 1024,
        "rss_before_mib": report["rss_before_kib"] / 1024,
        "rss_growth_mib": (report["rss_max_kib"] - report["rss_before_kib"]) / 1024,
        "loop_stall_max_ms": report["loop_lag"]["max_ms"],
        "loop_stall_p99_ms": report["loop_lag"]["p99_ms"],
        # Reports from before 2026-11-30 lack these:
        "loop_stall_max_cpu_ms": report["loop_lag"].get("max_cpu_ms"),
        "loop_stalls_over_100ms": report["loop_lag"].get("over_100ms"),
        "gc_full_passes": report["loop_lag"].get("gc_full_passes"),
        "gc_full_longest_ms": report["loop_lag"].get("gc_full_longest_ms"),
        "gc_longest_ms": report["loop_lag"].get("gc_longest_ms"),
        "gc_longest_pass": report["loop_lag"].get("gc_longest_pass"),
        "idle_loop_lag_max_ms": report["idle_loop_lag"]["max_ms"],
        "notify_s": summarize_latencies(notify).as_dict(),
        "result_s": summarize_latencies(result).as_dict(),
        "requests": audit_total,
        "requests_per_pod": per_pod(audit_total, pods),
    }
