"""The benchmark harness's pure parts: percentiles, latencies, ratios, summaries, tables.

Benchmarks never decide the suite's pass/fail; these tests only pin the arithmetic and
the rendering that the README's figures come from.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.contenders import gc_policy
from benchmarks.probe import LoopProbe
from benchmarks.report import (
    compare_table,
    detail_table,
    fmt,
    headline_table,
    merge_documents,
    workloads,
)
from benchmarks.scale import batch_table
from benchmarks.stats import latencies, nearest_rank, per_pod, ratio, summarize_latencies
from benchmarks.summary import summarize


def test_nearest_rank_reports_a_measured_value() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert nearest_rank(values, 0.5) == 3.0
    assert nearest_rank(values, 1.0) == 5.0
    assert nearest_rank(values, 0.01) == 1.0
    # p99 of 100 values is the 99th smallest, not an interpolation
    assert nearest_rank([float(i) for i in range(1, 101)], 0.99) == 99.0
    assert nearest_rank([], 0.5) is None


def test_nearest_rank_rejects_a_quantile_outside_0_1() -> None:
    with pytest.raises(ValueError, match="q must be"):
        nearest_rank([1.0], 0.0)
    with pytest.raises(ValueError, match="q must be"):
        nearest_rank([1.0], 1.5)


def test_latencies_pair_by_pod_name_and_skip_missing_ends() -> None:
    starts = {"a": 10.0, "b": 20.0}
    ends = [("a", 10.25), ("b", None), ("c", 30.0)]
    assert latencies(starts, ends) == [0.25]


def test_latency_summary() -> None:
    summary = summarize_latencies([0.1, 0.2, 0.3])
    assert summary.as_dict() == {"n": 3, "p50": 0.2, "p99": 0.3, "max": 0.3}
    assert summarize_latencies([]).as_dict() == {"n": 0, "p50": None, "p99": None, "max": None}


def test_per_pod_and_ratio_refuse_what_cannot_be_formed() -> None:
    assert per_pod(500.0, 200) == 2.5
    assert per_pod(None, 200) is None
    assert per_pod(10.0, 0) is None
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(3.0, 0.0) is None
    assert ratio(None, 2.0) is None


def _report(status: str = "ok") -> dict[str, Any]:
    return {
        "status": status,
        "started": 1000.0,
        "ended": 1010.0,
        "cpu_s": 2.0,
        "rss_before_kib": 100 * 1024,
        "rss_max_kib": 130 * 1024,
        "rss_peak_kib": 140 * 1024,
        "loop_lag": {"max_ms": 42.0, "p99_ms": 5.0},
        "idle_loop_lag": {"max_ms": 1.0},
        "pods": [
            {"name": "p0", "created": 1000.5, "seen": 1004.1, "done": 1004.2, "error": None},
            {"name": "p1", "created": 1000.6, "seen": 1008.0, "done": 1008.5, "error": None},
            {"name": "p2", "created": None, "seen": None, "done": None, "error": "create: 500"},
        ],
    }


def test_summary_of_a_finished_run() -> None:
    s = summarize(_report(), pods=3, terminal_at={"p0": 1004.0, "p1": 1007.9}, audit_total=9)
    assert s["completed"] == 2
    assert s["errors"] == 1
    assert s["first_errors"] == ["create: 500"]
    assert s["wall_s"] == pytest.approx(8.5)  # to the last result in hand
    assert s["pods_per_s"] == pytest.approx(2 / 8.5)
    assert s["notify_s"]["n"] == 2
    assert s["notify_s"]["max"] == pytest.approx(0.1)
    assert s["result_s"]["max"] == pytest.approx(0.6)
    assert s["requests_per_pod"] == 3.0
    assert s["cpu_ms_per_pod"] == pytest.approx(2000 / 3)
    assert s["rss_growth_mib"] == 30.0


def test_a_capped_run_is_timed_to_where_it_stopped() -> None:
    s = summarize(_report("capped"), pods=3, terminal_at={}, audit_total=None)
    assert s["status"] == "capped"
    assert s["wall_s"] == 10.0
    assert s["requests_per_pod"] is None


def _run(contender: str, pods_per_s: float, requests: float, cpu: float) -> dict[str, Any]:
    return {
        "contender": contender,
        "pods": 1000,
        "duration": 60.0,
        "requests": {"by_verb": {"POST pods": 1000, "DELETE pods": 1000}},
        "loadavg_before": [1.0, 1.0, 1.0],
        "loadavg_after": [2.0, 1.0, 1.0],
        "summary": {
            "status": "ok",
            "errors": 0,
            "completed": 1000,
            "wall_s": 80.0,
            "pods_per_s": pods_per_s,
            "requests_per_pod": requests,
            "cpu_s": cpu,
            "cpu_ms_per_pod": cpu,
            "rss_peak_mib": 100.0,
            "rss_growth_mib": 12.5,
            "loop_stall_max_ms": 30.0,
            "loop_stall_p99_ms": 3.0,
            "notify_s": {"p50": 0.004, "p99": 0.05, "max": 0.07},
            "result_s": {"p50": 0.01, "p99": 0.09, "max": 0.1},
        },
    }


def test_headline_gives_ratios_to_the_raw_reference() -> None:
    runs = [
        _run("raw", 10.0, 2.0, 0.5),
        _run("asyncpod", 9.0, 2.5, 1.0),
        {"contender": "asyncpod-trigger", "pods": 1000, "duration": 60.0,
         "summary": {"status": "not available: no module"}},
    ]  # fmt: skip
    table = headline_table(runs)
    row = next(line for line in table.splitlines() if "| asyncpod |" in line)
    assert "9.0 (0.90\N{MULTIPLICATION SIGN})" in row
    assert "2.50 (1.25\N{MULTIPLICATION SIGN})" in row
    assert "1.00 (2.00\N{MULTIPLICATION SIGN})" in row
    assert "| 50 |" in row  # notify p99 in ms
    assert "not available: no module" in table


def test_detail_table_has_one_row_per_contender_of_the_workload() -> None:
    runs = [_run("raw", 10.0, 2.0, 0.5), _run("kr8s", 5.0, 3.0, 4.0)]
    runs.append({**_run("kr8s", 5.0, 3.0, 4.0), "pods": 200})
    table = detail_table(runs, 60.0, 1000)
    assert len(table.strip().splitlines()) == 2 + 2
    assert "POST pods 1,000, DELETE pods 1,000" in table
    runs[0]["requests"]["by_verb"] = {"GET /api/v1": 1, "GET /apis/": 2, "GET pods": 3}
    assert "GET discovery 3, GET pods 3" in detail_table(runs, 60.0, 1000)
    assert "4 / 50 / 70" in table
    assert workloads(runs) == [(60.0, 200), (60.0, 1000)]


def test_fmt() -> None:
    assert fmt(None) == "-"
    assert fmt(12345.678) == "12,345.7"
    assert fmt(2.5, 2) == "2.50"


def test_flatness_of_a_flat_and_of_a_growing_series() -> None:
    from benchmarks.stats import flatness

    flat = flatness([(float(t), 100.0 + (t % 2)) for t in range(70)])
    assert flat["n"] == 60  # the first 10 s are ramp-up
    assert flat["first"] == pytest.approx(flat["last"], abs=1)
    assert abs(flat["slope_per_min"]) < 0.5
    growing = flatness([(float(t), 2.0 * t) for t in range(70)])
    assert growing["slope_per_min"] == pytest.approx(120.0)
    assert growing["last"] > growing["first"]
    assert flatness([(11.0, 1.0)])["slope_per_min"] is None


def test_compare_puts_two_runs_ratios_side_by_side_with_their_gap() -> None:
    first = [_run("raw", 10.0, 2.0, 0.5), _run("asyncpod", 9.0, 2.0, 1.0)]
    second = [_run("raw", 20.0, 2.0, 0.5), _run("asyncpod", 20.0, 2.0, 1.5)]
    table = compare_table(first, second)
    row = next(line for line in table.splitlines() if "| asyncpod |" in line)
    # pods/s: 0.90 then 1.00 of raw, 11 % apart; requests equal; CPU 2.00 then 3.00
    assert "0.90 / 1.00, 11%" in row
    assert "1.00 / 1.00, 0%" in row
    assert "2.00 / 3.00, 40%" in row
    assert row.endswith("| 40% |")
    assert "| raw |" not in table  # the reference is 1.00 of itself by definition


def test_compare_leaves_out_what_only_one_run_has_and_capped_figures() -> None:
    capped = _run("kr8s", 1.0, 50.0, 200.0)
    capped["summary"]["status"] = "capped"
    first = [_run("raw", 10.0, 2.0, 0.5), capped]
    second = [_run("raw", 10.0, 2.0, 0.5), _run("kr8s", 2.0, 40.0, 100.0), _run("x", 1, 1, 1)]
    table = compare_table(first, second)
    assert "| x |" not in table
    row = next(line for line in table.splitlines() if "| kr8s |" in line)
    assert "| - / 0.20, - |" in row  # capped in the 1st run: no rate to compare
    assert row.endswith("| - |")


def test_merged_documents_keep_every_run_and_say_where_each_came_from() -> None:
    first = {"command": "run A", "date": "d1", "total_seconds": 10, "machine": {"commit": "c"},
             "runs": [_run("raw", 10.0, 2.0, 0.5)]}  # fmt: skip
    second = {"command": "run B", "date": "d2", "total_seconds": 5, "machine": {"commit": "x"},
              "runs": [_run("asyncpod", 9.0, 2.0, 1.0)]}  # fmt: skip
    merged = merge_documents([first, second], ["a.json", "b.json"])
    assert [r["contender"] for r in merged["runs"]] == ["raw", "asyncpod"]
    assert merged["command"] == "run A ; run B"
    assert merged["date"] == "d1 to d2"
    assert merged["total_seconds"] == 15
    assert merged["file"] == "a.json`, `results/b.json"
    assert merged["machine"] == {"commit": "c"}
    alone = merge_documents([first], ["a.json"])
    assert (alone["date"], alone["file"]) == ("d1", "a.json")


def test_the_probe_says_which_gc_passes_a_window_saw_and_what_the_worst_stall_cost() -> None:
    probe = LoopProbe()
    probe.lags.extend([0.001, 0.250, 0.002])
    probe.worst, probe.worst_cpu = 0.250, 0.240
    probe.gc_passes.extend([(0, 0.001), (2, 0.230), (1, 0.004), (2, 0.120)])
    s = probe.summary()
    assert s["max_ms"] == pytest.approx(250.0)
    assert s["max_cpu_ms"] == pytest.approx(240.0)  # the loop was busy, not waiting for a CPU
    assert s["over_100ms"] == 1
    assert s["gc_passes"] == 4
    assert s["gc_full_passes"] == 2
    assert s["gc_full_longest_ms"] == pytest.approx(230.0)
    assert s["gc_full_total_ms"] == pytest.approx(350.0)
    probe.reset()
    assert probe.summary()["gc_full_passes"] == 0


def test_scale_rows_name_their_gc_policy_and_older_results_still_render() -> None:
    summary = {
        "status": "ok", "completed": 10, "wall_s": 1.0, "pods_per_s": 10.0,
        "cpu_ms_per_pod": 1.0, "rss_growth_mib": 1.0, "requests_per_pod": 2.0,
    }  # fmt: skip
    row = {"pods": 10, "max_in_flight": 10, "requests": {"by_verb": {"POST pods": 10}},
           "loadavg_before": [1.0], "loadavg_after": [1.0]}  # fmt: skip
    new = {**row, "gc_policy": "batch", "summary": {**summary, "loop_stall_max_ms": 80.0,
           "loop_stall_max_cpu_ms": 12.0, "loop_stalls_over_100ms": 0, "gc_full_passes": 0}}  # fmt: skip
    old = {**row, "gc_freeze": True, "summary": {**summary, "loop_stall_max_ms": 227.0}}
    new_line, old_line = batch_table([new, old]).splitlines()[2:]
    assert "| frozen, no full pass |" in new_line
    assert "| 80 (12) | 0 | 0 |" in new_line
    assert "| frozen at start |" in old_line
    assert "| 227 | - | - |" in old_line


def test_an_unknown_gc_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="one of default, freeze, batch"), gc_policy("off"):
        pass
