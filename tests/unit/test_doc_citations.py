"""Code that cites docs/architecture.md cites a section that exists.

Docstrings and comments point readers at sections of the map by name
(``docs/architecture.md, "Facts"``); a section renamed or removed must not leave them
pointing at nothing, and no citation may name a page the repository does not have.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
CITATION = re.compile(r'architecture\.md,\s+"([^"]+)"')


def _citations() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "asyncpod").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        found += [(str(path.relative_to(ROOT)), m) for m in CITATION.findall(text)]
    return found


def test_every_cited_section_of_the_architecture_page_exists() -> None:
    headings = {
        line.lstrip("#").strip()
        for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    citations = _citations()

    assert citations, "the detector found no citation at all: is the pattern right?"
    assert [(where, name) for where, name in citations if name not in headings] == []


def test_no_code_cites_a_page_the_repository_does_not_have() -> None:
    cites_design = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "asyncpod").rglob("*.py"))
        if re.search(r"\bDESIGN\b", path.read_text(encoding="utf-8"))
    ]
    assert cites_design == []
