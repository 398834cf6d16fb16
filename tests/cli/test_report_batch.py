"""``asyncpod batch --report`` on the local control plane: a real batch's own results file
becomes a page, written beside it, whose numbers are the batch's.

Twelve pods at four at a time on kwok's simulated nodes, two of them failing: the
report must count them as the results file does, list the failures with their reasons,
and draw every plot (real timestamps, not synthetic ones).
"""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from tests.cli.helpers import Cli

pytestmark = pytest.mark.integration


@pytest.mark.simulated
def test_batch_report_writes_the_page_of_its_results_and_prints_its_path(cli: Cli) -> None:
    jobs = cli.workdir / "jobs.yaml"
    jobs.write_text(
        textwrap.dedent(
            """\
            template:
              task_key: "t-{n}"
              image: busybox:1.36
              args: [sh, -c, "exit {code}"]
              annotations: "{sim}"
            defaults: {code: 0, sim: {sim.asyncpod.dev/duration: 1s}}
            parameters:
              - {n: 1}
              - {n: 2}
              - {n: 3, code: 3, sim: {sim.asyncpod.dev/exit-code: "3"}}
              - {n: 4}
              - {n: 5, code: 137, sim: {sim.asyncpod.dev/exit-code: "137", sim.asyncpod.dev/reason: OOMKilled}}
              - {n: 6}
              - {n: 7}
              - {n: 8}
              - {n: 9}
              - {n: 10}
              - {n: 11}
              - {n: 12}
            """
        )
    )
    results = cli.workdir / "rep-1.results.jsonl"

    process = cli.run(
        "batch", str(jobs), *cli.cluster_args, "--run-id", "rep-1", "--results", str(results),
        "--max-in-flight", "4", "--progress", "none", "--report",
    )  # fmt: skip

    assert process.popen.returncode == 1, process.stderr  # two tasks failed
    page = cli.workdir / "rep-1.report.html"
    out = process.stdout.splitlines()
    assert out[-2] == f"asyncpod batch: report of {results} (12 tasks):"
    assert out[-1] == str(page)
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(lines) == 12
    text = page.read_text(encoding="utf-8")
    assert re.findall(r'id="plot-(\w+)"', text) == ["timeline", "gantt", "phases", "outcomes"]
    assert "<b>12</b>" in text  # tasks
    assert "<b>10</b>" in text  # succeeded
    assert "Tasks that did not succeed (2)" in text
    assert "OOMKilled" in text
    assert "t-3" in text
    assert "t-5" in text
