"""Resume filter: no log line lost or repeated across a restart (pure)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from asyncpod.airflow.logresume import ResumeFilter, ResumePoint, ResumeStore
from asyncpod.kube.logs import LogLine

T1 = "2026-01-01T00:00:01.000000001Z"
T2 = "2026-01-01T00:00:02.5Z"
T3 = "2026-01-01T00:00:03Z"


def line(ts: str, text: str, container: str = "base") -> LogLine:
    return LogLine(ts, text, container)


def test_fresh_filter_accepts_everything_and_tracks_the_point() -> None:
    f = ResumeFilter()
    assert all(f.accept(x) for x in [line(T1, "a"), line(T2, "b"), line(T2, "b")])
    assert f.points["base"] == ResumePoint(T2, Counter({"b": 2}))


def test_resume_drops_older_lines_and_lines_already_seen_at_the_point() -> None:
    f = ResumeFilter({"base": ResumePoint(T2, Counter({"b": 1}))})
    replay = [line(T1, "a"), line(T2, "b"), line(T2, "b"), line(T2, "c"), line(T3, "d")]
    assert [x.text for x in replay if f.accept(x)] == ["b", "c", "d"]


def test_containers_resume_independently() -> None:
    f = ResumeFilter({"base": ResumePoint(T2, Counter({"x": 1}))})
    assert f.accept(line(T1, "early", container="init"))
    assert not f.accept(line(T1, "early", container="base"))
    assert f.since()["base"] == T2


def test_store_round_trip_and_throttle(tmp_path: Path) -> None:
    store = ResumeStore(tmp_path, "uid-1", interval=3600)
    points = {"base": ResumePoint(T2, Counter({"b": 2}))}
    store.changed(points)  # first change saves at once
    assert ResumeStore(tmp_path, "uid-1").load() == points
    points["base"] = ResumePoint(T3, Counter({"z": 1}))
    store.changed(points)  # throttled: not on disk yet
    assert ResumeStore(tmp_path, "uid-1").load()["base"].timestamp == T2
    store.save(points)  # the final save always writes
    assert ResumeStore(tmp_path, "uid-1").load() == points
    store.remove()
    assert ResumeStore(tmp_path, "uid-1").load() == {}


def test_a_corrupt_state_file_means_start_over(tmp_path: Path) -> None:
    (tmp_path / "u.json").write_text("{not json", encoding="utf-8")
    assert ResumeStore(tmp_path, "u").load() == {}
