"""Layers kept by a test: no REST path is spelled outside ``asyncpod/kube/``.

``asyncpod.kube.pods`` (and the rest of ``kube/``) is the only place that knows the API
server's paths (docs/architecture.md, "Layers"); ``asyncpod/testing/`` is apart (its
control plane administers the server it starts). import-linter keeps the imports in
line; this keeps the vocabulary there: every string literal and f-string of every other
module is read from its syntax tree, and one that holds ``/api/`` or ``/apis/`` is a
REST path spelled by hand. Docstrings are prose and may name a path.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import asyncpod

PACKAGE = Path(asyncpod.__file__).parent
ALLOWED = ("kube", "testing")
REST_PATH = re.compile(r"/apis?/")


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of ``tree`` (module, classes, functions)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
        ):
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _text(node: ast.AST) -> str | None:
    """A string literal's text; an f-string's literal parts with ``{}`` for each field."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            str(part.value) if isinstance(part, ast.Constant) else "{}" for part in node.values
        )
    return None


def rest_paths(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, text) of every string literal or f-string in ``source`` holding a REST path."""
    tree = ast.parse(source, filename)
    docstrings = _docstrings(tree)
    inner: set[int] = set()  # an f-string's literal parts, judged with their f-string
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inner.update(id(part) for part in node.values)
        if id(node) in docstrings or id(node) in inner:
            continue
        text = _text(node)
        if text is not None and REST_PATH.search(text):
            found.append((getattr(node, "lineno", 0), text))
    return sorted(found)


def _modules() -> list[Path]:
    return sorted(
        path for path in PACKAGE.rglob("*.py") if path.relative_to(PACKAGE).parts[0] not in ALLOWED
    )


def test_the_detector_finds_paths_spelled_by_hand() -> None:
    # The two paths airflow/triggers.py spelled before it used kube/pods.py.
    source = '''
"""A module docstring may say /api/v1/namespaces/{ns}/pods."""

async def _delete(self, cluster):
    """So may a function's: DELETE /api/v1/namespaces/NS/pods/NAME."""
    await cluster.client.request(
        "DELETE",
        f"/api/v1/namespaces/{self.pod_namespace}/pods/{self.pod_name}",
        json={},
    )

async def listing(cluster, namespace):
    return await cluster.client.request("GET", f"/api/v1/namespaces/{namespace}/pods")

LEASES = "/apis/coordination.k8s.io/v1/namespaces/ns/leases"
SPLIT = f"/{'api'}/v1/pods"  # not caught: only literal text is read
'''
    assert rest_paths(source) == [
        (8, "/api/v1/namespaces/{}/pods/{}"),
        (13, "/api/v1/namespaces/{}/pods"),
        (15, "/apis/coordination.k8s.io/v1/namespaces/ns/leases"),
    ]


def test_the_detector_ignores_what_is_not_a_path() -> None:
    source = '''
"""Quantities as in k8s.io/apimachinery/pkg/api/resource."""
URL = "https://example.invalid/apiserver"
CAPI = "rapid/application"
'''
    assert rest_paths(source) == []


def test_the_walk_sees_every_layer() -> None:
    layers = {path.relative_to(PACKAGE).parts[0] for path in _modules()}
    assert {"core", "cli", "airflow", "spec"} <= layers
    assert not layers & set(ALLOWED)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_rest_path_outside_kube(path: Path) -> None:
    found = rest_paths(path.read_text(encoding="utf-8"), str(path))
    assert found == [], (
        f"{path.relative_to(PACKAGE)} spells REST paths {found}: "
        "add a method to asyncpod/kube/pods.py (or kube/) and call it"
    )
