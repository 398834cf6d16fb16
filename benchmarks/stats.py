"""Pure arithmetic of the benchmarks: percentiles, latencies, per-pod rates and ratios.

Why a module of its own: these are the numbers the README quotes, so they are decided
in plain functions that the unit tests pin (``tests/unit/benchmarks``), apart from the
processes, sockets and clocks that feed them. Nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LatencySummary",
    "flatness",
    "latencies",
    "nearest_rank",
    "per_pod",
    "ratio",
    "summarize_latencies",
]


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile ``q`` (0 < q <= 1) of ``values``; ``None`` when empty.

    Nearest rank, not interpolation: the value reported is one that was measured.
    """
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], got {q}")
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Seconds; ``n`` is how many pods had both ends of the interval."""

    n: int
    p50: float | None
    p99: float | None
    max: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "p50": self.p50, "p99": self.p99, "max": self.max}


def summarize_latencies(values: Sequence[float]) -> LatencySummary:
    return LatencySummary(
        n=len(values),
        p50=nearest_rank(values, 0.5),
        p99=nearest_rank(values, 0.99),
        max=max(values) if values else None,
    )


def latencies(starts: Mapping[str, float], ends: Iterable[tuple[str, float | None]]) -> list[float]:
    """``end - start`` per pod name present on both sides (names without a start skip)."""
    out = []
    for name, end in ends:
        start = starts.get(name)
        if start is not None and end is not None:
            out.append(end - start)
    return out


def per_pod(total: float | None, pods: int) -> float | None:
    """``total / pods``, or ``None`` when either is missing or there were no pods."""
    if total is None or pods <= 0:
        return None
    return total / pods


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference``; ``None`` when it cannot be formed (missing or zero reference)."""
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


def flatness(points: Sequence[tuple[float, float]], *, ramp_up: float = 10.0) -> dict[str, Any]:
    """Does a sampled quantity stay flat? Means of the first and last thirds, range, slope.

    Samples before ``ramp_up`` seconds are left out (the launcher filling its slots).
    ``slope_per_min`` is the least-squares slope in units per minute; ``None`` values
    when fewer than three samples remain.
    """
    kept = [(t, v) for t, v in points if t >= ramp_up]
    if len(kept) < 3:
        return {"n": len(kept), "first": None, "last": None, "min": None, "max": None,
                "slope_per_min": None}  # fmt: skip
    third = max(1, len(kept) // 3)
    values = [v for _, v in kept]
    mean_t = sum(t for t, _ in kept) / len(kept)
    mean_v = sum(values) / len(values)
    var_t = sum((t - mean_t) ** 2 for t, _ in kept)
    cov = sum((t - mean_t) * (v - mean_v) for t, v in kept)
    return {
        "n": len(kept),
        "first": sum(values[:third]) / third,
        "last": sum(values[-third:]) / third,
        "min": min(values),
        "max": max(values),
        "slope_per_min": cov / var_t * 60 if var_t else None,
    }
