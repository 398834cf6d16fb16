"""Histogram bins a person can read: round widths, whole seconds, the tail folded.

Why its own module: Kubernetes times have one-second resolution, so a bin narrower
than a second leaves empty gaps between the whole seconds; a width of 0.37 s makes the
axis unreadable; and one pod stuck for an hour among thousands of 3-second pods
squeezes everything into the first bin. So widths are 1, 2 or 5 times a power of ten,
at least a second when every value is whole, and values beyond three times the 99th
percentile are counted in one overflow bar instead of stretching the axis.

What it deliberately does not do: draw, or choose a log scale (durations here are
read in seconds; the overflow bar says how many lie beyond).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Histogram", "histogram", "nice_width"]

TAIL_FACTOR = 3.0
"""Values beyond this many times the 99th percentile go to the overflow bar."""


def nice_width(extent: float, max_bins: int, *, whole: bool = False) -> float:
    """The smallest of 1, 2 or 5 times 10^k with at most ``max_bins`` bins over ``extent``."""
    if max_bins < 1:
        raise ValueError(f"max_bins must be at least 1, got {max_bins}")
    if extent <= 0:
        return 1.0
    raw = extent / max_bins
    power = 10.0 ** math.floor(math.log10(raw))
    width = next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw * (1 - 1e-9))
    return max(width, 1.0) if whole else width


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts of ``[edges[i], edges[i + 1])``; ``overflow`` values were beyond ``edges[-1]``."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    overflow: int = 0

    @property
    def width(self) -> float:
        return self.edges[1] - self.edges[0]


def histogram(values: Sequence[float], *, max_bins: int = 40) -> Histogram | None:
    """Bins from 0 over non-negative ``values`` (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    largest = ordered[-1]
    rank = (len(ordered) - 1) * 0.99
    p99 = ordered[math.floor(rank)] + (
        ordered[min(math.floor(rank) + 1, len(ordered) - 1)] - ordered[math.floor(rank)]
    ) * (rank - math.floor(rank))
    upper = largest
    if p99 > 0 and largest > TAIL_FACTOR * p99:
        upper = TAIL_FACTOR * p99
    whole = all(float(v).is_integer() for v in ordered)
    width = nice_width(upper, max_bins, whole=whole)
    bins = math.floor(upper / width) + 1  # the last bin holds ``upper`` itself
    counts = [0] * bins
    overflow = 0
    for value in ordered:
        index = math.floor(value / width) if value > 0 else 0
        if value > upper or index >= bins:
            overflow += 1
        else:
            counts[index] += 1
    edges = tuple(i * width for i in range(bins + 1))
    return Histogram(edges, tuple(counts), overflow)
