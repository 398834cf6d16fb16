"""The README's and the site's code examples, read from their Markdown (tests/docs).

Every fenced block is an example unless its language says it is output (``text``,
``json``). An HTML comment on the line just before the fence says how CI runs it::

    <!-- example: cluster -->                 Python, run against the test cluster
    <!-- example: python -->                  Python, run alone (the default for python)
    <!-- example: cli -->                     shell: each line an asyncpod command, run
                                              against the test cluster
    <!-- example: file=jobs.yaml -->          saved as jobs.yaml for the page's cli blocks
    <!-- example: new-project file=F -->      a file of a new project whose pytest is run
    <!-- example: skip reason="why" -->       not run; the reason names what tests it

A ``cli`` block may also ask for ``contexts=east,west`` (contexts of its kubeconfig),
``files=a.yaml,b.yaml`` (kubeconfig files of the test cluster) and ``namespaces=jobs``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTPUT_LANGUAGES = frozenset({"text", "json", "console-output"})
KINDS = frozenset({"python", "cluster", "cli", "file", "new-project", "skip"})

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>.*)$")
_MARKER = re.compile(r"^\s*<!--\s*example:\s*(?P<body>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Example:
    """One fenced block: where it is, its language, its marker and its text."""

    page: str
    line: int
    language: str
    kind: str
    options: dict[str, str] = field(default_factory=dict)
    code: str = ""

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """The README and every page of the site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def parse_marker(body: str) -> tuple[str, dict[str, str]]:
    """``'cli contexts=east,west'`` -> ``('cli', {'contexts': 'east,west'})``."""
    words = shlex.split(body)
    kind, options = "", {}
    for word in words:
        key, eq, value = word.partition("=")
        if eq:
            options[key] = value
        elif not kind:
            kind = word
        else:
            raise ValueError(f"two kinds in one marker: {body!r}")
    if not kind and "file" in options:
        kind = "file"
    if kind not in KINDS:
        raise ValueError(f"unknown example kind {kind!r} in {body!r}")
    return kind, options


def examples_of(text: str, page: str) -> list[Example]:
    """Every fenced block of ``text``, with the kind its marker (or its language) gives."""
    found: list[Example] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        fence, language = match["fence"], match["info"].strip().split(" ")[0].lower()
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index][len(match["indent"]) :])
            index += 1
        index += 1
        marker = _MARKER.match(lines[start - 1]) if start > 0 else None
        if marker is not None:
            kind, options = parse_marker(marker["body"])
        elif language == "python":
            kind, options = "python", {}
        else:
            kind, options = "", {}
        code = "\n".join(body) + "\n"
        found.append(Example(page, start + 1, language, kind, options, code))
    return found


def all_examples() -> list[Example]:
    out: list[Example] = []
    for path in pages():
        out += examples_of(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    return out


def commands(code: str) -> list[str]:
    """A shell block's commands: its non-empty lines that are not comments."""
    return [
        line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
