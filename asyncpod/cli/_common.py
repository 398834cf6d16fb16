"""What ``asyncpod run``, ``batch`` and ``demo`` share: options, exit codes, signals.

Why a module of its own: the three commands must agree on how a cluster is named
(``--kubeconfig``/``--context``/``--namespace``), how timeouts map to
:class:`~asyncpod.RunOptions`, what each exit code means, and how Ctrl-C turns into a
clean cancellation (pods deleted) instead of a traceback and leaked pods.

The library speaks through Python ``warnings`` and ``logging`` records under
``asyncpod.*``; :func:`library_voice` turns both into one short line on stderr in the
command's own voice (``asyncpod run: warning: ...``), and shows the library's info and
debug records only with ``-v``/``-vv``, so a user never sees a raw ``WARNING:`` line or
a traceback from a log call.

What it deliberately does not do: print results or talk to the cluster. Each command
owns its own output; this module only parses and plumbs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import re
import signal
import sys
import warnings
from collections.abc import Callable, Coroutine, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

from asyncpod.core.runner import Cleanup, RunOptions
from asyncpod.errors import AsyncpodError, NamespaceNotFoundError, UsageError

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Interrupted",
    "add_cluster_options",
    "add_timeout_options",
    "add_verbose_option",
    "describe_error",
    "library_voice",
    "parse_pairs",
    "run_interruptible",
    "run_options",
    "signal_exit_code",
]

EXIT_OK = 0
EXIT_FAILED = 1
"""A pod failed, or something broke (the message on stderr says which)."""
EXIT_USAGE = 2
"""Bad arguments, a bad spec or input file, an unusable kubeconfig: nothing was run."""

T = TypeVar("T")


def signal_exit_code(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 for SIGINT)."""
    return 128 + signum


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster")
    group.add_argument(
        "--kubeconfig", metavar="PATH", default=None,
        help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)",
    )  # fmt: skip
    group.add_argument("--context", default=None, help="kubeconfig context to use")
    group.add_argument(
        "-n", "--namespace", default=None,
        help="namespace of the pods (default: the context's namespace, else 'default')",
    )  # fmt: skip


def _positive_seconds(text: str) -> float | None:
    if text.lower() in ("0", "none", "off"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def add_timeout_options(
    parser: argparse.ArgumentParser, *, image_pull_timeout: float | None = 120.0
) -> None:
    """Per-pod limits; each takes seconds, and ``0``/``none`` turns it off."""
    defaults = RunOptions()
    group = parser.add_argument_group("per-pod limits (seconds; 0 turns one off)")
    group.add_argument(
        "--timeout", type=_positive_seconds, default=None, metavar="SECONDS",
        help="deadline of the whole run of a pod, from its creation (default: none)",
    )  # fmt: skip
    group.add_argument(
        "--schedule-timeout", type=_positive_seconds, metavar="SECONDS",
        default=defaults.schedule_timeout,
        help=f"fail a pod not bound to a node by then (default {defaults.schedule_timeout:g})",
    )  # fmt: skip
    group.add_argument(
        "--startup-timeout", type=_positive_seconds, metavar="SECONDS",
        default=defaults.startup_timeout,
        help="fail a pod whose container has not started that long after scheduling "
        f"(default {defaults.startup_timeout:g})",
    )  # fmt: skip
    group.add_argument(
        "--image-pull-timeout", type=_positive_seconds, metavar="SECONDS",
        default=image_pull_timeout,
        help="fail a pod stuck in ErrImagePull/ImagePullBackOff that long "
        f"(default {image_pull_timeout:g})",
    )  # fmt: skip


def run_options(args: argparse.Namespace, *, cleanup: Cleanup) -> RunOptions:
    return RunOptions(
        schedule_timeout=args.schedule_timeout,
        startup_timeout=args.startup_timeout,
        image_pull_timeout=args.image_pull_timeout,
        deadline=args.timeout,
        cleanup=cleanup,
    )


def parse_pairs(values: Iterable[str], *, option: str) -> dict[str, str]:
    """``["A=1", "B=x=y"]`` → ``{"A": "1", "B": "x=y"}``; a value may be empty."""
    pairs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} expects KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


@dataclass
class Interrupted:
    """Which signal stopped the work (``None``: it ran to its end)."""

    signum: int | None = None
    count: int = 0
    in_flight: int | None = None
    """What the command had in flight when the first signal came (set by its callback)."""


async def run_interruptible(
    work: Coroutine[Any, Any, T],
    *,
    interrupted: Interrupted,
    repeat_hint: str,
    on_interrupt: Callable[[], None] | None = None,
) -> T | None:
    """Run ``work`` in a task that the first SIGINT/SIGTERM cancels.

    Cancelling is how asyncpod cleans up: a cancelled run deletes its pod (shielded),
    a cancelled launcher cancels every run in flight. A second signal does not cancel
    again (that could interrupt the deletions); it prints ``repeat_hint``. A third one
    exits at once, leaving whatever is left behind.

    ``on_interrupt`` runs at the first signal, before the cancellation: the moment to
    note what was in flight (afterwards the cancelled runs have ended).

    Returns the work's result, or ``None`` if it was cancelled before it returned.
    ``interrupted.signum`` says whether a signal arrived (``work`` may catch the
    cancellation itself, finish its report and return normally).
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)

    def handle(signum: int) -> None:
        interrupted.count += 1
        if interrupted.count == 1:
            interrupted.signum = signum
            if on_interrupt is not None:
                on_interrupt()
            task.cancel()
        elif interrupted.count == 2:
            sys.stderr.write(repeat_hint.rstrip("\n") + "\n")
            sys.stderr.flush()
        else:
            sys.stderr.flush()
            os._exit(signal_exit_code(signum))

    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, handle, signum)
    try:
        await asyncio.wait({task})
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    if task.cancelled():
        return None
    return task.result()


def add_verbose_option(parser: argparse._ActionsContainer, *, help_prefix: str = "") -> None:
    parser.add_argument(
        "-v", "--verbose", action="count", default=0,
        help=f"{help_prefix}-v: also the library's info messages; -vv: its debug log",
    )  # fmt: skip


def describe_error(error: AsyncpodError, *, namespace: str | None = None) -> str:
    """One line (or a few, for a 422's causes) that says what went wrong and what to do."""
    if isinstance(error, NamespaceNotFoundError):
        name = error.namespace or namespace or "?"
        return (
            f"namespace {name!r} does not exist on this cluster; create it "
            f"(kubectl create namespace {name}) or pass another --namespace"
        )
    return str(error)


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def repeat_key(logger_name: str, level: int, message: str) -> tuple[str, int, str]:
    """What makes two log lines "the same": logger, level and text, numbers aside.

    "reconnecting in 1.3s" and "reconnecting in 4.8s" say the same thing. Pure.
    """
    return logger_name, level, _NUMBER.sub("#", message)


class RepeatFolder:
    """Folds a run of the same message into the first one and a count.

    A watch that cannot reconnect would otherwise print the same warning every few
    seconds. :meth:`see` says, for each new line, how many folded repeats to report
    before it and whether to show it; a run of repeats is also reported when its
    count reaches a power of ten, so a long one is never silent. Pure.
    """

    __slots__ = ("_last", "_total", "_unreported")

    def __init__(self) -> None:
        self._last: Hashable = None
        self._total = 0
        self._unreported = 0

    def see(self, key: Hashable) -> tuple[int, bool]:
        """(repeats to report now, whether to show this line)."""
        if key == self._last:
            self._total += 1
            self._unreported += 1
            if self._total >= 10 and math.log10(self._total).is_integer():
                return self.flush(), False
            return 0, False
        reported = self.flush()
        self._last, self._total = key, 0
        return reported, True

    def flush(self) -> int:
        """Repeats not yet reported (and now counted as reported)."""
        reported, self._unreported = self._unreported, 0
        return reported


class _VoiceHandler(logging.Handler):
    """Writes each record as ``<command>: <message>`` on one line; folds repeats."""

    def __init__(self, command: str, stream: TextIO | None, *, verbose: int) -> None:
        super().__init__(
            logging.DEBUG if verbose >= 2 else logging.INFO if verbose else logging.WARNING
        )
        self._command = command
        self._stream = stream
        self._verbose = verbose
        self._folder = RepeatFolder()

    def report_repeats(self) -> None:
        """Say how often the last line repeated since it was last said (at the end)."""
        self._write_repeats(self._folder.flush())

    def _write_repeats(self, repeats: int) -> None:
        if repeats:
            self._write(
                f"(the line above repeated {repeats} more time{'s' if repeats > 1 else ''})"
            )

    def _write(self, line: str) -> None:
        stream = self._stream or sys.stderr
        try:
            stream.write(f"{self._command}: {line}\n")
            stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: nothing left to tell
            pass

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not break the command
            message = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None and self._verbose < 2:
            error = record.exc_info[1]
            message = f"{message}: {type(error).__name__}: {error}"
        elif record.exc_info and self._verbose >= 2:
            message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
        if not self._verbose:
            message = message.splitlines()[0] if message else message
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        where = f"[{record.name}] " if self._verbose else ""
        if not self._verbose:  # -v and -vv show everything as it comes
            repeats, show = self._folder.see(repeat_key(record.name, record.levelno, message))
            self._write_repeats(repeats)
            if not show:
                return
        self._write(f"{level}{where}{message}")


@contextlib.contextmanager
def library_voice(
    command: str, *, verbose: int = 0, stream: TextIO | None = None
) -> Iterator[None]:
    """For the block: the library's warnings and log records in the command's voice.

    ``logging`` records of ``asyncpod.*`` at WARNING and above (INFO with ``verbose``,
    DEBUG with ``verbose >= 2``) become ``<command>: warning: <first line>``; they do
    not propagate to the root logger (whose last-resort handler would print them raw).
    Python ``warnings`` become ``<command>: warning: <message>``. Both are restored on
    exit.
    """
    logger = logging.getLogger("asyncpod")
    handler = _VoiceHandler(command, stream, verbose=verbose)
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(handler.level)
    logger.propagate = False

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        kind = "" if category is UserWarning else f" ({category.__name__})"
        text = str(message).splitlines()[0] if str(message) else category.__name__
        out = stream or sys.stderr
        try:
            out.write(f"{command}: warning{kind}: {text}\n")
            out.flush()
        except (OSError, ValueError):
            pass

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            yield
    finally:
        handler.report_repeats()
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
