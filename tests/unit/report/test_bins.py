"""Histogram bins: round widths, whole seconds for whole-second times, the tail folded."""

from __future__ import annotations

import pytest

from asyncpod.report import histogram, nice_width
from asyncpod.report._bins import TAIL_FACTOR


@pytest.mark.parametrize(
    ("extent", "max_bins", "whole", "expected"),
    [
        (100.0, 40, False, 5.0),
        (40.0, 40, False, 1.0),
        (41.0, 40, False, 2.0),
        (3.0, 40, False, 0.1),
        (3.0, 40, True, 1.0),
        (0.0, 40, False, 1.0),
        (12_000.0, 40, True, 500.0),
    ],
)
def test_widths_are_one_two_or_five_times_a_power_of_ten(
    extent: float, max_bins: int, whole: bool, expected: float
) -> None:
    assert nice_width(extent, max_bins, whole=whole) == pytest.approx(expected)


def test_no_values_no_histogram() -> None:
    assert histogram([]) is None


def test_every_value_is_counted_once_from_zero() -> None:
    values = [0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 7.0]
    histo = histogram(values, max_bins=40)
    assert histo is not None
    assert histo.edges[0] == 0.0
    assert histo.width == 1.0  # whole seconds: never narrower than a second
    assert histo.counts == (2, 1, 3, 0, 0, 0, 0, 1)
    assert histo.overflow == 0
    assert sum(histo.counts) == len(values)


def test_all_zero_values_fill_one_bin() -> None:
    histo = histogram([0.0] * 5)
    assert histo is not None
    assert histo.counts == (5,)


def test_a_far_tail_goes_to_the_overflow_bar() -> None:
    values = [float(v % 10) for v in range(1000)] + [3600.0, 7200.0]
    histo = histogram(values, max_bins=40)
    assert histo is not None
    assert histo.overflow == 2
    assert histo.edges[-1] >= TAIL_FACTOR * 9 - histo.width
    assert sum(histo.counts) + histo.overflow == len(values)
    assert len(histo.counts) <= 41


def test_fractional_values_get_fractional_bins() -> None:
    histo = histogram([0.15, 0.25, 0.35, 1.95], max_bins=20)
    assert histo is not None
    assert histo.width == pytest.approx(0.1)
    assert sum(histo.counts) == 4
