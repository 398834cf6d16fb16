"""``python -m benchmarks``: run the contenders, or report a results file.

    python -m benchmarks run                               # the full matrix (long)
    python -m benchmarks run --pods 50 --durations 3       # a smoke run, a few minutes
    python -m benchmarks run --contenders raw asyncpod kr8s --pods 1000 --durations 60
    python -m benchmarks report benchmarks/results/FILE.json [MORE.json ...] [--readme]
    python -m benchmarks compare FIRST.json SECOND.json [--readme --section NAME]

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


def report(
    paths: Sequence[Path], *, readme: bool, plots: bool, section_name: str = "contenders"
) -> int:
    """Tables (and plots) of one results file, or of several as one (across N)."""
    from benchmarks.report import document_section, merge_documents

    document = merge_documents([json.loads(p.read_text()) for p in paths], [p.name for p in paths])
    path = paths[0]
    stem = path.stem if len(paths) == 1 else f"{path.stem}-all"
    names: list[str] = []
    if plots:
        from benchmarks.plots import render

        names = [p.relative_to(README.parent).as_posix()
                 for p in render(document, path.resolve().parent, stem)]  # fmt: skip
    section = document_section(document, plots=names)
    print(section)
    if readme:
        return _replace_section(section, section_name)
    return 0


def compare(first: Path, second: Path, *, readme: bool, section_name: str) -> int:
    """Do two runs of the same matrix agree? Their ratios to raw side by side."""
    from benchmarks.report import compare_table

    documents = [json.loads(p.read_text()) for p in (first, second)]
    lines = [
        (
            f"1st: `{documents[0].get('command', '?')}` — {documents[0].get('date', '?')}, "
            f"`results/{first.name}`; 2nd: `{documents[1].get('command', '?')}` — "
            f"{documents[1].get('date', '?')}, `results/{second.name}`. Gap: the difference "
            "of the two ratios relative to their mean."
        ),
        "",
        compare_table(documents[0]["runs"], documents[1]["runs"]),
    ]
    section = "\n".join(lines)
    print(section)
    if readme:
        return _replace_section(section, section_name)
    return 0


def _replace_section(section: str, section_name: str) -> int:
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
    rep.add_argument("results", type=Path, nargs="+", help="one file, or several as one")
    rep.add_argument("--readme", action="store_true", help="rewrite the README's section")
    rep.add_argument("--no-plots", action="store_true")
    rep.add_argument("--section", default="contenders", help="README marker name (contenders)")
    cmp = commands.add_parser("compare", help="two runs' ratios to raw, side by side")
    cmp.add_argument("first", type=Path)
    cmp.add_argument("second", type=Path)
    cmp.add_argument("--readme", action="store_true", help="rewrite the README's section")
    cmp.add_argument("--section", default="reproduce", help="README marker name (reproduce)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run.main(args, argv)
    if args.command == "compare":
        return compare(args.first, args.second, readme=args.readme, section_name=args.section)
    return report(
        args.results, readme=args.readme, plots=not args.no_plots, section_name=args.section
    )


if __name__ == "__main__":
    sys.exit(main())
