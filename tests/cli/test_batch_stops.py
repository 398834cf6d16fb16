"""A batch that has to stop says why in its own voice, and loses nothing.

Two stops that happen inside the loop writing the results: every early create refused
(fail-fast), and a results file that cannot be written (a full disk). anyio wraps
what that loop raises in an ExceptionGroup, and both once ended in its traceback with
no summary; now each is one line, the summary, and the command that finishes the run.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncpod.spec import RUN_ID_LABEL
from asyncpod.testing import LocalControlPlane, outcome
from asyncpod.testing.pytest_plugin import TestCluster
from tests.cli.helpers import Cli, pods, pods_created, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.simulated]


def test_every_early_create_refused_stops_the_batch_with_its_summary(
    cli: Cli, kube_cluster: TestCluster, namespace: str
) -> None:
    good = {"image": "busybox", "annotations": outcome(duration=2)}
    # The server refuses a pod whose service account does not exist; the dry run of
    # the first spec before the batch cannot see it, that spec is sound.
    bad = {**good, "service_account": "nobody"}
    jobs = cli.workdir / "jobs.jsonl"
    jobs.write_text("".join(json.dumps(spec) + "\n" for spec in [good] + [bad] * 50))
    results = cli.workdir / "results.jsonl"
    stopped = cli.run(
        "batch", str(jobs), *cli.cluster_args, "--run-id", "refused", "--results",
        str(results), "--max-in-flight", "10", "--progress", "none",
    )  # fmt: skip

    assert stopped.popen.returncode == 1, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert "the first 10 pods could not be created; stopping" in stopped.stderr
    assert 'serviceaccount "nobody" not found' in stopped.stderr
    assert "not finished" in stopped.stdout  # the summary
    assert "to finish this run: asyncpod batch" in stopped.stderr
    assert len(results.read_text().splitlines()) >= 10
    wait_until(
        lambda: not pods(kube_cluster, namespace, f"{RUN_ID_LABEL}=refused"),
        timeout=60,
        what="the sound pod deleted",
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 KiB tmpfs (root only): room for about 15 results lines."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_stops_the_batch_and_resume_finishes_it_running_no_task_twice(
    cli: Cli,
    kube_cluster: TestCluster,
    control_plane: LocalControlPlane,
    namespace: str,
    small_disk: Path,
) -> None:
    tasks = 40
    jobs = cli.workdir / "jobs.jsonl"
    line = json.dumps({"image": "busybox", "annotations": outcome(duration=2)})
    jobs.write_text(f"{line}\n" * tasks)
    results = small_disk / "results.jsonl"
    args = (
        "batch", str(jobs), *cli.cluster_args, "--run-id", "full", "--results", str(results),
        "--max-in-flight", "10", "--progress", "none",
    )  # fmt: skip
    before = pods_created(control_plane)

    first = cli.run(*args, timeout=300)

    assert first.popen.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr
    assert f"cannot write the results file {results}: No space left on device" in first.stderr
    assert "to finish this run" in first.stderr
    assert "not finished" in first.stdout
    written = len(results.read_text().splitlines())
    assert 0 < written < tasks

    # Room made: the resumed batch records what the first could not, runs the rest.
    subprocess.run(["mount", "-o", "remount,size=1m", str(small_disk)], check=True)
    second = cli.run(*args, "--resume", timeout=300)

    assert second.popen.returncode == 0, second.stderr
    lines = [json.loads(text) for text in results.read_text().splitlines()]
    finals = Counter(entry["task_key"] for entry in lines if entry["final"])
    assert finals == Counter(str(i) for i in range(tasks))  # each task once
    # The pod whose line the full disk refused was kept: the resumed batch reattached
    # and recorded it, not ran it again. The runs in flight were cancelled (their pods
    # deleted) and ran again: at most one more pod each (10 in flight).
    assert "reattached: 1 pod" in second.stdout, second.stdout
    assert tasks <= pods_created(control_plane) - before <= tasks + 10
    wait_until(
        lambda: not pods(kube_cluster, namespace, f"{RUN_ID_LABEL}=full"),
        timeout=60,
        what="no pod left",
    )
