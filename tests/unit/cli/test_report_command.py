"""``asyncpod report``'s own decisions: where the page goes, which extra it names, what it loads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from asyncpod.cli.report import default_output, missing_report_extra, report_after_batch
from asyncpod.report import REPORT_EXTRA

PYPROJECT = Path(__file__).parents[3] / "pyproject.toml"


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ("out/run-1.results.jsonl", "out/run-1.report.html"),
        ("run.jsonl", "run.report.html"),
        ("run.json", "run.report.html"),
        ("results", "results.report.html"),
        (".jsonl", ".jsonl.report.html"),
    ],
)
def test_the_page_goes_beside_the_results_file(results: str, expected: str) -> None:
    assert default_output(Path(results)) == Path(expected)


def test_the_report_extra_is_what_the_cli_names() -> None:
    found = re.search(r"^report = \[(.*)\]$", PYPROJECT.read_text(), re.MULTILINE)
    assert found is not None
    names = {re.split(r"[<>=!~\[ ]", item.strip(' "'))[0] for item in found[1].split(",")}
    assert names == REPORT_EXTRA


def test_only_the_extras_absence_is_named() -> None:
    error = ImportError("no", name="matplotlib.figure")
    assert "pip install 'asyncpod[report]'" in (missing_report_extra(error, "x") or "")
    assert missing_report_extra(ImportError("no", name="numpy"), "x") is None


@pytest.mark.parametrize(
    "code",
    [
        "import asyncpod.report",
        (
            "import contextlib, asyncpod.cli.main\n"
            "with contextlib.suppress(SystemExit): asyncpod.cli.main.main(['report', '--help'])"
        ),
    ],
)
def test_help_and_the_pure_parts_load_neither_matplotlib_nor_the_library(code: str) -> None:
    probe = (
        f"{code}\nimport sys\n"
        "print(sorted(m for m in ('matplotlib', 'asyncpod.core', 'asyncpod.kube', 'aiohttp')"
        " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_batch_report_without_results_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_after_batch(tmp_path / "run.results.jsonl")
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"asyncpod batch: no report: no result was recorded in {tmp_path / 'run.results.jsonl'}\n"
    )
    assert not (tmp_path / "run.report.html").exists()


def test_batch_report_prints_the_path_of_the_page_last(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "run.results.jsonl"
    results.write_text("")
    report_after_batch(results)
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines() == [
        f"asyncpod batch: report of {results} (0 tasks):",
        str(tmp_path / "run.report.html"),
    ]
    assert (tmp_path / "run.report.html").is_file()
