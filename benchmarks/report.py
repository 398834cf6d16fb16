"""Markdown tables from a results file: a headline with ratios to the raw reference, then
one table per workload.

Pure: a results document (:mod:`benchmarks.run`) in, markdown text out, so the tables
in the README are exactly what the file says (``python -m benchmarks report FILE
--readme`` rewrites the README's marked section). ``-`` means not measured or not
applicable; a capped, crashed or killed contender's status is in its row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from benchmarks.stats import ratio

__all__ = [
    "compare_table",
    "detail_table",
    "document_section",
    "fmt",
    "headline_table",
    "merge_documents",
    "workloads",
]

REFERENCE = "raw"


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for a table cell: ``-`` when missing, thousands separated."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _times(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f" ({value:.{digits}f}×)"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def workloads(runs: Iterable[Mapping[str, Any]]) -> list[tuple[float, int]]:
    """The (duration, pods) pairs present, in order: by duration, then by pods."""
    return sorted({(float(r["duration"]), int(r["pods"])) for r in runs})


def _workload(
    runs: Sequence[Mapping[str, Any]], duration: float, pods: int
) -> tuple[list[Mapping[str, Any]], Mapping[str, Any]]:
    """The runs of one workload, and the raw reference's summary among them ({} if none)."""
    group = [r for r in runs if (r["duration"], r["pods"]) == (duration, pods)]
    ref: Mapping[str, Any] = next((r["summary"] for r in group if r["contender"] == REFERENCE), {})
    return group, ref


def _status(s: Mapping[str, Any]) -> str:
    status = str(s.get("status", "?"))
    if status == "ok" and s.get("errors"):
        return f"ok, {s['errors']} errors"
    return status


def headline_table(runs: Sequence[Mapping[str, Any]]) -> str:
    """Every workload and contender: the key figures, each with its ratio to the raw reference."""
    lines = [
        (
            "| workload | contender | status | pods/s (× raw) | requests/pod (× raw) "
            "| client CPU ms/pod (× raw) | notify p99 ms | loop stall max ms | RSS growth MiB |"
        ),
        "|---|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for duration, pods in workloads(runs):
        group, ref = _workload(runs, duration, pods)
        for r in group:
            s = r["summary"]
            if "wall_s" not in s:
                lines.append(
                    f"| {pods:,} × {duration:g} s | {r['contender']} | {_status(s)} "
                    "| - | " + fmt(s.get("requests_per_pod"), 2) + " | - | - | - | - |"
                )
                continue
            rate, req, cpu = s["pods_per_s"], s["requests_per_pod"], s["cpu_ms_per_pod"]
            lines.append(
                f"| {pods:,} × {duration:g} s | {r['contender']} | {_status(s)} "
                f"| {fmt(rate)}{_times(ratio(rate, ref.get('pods_per_s')))} "
                f"| {fmt(req, 2)}{_times(ratio(req, ref.get('requests_per_pod')))} "
                f"| {fmt(cpu, 2)}{_times(ratio(cpu, ref.get('cpu_ms_per_pod')))} "
                f"| {fmt(_ms(s['notify_s']['p99']), 0)} | {fmt(s['loop_stall_max_ms'], 0)} "
                f"| {fmt(s['rss_growth_mib'])} |"
            )
    return "\n".join(lines) + "\n"


# The ratios a second run must reproduce: (summary key, column title, digits).
_COMPARED = (
    ("pods_per_s", "pods/s × raw", 2),
    ("requests_per_pod", "requests/pod × raw", 2),
    ("cpu_ms_per_pod", "client CPU/pod × raw", 2),
)


def _ratios_to_reference(
    runs: Sequence[Mapping[str, Any]],
) -> dict[tuple[float, int, str], dict[str, float | None]]:
    """(duration, pods, contender) → each compared figure divided by raw's in that workload."""
    out: dict[tuple[float, int, str], dict[str, float | None]] = {}
    for duration, pods in workloads(runs):
        group, ref = _workload(runs, duration, pods)
        for r in group:
            s = r["summary"]
            ok = s.get("status") == "ok"
            out[(duration, pods, r["contender"])] = {
                key: ratio(s.get(key), ref.get(key)) if ok else None for key, _, _ in _COMPARED
            }
    return out


def _gap(first: float | None, second: float | None) -> float | None:
    """How far apart two ratios are, relative to their mean (0.10 = 10 %)."""
    if first is None or second is None or first + second == 0:
        return None
    return abs(first - second) / ((first + second) / 2)


def compare_table(first: Sequence[Mapping[str, Any]], second: Sequence[Mapping[str, Any]]) -> str:
    """Two runs of the same matrix side by side: each ratio to raw, and how far apart they are.

    Only workloads and contenders present in both, and only figures of contenders whose
    status was ``ok`` in a run (a capped run's ratio says how far it got, not its rate).
    The last column is the largest relative gap of the row.
    """
    a, b = _ratios_to_reference(first), _ratios_to_reference(second)
    titles = " | ".join(f"{title} (1st / 2nd, gap)" for _, title, _ in _COMPARED)
    lines = [
        f"| workload | contender | {titles} | largest gap |",
        "|---|---|" + "--:|" * (len(_COMPARED) + 1),
    ]
    for key in sorted(a.keys() & b.keys()):
        duration, pods, contender = key
        if contender == REFERENCE:
            continue
        cells, gaps = [], []
        for name, _, digits in _COMPARED:
            gap = _gap(a[key][name], b[key][name])
            if gap is not None:
                gaps.append(gap)
            shown = "-" if gap is None else f"{gap:.0%}"
            cells.append(f"{fmt(a[key][name], digits)} / {fmt(b[key][name], digits)}, {shown}")
        largest = f"{max(gaps):.0%}" if gaps else "-"
        lines.append(
            f"| {pods:,} × {duration:g} s | {contender} | {' | '.join(cells)} | {largest} |"
        )
    return "\n".join(lines) + "\n"


def _verbs(requests: Mapping[str, Any] | None) -> str:
    """``VERB resource count, ...``; requests to paths (API discovery, /version) summed."""
    if not requests:
        return "-"
    counts: dict[str, int] = {}
    for key, value in requests.get("by_verb", {}).items():
        verb, _, resource = key.partition(" ")
        if resource.startswith("/"):
            key = f"{verb} discovery"
        counts[key] = counts.get(key, 0) + value
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "0"


def detail_table(runs: Sequence[Mapping[str, Any]], duration: float, pods: int) -> str:
    """One workload: every figure of every contender."""
    lines = [
        (
            "| contender | status | done | wall s | pods/s | client CPU s | peak RSS MiB (growth) "
            "| notify p50 / p99 / max ms | result p50 / p99 ms | loop stall max / p99 ms "
            "| requests (own, by verb) | req/pod | load avg |"
        ),
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|",
    ]
    for r in runs:
        if (r["duration"], r["pods"]) != (duration, pods):
            continue
        s = r["summary"]
        if "wall_s" not in s:
            lines.append(
                f"| {r['contender']} | {_status(s)} | {s.get('completed', '-')} |"
                + " - |" * 7
                + f" {_verbs(r.get('requests'))} | {fmt(s.get('requests_per_pod'), 2)} | - |"
            )
            continue
        n, res = s["notify_s"], s["result_s"]
        load = r.get("loadavg_before"), r.get("loadavg_after")
        load_text = f"{load[0][0]:.1f}→{load[1][0]:.1f}" if load[0] and load[1] else "-"
        lines.append(
            f"| {r['contender']} | {_status(s)} | {s['completed']:,} | {fmt(s['wall_s'])} "
            f"| {fmt(s['pods_per_s'])} | {fmt(s['cpu_s'], 2)} "
            f"| {fmt(s['rss_peak_mib'], 0)} (+{fmt(s['rss_growth_mib'])}) "
            f"| {fmt(_ms(n['p50']), 0)} / {fmt(_ms(n['p99']), 0)} / {fmt(_ms(n['max']), 0)} "
            f"| {fmt(_ms(res['p50']), 0)} / {fmt(_ms(res['p99']), 0)} "
            f"| {fmt(s['loop_stall_max_ms'], 0)} / {fmt(s['loop_stall_p99_ms'], 0)} "
            f"| {_verbs(r.get('requests'))} | {fmt(s['requests_per_pod'], 2)} | {load_text} |"
        )
    return "\n".join(lines) + "\n"


def merge_documents(documents: Sequence[Mapping[str, Any]], files: Sequence[str]) -> dict[str, Any]:
    """Several results files as one (their runs together), to tabulate and plot across N.

    Provenance stays visible: every command (joined with ``;``), every file, the first
    and last date; the machine and commit are the first file's (the tables say so only
    once, so merge runs of one commit and machine).
    """
    first, last = documents[0], documents[-1]
    return {
        **first,
        "command": " ; ".join(str(d.get("command", "?")) for d in documents),
        "date": f"{first.get('date', '?')} to {last.get('date', '?')}"
        if len(documents) > 1
        else first.get("date", "?"),
        "total_seconds": sum(float(d.get("total_seconds", 0)) for d in documents),
        "file": "`, `results/".join(files),
        "runs": [run for d in documents for run in d["runs"]],
    }


def document_section(document: Mapping[str, Any], *, plots: Sequence[str] = ()) -> str:
    """The README section for one results file: provenance, headline, plots, details."""
    m = document["machine"]
    runs = document["runs"]
    loads = [r["loadavg_before"][0] for r in runs if r.get("loadavg_before")]
    loads += [r["loadavg_after"][0] for r in runs if r.get("loadavg_after")]
    load_text = f"{min(loads):.1f}–{max(loads):.1f}" if loads else "-"
    commit = f"`{m['commit']}`" + (" (with uncommitted changes)" if m.get("dirty") else "")
    packages = ", ".join(f"{k} {v}" for k, v in sorted(m["packages"].items()))
    out = [
        (
            f"`{document['command']}` — {document['date']}, "
            f"{document['total_seconds']:.0f} s in all; commit {commit}; "
            f"raw data: `results/{document.get('file', '?')}`\n"
        ),
        (
            f"Machine: {m['nproc']} CPUs ({m.get('cpu') or '?'}), {m.get('memory') or '?'}, "
            f"{m['platform']}, Python {m['python']}; {packages}. 1-minute load average "
            f"during the run: {load_text} (the machine has {m['nproc']} CPUs; above that, "
            "the figures were taken on a loaded machine).\n"
        ),
        headline_table(runs),
    ]
    out.extend(f"![{name}]({name})\n" for name in plots)
    for duration, pods in workloads(runs):
        out.append(f"\n#### {pods:,} pods × {duration:g} s\n\n{detail_table(runs, duration, pods)}")
    return "\n".join(out)
