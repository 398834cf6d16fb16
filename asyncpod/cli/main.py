"""The ``asyncpod`` command's entry point: argument parsing and dispatch only.

Each subcommand lives in its own module and registers itself with :func:`add_parser`;
this module knows their names and nothing of what they do.

Everything after the first ``--`` is handed, untouched, to a subcommand that takes a
trailing command (``asyncpod run IMAGE -- sh -c '...'``): argparse alone would eat a
second ``--`` inside that command and reject options placed after the image.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from asyncpod.cli import batch, cluster, demo, run

__all__ = ["build_parser", "main", "parse_args"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asyncpod", description="Run Kubernetes pods from asyncio, at scale."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    run.add_parser(subparsers)
    batch.add_parser(subparsers)
    demo.add_parser(subparsers)
    cluster.add_parser(subparsers)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; words after the first ``--`` become ``args.args`` untouched."""
    words = list(argv)
    trailing: list[str] | None = None
    if "--" in words:
        split = words.index("--")
        words, trailing = words[:split], words[split + 1 :]
    parser = build_parser()
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
