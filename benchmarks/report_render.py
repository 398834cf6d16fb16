"""``python -m benchmarks.report_render``: how long ``asyncpod report`` takes on a big file.

Why: issue 20 asks that a 10,000-pod results file renders in seconds. This writes a
synthetic results file shaped like a real batch's (a bounded number in flight, pods
queued behind one another, whole-second Kubernetes times, a few percent failures with
their reasons, evicted pods retried, cancelled pods without times, an interrupted and
resumed run's duplicates and a last line cut short) and times the whole command,
reading to HTML, in a fresh interpreter like a user's.

    python -m benchmarks.report_render --pods 10000 [--repeat 3] [--keep DIR]

:func:`write_synthetic` is also what the report's tests read (tests/cli/test_report.py).
What it deliberately does not do: assert a time (tests never time anything).
"""

from __future__ import annotations

import argparse
import heapq
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from asyncpod.cli.resultsfile import record_of
from asyncpod.results import ContainerKind, ContainerResult, Outcome, PodResult, Reason

__all__ = ["main", "synthetic_records", "write_synthetic"]

START = datetime(2026, 12, 5, 12, 0, 0, tzinfo=timezone.utc)
_FAILURES: tuple[tuple[Outcome, str, int | None], ...] = (
    (Outcome.FAILED, Reason.ERROR, 1),
    (Outcome.FAILED, Reason.OOM_KILLED, 137),
    (Outcome.FAILED, Reason.EVICTED, None),
    (Outcome.TIMED_OUT, Reason.RUN_TIMEOUT, None),
    (Outcome.FAILED, Reason.IMAGE_PULL_BACK_OFF, None),
)


def _whole(at: float) -> datetime:
    return START + timedelta(seconds=int(at))  # Kubernetes keeps whole seconds


def _pod(
    index: int, attempt: int, created: float, rng: random.Random, roll: float
) -> tuple[PodResult, float]:
    """One pod of task ``index`` and when it ended; ``roll`` picks its outcome."""
    key = f"task-{index:05d}"
    name = f"pod-{index}-{attempt}"
    scheduled = created + rng.expovariate(1 / 1.5)
    running = scheduled + rng.uniform(1.0, 4.0)
    run = rng.lognormvariate(2.5, 0.6) if rng.random() > 0.002 else rng.uniform(300, 900)
    finished = running + run
    if roll < 0.01:  # cancelled while pending: no start, no finish
        result = PodResult(
            "default", name, f"uid-{name}", outcome=Outcome.CANCELLED, reason=Reason.CANCELLED,
            created_at=_whole(created), scheduled_at=_whole(scheduled), task_key=key,
            message="the batch was interrupted",
        )  # fmt: skip
        return result, scheduled + 1.0
    outcome: Outcome = Outcome.SUCCEEDED
    reason: str = Reason.COMPLETED
    code: int | None = 0
    if roll < 0.05:
        outcome, reason, code = _FAILURES[index % len(_FAILURES)]
    elif roll < 0.065:  # evicted: the batch's retry rule runs it again
        outcome, reason, code = Outcome.FAILED, Reason.EVICTED, None
        finished = running + run / 3
    main = ContainerResult(
        "main", ContainerKind.MAIN, state="terminated", exit_code=code,
        reason=reason, started_at=_whole(running), finished_at=_whole(finished),
    )  # fmt: skip
    result = PodResult(
        "default", name, f"uid-{name}", outcome=outcome,
        phase="Succeeded" if outcome is Outcome.SUCCEEDED else "Failed",
        reason=reason, containers=(main,), created_at=_whole(created),
        scheduled_at=_whole(scheduled), started_at=_whole(scheduled),
        finished_at=_whole(finished), node_name=f"node-{index % 8}", task_key=key,
        message=None if outcome is Outcome.SUCCEEDED else f"{reason}: synthetic",
    )  # fmt: skip
    return result, finished


def synthetic_records(
    tasks: int, *, in_flight: int = 100, seed: int = 20
) -> list[dict[str, object]]:
    """The results lines of a batch of ``tasks`` with at most ``in_flight`` pods alive, in
    the order they were written (``recorded_at`` a moment after each pod's end). About
    1.5 % of the tasks are evicted once and retried (attempt 2, after a 2 s backoff)."""
    rng = random.Random(seed)
    slots = [0.0] * min(in_flight, max(tasks, 1))  # when each slot frees up
    heapq.heapify(slots)
    done: list[tuple[float, PodResult, dict[str, object]]] = []  # (its end, result, extra)
    for index in range(tasks):
        created = heapq.heappop(slots) + rng.uniform(0.0, 0.2)
        roll = rng.random()
        result, end = _pod(index, 1, created, rng, roll)
        if result.reason == Reason.EVICTED:
            retry = {"attempt": 1, "final": False, "retry_in_seconds": 2.0,
                     "decision": "retry:reason=Evicted matched"}  # fmt: skip
            done.append((end, result, retry))
            result, end = _pod(index, 2, end + 2.0, rng, 0.5)
            done.append((end, result, {"attempt": 2, "final": True}))
        else:
            done.append((end, result, {}))
        heapq.heappush(slots, end)
    done.sort(key=lambda item: item[0])
    records = []
    for end, result, extra in done:
        record = record_of(result, run_id="synthetic-0001", extra=extra)
        record["recorded_at"] = (START + timedelta(seconds=end + 0.05)).isoformat()
        records.append(record)
    return records


def write_synthetic(path: Path, tasks: int, *, in_flight: int = 100) -> Path:
    """A results file of ``tasks`` tasks as an interrupted, resumed batch leaves it: its
    first ``tasks // 50`` lines written again (the resumed run recorded them a second
    time), one line that is not a result, and a last line cut short."""
    lines = [orjson.dumps(r) for r in synthetic_records(tasks, in_flight=in_flight)]
    lines += lines[: tasks // 50]
    lines.append(b'{"not": "a result"}')
    with path.open("wb") as file:
        file.write(b"\n".join(lines) + b"\n")
        file.write(lines[0][: len(lines[0]) // 2])  # a kill mid-write
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report_render")
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="write the files here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        where = args.keep or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        source = write_synthetic(where / "synthetic.results.jsonl", args.pods)
        times = []
        cpu = []  # user + system of the child: what the load of the machine does not add
        for _ in range(args.repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            began = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "asyncpod.cli.main", "report", str(source), "--png"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            times.append(time.perf_counter() - began)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        html = where / "synthetic.report.html"
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(
            f"asyncpod report, {args.pods:,} pods ({source.stat().st_size / 1e6:.1f} MB of "
            f"results), whole command in a fresh python: median {statistics.median(times):.2f} s "
            f"(runs: {runs}), CPU median {statistics.median(cpu):.2f} s; "
            f"HTML {html.stat().st_size / 1e3:.0f} kB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
