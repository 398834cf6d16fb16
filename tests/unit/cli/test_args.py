"""Command-line parsing and the pure decisions of ``asyncpod run`` and ``batch``."""

from __future__ import annotations

import argparse

import pytest

from asyncpod.cli._common import parse_pairs, run_options
from asyncpod.cli.batch import progress_line
from asyncpod.cli.batchfile import new_run_id
from asyncpod.cli.main import parse_args
from asyncpod.cli.run import container_count, exit_code_for, format_line, spec_from_args
from asyncpod.core.runner import Cleanup
from asyncpod.errors import SpecError, UsageError
from asyncpod.kube.logs import LogLine
from asyncpod.results import ContainerKind, ContainerResult, Outcome, PodResult, Reason
from asyncpod.spec import ContainerSpec, PodSpec


def test_words_after_double_dash_are_the_command_untouched() -> None:
    args = parse_args(
        ["run", "busybox", "-e", "A=1", "--", "sh", "-c", "echo -- -e x", "--", "--keep"]
    )
    assert args.image == "busybox"
    assert args.args == ["sh", "-c", "echo -- -e x", "--", "--keep"]
    assert args.env == ["A=1"]
    assert args.keep is False


def test_options_may_follow_the_image() -> None:
    args = parse_args(["run", "busybox", "--keep", "-n", "jobs", "--timeout", "30"])
    assert (args.keep, args.namespace, args.timeout, args.args) == (True, "jobs", 30.0, [])


def test_words_without_double_dash_still_work() -> None:
    assert parse_args(["run", "busybox", "echo", "hi"]).args == ["echo", "hi"]


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "busybox", "echo", "--", "hi"],  # the command split around --
        ["batch", "jobs.yaml", "--", "x"],  # batch takes no command
        ["run", "busybox", "--timeout", "-3"],
        ["batch", "jobs.yaml", "--max-in-flight", "0"],
        ["batch", "jobs.yaml", "--cleanup", "delete-on-success", "--keep"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    assert caught.value.code == 2


def test_timeouts_map_to_run_options_and_zero_turns_one_off() -> None:
    args = parse_args(["batch", "f.yaml", "--timeout", "60", "--schedule-timeout", "0", "--keep"])
    options = run_options(args, cleanup=Cleanup(args.cleanup))
    assert (options.deadline, options.schedule_timeout, options.cleanup) == (
        60.0,
        None,
        Cleanup.KEEP,
    )
    assert options.image_pull_timeout == 120.0


def test_spec_from_args_trailing_words_are_args_unless_command() -> None:
    argv = ["run", "python:3.12", "-e", "A=1=2", "-l", "team=ml", "-a", "note=", "--name", "p1"]
    spec = spec_from_args(parse_args([*argv, "--", "-c", "print(1)"]))
    assert (spec.image, spec.command, spec.args, spec.name) == (
        "python:3.12",
        (),
        ("-c", "print(1)"),
        "p1",
    )
    assert [(e.name, e.value) for e in spec.env] == [("A", "1=2")]
    assert (dict(spec.labels), dict(spec.annotations)) == ({"team": "ml"}, {"note": ""})
    spec = spec_from_args(parse_args(["run", "busybox", "--command", "--", "sleep", "1"]))
    assert (spec.command, spec.args) == (("sleep", "1"), ())


def test_spec_from_args_validates() -> None:
    with pytest.raises(SpecError, match="label"):
        spec_from_args(parse_args(["run", "busybox", "-l", "bad key=x"]))
    with pytest.raises(UsageError, match="KEY=VALUE"):
        spec_from_args(parse_args(["run", "busybox", "-e", "NOVALUE"]))


def test_parse_pairs() -> None:
    assert parse_pairs(["a=1", "b=", "c=x=y"], option="--env") == {"a": "1", "b": "", "c": "x=y"}
    with pytest.raises(UsageError, match="--label expects KEY=VALUE, got '=x'"):
        parse_pairs(["=x"], option="--label")


def pod_result(outcome: Outcome, code: int | None, reason: str | None = None) -> PodResult:
    containers: tuple[ContainerResult, ...] = ()
    if code is not None:
        containers = (ContainerResult("main", ContainerKind.MAIN, exit_code=code),)
    return PodResult("ns", "p", "u", outcome=outcome, reason=reason, containers=containers)


@pytest.mark.parametrize(
    ("outcome", "code", "reason", "expected"),
    [
        (Outcome.SUCCEEDED, 0, None, 0),
        (Outcome.SUCCEEDED, None, None, 0),
        (Outcome.FAILED, 3, Reason.ERROR, 3),
        (Outcome.FAILED, 137, Reason.OOM_KILLED, 137),
        (Outcome.FAILED, 0, Reason.ERROR, 1),  # main exited 0, an init container failed
        (Outcome.FAILED, None, Reason.IMAGE_PULL_BACK_OFF, 1),
        (Outcome.TIMED_OUT, None, Reason.UNSCHEDULABLE, 1),
        (Outcome.DELETED, None, Reason.DELETED_EXTERNALLY, 1),
        (Outcome.FAILED, 300, Reason.ERROR, 1),  # not a valid process exit status
        (Outcome.FAILED, -1, Reason.ERROR, 1),
    ],
)
def test_exit_code_for(
    outcome: Outcome, code: int | None, reason: str | None, expected: int
) -> None:
    assert exit_code_for(pod_result(outcome, code, reason)) == expected


def test_log_lines_are_prefixed_only_when_the_pod_has_several_containers() -> None:
    line = LogLine("2024-05-01T10:00:00Z", "hello", "main")
    assert format_line(line, prefix=False) == "hello\n"
    assert format_line(line, prefix=True) == "[main] hello\n"
    assert container_count(PodSpec("busybox")) == 1
    two = PodSpec("busybox", init_containers=[ContainerSpec("fetch", "busybox")])
    assert container_count(two) == 2


def test_new_run_id_is_a_short_slug_plus_randomness() -> None:
    first, second = new_run_id("/x/My Jobs (v2).yaml"), new_run_id("/x/My Jobs (v2).yaml")
    assert first.startswith("my-jobs-v2-")
    assert len(first) == len("my-jobs-v2-") + 8
    assert first != second
    assert new_run_id("-").startswith("stdin-")
    assert new_run_id("___.yaml").startswith("batch-")


def test_progress_line_has_counts_rate_and_eta() -> None:
    from asyncpod.cli.batch import _Counts

    line = progress_line(
        "asyncpod batch", _Counts(done=50, ok=45, failed=5, in_flight=10), 200, 10.0
    )
    assert line == (
        "asyncpod batch: 50/200 done (45 succeeded, 5 failed) · 10 in flight · 5.0 pods/s "
        "· ETA 30s · 10s elapsed"
    )
    line = progress_line("b", _Counts(), 10, 0.0)
    assert "0.0 pods/s · ETA -" in line


def test_namespace_type_is_argparse() -> None:
    # The handlers are plain functions of an argparse Namespace (no hidden globals).
    args = parse_args(["batch", "f.yaml"])
    assert isinstance(args, argparse.Namespace)
    assert callable(args.handler)
