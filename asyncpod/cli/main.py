"""The ``asyncpod`` command's entry point: argument parsing and dispatch only.

Each subcommand lives in its own module and registers itself with :func:`add_parser`;
this module knows their names and nothing of what they do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from asyncpod.cli import cluster

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asyncpod", description="Run Kubernetes pods from asyncio, at scale."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    cluster.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
