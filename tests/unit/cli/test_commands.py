"""The command table: placeholders that match the commands, and the `testing` extra's absence.

``asyncpod --help`` imports no command module (``cli/main.py``), so the help lines it
shows are copies: they must stay the modules' own. ``asyncpod cluster`` and the demo's
local cluster need ``cryptography`` from the ``testing`` extra; without it they must say
what to install in one line and exit 2, never show a traceback. That runs in a fresh
interpreter where importing cryptography fails, as it does where it is not installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from asyncpod.cli.cluster import TESTING_EXTRA
from asyncpod.cli.main import COMMANDS, build_parser

PYPROJECT = Path(__file__).parents[3] / "pyproject.toml"


def test_the_placeholders_show_what_the_commands_show() -> None:
    assert build_parser([]).format_help() == build_parser().format_help()
    assert list(COMMANDS) == ["run", "batch", "demo", "cluster", "report"]


def test_the_testing_extra_is_what_the_cli_names() -> None:
    found = re.search(r"^testing = \[(.*)\]$", PYPROJECT.read_text(), re.MULTILINE)
    assert found is not None
    names = {re.split(r"[<>=!~\[ ]", item.strip(' "'))[0] for item in found[1].split(",")}
    assert {name.replace("-", "_") for name in names} == TESTING_EXTRA


def without(module: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh python in which ``module`` cannot be imported."""
    code = (
        "import sys\n"
        f"sys.modules[{module!r}] = None  # what `import` finds when it is not installed\n"
        "from asyncpod.cli.main import main\n"
        f"sys.exit(main({list(argv)!r}))"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd)}  # no KUBECONFIG: the demo goes local
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env=env,
    )


@pytest.mark.parametrize(
    "command",
    ["cluster up", "cluster status", "cluster env", "cluster down", "demo"],
)
def test_without_cryptography_the_local_cluster_names_the_extra(
    tmp_path: Path, command: str
) -> None:
    name, _, action = command.partition(" ")
    state = ["--state-dir", str(tmp_path / "state")]
    argv = [name, *state, action] if action else [name, *state, "--yes"]

    done = without("cryptography", *argv, cwd=tmp_path)

    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"asyncpod {command}: the local control plane needs the testing extra (cryptography is not "
        "installed): pip install 'asyncpod[testing]'\n"
    )
    assert done.stdout == ""
    assert not (tmp_path / "state").exists()  # nothing was started or created


@pytest.mark.parametrize("argv", [["--help"], ["cluster", "--help"], ["demo", "--print"]])
def test_without_cryptography_the_rest_of_the_cli_works(tmp_path: Path, argv: list[str]) -> None:
    done = without("cryptography", *argv, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout


def test_a_missing_module_outside_the_extra_is_not_explained_away(tmp_path: Path) -> None:
    # The control plane imports urllib.request; its absence is a broken Python, not the
    # testing extra: the import error must surface as it is.
    done = without("urllib.request", "cluster", "status", cwd=tmp_path)

    assert done.returncode == 1
    assert "ModuleNotFoundError" in done.stderr
    assert "asyncpod[testing]" not in done.stderr
