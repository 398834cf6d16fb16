"""Log resume: no log line lost or repeated across a restart or a fail-over (pure parts,
and the commit-then-log order against a recorded stand-in for the pod's annotation)."""

from __future__ import annotations

from collections import Counter

import pytest

from asyncpod.airflow.logresume import (
    CommittedLog,
    CommitUnavailableError,
    ResumeCommits,
    ResumeFilter,
    ResumePoint,
    decode_points,
    encode_points,
    text_digest,
)
from asyncpod.kube.logs import LogLine

T1 = "2026-01-01T00:00:01.000000001Z"
T2 = "2026-01-01T00:00:02.5Z"
T3 = "2026-01-01T00:00:03Z"
T4 = "2026-01-01T00:00:04Z"


def line(ts: str, text: str, container: str = "base") -> LogLine:
    return LogLine(ts, text, container)


def seen(*texts: str) -> Counter[str]:
    return Counter(text_digest(t) for t in texts)


def test_fresh_filter_accepts_everything_and_tracks_the_point() -> None:
    f = ResumeFilter()
    assert all(f.accept(x) for x in [line(T1, "a"), line(T2, "b"), line(T2, "b")])
    assert f.points["base"] == ResumePoint(T2, seen("b", "b"))


def test_resume_drops_older_lines_and_lines_already_seen_at_the_point() -> None:
    f = ResumeFilter({"base": ResumePoint(T2, seen("b"))})
    replay = [line(T1, "a"), line(T2, "b"), line(T2, "b"), line(T2, "c"), line(T3, "d")]
    assert [x.text for x in replay if f.accept(x)] == ["b", "c", "d"]


def test_containers_resume_independently() -> None:
    f = ResumeFilter({"base": ResumePoint(T2, seen("x"))})
    assert f.accept(line(T1, "early", container="init"))
    assert not f.accept(line(T1, "early", container="base"))
    assert f.since()["base"] == T2


def test_a_filter_never_changes_the_points_it_was_given() -> None:
    given = {"base": ResumePoint(T2, seen("b"))}
    f = ResumeFilter(given)
    f.accept(line(T2, "c"))
    assert given == {"base": ResumePoint(T2, seen("b"))}


def test_points_round_trip_through_the_annotation() -> None:
    points = {"base": ResumePoint(T2, seen("b", "b", "c")), "init": ResumePoint(T1, seen("x"))}
    encoded = encode_points(points)
    assert decode_points(encoded) == points
    assert encode_points(decode_points(encoded)) == encoded  # stable: equal points, equal text
    assert len(encoded) < 200  # digests, not texts: a 1 MB line costs 16 characters
    # Two triggers that logged the same lines write different values: each knows its own.
    assert encode_points(points, "a") != encode_points(points, "b")
    assert decode_points(encode_points(points, "a")) == points


@pytest.mark.parametrize(
    "value", [None, "", "{not json", "[1, 2]", '{"p": {"base": 3}}', '{"p": {"b": ["t"]}}', "{}"]
)
def test_an_unreadable_annotation_means_start_over(value: str | None) -> None:
    assert decode_points(value) == {}


class RecordedCommits(ResumeCommits):
    """The pod's annotation as a variable: what the server would hold."""

    def __init__(self, remote: str | None = None, *, unavailable: bool = False) -> None:
        self.remote = remote
        self.committed = remote
        self.unavailable = unavailable
        self.swaps: list[str] = []

    async def commit(self, points: dict[str, ResumePoint]) -> dict[str, ResumePoint] | None:
        if self.unavailable:
            raise CommitUnavailableError("403 Forbidden: cannot patch pods")
        if points == decode_points(self.committed):
            return None
        value = encode_points(points, "me")
        if self.remote != self.committed:  # another trigger committed since we looked
            self.committed = self.remote
            return decode_points(self.remote)
        self.swaps.append(value)
        self.remote = self.committed = value
        return None


async def test_lines_are_logged_only_after_their_point_is_committed() -> None:
    commits = RecordedCommits()
    emitted: list[str] = []

    def emit(logged: LogLine) -> None:
        # Every line reaches the task log after the point past it is on the pod.
        assert commits.remote is not None
        assert decode_points(commits.remote)["base"].timestamp >= logged.timestamp
        emitted.append(logged.text)

    log = CommittedLog(commits, emit)
    for x in [line(T1, "a"), line(T2, "b")]:
        assert not log.offer(x)
    assert emitted == []  # waiting for the commit
    await log.flush()
    assert emitted == ["a", "b"]
    assert len(commits.swaps) == 1
    await log.flush()  # nothing new: no request
    assert len(commits.swaps) == 1


async def test_a_successor_resumes_from_the_committed_point_and_repeats_nothing() -> None:
    first = RecordedCommits()
    logged: list[str] = []
    log = CommittedLog(first, lambda x: logged.append(x.text))
    for x in [line(T1, "a"), line(T2, "b")]:
        log.offer(x)
    await log.flush()
    log.offer(line(T3, "c"))  # read, never committed: the triggerer dies here
    log.discard()
    successor = CommittedLog(RecordedCommits(first.remote), lambda x: logged.append(x.text))
    for x in [line(T1, "a"), line(T2, "b"), line(T3, "c"), line(T4, "d")]:  # sinceTime replay
        successor.offer(x)
    await successor.flush()
    assert logged == ["a", "b", "c", "d"]


async def test_two_triggers_at_once_never_both_log_a_line() -> None:
    """The swap that fails adopts the other trigger's point and drops what it logged."""
    logged: list[str] = []
    commits = RecordedCommits()
    mine = CommittedLog(commits, lambda x: logged.append(f"mine {x.text}"))
    for x in [line(T1, "a"), line(T2, "b")]:
        mine.offer(x)
    # Meanwhile another trigger committed and logged up to "b" and one line past it.
    other = ResumeFilter()
    for x in [line(T1, "a"), line(T2, "b"), line(T3, "c")]:
        other.accept(x)
    commits.remote = encode_points(other.points, "other")
    logged += ["other a", "other b", "other c"]
    mine.offer(line(T4, "d"))
    await mine.flush()
    assert logged == ["other a", "other b", "other c", "mine d"]


async def test_without_a_commit_lines_are_logged_at_once_and_a_warning_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logged: list[str] = []
    log = CommittedLog(RecordedCommits(unavailable=True), lambda x: logged.append(x.text))
    log.offer(line(T1, "a"))
    await log.flush()
    assert logged == ["a"]
    assert "grant 'patch' on pods" in caplog.text
    log.offer(line(T2, "b"))  # uncommitted from now on: at once, no more warnings
    assert logged == ["a", "b"]
    assert caplog.text.count("cannot record") == 1


async def test_a_full_buffer_asks_for_a_flush_before_the_interval() -> None:
    log = CommittedLog(RecordedCommits(), lambda x: None, max_pending=3)
    assert [log.offer(line(T1, str(i))) for i in range(3)] == [False, False, True]
