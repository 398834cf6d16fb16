"""``asyncpod run IMAGE [-- ARGS...]``: one pod, its logs on stdout, its exit code as ours.

Why: ``kubectl run --rm -i --restart=Never`` is the obvious way to run one thing in a
cluster, and it is unreliable in the ways that matter to scripts: it attaches to the
container's TTY and can miss the first and last lines, reports exit code 0 or 1 where
the container said 137, and leaves the pod behind when interrupted. Here the logs are
followed through ``pods/log`` (every line once, in order, from the first), the exit
code is the main container's own, and the pod is deleted when the run ends, fails to
start, times out or is interrupted (unless ``--keep``).

Exit codes: the main container's exit code when it terminated (0-255); 1 with a
one-line explanation on stderr when the pod failed without one (unschedulable, an image
that never pulled, a timeout, deleted by someone else); 2 for usage and spec errors
(nothing was created); 130 on Ctrl-C (143 on SIGTERM), after the pod was deleted.

What it deliberately does not do: attach stdin or a TTY (this is for batch-style runs,
not interactive shells), exec into a running pod, or stream more than one pod (that is
``asyncpod batch``). Trailing words are the container's ``args`` (the image's
ENTRYPOINT stays), as with ``docker run`` and ``kubectl run``; ``--command`` makes
them its ``command`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import TextIO

from asyncpod.cli._common import (
    EXIT_FAILED,
    EXIT_USAGE,
    Interrupted,
    add_cluster_options,
    add_timeout_options,
    describe_error,
    library_voice,
    parse_pairs,
    run_interruptible,
    run_options,
    signal_exit_code,
)
from asyncpod.cli._metrics import add_metrics_options, exported, metrics_flags
from asyncpod.cli._traces import traced
from asyncpod.cli.simulated import NodeKinds, note
from asyncpod.core.cluster import connect
from asyncpod.core.lifecycle import StateChange
from asyncpod.core.runner import Cleanup, PodRun
from asyncpod.errors import AsyncpodError, UsageError
from asyncpod.kube.logs import LogLine
from asyncpod.results import PodResult
from asyncpod.spec import PodSpec

__all__ = ["add_parser", "exit_code_for", "spec_from_args"]

# After the result is known the container has exited, so its whole log exists; the
# followed stream may still be delivering the tail. Stop once it has been quiet this
# long (a kubelet ends the stream by itself; a simulated one may keep it open).
LOG_DRAIN_IDLE = 0.5
LOG_DRAIN_MAX = 10.0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one pod, stream its logs, exit with its exit code",
        description=(
            "Create one pod, stream its logs to stdout and exit with the main container's "
            "exit code; the pod is deleted afterwards (and on Ctrl-C) unless --keep."
        ),
        epilog="example: asyncpod run busybox:1.36 -- sh -c 'echo hello; exit 3'",
    )
    parser.add_argument("image", help="container image, e.g. busybox:1.36")
    parser.add_argument(
        "args", nargs="*", metavar="ARGS",
        help="the container's arguments; put them after -- (e.g. -- sh -c 'echo hi')",
    )  # fmt: skip
    parser.add_argument(
        "--command", action="store_true",
        help="ARGS replace the image's ENTRYPOINT (the container command) instead of its CMD",
    )  # fmt: skip
    add_cluster_options(parser)
    pod = parser.add_argument_group("pod")
    pod.add_argument("--name", default=None, help="pod name (default: generated)")
    pod.add_argument(
        "-e", "--env", action="append", default=[], metavar="KEY=VALUE",
        help="environment variable of the container (repeatable)",
    )  # fmt: skip
    pod.add_argument(
        "-l", "--label", action="append", default=[], metavar="KEY=VALUE",
        help="pod label (repeatable)",
    )  # fmt: skip
    pod.add_argument(
        "-a", "--annotation", action="append", default=[], metavar="KEY=VALUE",
        help="pod annotation (repeatable)",
    )  # fmt: skip
    add_timeout_options(parser)
    behaviour = parser.add_argument_group("behaviour")
    behaviour.add_argument(
        "--keep", action="store_true", help="do not delete the pod afterwards (debugging)"
    )
    behaviour.add_argument(
        "--no-logs", dest="logs", action="store_false", help="do not stream the pod's logs"
    )
    behaviour.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="report the pod's state changes (and the library's info messages) on stderr; "
        "-vv: also the library's debug log",
    )  # fmt: skip
    add_metrics_options(parser)
    parser.set_defaults(handler=handle, accepts_trailing_args=True)


def spec_from_args(args: argparse.Namespace) -> PodSpec:
    """The validated :class:`PodSpec` the arguments describe (``SpecError`` if invalid)."""
    words = tuple(args.args)
    spec = PodSpec(
        args.image,
        command=words if args.command else (),
        args=() if args.command else words,
        name=args.name,
        env=parse_pairs(args.env, option="--env"),
        labels=parse_pairs(args.label, option="--label"),
        annotations=parse_pairs(args.annotation, option="--annotation"),
    )
    return spec.validate()


def exit_code_for(result: PodResult) -> int:
    """The main container's exit code if it has one, else 0 for success and 1 otherwise."""
    code = result.exit_code
    if result.ok:
        return 0 if code is None else _clamp(code)
    if code is None or code == 0:
        # It did not exit on its own (timeout, deleted, never started), or something
        # other than the main container failed (an init container, a sidecar).
        return EXIT_FAILED
    return _clamp(code)


def _clamp(code: int) -> int:
    return code if 0 <= code <= 255 else EXIT_FAILED


def container_count(spec: PodSpec) -> int:
    return 1 + len(spec.init_containers) + len(spec.sidecars)


def format_line(line: LogLine, *, prefix: bool) -> str:
    return f"[{line.container}] {line.text}\n" if prefix else f"{line.text}\n"


def handle(args: argparse.Namespace) -> int:
    try:
        spec = spec_from_args(args)
    except UsageError as error:
        sys.stderr.write(f"asyncpod run: {error}\n")
        return EXIT_USAGE
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
    session = _Session(args=args, spec=spec)
    with library_voice("asyncpod run", verbose=args.verbose):
        return asyncio.run(session.main())


@dataclass
class _Session:
    args: argparse.Namespace
    spec: PodSpec
    run: PodRun | None = None
    interrupted: Interrupted = field(default_factory=Interrupted)
    simulated: str | None = None
    """The note to say when the pod ran on a simulated node (asyncpod/cli/simulated.py)."""
    _last_line: float = 0.0

    async def main(self) -> int:
        try:
            result = await run_interruptible(
                self._work(),
                interrupted=self.interrupted,
                repeat_hint="asyncpod run: deleting the pod; Ctrl-C again to quit without it",
            )
        except UsageError as error:
            sys.stderr.write(f"asyncpod run: {describe_error(error)}\n")
            return EXIT_USAGE
        except AsyncpodError as error:
            sys.stderr.write(f"asyncpod run: {error}\n")
            return EXIT_FAILED
        if self.interrupted.signum is not None:
            ref = self.run.ref if self.run is not None and self.run.name else None
            if ref is None:
                what = "no pod was created"
            elif self.args.keep:
                what = f"pod {ref} kept (--keep)"
            else:
                what = f"pod {ref} deleted"
            sys.stderr.write(f"asyncpod run: interrupted; {what}\n")
            return signal_exit_code(self.interrupted.signum)
        assert result is not None
        if self.simulated is not None:
            sys.stderr.write(f"asyncpod run: {self.simulated}\n")
        if not result.ok:
            sys.stderr.write(f"asyncpod run: {result.describe()}\n")
        elif self.args.keep:
            sys.stderr.write(f"asyncpod run: pod {result.ref} kept (--keep)\n")
        return exit_code_for(result)

    async def _work(self) -> PodResult:
        args = self.args
        options = run_options(args, cleanup=Cleanup.KEEP if args.keep else Cleanup.DELETE)
        async with (
            exported(metrics_flags(args), title="asyncpod run") as metrics,
            traced("asyncpod run") as traces,  # OTEL_* variables: asyncpod/cli/_traces.py
            connect(
                args.kubeconfig, context=args.context, namespace=args.namespace,
                options=options, metrics=metrics, traces=traces,
            ) as cluster,
        ):  # fmt: skip
            run = self.run = await cluster.start(self.spec)
            await run.created()
            helpers: list[asyncio.Task[None]] = []
            if args.verbose:
                helpers.append(asyncio.ensure_future(self._report_states(run)))
            if args.logs:
                helpers.append(asyncio.ensure_future(self._stream_logs(run)))
            outcome = asyncio.ensure_future(run.result())
            try:
                result = await asyncio.shield(outcome)
                if args.logs:
                    await self._drain(helpers[-1])
                if result.node_name:  # one GET of its node, after the result: no delay
                    kind = await NodeKinds(cluster.client).simulator(result.node_name)
                    if kind is not None:
                        self.simulated = note(pod=result.ref, node=result.node_name, simulator=kind)
                return result
            except asyncio.CancelledError:
                # Interrupted. Stop reading logs first: cleanup lets open log readers
                # drain before it deletes the pod, and nobody reads them any more.
                await _stop(helpers)
                await run.cancel()
                raise
            finally:
                await _stop(helpers)
                await asyncio.gather(outcome, return_exceptions=True)

    async def _stream_logs(self, run: PodRun, out: TextIO | None = None) -> None:
        stream = out or sys.stdout
        prefix = container_count(self.spec) > 1
        lines: AsyncIterator[LogLine] = run.logs()
        try:
            async for line in lines:
                stream.write(format_line(line, prefix=prefix))
                stream.flush()
                self._last_line = time.monotonic()
        except AsyncpodError as error:
            sys.stderr.write(f"asyncpod run: log stream of {run.ref} failed: {error}\n")
        finally:
            if isinstance(lines, AsyncGenerator):
                await lines.aclose()

    async def _drain(self, logs: asyncio.Task[None]) -> None:
        """Let the log stream deliver its tail; stop once it has been quiet a moment."""
        started = time.monotonic()
        while not logs.done():
            now = time.monotonic()
            quiet = now - max(self._last_line, started)
            if quiet >= LOG_DRAIN_IDLE or now - started >= LOG_DRAIN_MAX:
                return
            await asyncio.wait({logs}, timeout=LOG_DRAIN_IDLE - quiet)

    async def _report_states(self, run: PodRun) -> None:
        async for change in run.states():
            sys.stderr.write(f"asyncpod run: {run.ref} {describe_change(change)}\n")


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def describe_change(change: StateChange) -> str:
    parts = [change.state.value]
    node = (change.pod.get("spec") or {}).get("nodeName")
    if node and change.state_changed and change.state.value == "scheduled":
        parts.append(f"on {node}")
    if change.started:
        parts.append(f"started {', '.join(change.started)}")
    if change.terminated:
        parts.append(f"terminated {', '.join(change.terminated)}")
    if change.blocked:
        parts.append(f"waiting: {change.blocked[0]}")
    return " ".join(parts)
