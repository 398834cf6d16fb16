"""An MkDocs hook: Sphinx roles in docstrings read as plain code on the site.

The docstrings say :class:`Cluster` and :func:`~asyncpod.kube.config.config_source`
(reStructuredText roles, as Python's own documentation does); mkdocstrings renders
them as Markdown, which leaves ":class:" before the code. This drops the role and, as
Sphinx does, shortens a ``~``-prefixed path to its last part. It changes nothing else
(mkdocs.yml, ``hooks``).
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const|ref):<code>(~?)([^<]*)</code>"
)


def _replace(match: re.Match[str]) -> str:
    short, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if short else target}</code>"


def on_page_content(html: str, **_: Any) -> str:
    return _ROLE.sub(_replace, html)
