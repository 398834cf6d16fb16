"""``asyncpod report`` as a user runs it, and its page as a browser shows it.

The results file is synthetic (benchmarks/report_render.py): a batch's shape with what
an interrupted and resumed batch leaves (duplicates, a line that is not a result, a
last line cut short, pods without times). The browser is Debian's chromium, driven by
Playwright in a subprocess (tests/cli/browser.py) under a timeout: the page loads from
disk with no console error, no uncaught error and no request, and every plot is an
image that loaded and is not blank. Without chromium (``make browser`` installs it) or
Playwright those tests skip, saying so. Nothing here is timed.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.report_render import write_synthetic
from tests.cli.browser import chromium

ROOT = Path(__file__).parents[2]
PNG = b"\x89PNG\r\n\x1a\n"
PLOTS = ("timeline", "gantt", "phases", "outcomes")


def asyncpod(*argv: str, cwd: Path, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh python (``code`` runs first, e.g. to hide a module)."""
    program = f"{code or ''}\nimport sys\nfrom asyncpod.cli.main import main\nsys.exit(main({list(argv)!r}))"
    return subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True, text=True, timeout=120, check=False, cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("report") / "run.results.jsonl", 2000)


@pytest.fixture(scope="module")
def report(synthetic: Path) -> Path:
    done = asyncpod("report", str(synthetic), "--png", cwd=synthetic.parent)
    assert done.returncode == 0, done.stderr
    html = synthetic.with_name("run.report.html")
    assert done.stdout.splitlines()[1] == str(html)
    return html


def test_the_report_is_one_file_with_its_plots_inline(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    sources = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert len(sources) == len(PLOTS)
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    for source in sources:
        assert base64.b64decode(source.split(",", 1)[1]).startswith(PNG)
    assert "<script" not in text.lower()
    assert "<link" not in text.lower()
    assert re.findall(r'id="plot-(\w+)"', text) == list(PLOTS)


def test_png_writes_each_plot_beside_the_page(report: Path) -> None:
    for name in PLOTS:
        assert report.with_name(f"run.report-{name}.png").read_bytes().startswith(PNG)


def test_an_interrupted_resumed_file_is_reported_with_its_problems(
    report: Path, synthetic: Path
) -> None:
    text = report.read_text(encoding="utf-8")
    assert "2,000" in text  # tasks, each once: the 40 duplicated lines are superseded
    assert "40 lines were superseded" in text
    retried = re.search(r"retried<b>(\d+)</b>", text)
    pods = re.search(r"pods \(attempts\)<b>([\d,]+)</b>", text)
    assert retried is not None
    assert pods is not None
    assert int(retried[1]) > 0  # evicted pods, retried: attempt 2 is a pod of its own
    assert int(pods[1].replace(",", "")) == 2000 + int(retried[1])
    assert "2 lines hold no result and were skipped" in text
    assert "cut short" in text
    assert "Tasks that did not succeed" in text
    assert "OOMKilled" in text


def test_the_command_says_what_it_read(synthetic: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "page.html"
    done = asyncpod("report", str(synthetic), "-o", str(out), "--title", "nightly", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    said = (
        f"asyncpod report: report of {synthetic} (2,000 tasks, 40 superseded lines, "
        "2 lines skipped (listed in the report)):"
    )
    assert done.stdout.splitlines() == [said, str(out)]
    assert "<title>nightly</title>" in out.read_text(encoding="utf-8")


def test_text_from_the_results_file_is_escaped(tmp_path: Path) -> None:
    line = {
        "namespace": "ns", "name": "p", "uid": "u", "task_key": "<script>alert(1)</script>",
        "outcome": "failed", "reason": "Error", "message": "<img src=x onerror=alert(1)>",
        "created_at": "2026-12-05T12:00:00Z", "finished_at": "2026-12-05T12:00:05Z",
    }  # fmt: skip
    results = tmp_path / "x.jsonl"
    results.write_text(json.dumps(line) + "\n")
    done = asyncpod("report", str(results), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "x.report.html").read_text(encoding="utf-8")
    assert "<script>" not in text
    assert "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_an_empty_file_gives_a_page_that_says_so(tmp_path: Path) -> None:
    results = tmp_path / "empty.results.jsonl"
    results.write_text("")
    done = asyncpod("report", str(results), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "holds no result yet" in (tmp_path / "empty.report.html").read_text(encoding="utf-8")


def test_a_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = asyncpod("report", "nope.jsonl", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == "asyncpod report: No such file or directory: nope.jsonl\n"


def test_without_matplotlib_it_names_the_extra_and_exits_2(synthetic: Path, tmp_path: Path) -> None:
    hide = "import sys\nsys.modules['matplotlib'] = None  # as when it is not installed"
    done = asyncpod(
        "report", str(synthetic), "-o", str(tmp_path / "r.html"), cwd=tmp_path, code=hide
    )
    assert done.returncode == 2
    assert done.stderr == (
        "asyncpod report: the report's pictures need the report extra (matplotlib is not "
        "installed): pip install 'asyncpod[report]'\n"
    )
    assert not (tmp_path / "r.html").exists()


# --------------------------------------------------------------------------------------
# in a real browser
# --------------------------------------------------------------------------------------


def open_in_browser(page: Path, screenshot: Path | None = None) -> dict[str, Any]:
    if chromium() is None:
        pytest.skip("no chromium on PATH: `make browser` installs Debian's (root)")
    pytest.importorskip("playwright", reason="Playwright comes with the dev extra")
    argv = [sys.executable, "-m", "tests.cli.browser", str(page)]
    if screenshot is not None:
        argv += ["--screenshot", str(screenshot)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return found


def test_the_page_loads_from_disk_in_chromium_and_its_plots_are_drawn(
    report: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "shot.png"
    seen = open_in_browser(report, shot)
    assert seen["console"] == []
    assert seen["errors"] == []
    assert seen["requests"] == []  # nothing from a network, nothing beside the file
    assert seen["title"] == "asyncpod report: run.results.jsonl"
    assert [image["id"] for image in seen["images"]] == [f"plot-{name}" for name in PLOTS]
    for image in seen["images"]:
        assert image["complete"], image
        assert image["width"] >= 800, image
        assert image["inked"] > 0.01, image  # axes, bars and text, not a blank picture
    assert shot.read_bytes().startswith(PNG)


def test_the_browser_check_sees_a_broken_page(tmp_path: Path) -> None:
    """The judge is not blind: a console error, a script error, a request and a broken
    or blank image are all seen."""
    blank = base64.b64encode(write_blank_png()).decode()
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>broken</title></head><body>"
        '<img id="bad" src="data:image/png;base64,AAAA">'
        f'<img id="blank" src="data:image/png;base64,{blank}">'
        '<img id="far" src="missing.png">'
        "<script>console.error('boom'); undefined_name();</script></body></html>"
    )
    seen = open_in_browser(page)
    assert any(m["text"] == "boom" for m in seen["console"])
    assert any("undefined_name" in error for error in seen["errors"])
    assert any(url.endswith("missing.png") for url in seen["requests"])
    by_id = {image["id"]: image for image in seen["images"]}
    assert by_id["bad"]["width"] == 0
    assert by_id["blank"]["inked"] == 0


def write_blank_png() -> bytes:
    """A white 10 by 10 PNG, made by matplotlib's Agg (the report's own dependency)."""
    import io

    from matplotlib.figure import Figure

    buffer = io.BytesIO()
    Figure(figsize=(1, 1)).savefig(buffer, format="png", dpi=10)
    return buffer.getvalue()


def test_a_batch_that_created_nothing_gets_its_outcomes_and_messages(tmp_path: Path) -> None:
    results = tmp_path / "none.results.jsonl"
    results.write_text(
        "".join(
            json.dumps(
                {"run_id": "r", "namespace": "ns", "name": f"p{i}", "uid": None,
                 "task_key": f"k{i}", "outcome": "error", "reason": "CreateFailed",
                 "message": "pods is forbidden"}
            ) + "\n"
            for i in range(12)
        )
    )  # fmt: skip
    done = asyncpod("report", str(results), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "none.report.html").read_text(encoding="utf-8")
    assert re.findall(r'id="plot-(\w+)"', text) == ["outcomes"]
    assert "no pod was created" in text
    assert "Tasks that did not succeed (12)" in text
    assert text.index(">k2<") < text.index(">k10<")  # the file's order
