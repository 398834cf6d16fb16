"""The ``asyncpod`` command's entry point: argument parsing and dispatch only.

Each subcommand lives in its own module and registers itself with :func:`add_parser`;
this module knows their names and help lines, and nothing of what they do.

Only the module of the command being run is imported. Together they import the
library, aiohttp, rich and the local control plane (whose ``cryptography`` comes with
the ``testing`` extra): about half a second that ``asyncpod --help`` or a mistyped
command has no use for (docs/architecture.md, "Imports"). The other commands appear as
placeholders, their name and help line; a test checks these are the modules' own.

Everything after the first ``--`` is handed, untouched, to a subcommand that takes a
trailing command (``asyncpod run IMAGE -- sh -c '...'``): argparse alone would eat a
second ``--`` inside that command and reject options placed after the image.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Collection, Sequence
from typing import Final

__all__ = ["COMMANDS", "build_parser", "main", "parse_args"]

#: Each command's module and the help line ``asyncpod --help`` shows for it.
COMMANDS: Final = {
    "run": ("asyncpod.cli.run", "run one pod, stream its logs, exit with its exit code"),
    "batch": (
        "asyncpod.cli.batch",
        "run every pod of a YAML/JSONL file, bounded, with progress and a summary",
    ),
    "demo": (
        "asyncpod.cli.demo",
        (
            "run a 200-pod demo batch (on a local control plane with simulated nodes "
            "unless a cluster is given)"
        ),
    ),
    "cluster": (
        "asyncpod.cli.cluster",
        "start/stop a local Kubernetes control plane (simulated nodes)",
    ),
    "report": (
        "asyncpod.cli.report",
        "write a self-contained HTML report (timeline, phases, failures) of a batch's results",
    ),
}


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The parser, complete for ``commands`` (for every command when None).

    The others are placeholders with their name and help line: enough for
    ``asyncpod --help`` and for argparse's list of valid choices.
    """
    parser = argparse.ArgumentParser(
        prog="asyncpod", description="Run Kubernetes pods from asyncio, at scale."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_line) in COMMANDS.items():
        if commands is None or name in commands:
            importlib.import_module(module).add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=help_line)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; words after the first ``--`` become ``args.args`` untouched."""
    words = list(argv)
    trailing: list[str] | None = None
    if "--" in words:
        split = words.index("--")
        words, trailing = words[:split], words[split + 1 :]
    # The top-level parser has no option taking a value: its first word that is not an
    # option is the command.
    command = next((word for word in words if not word.startswith("-")), None)
    parser = build_parser([command] if command in COMMANDS else [])
    args = parser.parse_args(words)
    if trailing is not None:
        if not getattr(args, "accepts_trailing_args", False):
            parser.error(f"asyncpod {args.command} takes no arguments after --")
        if args.args:
            parser.error("put the whole command after --, e.g. asyncpod run IMAGE -- echo hi")
        args.args = trailing
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:  # before or after the event loop's own signal handling
        sys.stderr.write(f"asyncpod {args.command}: interrupted\n")
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
