"""Only AsyncpodError subclasses leave the public API.

Two walks. The static one reads every ``raise`` in the library's layers (errors,
results, spec, kube, core) and resolves what it raises: anything that is not an
:class:`AsyncpodError` must be on the short allowlist below, each entry with the reason
it is not one of ours. The dynamic one feeds every public constructor and function
of ``asyncpod.__all__`` the mistakes users make and checks the error is ours, typed
by who caused it, and names what to fix.
"""

from __future__ import annotations

import ast
import builtins
import importlib
from pathlib import Path
from typing import Any

import pytest

import asyncpod
from asyncpod import errors

ROOT = Path(asyncpod.__file__).parent
LIBRARY_LAYERS = ("errors.py", "results.py", "spec", "kube", "core", "__init__.py")

#: (module path, exception name) -> why it may leave.
ALLOWED: dict[tuple[str, str], str] = {
    ("__init__.py", "AttributeError"): "module __getattr__ protocol: an unknown name",
    ("spec/_pod.py", "FrozenInstanceError"): "dataclass protocol: assigning to a frozen spec",
    ("spec/_quantity.py", "ValueError"): "private parser; its callers raise SpecError (below)",
    ("core/lifecycle.py", "ValueError"): "parse_time's private contract; callers map it to None",
}


def raised_names() -> list[tuple[str, int, str, type[BaseException] | None]]:
    found: list[tuple[str, int, str, type[BaseException] | None]] = []
    files = [
        path
        for layer in LIBRARY_LAYERS
        for path in (
            sorted((ROOT / layer).rglob("*.py")) if (ROOT / layer).is_dir() else [ROOT / layer]
        )
    ]
    for path in files:
        relative = path.relative_to(ROOT).as_posix()
        module_name = "asyncpod." + relative.removesuffix(".py").replace("/", ".")
        module = importlib.import_module(module_name.removesuffix(".__init__"))
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = ast.unparse(target)
            head, *rest = name.split(".")
            obj: Any = getattr(module, head, getattr(builtins, head, None))
            for part in rest:
                obj = getattr(obj, part, None)
            kind = obj if isinstance(obj, type) and issubclass(obj, BaseException) else None
            found.append((relative, node.lineno, name, kind))
    return found


def test_every_raise_in_the_library_is_ours_or_explained() -> None:
    found = raised_names()
    assert len(found) > 50  # the walk really walked
    foreign = [
        f"{path}:{line} raises {name}"
        for path, line, name, kind in found
        if kind is not None
        and not issubclass(kind, errors.AsyncpodError)
        and (path, kind.__name__) not in ALLOWED
    ]
    assert not foreign, "\n".join(foreign)


def test_the_allowlist_holds_nothing_stale() -> None:
    present = {(path, kind.__name__) for path, _, _, kind in raised_names() if kind is not None}
    assert set(ALLOWED) <= present


# ------------------------------------------------------------------ the dynamic walk
BAD_CALLS: list[tuple[str, Any, type[errors.AsyncpodError], str]] = [
    ("PodSpec(image=42)", lambda: asyncpod.PodSpec(image=42), errors.SpecError, "image"),  # type: ignore[arg-type]
    ("PodSpec without image", lambda: asyncpod.PodSpec().validate(), errors.SpecError, "image"),
    (
        "PodSpec bad quantity",
        lambda: asyncpod.PodSpec("busybox", resources={"limits": {"cpu": "lots"}}).validate(),
        errors.SpecError,
        "cpu",
    ),
    (
        "PodSpec bad label",
        lambda: asyncpod.PodSpec("busybox", labels={"bad key!": "x"}).validate(),
        errors.SpecError,
        "labels",
    ),
    (
        "EnvVar bad name",
        lambda: asyncpod.PodSpec("busybox", env={"": "x"}).validate(),
        errors.SpecError,
        "env",
    ),
    (
        "RunOptions negative",
        lambda: asyncpod.RunOptions(deadline=-1),
        errors.OptionError,
        "deadline",
    ),
    (
        "RunOptions cleanup",
        lambda: asyncpod.RunOptions(cleanup="often"),  # type: ignore[arg-type]
        errors.OptionError,
        "cleanup",
    ),
    (
        "PodResult.raise_for_outcome",
        lambda: asyncpod.PodResult(
            "ns", "p", "u", outcome=asyncpod.Outcome.FAILED
        ).raise_for_outcome(),
        errors.PodFailedError,
        "ns/p",
    ),
]


@pytest.mark.parametrize(
    ("what", "call", "expected", "names"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS]
)
def test_public_calls_with_bad_input_raise_our_typed_error_naming_the_field(
    what: str, call: Any, expected: type[errors.AsyncpodError], names: str
) -> None:
    with pytest.raises(errors.AsyncpodError) as raised:
        call()
    assert isinstance(raised.value, expected), (what, type(raised.value))
    assert names in str(raised.value), (what, str(raised.value))


async def test_connect_with_a_broken_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nclusters: [this is: not a kubeconfig\n")
    with pytest.raises(errors.ConfigError):
        async with asyncpod.connect(broken):
            pass
    with pytest.raises(errors.ConfigError):
        async with asyncpod.connect(tmp_path / "missing"):
            pass


async def test_launcher_and_session_misuse_are_ours() -> None:
    with pytest.raises(errors.UsageError):
        asyncpod.Launcher(object(), max_in_flight=0)  # type: ignore[arg-type]
