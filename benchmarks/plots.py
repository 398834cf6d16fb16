"""PNG plots of a results file with matplotlib: four figures, each metric against N.

One figure per metric (requests per pod, client CPU per pod, notification latency p99,
RSS growth), one panel per pod run time, one line per contender, log-scaled where the
contenders differ by orders of magnitude. Only finished runs (status ``ok``) are drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["METRICS", "render"]

Getter = Callable[[Mapping[str, Any]], "float | None"]


def _p99_ms(s: Mapping[str, Any]) -> float | None:
    value = s["notify_s"]["p99"]
    return None if value is None else max(value * 1000, 0.1)


METRICS: tuple[tuple[str, str, Getter, bool], ...] = (
    ("requests", "API requests per pod (own, audit log)", lambda s: s["requests_per_pod"], True),
    ("cpu", "client CPU ms per pod", lambda s: s["cpu_ms_per_pod"], True),
    ("latency", "notification latency p99 (ms)", _p99_ms, True),
    ("rss", "RSS growth (MiB)", lambda s: s["rss_growth_mib"], False),
)


def render(document: Mapping[str, Any], out_dir: Path, stem: str) -> list[Path]:
    """Write ``<stem>-<metric>.png`` into ``out_dir``; return the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: Sequence[Mapping[str, Any]] = document["runs"]
    durations = sorted({float(r["duration"]) for r in runs})
    contenders = list(dict.fromkeys(r["contender"] for r in runs))
    paths = []
    for key, label, get, log_scale in METRICS:
        fig, axes = plt.subplots(
            1, len(durations), figsize=(5.5 * len(durations), 4), squeeze=False, sharey=True
        )
        for ax, duration in zip(axes[0], durations, strict=True):
            for name in contenders:
                points = sorted(
                    (int(r["pods"]), get(r["summary"]))
                    for r in runs
                    if r["contender"] == name
                    and float(r["duration"]) == duration
                    and r["summary"].get("status") == "ok"
                )
                points = [(n, v) for n, v in points if v is not None]
                if points:
                    ax.plot([n for n, _ in points], [v for _, v in points], marker="o", label=name)
            ax.set_xscale("log")
            if log_scale:
                ax.set_yscale("log")
            ax.set_title(f"pods run {duration:g} s")
            ax.set_xlabel("pods in flight (N)")
            ax.grid(visible=True, which="both", alpha=0.3)
        axes[0][0].set_ylabel(label)
        axes[0][-1].legend(fontsize="small")
        fig.suptitle(label)
        fig.tight_layout()
        path = out_dir / f"{stem}-{key}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths
