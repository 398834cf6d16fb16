"""``asyncpod report RESULTS.jsonl``: a batch's results file as one HTML page to look at.

Why a command: after 10,000 pods the summary's counts say *how many*; a person also
wants to see *when* and *how long*: how the run ramped up and drained, where pods
waited (scheduling, startup), which were slow and which failed. The page is one
self-contained file (pictures inlined, no script, no server), written next to the
results file unless ``-o`` says otherwise; ``--png`` writes the pictures as files too.
``asyncpod batch --report`` calls :func:`report_after_batch` when the batch ends.

The pictures need matplotlib, from the ``report`` extra; without it the command says
what to install and exits 2. A results file of an interrupted or resumed batch
(duplicates, a line cut short, pods with missing times) still gives a report; the
lines that hold no result are listed on the page and counted here.

Exit codes: 0 written; 2 the results file cannot be read, or matplotlib is missing.

What it deliberately does not do: talk to a cluster (everything comes from the file),
or import more than it needs: not the library's core, nor matplotlib for ``--help``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asyncpod.report import REPORT_EXTRA

__all__ = ["add_parser", "default_output", "handle", "missing_report_extra", "report_after_batch"]

HELP = "write a self-contained HTML report (timeline, phases, failures) of a batch's results"

# The CLI's exit codes (asyncpod.cli._common, which imports the library's core).
_EXIT_OK = 0
_EXIT_USAGE = 2


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report",
        help=HELP,
        description=(
            "Read RESULTS (the JSONL file of `asyncpod batch`) and write one HTML file: "
            "pods in flight over time, a Gantt chart of a sample of pods, histograms of "
            "schedule latency, startup and run time, outcomes and reasons, the slowest and "
            "the failed tasks. It opens from disk; it needs no server and no network."
        ),
        epilog="needs matplotlib: pip install 'asyncpod[report]'. exit codes: 0 written, 2 error",
    )
    parser.add_argument("results", metavar="RESULTS", type=Path, help="a batch's results file")
    parser.add_argument(
        "-o", "--output", type=Path, default=None, metavar="HTML",
        help="where to write the report (default: RESULTS' name with .report.html)",
    )  # fmt: skip
    parser.add_argument(
        "--png", action="store_true",
        help="also write each picture as HTML's name with -timeline.png, -gantt.png, ...",
    )  # fmt: skip
    parser.add_argument(
        "--sample", type=_positive_int, default=50, metavar="N",
        help="pods in the Gantt chart (default 50)",
    )  # fmt: skip
    parser.add_argument("--title", default=None, help="the page's title")
    parser.set_defaults(handler=handle)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def default_output(results: Path) -> Path:
    """``run.results.jsonl`` → ``run.report.html``, beside it; any other name + ``.report.html``."""
    name = results.name
    for suffix in (".results.jsonl", ".jsonl", ".json"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return results.with_name(name[: -len(suffix)] + ".report.html")
    return results.with_name(name + ".report.html")


def missing_report_extra(error: ImportError, command: str) -> str | None:
    """The one line to print when ``error`` is the report extra missing; else None."""
    missing = (error.name or "").partition(".")[0]
    if missing not in REPORT_EXTRA:
        return None
    return (
        f"{command}: the report's pictures need the report extra ({missing} is not "
        "installed): pip install 'asyncpod[report]'"
    )


def _write(
    results: Path, output: Path, *, png: bool, sample: int, title: str | None, command: str
) -> tuple[int, str]:
    """(exit code, the line to print): the report's path, or why there is none."""
    try:
        from asyncpod.report.render import write_report
    except ImportError as error:
        message = missing_report_extra(error, command)
        if message is None:
            raise
        return _EXIT_USAGE, message
    try:
        written = write_report(results, output, png=png, sample=sample, title=title)
    except OSError as error:
        return _EXIT_USAGE, f"{command}: {error.strerror or error}: {error.filename or results}"
    loaded = written.loaded
    details = [f"{len(loaded.tasks):,} tasks"]
    if loaded.duplicates:
        details.append(f"{loaded.duplicates:,} superseded lines")
    if loaded.problems:
        details.append(f"{len(loaded.problems):,} lines skipped (listed in the report)")
    lines = [f"{command}: report of {results} ({', '.join(details)}):", str(written.html)]
    lines += [str(path) for path in written.pngs]
    return _EXIT_OK, "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    results: Path = args.results
    output: Path = args.output or default_output(results)
    code, text = _write(
        results,
        output,
        png=args.png,
        sample=args.sample,
        title=args.title,
        command="asyncpod report",
    )
    (sys.stdout if code == _EXIT_OK else sys.stderr).write(text + "\n")
    return code


def report_after_batch(results: Path) -> None:
    """``asyncpod batch --report``: write the report of ``results`` beside it and print
    its path. A report that cannot be written is one line on stderr; the batch's exit
    code stays the batch's."""
    if not results.exists():
        sys.stderr.write(f"asyncpod batch: no report: no result was recorded in {results}\n")
        return
    code, text = _write(
        results, default_output(results), png=False, sample=50, title=None, command="asyncpod batch"
    )
    (sys.stdout if code == _EXIT_OK else sys.stderr).write(text + "\n")
