"""The site builds strictly, documents every public name, and links only to what exists.

Issue 18 judges the site by "the site's pages exist for every public name in
``asyncpod.__all__``, ``asyncpod.airflow`` and ``asyncpod.testing``": this builds it
(``mkdocs build --strict``, as ``make docs`` does) and reads the objects inventory that
mkdocstrings writes, so a name counts only if a page really renders it. The links check
covers what ``--strict`` cannot: the README (not part of the site) and links from the
site to files of the repository.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.docs.blocks import ROOT, pages

MKDOCS = Path(sys.executable).parent / "mkdocs"
PUBLIC_MODULES = ("asyncpod", "asyncpod.airflow", "asyncpod.testing")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not MKDOCS.exists():
        pytest.fail("mkdocs is missing: install the docs extra (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [str(MKDOCS), "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def inventory(path: Path) -> dict[str, str]:
    """``objects.inv`` (Sphinx's format, version 2): object name -> page address."""
    raw = path.read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = raw.index(b"\n", header_end) + 1
    assert raw.startswith(b"# Sphinx inventory version 2"), raw[:40]
    entries: dict[str, str] = {}
    for line in zlib.decompress(raw[header_end:]).decode().splitlines():
        match = re.match(r"(\S+)\s+(\S+):(\S+)\s+(-?\d+)\s+(\S+)", line)
        if match is not None:
            entries[match[1]] = match[5]
    return entries


def resolve(dotted: str) -> Any:
    """The object a documented path names (the longest importable module, then attributes)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise LookupError(dotted)


def public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    assert names, f"{module.__name__} has no __all__"
    return list(names)


def test_every_public_name_has_its_entry_in_the_api_reference(site: Path) -> None:
    entries = inventory(site / "objects.inv")
    documented: dict[int, list[str]] = {}
    for name, address in entries.items():
        if not address.startswith("reference/"):
            continue
        try:
            documented.setdefault(id(resolve(name)), []).append(name)
        except (LookupError, AttributeError):
            continue
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in public_names(module):
            obj = getattr(module, name)
            # A value (a string, a dict) is documented under its module's own name.
            if id(obj) not in documented and f"{module_name}.{name}" not in entries:
                missing.append(f"{module_name}.{name}")
    assert missing == [], "add them to docs/reference/*.md"


def test_no_page_links_to_a_file_that_does_not_exist() -> None:
    broken = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # code is not a link
        for match in _LINK.finditer(text):
            target = (match[1] or match[2]).split("#", 1)[0]
            if not target or re.match(r"[a-z]+:", target):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []


def test_the_readme_stays_a_front_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    assert "## The two commands" in readme
    assert "`make demo`" in readme
    assert "`make test`" in readme
