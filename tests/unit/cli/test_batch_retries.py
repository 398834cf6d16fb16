"""Batch v2's pure parts: attempts in the results file, entries' retry fields, the
policies the CLI builds, and where kept logs go."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from asyncpod.cli.batch import failure_policies
from asyncpod.cli.batchfile import BatchFileError, parse_batch
from asyncpod.cli.resultsfile import ResultsWriter, read_results
from asyncpod.core.failurepolicy import DEFAULT_RULES, FailureRule
from asyncpod.core.keptlogs import KeepLogs, log_path, wants_log
from asyncpod.errors import UsageError
from asyncpod.results import Outcome, PodResult


def result(key: str, outcome: Outcome, *, uid: str | None = "uid") -> PodResult:
    return PodResult("ns", f"pod-{key}", uid, outcome=outcome, task_key=key)


def test_a_resumed_batch_goes_on_after_the_last_attempt_recorded(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with ResultsWriter(path, run_id="r1") as writer:
        writer.write(result("a", Outcome.DELETED), extra={"attempt": 1, "final": False})
        writer.write(result("a", Outcome.FAILED), extra={"attempt": 2, "final": False})
        writer.write(result("b", Outcome.FAILED), extra={"attempt": 1, "final": True})
        writer.write(result("c", Outcome.CANCELLED), extra={"attempt": 1, "final": True})
        writer.write(result("d", Outcome.SUCCEEDED))  # before attempts existed
    recorded = read_results(path)
    assert recorded.done_keys() == {"b", "d"}  # a goes on; c was cancelled
    assert recorded.next_attempt("a") == (3, 2)
    assert recorded.next_attempt("c") == (2, 0)  # a cancelled attempt does not count
    assert recorded.next_attempt("new") == (1, 0)
    assert recorded.retried_keys() == {"a"}
    assert recorded.final == {"a": False, "b": True, "c": True, "d": True}


def test_a_results_line_carries_the_attempt_and_leaves_out_what_is_not_known(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.jsonl"
    with ResultsWriter(path, run_id="r1") as writer:
        writer.write(
            result("a", Outcome.FAILED),
            extra={"attempt": 2, "final": True, "log": "logs/a/2.log", "log_missing": None},
        )
    text = path.read_text()
    assert '"attempt":2' in text
    assert '"log":"logs/a/2.log"' in text
    assert "log_missing" not in text


def test_entries_may_carry_their_own_retries_and_rules() -> None:
    text = textwrap.dedent(
        """\
        - {task_key: a, image: busybox, retries: 4, retry_on: ["exit-code=75"]}
        - task_key: b
          image: busybox
          retry_on:
            - {action: fail, reason: OOMKilled}
        - {task_key: c, image: busybox}
        """
    )
    batch = parse_batch(text, format="yaml")
    a, b, c = batch.entries
    assert (a.retries, a.retry_on) == (4, (FailureRule.parse("exit-code=75"),))
    assert (b.retries, b.retry_on) == (None, (FailureRule.parse("fail:reason=OOMKilled"),))
    assert (c.retries, c.retry_on) == (None, None)
    assert "retries" not in a.spec.to_manifest(namespace="ns", name="x")["metadata"].get(
        "annotations", {}
    )

    default, own = failure_policies(batch, retries=1, rules=(FailureRule.parse("exit-code=3"),))
    assert default.max_attempts == 2
    assert default.rules == (FailureRule.parse("exit-code=3"), *DEFAULT_RULES)
    assert set(own) == {"a", "b"}
    assert own["a"].max_attempts == 5
    assert own["a"].rules == (FailureRule.parse("exit-code=75"), *DEFAULT_RULES)
    assert own["b"].max_attempts == 2  # the command line's retries, its own rules
    assert own["b"].rules[0] == FailureRule.parse("fail:reason=OOMKilled")


def test_bad_retry_fields_are_problems_on_their_lines() -> None:
    text = textwrap.dedent(
        """\
        - {task_key: a, image: busybox, retries: many}
        - task_key: b
          image: busybox
          retry_on: ["reason=Evictd"]
        """
    )
    with pytest.raises(BatchFileError) as caught:
        parse_batch(text, format="yaml", source="jobs.yaml")
    rendered = [p.render("jobs.yaml") for p in caught.value.problems]
    assert rendered[0] == "jobs.yaml:1: retries: must be a whole number >= 0, got 'many'"
    assert rendered[1].startswith(
        "jobs.yaml:4: retry_on: retry_on[0]: rule 'reason=Evictd': reason 'Evictd' is not"
    )


def test_kept_logs_go_under_the_task_key_made_safe_for_a_path() -> None:
    root = Path("/logs")
    assert log_path(root, "shard-7", 2) == Path("/logs/shard-7/2.log")
    assert log_path(root, "a/b", 1) == Path("/logs/a%2Fb/1.log")
    assert log_path(root, "..", 1) == Path("/logs/%2E./1.log")
    assert log_path(root, "ü x", 1) == Path("/logs/%C3%BC%20x/1.log")


def test_which_attempts_keep_their_logs() -> None:
    failed = KeepLogs(Path("/logs"))
    every = KeepLogs(Path("/logs"), "all")
    assert wants_log(failed, result("a", Outcome.FAILED))
    assert not wants_log(failed, result("a", Outcome.SUCCEEDED))
    assert wants_log(every, result("a", Outcome.SUCCEEDED))
    assert not wants_log(every, result("a", Outcome.CANCELLED))
    assert not wants_log(every, result("a", Outcome.ERROR, uid=None))  # no pod
    assert not wants_log(None, result("a", Outcome.FAILED))
    with pytest.raises(UsageError, match="'failed' or 'all'"):
        KeepLogs(Path("/logs"), "some")  # type: ignore[arg-type]
