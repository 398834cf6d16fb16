"""``asyncpod batch FILE``: many pods, a bounded number at a time, resumable.

Why: running thousands of pods from a list is the job people script badly around
``kubectl`` (a create loop, a polling loop, no record of what finished). Here the whole
input is validated first (every problem with its line; nothing is created if there is
one), pods go through one :class:`asyncpod.Launcher` (at most ``--max-in-flight``
alive, followed through one shared watch), each result is appended to a JSONL file
the moment it is known, and a summary says what happened and why.

The input formats (a YAML list, JSONL, a template with parameter rows) are described
in :mod:`asyncpod.cli.batchfile`; the results file in :mod:`asyncpod.cli.resultsfile`.

Resume: every pod is named from the run id and its task key, so rerunning a crashed
batch with ``--run-id ID --resume`` skips the tasks recorded in the results file and,
for the others, gets 409 for pods that still exist and reattaches to them: no task
runs twice. Tasks recorded as cancelled or error are tried again.

Ctrl-C (or SIGTERM) cancels the runs in flight, which deletes their pods (unless
``--cleanup keep``), then deletes any pod of the run whose create was still on the
wire when its run was cancelled; the summary is printed and the exit code is 130
(143). A second Ctrl-C only warns; a third quits at once.

Before the first create, one server-side dry run of the first pod to run checks the
namespace, the permission to create pods and admission: a batch that cannot create
anything says so once and exits 2, instead of recording thousands of create failures.

Retries (``--retries N``, ``--retry-on RULE``, an entry's ``retries``/``retry_on``):
a failed attempt is retried in a new pod when a rule says so; by default what the
infrastructure did (an eviction, a disruption, a pod deleted by someone else, a lost
node), up to 2 retries, never a program's own exit code. Rules are
:mod:`asyncpod.core.failurepolicy`'s; each attempt is a line of the results file
(``attempt``, ``final``); the summary counts each task's final outcome and the tasks
retried; the exit code follows final outcomes.

``--max-failures N``: once N tasks have finally failed, no new pod is created, the
runs in flight are cancelled (pods deleted, results recorded as cancelled), the reason
is printed and the exit code is 1.

``--logs DIR`` (``--logs-for failed|all``): each kept attempt's logs, every container
with timestamps, go to ``DIR/<task key>/<attempt>.log`` before its pod is deleted; the
results line names the file (``log``) or says why it is missing (``log_missing``).

Several clusters (``--context A=3 --context B=1``, or several ``--kubeconfig``;
:mod:`asyncpod.cli.fleetoptions`): one :class:`asyncpod.Fleet` over a session per
cluster, each with its share of ``--max-in-flight``; each results line names its
``cluster``. A cluster silent for ``--cluster-lost-after`` seconds gets no new pods and
its attempts end as ``ClusterUnreachable``, which run again elsewhere only where a rule
says (their pods may still run there). A resumed batch sends each unfinished task whose
pod of the run is found on a cluster back there.

In the cluster (``--submit``, ``--shard I/K``; ``batch status|results|cancel RUN_ID``):
an Indexed Job of launcher shards, each running this command on its share of the
tasks; see :mod:`asyncpod.cli.incluster`. A shard (``--shard``) exits at once on a
signal, leaving its pods to the pod that replaces it, and exits 0 once its share has
final results.

Exit codes: 0 every task succeeded; 1 some task did not (or the batch stopped on an
error or on --max-failures); 2 usage or input-file errors (nothing was created);
130/143 interrupted.

What it deliberately does not do: stream pod logs (use ``asyncpod run`` for one pod),
or check that a resumed input is the one of the first attempt (task keys are the
contract: give entries a ``task_key`` if the file may change).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
)

from asyncpod.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Interrupted,
    add_timeout_options,
    add_verbose_option,
    describe_error,
    library_voice,
    run_interruptible,
    run_options,
    signal_exit_code,
)
from asyncpod.cli._metrics import MetricsFlags, add_metrics_options, exported, metrics_flags
from asyncpod.cli._traces import traced
from asyncpod.cli.batchfile import Batch, BatchFileError, Entry, new_run_id
from asyncpod.cli.fleetoptions import ClusterChoice, add_fleet_cluster_options, cluster_choices
from asyncpod.cli.heap import batch_collector
from asyncpod.cli.incluster import (
    ACTIONS,
    add_incluster_options,
    handle_action,
    load_input,
    progress_target,
    submit,
)
from asyncpod.cli.resultsfile import RecordedResults, ResultsWriter, read_results
from asyncpod.cli.shardprogress import PodTarget, ProgressPublisher
from asyncpod.cli.shards import SHARD_LABEL, Shard, parse_shard
from asyncpod.cli.simulated import NODE_READ_TIMEOUT, NodeKinds, note
from asyncpod.cli.summary import format_seconds, render, summarize
from asyncpod.cli.sweep import Sweep, attempt_of, sweep
from asyncpod.core.cluster import MANAGED_SELECTOR, Cluster, connect
from asyncpod.core.failurepolicy import DEFAULT_RULES, FailurePolicy, FailureRule
from asyncpod.core.fleet import Fleet, FleetMember
from asyncpod.core.keptlogs import KeepLogs
from asyncpod.core.policy import deleted_after_record
from asyncpod.core.retrying import until_answered
from asyncpod.core.routing import shares
from asyncpod.core.runner import Cleanup, RunOptions
from asyncpod.core.scheduler import Attempt, Launcher, TaskHistory
from asyncpod.errors import ApiError, AsyncpodError, ConflictError, UsageError
from asyncpod.kube.config import load_config
from asyncpod.kube.pods import Pods
from asyncpod.results import Outcome, PodResult, Reason
from asyncpod.spec import RUN_ID_LABEL, TASK_KEY_ANNOTATION, PodSpec, deterministic_pod_name

__all__ = ["BatchConfig", "add_parser", "execute", "handle", "print_problems"]

ProgressMode = Literal["auto", "bar", "lines", "none"]

MAX_PROBLEMS_SHOWN = 50
"""Problems of a bad batch file printed before "... and N more"."""
CLEANUP_CHOICES = [c.value for c in Cleanup if c is not Cleanup.RECORD_FIRST]
"""``--cleanup``: every mode but RECORD_FIRST, which is how a batch runs its pods anyway."""
FAIL_FAST_AFTER = 10
"""Stop when this many first results (or all, if fewer) are all create failures."""

_RUN_ID = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="run every pod of a YAML/JSONL file, bounded, with progress and a summary",
        description=(
            "Run every spec of FILE (a YAML list, JSONL, or a template with parameter "
            "rows), at most --max-in-flight pods at a time. The whole file is validated "
            "first. Each result is appended to a JSONL file as it finishes."
        ),
        epilog=(
            "formats: see `python -m pydoc asyncpod.cli.batchfile`. "
            "exit codes: 0 all succeeded, 1 some did not, 2 bad input, 130 interrupted"
        ),
    )
    parser.add_argument(
        "file", metavar="FILE",
        help="the input: .yaml/.yml/.json/.jsonl, or -; or status|results|cancel RUN_ID "
        "(an in-cluster batch, --submit)",
    )  # fmt: skip
    parser.add_argument("words", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument(
        "--format", choices=("yaml", "jsonl"), default=None,
        help="input format (default: by extension, else sniffed)",
    )  # fmt: skip
    add_fleet_cluster_options(parser)
    run = parser.add_argument_group("run")
    run.add_argument(
        "--max-in-flight", type=_positive_int, default=100, metavar="N",
        help="pods alive at once (default 100)",
    )  # fmt: skip
    run.add_argument(
        "--qps", type=float, default=50.0,
        help="API requests per second, sustained (default 50; 0 = unlimited)",
    )  # fmt: skip
    run.add_argument(
        "--burst", type=_positive_int, default=None, metavar="N",
        help="API requests allowed in a burst (default 2 x qps)",
    )  # fmt: skip
    run.add_argument(
        "--run-id", default=None,
        help="names the run: a label on every pod and part of their names (default: generated)",
    )  # fmt: skip
    run.add_argument(
        "--resume", action="store_true",
        help="continue run --run-id: skip tasks recorded in --results, reattach to live pods",
    )  # fmt: skip
    run.add_argument(
        "--results", type=Path, default=None, metavar="PATH",
        help="JSONL file, one line per finished pod (default: ./RUN_ID.results.jsonl)",
    )  # fmt: skip
    retries = parser.add_argument_group("retries and stopping")
    retries.add_argument(
        "--retries", type=_whole, default=None, metavar="N",
        help="retries per task after its first attempt, when a rule says so (default 2; 0: none)",
    )  # fmt: skip
    retries.add_argument(
        "--retry-on", action="append", default=[], metavar="RULE",
        help=(
            "a failure rule, tried in order before the defaults: reason=Evicted,OOMKilled · "
            "exit-code=75 · exit-code!=1 · outcome=deleted · fields joined by ';' · "
            "an action first (retry: by default, fail:, stop:); repeatable"
        ),
    )  # fmt: skip
    retries.add_argument(
        "--max-failures", type=_positive_int, default=None, metavar="N",
        help="stop after N tasks finally failed: no new pods, cancel those in flight, exit 1",
    )  # fmt: skip
    logs = parser.add_argument_group("kept logs")
    logs.add_argument(
        "--logs", type=Path, default=None, metavar="DIR",
        help="write attempts' logs to DIR/<task key>/<attempt>.log before their pods go",
    )  # fmt: skip
    logs.add_argument(
        "--logs-for", choices=("failed", "all"), default=None,
        help="whose logs --logs keeps (default failed)",
    )  # fmt: skip
    run.add_argument(
        "--dry-run", action="store_true",
        help="validate FILE and report what would run; create nothing",
    )  # fmt: skip
    add_timeout_options(parser)
    cleanup = parser.add_argument_group("cleanup")
    choice = cleanup.add_mutually_exclusive_group()
    choice.add_argument(
        "--cleanup", choices=CLEANUP_CHOICES, default=Cleanup.DELETE.value,
        help="what happens to each pod when it is done (default delete)",
    )  # fmt: skip
    choice.add_argument(
        "--keep", dest="cleanup", action="store_const", const=Cleanup.KEEP.value,
        help="keep every pod (same as --cleanup keep)",
    )  # fmt: skip
    output = parser.add_argument_group("output")
    output.add_argument(
        "--progress", choices=("auto", "bar", "lines", "none"), default="auto",
        help="a live bar (auto: when stderr is a terminal), periodic lines, or nothing",
    )  # fmt: skip
    output.add_argument(
        "--progress-interval", type=float, default=10.0, metavar="SECONDS",
        help="seconds between progress lines when not a bar (default 10)",
    )  # fmt: skip
    output.add_argument(
        "--report", action="store_true",
        help="at the end, write the results' HTML report (asyncpod report) and print its path",
    )  # fmt: skip
    add_verbose_option(output, help_prefix="report more on stderr; ")
    add_metrics_options(parser)
    add_incluster_options(parser)
    parser.set_defaults(handler=handle)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


# --------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------


@dataclass
class BatchConfig:
    """Everything one batch execution needs; ``asyncpod demo`` builds one too."""

    batch: Batch
    run_id: str
    results_path: Path
    options: RunOptions
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    max_in_flight: int = 100
    qps: float | None = 50.0
    burst: int | None = None
    resume: bool = False
    recorded: RecordedResults = field(default_factory=RecordedResults)
    progress: ProgressMode = "auto"
    progress_interval: float = 10.0
    title: str = "asyncpod batch"
    banner: tuple[str, ...] = ()
    resume_command: str | None = None
    all_finished_is_success: bool = False
    """Exit 0 once every task has a result, whatever the outcomes (the demo's failures)."""
    verbose: int = 0
    """1: the library's info messages on stderr; 2: its debug log too."""
    retry: FailurePolicy | None = None
    """The policy of entries that give none of their own (None: no retries)."""
    policies: dict[str, FailurePolicy] = field(default_factory=dict)
    """Entries' own policies (``retries``/``retry_on`` in the file), by task key."""
    max_failures: int | None = None
    keep_logs: KeepLogs | None = None
    metrics: MetricsFlags | None = None
    """``--metrics-port``: serve Prometheus metrics while running (cli/_metrics.py)."""
    clusters: tuple[ClusterChoice, ...] = ()
    """Two or more: the batch runs over them all (asyncpod.Fleet); else ``kubeconfig``."""
    lost_after: float | None = None
    """``--cluster-lost-after``: seconds without an answer before a cluster is lost."""
    progress_pod: PodTarget | None = None
    """A shard of an in-cluster batch: its own pod, where it publishes its counts."""
    run_selector: str | None = None
    """A shard: the selector of its session's informer (its own task pods only)."""
    abandon_on_signal: bool = False
    """A shard: the first SIGINT/SIGTERM exits at once, as a SIGKILL would, leaving the
    pods in flight to the shard pod that replaces this one (it reattaches to them);
    deleting them would make each task's pod twice."""
    note_simulated: bool = True
    """Say once when a pod ran on a simulated node (asyncpod/cli/simulated.py); the
    demo on its own control plane has said so already."""

    @property
    def run_options(self) -> RunOptions:
        """What each run gets: ``options``, recording first.

        A pod deleted by its run before its result line is written leaves, if the
        process is killed in between, a task with neither pod nor line: ``--resume``
        (or the shard pod replacing a killed one) would make it again. So runs keep
        the pods whose results they hand over (``Cleanup.RECORD_FIRST``), and each is
        deleted once its line is written, as ``options.cleanup`` says
        (:func:`_delete_recorded`); a resumed batch deletes those a kill left
        (:mod:`asyncpod.cli.sweep`). ``--cleanup keep`` keeps everything anyway.
        """
        if self.options.cleanup is Cleanup.KEEP:
            return self.options
        return dataclasses.replace(self.options, cleanup=Cleanup.RECORD_FIRST)


def print_problems(error: BatchFileError, *, command: str = "asyncpod batch") -> None:
    shown = error.problems[:MAX_PROBLEMS_SHOWN]
    for problem in shown:
        sys.stderr.write(problem.render(error.source) + "\n")
    hidden = len(error.problems) - len(shown)
    if hidden:
        sys.stderr.write(f"... and {hidden} more\n")
    count = len(error.problems)
    sys.stderr.write(
        f"{command}: {error.source}: {count} problem{'s' if count != 1 else ''}; "
        "nothing was created\n"
    )


def handle(args: argparse.Namespace) -> int:
    if args.file in ACTIONS:  # batch status|results|cancel RUN_ID: asyncpod/cli/incluster.py
        return handle_action(args)
    if args.words:
        sys.stderr.write(f"asyncpod batch: unexpected arguments: {' '.join(args.words)}\n")
        return EXIT_USAGE
    try:
        batch = load_input(args.file, format=args.format)
    except BatchFileError as error:
        print_problems(error)
        return EXIT_USAGE
    except UsageError as error:
        sys.stderr.write(f"asyncpod batch: {error}\n")
        return EXIT_USAGE
    if args.submit:
        return submit(args, batch)
    try:
        run_selector = None
        if args.shard is not None:
            shard = parse_shard(args.shard)
            batch = dataclasses.replace(batch, entries=_shard_entries(batch, shard))
            run_selector = f"{MANAGED_SELECTOR},{SHARD_LABEL}={shard.label}"
        config = _config_from_args(args, batch)
        config.run_selector = run_selector
    except UsageError as error:
        sys.stderr.write(f"asyncpod batch: {error}\n")
        return EXIT_USAGE
    if args.dry_run:
        to_run = len(batch) - len(config.recorded.done_keys() & _keys(batch))
        sys.stdout.write(
            f"{batch.source}: {len(batch)} valid pod spec{'s' if len(batch) != 1 else ''} "
            f"({batch.format}{', template' if batch.template else ''}); "
            f"{to_run} would run{f' as {config.run_id}' if args.run_id else ''}; "
            "nothing was created\n"
        )
        return EXIT_OK
    code = execute(config)
    if args.report:  # imported here: the report's module loads nothing a batch needs
        from asyncpod.cli.report import report_after_batch

        report_after_batch(config.results_path)
    return code


def _shard_entries(batch: Batch, shard: Shard) -> tuple[Entry, ...]:
    """The shard's entries, each pod labelled with the shard (its session watches those)."""
    return tuple(
        dataclasses.replace(
            e, spec=dataclasses.replace(e.spec, labels={**e.spec.labels, SHARD_LABEL: shard.label})
        )
        for e in batch.entries
        if shard.owns(e.task_key)
    )


def _keys(batch: Batch) -> set[str]:
    return {entry.task_key for entry in batch.entries}


def _config_from_args(args: argparse.Namespace, batch: Batch) -> BatchConfig:
    if args.resume and not args.run_id:
        raise UsageError("--resume needs the --run-id of the run to continue")
    run_id = args.run_id or new_run_id(batch.source)
    if not _RUN_ID.fullmatch(run_id):
        raise UsageError(
            f"--run-id {run_id!r} must be a label value: at most 63 letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit"
        )
    results_path: Path = args.results or Path(f"{run_id}.results.jsonl")
    if args.logs_for is not None and args.logs is None:
        raise UsageError("--logs-for says whose logs --logs keeps: give --logs DIR too")
    rules = tuple(FailureRule.parse(text) for text in args.retry_on)
    retry, policies = failure_policies(batch, retries=args.retries, rules=rules)
    recorded = prepare_results(results_path, run_id=run_id, resume=args.resume)
    cleanup = Cleanup(args.cleanup)
    qps = args.qps if args.qps > 0 else None
    clusters = cluster_choices(args.kubeconfig or [], args.context or [])
    if len(clusters) > 1:
        shares(args.max_in_flight, {c.name: c.weight for c in clusters})  # an OptionError
    if args.cluster_lost_after is not None and not args.cluster_lost_after > 0:
        raise UsageError(f"--cluster-lost-after must be positive, got {args.cluster_lost_after}")
    return BatchConfig(
        batch=batch,
        run_id=run_id,
        results_path=results_path,
        options=run_options(args, cleanup=cleanup),
        kubeconfig=clusters[0].kubeconfig,
        context=clusters[0].context,
        clusters=clusters if len(clusters) > 1 else (),
        lost_after=args.cluster_lost_after,
        namespace=args.namespace,
        max_in_flight=args.max_in_flight,
        qps=qps,
        burst=args.burst,
        resume=args.resume,
        recorded=recorded,
        progress=args.progress,
        progress_interval=args.progress_interval,
        resume_command=_resume_command(args, run_id, results_path),
        verbose=args.verbose,
        retry=retry,
        policies=policies,
        max_failures=args.max_failures,
        keep_logs=KeepLogs(args.logs, args.logs_for or "failed") if args.logs else None,
        metrics=metrics_flags(args),
        progress_pod=progress_target(args),
        abandon_on_signal=args.shard is not None,
        # A shard that recorded every task is done, whatever their outcomes: exit 1
        # would have the Job run it again (and again) for the tasks' own failures.
        all_finished_is_success=args.shard is not None,
    )


def failure_policy(retries: int | None, rules: tuple[FailureRule, ...]) -> FailurePolicy:
    """The policy of ``--retries``/``--retry-on`` (or an entry's): ``rules`` before the
    defaults, ``retries`` + 1 attempts (default 3)."""
    attempts = 3 if retries is None else retries + 1
    return FailurePolicy(rules=(*rules, *DEFAULT_RULES), max_attempts=attempts)


def failure_policies(
    batch: Batch, *, retries: int | None, rules: tuple[FailureRule, ...]
) -> tuple[FailurePolicy, dict[str, FailurePolicy]]:
    """The command line's policy, and each entry's that overrides part of it."""
    default = failure_policy(retries, rules)
    own: dict[str, FailurePolicy] = {}
    for entry in batch.entries:
        if entry.retries is None and entry.retry_on is None:
            continue
        own[entry.task_key] = failure_policy(
            retries if entry.retries is None else entry.retries,
            rules if entry.retry_on is None else entry.retry_on,
        )
    return default, own


def prepare_results(path: Path, *, run_id: str, resume: bool) -> RecordedResults:
    """Read what an earlier attempt recorded; refuse to mix runs in one file."""
    recorded = read_results(path)
    if recorded.problems:
        listing = "\n  ".join(recorded.problems[:10])
        raise UsageError(f"the results file {path} has lines that are not results:\n  {listing}")
    others = recorded.run_ids - {run_id}
    if others:
        raise UsageError(
            f"the results file {path} belongs to run {', '.join(sorted(others))}; "
            "choose another --results (or that --run-id)"
        )
    if recorded.lines and not resume:
        raise UsageError(
            f"the results file {path} already holds {recorded.lines} results of run "
            f"{run_id}; pass --resume to continue that run, or choose another --results"
        )
    return recorded


def _resume_command(args: argparse.Namespace, run_id: str, results: Path) -> str:
    words = ["asyncpod", "batch", args.file, "--run-id", run_id, "--resume"]
    if args.results is not None:
        words += ["--results", str(results)]
    for flag, values in (
        ("--kubeconfig", getattr(args, "kubeconfig", None)),
        ("--context", getattr(args, "context", None)),
    ):
        for value in [values] if isinstance(values, str) else values or ():
            words += [flag, value]
    for flag, value in (
        ("--namespace", args.namespace),
        ("--retries", None if getattr(args, "retries", None) is None else str(args.retries)),
        (
            "--max-failures",
            None if getattr(args, "max_failures", None) is None else str(args.max_failures),
        ),
        ("--logs", None if getattr(args, "logs", None) is None else str(args.logs)),
    ):
        if value:
            words += [flag, value]
    for rule in getattr(args, "retry_on", ()):
        words += ["--retry-on", rule]
    if getattr(args, "logs", None) is not None and args.logs_for == "all":
        words += ["--logs-for", args.logs_for]
    return " ".join(_quote(word) for word in words)


def _quote(word: str) -> str:
    return shlex.quote(word)


# --------------------------------------------------------------------------------------
# execution
# --------------------------------------------------------------------------------------


class _FailFastError(Exception):
    """Every pod so far failed to be created: stop before trying the thousands left."""


class _StoppedError(Exception):
    """The launcher stopped the batch (--max-failures, a stop rule)."""


class _ResultsUnwritableError(Exception):
    """A line could not be written to the results file (a full disk, a lost mount)."""


@contextlib.contextmanager
def _one_error_as_itself() -> Iterator[None]:
    """Raise a task group's only error as itself. anyio wraps even its host's own (the
    loop's fail-fast, a results file that cannot be written) in an ExceptionGroup,
    which :meth:`_Session.main` would not recognise: the command printed a traceback."""
    try:
        yield
    except Exception as error:
        members = getattr(error, "exceptions", None)  # an ExceptionGroup
        if members is not None and len(members) == 1 and isinstance(members[0], Exception):
            raise members[0] from None
        raise


def _write_line(writer: ResultsWriter, result: PodResult, extra: dict[str, object]) -> None:
    """One results line, or :class:`_ResultsUnwritableError` saying what now."""
    try:
        writer.write(result, extra=extra)
    except OSError as error:
        raise _ResultsUnwritableError(
            f"cannot write the results file {writer.path}: {error.strerror or error}; "
            "stopping: the runs in flight are cancelled and their pods deleted, and the "
            "pod of the result that was not written is kept for --resume to record"
        ) from error


def _where(result: PodResult) -> tuple[str, str, str | None]:
    return result.namespace, result.name, result.uid


def _deleted_after_record(options: RunOptions, result: PodResult) -> bool:
    """Whether the pod of a result just written goes now (BatchConfig.run_options)."""
    return bool(result.uid and result.name) and deleted_after_record(
        options.cleanup,
        result.outcome,
        succeeded=result.ok,
        pod_finished=result.phase in ("Succeeded", "Failed"),
    )


def _in_short(why: str | AsyncpodError) -> str:
    """An error as the summary names it: an API answer by its status and reason, the
    rest by its type (the full text is in the warning). Pure."""
    if isinstance(why, str):
        return why
    if isinstance(why, ApiError):
        return f"{why.status} {why.reason}".strip()
    return type(why).__name__


@dataclass
class _PodsLeft:
    """Recorded pods that could not be deleted (a revoked token, a permission taken
    away, a server gone for good). The first is said in full as it happens; the others
    only in the summary's count, not one warning per pod of a batch of thousands."""

    count: int = 0
    first: str | None = None

    def add(self, namespace: str, name: str, why: str | AsyncpodError) -> None:
        self.count += 1
        log = logging.getLogger("asyncpod.cli.batch")
        if self.first is None:
            self.first = _in_short(why)
            log.warning(
                "could not delete pod %s/%s: %s (any others are counted in the summary)",
                namespace, name, why,
            )  # fmt: skip
        else:
            log.debug("could not delete pod %s/%s: %s", namespace, name, why)

    def summary_line(self, run_id: str) -> str:
        """What the summary says of them, and how to delete them later."""
        pods = "pod" if self.count == 1 else "pods"
        return (
            f"{self.count} {pods} not deleted (first: {self.first}); a --resume of this "
            f"run deletes them, or kubectl delete pods -l {RUN_ID_LABEL}={run_id}"
        )


async def _delete_recorded(
    pods: Pods,
    namespace: str,
    name: str,
    uid: str | None,
    options: RunOptions,
    limiter: anyio.CapacityLimiter,
    left: _PodsLeft,
) -> None:
    """Delete a recorded attempt's pod, by uid (never a namesake), riding out an
    outage for ``delete_retry_window`` from when it was asked; a failure is counted in
    ``left`` (a resumed batch deletes what is left: asyncpod.cli.sweep).

    Shielded: a Ctrl-C while deletions are pending must not leave recorded pods behind.
    The window counts from the request, not from its turn under ``limiter``, so a
    backlog behind a dead server ends with the window instead of one window per
    turn (a Ctrl-C then waits about one window, not hours).
    """
    deadline = time.monotonic() + options.delete_retry_window
    with anyio.CancelScope(shield=True):
        async with limiter:
            if time.monotonic() >= deadline:
                left.add(namespace, name, "not deleted in time")
                return
            try:
                await until_answered(
                    lambda: pods.delete(
                        namespace, name, uid=uid,
                        grace_period_seconds=options.delete_grace_period,
                    ),
                    deadline=deadline,
                    restarted=lambda: False, what=f"delete of {namespace}/{name}",
                )  # fmt: skip
            except AsyncpodError as error:
                left.add(namespace, name, error)


def _attempt_fields(attempt: Attempt) -> dict[str, object]:
    """What a results line adds to the result: the attempt and what followed it."""
    return {
        "attempt": attempt.attempt,
        "final": attempt.final,
        "decision": attempt.decision,
        "retry_in_seconds": None if attempt.retry_in is None else round(attempt.retry_in, 3),
        "log": None if attempt.log is None else str(attempt.log),
        "log_missing": attempt.log_missing,
    }


@dataclass
class _Counts:
    done: int = 0
    ok: int = 0
    failed: int = 0
    in_flight: int = 0


def execute(config: BatchConfig) -> int:
    """Run the batch described by ``config``; the exit code."""
    with library_voice(config.title, verbose=config.verbose):
        return asyncio.run(_Session(config).main())


class _Session:
    def __init__(self, config: BatchConfig) -> None:
        self.config = config
        self.results: dict[str, PodResult] = {}
        self.attempts: dict[str, int] = {}
        self.counts = _Counts()
        self.left = _PodsLeft()
        self.launcher: Launcher | None = None
        self.fleet: Fleet | None = None
        self.final_clusters: dict[str, str] = {}
        """The cluster of each task's final result (several clusters)."""
        self.interrupted = Interrupted()
        self.started = time.monotonic()
        done = config.recorded.done_keys() & _keys(config.batch)
        self.skip = frozenset(done)
        self.to_run = len(config.batch) - len(done)
        self.stderr = Console(stderr=True, highlight=False)
        self.progress = self._make_progress()
        self.node_kinds: dict[str, NodeKinds] = {}
        """Per cluster name ("" for one cluster): which nodes are simulated."""
        self.simulated_noted = not config.note_simulated
        self._node_checks: set[asyncio.Task[None]] = set()

    def _make_progress(self) -> _Reporter:
        mode = self.config.progress
        if mode == "auto":
            mode = "bar" if self.stderr.is_terminal else "lines"
        if mode == "bar":
            return _BarReporter(self.stderr, self.to_run, self.config.title)
        if mode == "lines":
            return _LineReporter(self.config.title, self.to_run, self.config.progress_interval)
        return _Reporter()

    async def main(self) -> int:
        failure: str | None = None
        code: int | None = None
        if self.config.abandon_on_signal:
            self.interrupted.count = 2  # run_interruptible's next signal exits at once
        try:
            await run_interruptible(
                self._work(),
                interrupted=self.interrupted,
                repeat_hint=(
                    f"{self.config.title}: deleting the pods in flight; Ctrl-C again to quit "
                    f"without them (label {RUN_ID_LABEL}={self.config.run_id})"
                ),
                on_interrupt=self._note_in_flight,
            )
        except UsageError as error:
            failure, code = describe_error(error), EXIT_USAGE
        except _FailFastError as error:
            failure, code = str(error), EXIT_FAILED
        except (_StoppedError, _ResultsUnwritableError) as error:
            failure, code = str(error), EXIT_FAILED
        except (AsyncpodError, OSError) as error:
            failure, code = f"{type(error).__name__}: {error}", EXIT_FAILED
        finally:
            self.progress.stop()
        return self._report(failure=failure, code=code)

    async def _work(self) -> None:
        config = self.config
        self._note(*config.banner)
        if config.clusters:
            await self._work_fleet()
            return
        async with (
            exported(config.metrics, title=config.title) as metrics,
            traced(config.title) as traces,  # OTEL_* variables: asyncpod/cli/_traces.py
            connect(
                config.kubeconfig,
                context=config.context,
                namespace=config.namespace,
                options=config.run_options,
                qps=config.qps,
                burst=config.burst or max(1, int(2 * (config.qps or 50))),
                metrics=metrics,
                traces=traces,
            ) as cluster,
        ):
            if config.run_selector is not None:
                cluster.run_selector = config.run_selector
            alive = await self._pods_of_run(cluster)
            await self._preflight(cluster)
            self._announce(cluster, alive)
            self.node_kinds[""] = NodeKinds(cluster.client)
            launcher = self.launcher = Launcher(
                cluster,
                max_in_flight=config.max_in_flight,
                run_id=config.run_id,
                namespace=cluster.namespace,
                options=config.run_options,
                retry=config.retry,
                max_failures=config.max_failures,
                keep_logs=config.keep_logs,
            )
            # Read at scrape time: the tasks not started yet, or between attempts.
            in_flight = launcher.statistics
            metrics.queue_depth(lambda: self.to_run - len(self.results) - in_flight().in_flight)
            specs = [entry.spec for entry in config.batch.entries]
            # No full GC pass while runs are in flight: asyncpod/cli/heap.py.
            with batch_collector():
                await self._launch(launcher, specs)

    async def _launch(self, launcher: Launcher, specs: list[PodSpec]) -> None:
        """Every spec through the launcher, each result recorded as it comes."""
        ticker = asyncio.ensure_future(self._tick())
        publisher = self._publisher(launcher.cluster)
        publishing = asyncio.ensure_future(publisher.run(self._shard_counts)) if publisher else None
        self.started = time.monotonic()
        self.progress.start()
        history = self._history()
        attempts = launcher.attempts(
            specs, skip_task_keys=self.skip, history=history, policies=self.config.policies
        )
        pods = Pods(launcher.cluster.client)
        options = self.config.options
        limiter = anyio.CapacityLimiter(16)
        try:
            with (
                ResultsWriter(self.config.results_path, run_id=self.config.run_id) as writer,
                _one_error_as_itself(),
            ):
                async with anyio.create_task_group() as deletions, contextlib.aclosing(attempts):
                    async for attempt in attempts:
                        _write_line(writer, attempt.result, _attempt_fields(attempt))
                        if _deleted_after_record(options, attempt.result):
                            deletions.start_soon(
                                _delete_recorded,
                                pods, *_where(attempt.result), options, limiter, self.left,
                            )  # fmt: skip
                        self._check_node("", attempt.result)
                        self.attempts[attempt.task_key] = attempt.attempt
                        if attempt.final:
                            self._record(attempt.result)
                            self._fail_fast()
            if launcher.stopped is not None:
                await self._delete_unstarted(launcher)
                cancelled = sum(r.outcome is Outcome.CANCELLED for r in self.results.values())
                raise _StoppedError(
                    f"stopped: {launcher.stopped}; no new pods were created, "
                    f"{cancelled} tasks in flight were cancelled"
                )
        finally:
            # Stopped early (Ctrl-C, fail-fast): the launcher has cancelled the runs
            # in flight, and each deleted its pod (a run cut off mid-create finds
            # its pod by its create-attempt annotation: asyncpod.core.runner).
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            await self._stop_node_checks()
            self._refresh()
            if publishing is not None and publisher is not None:
                publishing.cancel()
                await asyncio.gather(publishing, return_exceptions=True)
                await publisher.publish(self._shard_counts(), final=True)

    def _publisher(self, cluster: Cluster) -> ProgressPublisher | None:
        target = self.config.progress_pod
        return ProgressPublisher(cluster.client, target) if target is not None else None

    def _shard_counts(self) -> dict[str, int]:
        """This process's counts with what the results file recorded before it."""
        carried = [r for k, r in self.config.recorded.results.items() if k in self.skip]
        ok = sum(r.ok for r in carried)
        return {
            "tasks": len(self.config.batch),
            "done": len(carried) + self.counts.done,
            "ok": ok + self.counts.ok,
            "failed": len(carried) - ok + self.counts.failed,
            "in_flight": self._in_flight(),
            "cpu_ms": int(time.process_time() * 1000),  # this process's, for benchmarks
        }

    # ------------------------------------------------------------------ several clusters
    async def _work_fleet(self) -> None:
        """The batch over ``config.clusters``: every context checked, every session
        opened and every namespace dry-run before the first pod is created."""
        config = self.config
        for choice in config.clusters:  # an unknown context: a UsageError naming it
            await load_config(choice.kubeconfig, context=choice.context)
        async with (
            exported(config.metrics, title=config.title) as metrics,
            traced(config.title) as traces,
            contextlib.AsyncExitStack() as stack,
        ):
            members: list[FleetMember] = []
            alive = 0
            for choice in config.clusters:
                cluster = await stack.enter_async_context(
                    connect(
                        choice.kubeconfig,
                        context=choice.context,
                        namespace=config.namespace,
                        options=config.run_options,
                        qps=config.qps,
                        burst=config.burst or max(1, int(2 * (config.qps or 50))),
                        metrics=metrics,
                        traces=traces,
                    )
                )
                members.append(FleetMember(choice.name, cluster, choice.weight))
                self.node_kinds[choice.name] = NodeKinds(cluster.client)
            pinned: dict[str, str] = {}
            found: dict[str, int] = {}
            for member in members:
                alive += await self._pods_by_task(member, pinned, found)
            for member in members:
                await self._preflight(member.cluster)
            fleet = self.fleet = Fleet(
                members,
                max_in_flight=config.max_in_flight,
                run_id=config.run_id,
                namespace=config.namespace,
                options=config.run_options,
                retry=config.retry,
                max_failures=config.max_failures,
                keep_logs=config.keep_logs,
                lost_after=config.lost_after,
            )
            where = ", ".join(
                f"{m.name} ({m.cluster.client.config.server}, {fleet.shares[m.name]} at a time)"
                for m in members
            )
            self._note(f"clusters: {where}; namespace {members[0].cluster.namespace}")
            self._announce(members[0].cluster, alive)
            metrics.queue_depth(lambda: self.to_run - len(self.results) - self._in_flight())
            specs = [entry.spec for entry in config.batch.entries]
            with batch_collector():
                await self._launch_fleet(fleet, specs, pinned)

    async def _pods_by_task(
        self, member: FleetMember, pinned: dict[str, str], found: dict[str, int]
    ) -> int:
        """This run's pods on ``member``: each task with one goes there again (its
        latest attempt's cluster), to be reattached, not made twice elsewhere."""
        cluster = member.cluster
        listed = await Pods(cluster.client).list(
            cluster.namespace, label_selector=f"{RUN_ID_LABEL}={self.config.run_id}"
        )
        swept = await self._sweep(cluster, listed.items)
        for pod in listed.items:
            annotations = pod["metadata"].get("annotations") or {}
            key = annotations.get(TASK_KEY_ANNOTATION)
            if key is None or key in self.skip or pod["metadata"]["name"] in swept.recorded:
                continue
            attempt = attempt_of(annotations)
            if attempt >= found.get(key, 0):
                found[key] = attempt
                pinned[key] = member.name
        return len(listed.items) - len(swept.recorded)

    async def _launch_fleet(
        self, fleet: Fleet, specs: list[PodSpec], pinned: dict[str, str]
    ) -> None:
        """As :meth:`_launch`, through the fleet: each line names its cluster."""
        ticker = asyncio.ensure_future(self._tick())
        self.started = time.monotonic()
        self.progress.start()
        attempts = fleet.attempts(
            specs,
            skip_task_keys=self.skip,
            history=self._history(),
            policies=self.config.policies,
            pinned=pinned,
        )
        pods = {name: Pods(launcher.cluster.client) for name, launcher in fleet.launchers.items()}
        options = self.config.options
        limiter = anyio.CapacityLimiter(16)
        try:
            with (
                ResultsWriter(self.config.results_path, run_id=self.config.run_id) as writer,
                _one_error_as_itself(),
            ):
                async with anyio.create_task_group() as deletions, contextlib.aclosing(attempts):
                    async for placed in attempts:
                        attempt = placed.attempt
                        extra = {**_attempt_fields(attempt), "cluster": placed.cluster or None}
                        _write_line(writer, attempt.result, extra)
                        where = pods.get(placed.cluster)
                        if where is not None and _deleted_after_record(options, attempt.result):
                            deletions.start_soon(
                                _delete_recorded,
                                where, *_where(attempt.result), options, limiter, self.left,
                            )  # fmt: skip
                        self._check_node(placed.cluster, attempt.result)
                        self.attempts[attempt.task_key] = attempt.attempt
                        if attempt.final:
                            self.final_clusters[attempt.task_key] = placed.cluster
                            self._record(attempt.result)
                            self._fail_fast()
            for name, why in fleet.lost.items():
                self._note(f"{self.config.title}: cluster {name} was lost: {why}")
            if fleet.stopped is not None:
                for name, launcher in fleet.launchers.items():
                    if name not in fleet.lost:
                        await self._delete_unstarted(launcher)
                cancelled = sum(r.outcome is Outcome.CANCELLED for r in self.results.values())
                raise _StoppedError(
                    f"stopped: {fleet.stopped}; no new pods were created, "
                    f"{cancelled} tasks in flight were cancelled"
                )
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            await self._stop_node_checks()
            self._refresh()

    def _clusters_line(
        self,
        share: dict[str, int],
        peak: dict[str, int],
        lost: dict[str, str],
        carried: dict[str, PodResult],
    ) -> str:
        """Final results by cluster (with the earlier process's), each cluster's share
        and the most tasks it held at once."""
        recorded = self.config.recorded.clusters
        counts = dict.fromkeys(share, 0)
        for key in [*carried, *self.final_clusters]:
            name = self.final_clusters.get(key) or recorded.get(key)
            if name in counts:
                counts[name] += 1
        parts = [
            f"{name} {counts[name]} (share {share[name]}, at most {peak.get(name, 0)} at once"
            f"{', lost' if name in lost else ''})"
            for name in share
        ]
        return " · ".join(parts)

    async def _delete_unstarted(self, launcher: Launcher) -> None:
        """After a stop, delete this run's pods that are still running: those of an
        earlier process that a resumed task had not reattached to yet (the launcher
        cancelled every run it had). Finished pods are left to --cleanup; with
        --cleanup keep nothing is deleted."""
        if self.config.options.cleanup is Cleanup.KEEP:
            return
        pods = Pods(launcher.cluster.client)
        namespace = launcher.namespace
        listed = await pods.list(namespace, label_selector=f"{RUN_ID_LABEL}={self.config.run_id}")
        mine = _keys(self.config.batch)  # a shard's: other shards' pods are theirs
        for pod in listed.items:
            metadata, status = pod["metadata"], pod.get("status") or {}
            if metadata.get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed"):
                continue
            if (metadata.get("annotations") or {}).get(TASK_KEY_ANNOTATION) not in mine:
                continue
            with contextlib.suppress(AsyncpodError):
                await pods.delete(namespace, metadata["name"], uid=metadata.get("uid"))

    def _history(self) -> dict[str, TaskHistory]:
        """Where each task recorded by an earlier attempt of this run goes on."""
        recorded = self.config.recorded
        history: dict[str, TaskHistory] = {}
        for key in recorded.attempts:
            if key in self.skip:
                continue
            attempt, spent = recorded.next_attempt(key)
            history[key] = TaskHistory(next_attempt=attempt, spent=spent)
        return history

    async def _pods_of_run(self, cluster: Cluster) -> int:
        """Count this run's pods to be reattached, after deleting those whose results
        are recorded (asyncpod/cli/sweep.py); also proves the cluster answers (and lets
        us list)."""
        listed = await Pods(cluster.client).list(
            cluster.namespace, label_selector=f"{RUN_ID_LABEL}={self.config.run_id}"
        )
        found = await self._sweep(cluster, listed.items)
        return len(listed.items) - len(found.recorded)

    async def _sweep(self, cluster: Cluster, pods: list[dict[str, Any]]) -> Sweep:
        """Delete the recorded pods among ``pods`` that the user's cleanup deletes: left
        by a process killed between a result's line and its pod's deletion."""
        found = sweep(
            pods,
            recorded_attempts=self.config.recorded.attempts,
            tasks=_keys(self.config.batch),
            cleanup=self.config.options.cleanup,
        )
        if found.delete:
            self._note(
                f"{self.config.title}: deleting {len(found.delete)} pods whose results "
                "were recorded before the last process stopped"
            )
            pods_api, options = Pods(cluster.client), self.config.options
            limiter = anyio.CapacityLimiter(16)
            async with anyio.create_task_group() as group:
                for name, uid in found.delete:
                    group.start_soon(
                        _delete_recorded,
                        pods_api, cluster.namespace, name, uid, options, limiter, self.left,
                    )  # fmt: skip
        return found

    async def _preflight(self, cluster: Cluster) -> None:
        """A server-side dry run of the first pod to run, before any pod is created.

        A namespace that does not exist, a missing permission or a pod the cluster's
        admission refuses fail here as a usage error (exit 2, nothing created), not
        as thousands of identical create failures. One request; nothing is stored.
        """
        entry = next((e for e in self.config.batch.entries if e.task_key not in self.skip), None)
        if entry is None:
            return
        run_id = self.config.run_id
        manifest = entry.spec.to_manifest(
            namespace=cluster.namespace,
            name=entry.spec.name or deterministic_pod_name(run_id, entry.task_key),
            labels={RUN_ID_LABEL: run_id},
        )
        # A 409 (the pod is alive from an earlier attempt) proves as much as a 201.
        with contextlib.suppress(ConflictError):
            await Pods(cluster.client).create(cluster.namespace, manifest, dry_run=True)

    def _announce(self, cluster: Cluster, alive: int) -> None:
        config = self.config
        batch = config.batch
        recorded = len(self.skip)
        self._note(
            f"{config.title}: {len(batch)} pods from {batch.source} · run {config.run_id} · "
            f"namespace {cluster.namespace} on {cluster.client.config.server} · "
            f"{config.max_in_flight} at a time · results → {config.results_path}"
        )
        if config.resume:
            self._note(
                f"resuming: {recorded} tasks already recorded, {self.to_run} to run; "
                f"{alive} pods of this run still exist and will be reattached"
            )
        elif alive:
            self._note(f"{alive} pods of run {config.run_id} already exist; reattaching to them")

    def _note_in_flight(self) -> None:
        self.interrupted.in_flight = self._in_flight()

    def _in_flight(self) -> int:
        if self.fleet is not None:
            return sum(s.in_flight for s in self.fleet.statistics().clusters.values())
        return self.launcher.statistics().in_flight if self.launcher is not None else 0

    def _note(self, *lines: str) -> None:
        for line in lines:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def _check_node(self, cluster: str, result: PodResult) -> None:
        """Find out, beside the batch, whether ``result``'s node is simulated: one read
        per node name, none once said (asyncpod/cli/simulated.py)."""
        kinds = self.node_kinds.get(cluster)
        node = result.node_name
        if self.simulated_noted or kinds is None or not node or kinds.asked(node):
            return
        task = asyncio.ensure_future(self._say_if_simulated(kinds, node, result.ref))
        self._node_checks.add(task)
        task.add_done_callback(self._node_checks.discard)

    async def _say_if_simulated(self, kinds: NodeKinds, node: str, pod: str) -> None:
        kind = await kinds.simulator(node)
        if kind is not None and not self.simulated_noted:
            self.simulated_noted = True
            line = note(pod=pod, node=node, simulator=kind, batch=True)
            self.stderr.print(f"{self.config.title}: {line}", markup=False, soft_wrap=True)

    async def _stop_node_checks(self) -> None:
        """Let node reads under way end (each is bounded), so a short batch still says
        its note; then cancel what is left."""
        checks = list(self._node_checks)
        if checks:
            await asyncio.wait(checks, timeout=NODE_READ_TIMEOUT)
        for task in checks:
            task.cancel()
        await asyncio.gather(*checks, return_exceptions=True)

    def _record(self, result: PodResult) -> None:
        key = result.task_key or result.name
        self.results[key] = result
        self.counts.done += 1
        if result.ok:
            self.counts.ok += 1
        else:
            self.counts.failed += 1
        self._refresh()

    def _refresh(self) -> None:
        self.counts.in_flight = self._in_flight()
        self.progress.update(self.counts, time.monotonic() - self.started)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self._refresh()

    def _fail_fast(self) -> None:
        # Decided once, when the first results are in: a wrong namespace or a missing
        # permission fails every create alike, and 10,000 copies of it help nobody.
        if len(self.results) != min(FAIL_FAST_AFTER, self.to_run):
            return
        first = list(self.results.values())
        if all(r.outcome is Outcome.ERROR and r.reason == Reason.CREATE_FAILED for r in first):
            raise _FailFastError(
                f"the first {len(first)} pods could not be created; stopping. "
                f"The first error: {first[0].message}"
            )

    # ------------------------------------------------------------------ the end
    def _report(self, *, failure: str | None, code: int | None) -> int:
        config = self.config
        elapsed = time.monotonic() - self.started
        if failure is not None:
            self._note(f"{config.title}: {failure}")
        if code == EXIT_USAGE and not self.results:
            return code
        carried = {
            k: r for k, r in config.recorded.results.items() if k in self.skip
        }  # the last recorded result of each task that is done
        final = {**carried, **self.results}
        summary = summarize(
            final.values(),
            total=len(config.batch),
            recorded=len(carried),
            elapsed=elapsed,
            run_id=config.run_id,
        )
        stats = self.launcher.statistics() if self.launcher is not None else None
        extra: dict[str, str] = {}
        reattached = stats.reattached if stats is not None else 0
        if self.fleet is not None:
            fleet = self.fleet.statistics()
            reattached = sum(s.reattached for s in fleet.clusters.values())
            extra["clusters"] = self._clusters_line(fleet.shares, fleet.peak, fleet.lost, carried)
        if reattached:
            extra["reattached"] = f"{reattached} pods of an earlier attempt"
        retried = {k for k, n in self.attempts.items() if n > 1} | (
            config.recorded.retried_keys() & set(final)
        )
        if retried:
            attempts = {**config.recorded.attempts, **self.attempts}
            more = sum(attempts.get(k, 1) - 1 for k in retried)
            extra["retried"] = (
                f"{len(retried)} task{'s' if len(retried) != 1 else ''} "
                f"({more} more attempt{'s' if more != 1 else ''}); "
                "outcomes above are each task's last attempt"
            )
        if config.keep_logs is not None:
            extra["logs"] = f"{config.keep_logs.directory} (of {config.keep_logs.which} attempts)"
        if self.interrupted.signum is not None:
            # As the signal found it: by now the cancelled runs have ended.
            in_flight = self.interrupted.in_flight or 0
            deleted = "kept" if config.options.cleanup is Cleanup.KEEP else "deleted"
            extra["interrupted"] = (
                f"{in_flight} runs in flight cancelled (pods {deleted}); "
                f"{summary.unfinished} tasks not finished"
            )
        if self.left.count:
            extra["pods left"] = self.left.summary_line(config.run_id)
        if self.results or config.recorded.lines:
            extra["results"] = str(config.results_path)
        summary = dataclasses.replace(summary, extra=extra)
        out = Console(file=sys.stdout, highlight=False)
        if not out.is_terminal:
            out = Console(file=sys.stdout, highlight=False, width=100)  # logs are wider than 80
        render(summary, out, title=config.title)
        sys.stdout.flush()
        if summary.unfinished and config.resume_command:
            self._note(f"to finish this run: {config.resume_command}")
        if self.interrupted.signum is not None:
            return signal_exit_code(self.interrupted.signum)
        if code is not None:
            return code
        if summary.ok or (config.all_finished_is_success and not summary.unfinished):
            return EXIT_OK
        return EXIT_FAILED


# --------------------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------------------


class _Reporter:
    """No progress at all (``--progress none``); the base of the others."""

    def start(self) -> None:
        return None

    def update(self, counts: _Counts, elapsed: float) -> None:
        return None

    def stop(self) -> None:
        return None


def progress_line(title: str, counts: _Counts, total: int, elapsed: float) -> str:
    rate = counts.done / elapsed if elapsed > 0 else 0.0
    remaining = total - counts.done
    eta = format_seconds(remaining / rate) if rate > 0 and remaining else "-"
    return (
        f"{title}: {counts.done}/{total} done ({counts.ok} succeeded, {counts.failed} failed) "
        f"· {counts.in_flight} in flight · {rate:.1f} pods/s · ETA {eta} "
        f"· {format_seconds(elapsed)} elapsed"
    )


class _LineReporter(_Reporter):
    """A plain line every ``interval`` seconds, for logs and CI (stderr not a terminal)."""

    def __init__(
        self, title: str, total: int, interval: float, write: Callable[[str], object] | None = None
    ) -> None:
        self.title = title
        self.total = total
        self.interval = interval
        self._write = write or sys.stderr.write
        self._last = time.monotonic()

    def start(self) -> None:
        self._last = time.monotonic()

    def update(self, counts: _Counts, elapsed: float) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        self._write(progress_line(self.title, counts, self.total, elapsed) + "\n")
        sys.stderr.flush()


class _BarReporter(_Reporter):
    """A live rich bar on a terminal: in flight, succeeded, failed, rate, ETA."""

    def __init__(self, console: Console, total: int, title: str) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "· {task.fields[in_flight]} in flight · [green]{task.fields[ok]} ok[/] "
                "· [red]{task.fields[failed]} failed[/] · {task.fields[rate]}"
            ),
            TextColumn("· ETA"),
            TimeRemainingColumn(compact=True),
            console=console,
            transient=False,
            refresh_per_second=8,
        )
        self._task = self._progress.add_task(
            escape(title), total=total, in_flight=0, ok=0, failed=0, rate="-", start=False
        )
        self._started = False

    def start(self) -> None:
        self._progress.start()
        self._progress.start_task(self._task)
        self._started = True

    def update(self, counts: _Counts, elapsed: float) -> None:
        if not self._started:
            return
        rate = f"{counts.done / elapsed:.1f}/s" if elapsed > 0 else "-"
        self._progress.update(
            self._task,
            completed=counts.done,
            in_flight=counts.in_flight,
            ok=counts.ok,
            failed=counts.failed,
            rate=rate,
        )

    def stop(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False
