"""What importing asyncpod costs: the library never loads the CLI's or the harness's deps.

`cryptography` (the control plane's PKI) and `rich` (the CLI's output) are for
`asyncpod.testing` and `asyncpod.cli` only. The pytest plugin is loaded by every pytest
run of every project that installed asyncpod, so loading it must not import the
control plane, aiohttp or the library. Nothing at start-up imports kubernetes_asyncio
(its package imports its whole generated client, about a second); connecting with a
plain kubeconfig does not either (tests/unit/kube/test_config.py connects in a fresh
interpreter). Each check runs in a fresh interpreter, since this test session has
imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import asyncpod
import asyncpod.testing

WATCHED = (
    "cryptography",
    "rich",
    "aiohttp",
    "kubernetes_asyncio",
    "asyncpod.core",
    "asyncpod.kube",
)


def loaded_after(code: str) -> set[str]:
    """The WATCHED modules present in sys.modules after running ``code`` in a fresh python."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps([m for m in {list(WATCHED)!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_import_asyncpod_loads_only_the_vocabulary() -> None:
    assert loaded_after("import asyncpod") == set()


def test_specs_are_built_without_the_http_stack() -> None:
    code = "import asyncpod\nasyncpod.PodSpec('busybox', ['true']).validate()"
    assert loaded_after(code) == set()


@pytest.mark.parametrize(
    "code",
    [
        "import asyncpod.core",
        "import asyncpod.kube",
        "import asyncpod\nasyncpod.connect, asyncpod.Launcher, asyncpod.LogLine",
        "from asyncpod import *",
    ],
)
def test_the_library_never_loads_cryptography_or_rich(code: str) -> None:
    loaded = loaded_after(code)
    assert loaded & {"asyncpod.core", "asyncpod.kube"}  # the library itself did load
    assert not loaded & {"cryptography", "rich"}


@pytest.mark.parametrize(
    "code",
    [
        "import asyncpod",
        "import asyncpod.kube",
        "import asyncpod.cli",
        "import asyncpod.cli.main\nasyncpod.cli.main.build_parser()",
        "from asyncpod import *",
    ],
)
def test_start_up_never_loads_kubernetes_asyncio(code: str) -> None:
    assert "kubernetes_asyncio" not in loaded_after(code)


def cli(*argv: str) -> str:
    """Code running the CLI's entry point in-process (--help and usage errors exit)."""
    return (
        "import contextlib, asyncpod.cli.main\n"
        f"with contextlib.suppress(SystemExit): asyncpod.cli.main.main({list(argv)!r})"
    )


@pytest.mark.parametrize("argv", [["--help"], [], ["nope"]], ids=repr)
def test_cli_help_and_usage_errors_load_nothing_heavy(argv: list[str]) -> None:
    assert loaded_after(cli(*argv)) == set()


@pytest.mark.parametrize("argv", [["cluster", "--help"], ["demo", "--help"], ["run"]], ids=repr)
def test_commands_that_start_no_cluster_do_not_load_the_control_plane(argv: list[str]) -> None:
    assert "cryptography" not in loaded_after(cli(*argv))


def test_loading_the_pytest_plugin_loads_nothing_heavy() -> None:
    assert loaded_after("import asyncpod.testing.pytest_plugin") == set()


def test_the_control_plane_loads_cryptography_when_used() -> None:
    loaded = loaded_after("import asyncpod.testing\nasyncpod.testing.LocalControlPlane")
    assert "cryptography" in loaded
    assert "aiohttp" not in loaded  # the harness does not depend on the library


@pytest.mark.parametrize("package", [asyncpod, asyncpod.testing], ids=lambda p: p.__name__)
def test_lazy_names_resolve_to_their_modules_objects(package: object) -> None:
    lazy: dict[str, str] = package._LAZY  # type: ignore[attr-defined]
    exported = package.__all__  # type: ignore[attr-defined]
    assert set(lazy) <= set(exported)
    for name, module in lazy.items():
        assert getattr(package, name) is getattr(sys.modules[module], name)
    assert set(exported) <= set(dir(package))
    with pytest.raises(AttributeError):
        package.no_such_name  # type: ignore[attr-defined]  # noqa: B018
