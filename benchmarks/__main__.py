"""``python -m benchmarks``: run the contenders, or report a results file.

    python -m benchmarks run                               # the full matrix (long)
    python -m benchmarks run --pods 50 --durations 3       # a smoke run, a few minutes
    python -m benchmarks run --contenders raw asyncpod kr8s --pods 1000 --durations 60
    python -m benchmarks report benchmarks/results/FILE.json [--readme]

``report`` prints the markdown tables, writes the PNG plots next to the results file
and, with ``--readme``, replaces the section of benchmarks/README.md between the
``<section>:begin`` and ``<section>:end`` markers (``--section``, default contenders).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks import run

__all__ = ["main"]

README = Path(__file__).with_name("README.md")


def report(path: Path, *, readme: bool, plots: bool, section_name: str = "contenders") -> int:
    from benchmarks.report import document_section

    document = json.loads(path.read_text())
    document["file"] = path.name
    names: list[str] = []
    if plots:
        from benchmarks.plots import render

        names = [p.relative_to(README.parent).as_posix()
                 for p in render(document, path.resolve().parent, path.stem)]  # fmt: skip
    section = document_section(document, plots=names)
    print(section)
    if readme:
        begin, end = f"<!-- {section_name}:begin -->", f"<!-- {section_name}:end -->"
        text = README.read_text()
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        if not rest:
            print(f"{README} has no {begin} marker", file=sys.stderr)
            return 1
        README.write_text(f"{head}{begin}\n{section}\n{end}{tail}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run.add_arguments(commands.add_parser("run", help="run the contenders"))
    rep = commands.add_parser("report", help="tables and plots of a results file")
    rep.add_argument("results", type=Path)
    rep.add_argument("--readme", action="store_true", help="rewrite the README's section")
    rep.add_argument("--no-plots", action="store_true")
    rep.add_argument("--section", default="contenders", help="README marker name (contenders)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run.main(args, argv)
    return report(
        args.results, readme=args.readme, plots=not args.no_plots, section_name=args.section
    )


if __name__ == "__main__":
    sys.exit(main())
