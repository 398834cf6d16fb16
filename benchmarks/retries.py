"""``python -m benchmarks.retries``: a batch with 5 % of its pods evicted, retried (issue 16).

Two runs of the same batch (``--pods`` tasks of ``--duration`` s each, at most
``--in-flight`` pods at once) on one control plane (:mod:`benchmarks.plane`), each in a
fresh namespace, the launcher alone in its own process
(:mod:`benchmarks.contenders.asyncpod_retries`, measured as every contender is:
:mod:`benchmarks.child`):

- **A**, the baseline: no evictions, no failure policy (the launcher's default: no
  retry);
- **B**: the policy of ``asyncpod batch --retries 3`` (the default rules: evictions,
  disruptions and external deletions are retried; 4 attempts at most), while an
  evictor evicts ``--evict-share`` (5 %) of the pods as they run.

The evictor (:class:`Evictor`) runs in this process, not in the measured one, as the
control plane's admin (exempt from API priority and fairness, and not in the audit
log, so none of its requests is counted as the client's). Which tasks: a random
``--evict-share`` of the task keys, drawn up front with ``--seed``
(:func:`pick_evictions`). When: its own watch on the namespace sees the task's first
pod (named after the task key) Running; it waits a random delay in [0, duration / 2)
(seeded too), checks the pod is still Running, and evicts it once through the
``eviction`` subresource (:meth:`asyncpod.kube.pods.Pods.evict`, with the pod's uid as
a precondition). Only the first attempt's pod is ever evicted, so every evicted task
must end with exactly 2 attempts, every other task with 1 (:func:`check_attempts`), and
every task exactly once final, succeeded with exit code 0.

Reported per run: wall time, pods/s (final results per second), final results,
attempts, the client's own API requests per final result by verb (audit log), client
CPU per final result and per attempt, RSS growth, and the load average (before, after,
and the mean and max sampled every 5 s during the run).

    python -m benchmarks.retries                              # 10,000 tasks × 20 s, 5 % evicted
    python -m benchmarks.retries --pods 2000 --label n2000    # a smaller batch
    python -m benchmarks.retries --pods 100 --duration 10 --warmup 0 --label smoke
    python -m benchmarks.retries --render benchmarks/results/<file>.json

Writes ``benchmarks/results/<date>-retries[-<label>].json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncpod.testing import LocalControlPlane
from benchmarks.contenders import GC_POLICIES
from benchmarks.plane import Observer, bench_control_plane
from benchmarks.report import fmt
from benchmarks.run import RESULTS, log, machine, run_one
from benchmarks.workload import pod_names

__all__ = [
    "Evictor",
    "check_attempts",
    "main",
    "per_result",
    "pick_evictions",
    "retries_table",
]

LOAD_EVERY = 5.0
"""Seconds between two samples of the load average during a run."""


def pick_evictions(names: Sequence[str], share: float, seed: int) -> list[str]:
    """``round(share × len(names))`` of ``names``, drawn at random with ``seed``, sorted."""
    if not 0 <= share <= 1:
        raise ValueError(f"share must be within 0..1, got {share}")
    count = round(share * len(names))
    return sorted(random.Random(seed).sample(list(names), count))


def check_attempts(
    *,
    pods: int,
    completed: int,
    errors: int,
    evicted: Iterable[str],
    attempts_over_one: Mapping[str, int],
) -> list[str]:
    """What is wrong with a run's results (empty: nothing).

    ``completed``/``errors``: tasks with one final attempt that succeeded with exit code
    0, and tasks whose results were wrong (not succeeded, or two final attempts);
    ``evicted``: task keys whose first pod was evicted; ``attempts_over_one``: task key →
    attempts, for the tasks that took more than one. Every task must be complete, every
    evicted task have taken exactly 2 attempts, every other exactly 1.
    """
    problems = []
    if completed != pods:
        problems.append(f"{pods - completed} of {pods} tasks without a succeeded final result")
    if errors:
        problems.append(f"{errors} wrong results")
    evicted = set(evicted)
    wrong = sorted(k for k in evicted if attempts_over_one.get(k, 1) != 2)
    if wrong:
        shown = ", ".join(f"{k}: {attempts_over_one.get(k, 1)}" for k in wrong[:5])
        problems.append(f"{len(wrong)} evicted tasks without exactly 2 attempts ({shown})")
    extra = sorted(set(attempts_over_one) - evicted)
    if extra:
        shown = ", ".join(f"{k}: {attempts_over_one[k]}" for k in extra[:5])
        problems.append(f"{len(extra)} tasks not evicted took more than 1 attempt ({shown})")
    return problems


def per_result(by_verb: Mapping[str, int], results: int) -> dict[str, float]:
    """Each ``VERB resource`` count divided by the final results (0 results: empty)."""
    if results <= 0:
        return {}
    return {key: count / results for key, count in by_verb.items()}


@dataclass
class Evictor(Observer):
    """The runner's admin watch on a namespace, which also evicts the chosen pods once.

    A pod in ``targets`` seen Running (not terminating) is evicted after a random delay
    in [0, ``within``), if the watch still shows it Running then, through ``evict``
    (name, uid → evicted?). ``evicted``: name → when the eviction was accepted;
    ``missed``: name → why it was not evicted.
    """

    targets: frozenset[str] = frozenset()
    within: float = 10.0
    seed: int = 0
    evict: Callable[[str, str], Awaitable[bool]] | None = None
    running: dict[str, float] = field(default_factory=dict)
    evicted: dict[str, float] = field(default_factory=dict)
    missed: dict[str, str] = field(default_factory=dict)
    phase: dict[str, str] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=random.Random)
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def _record(self, kind: str, pod: dict[str, Any], now: float) -> None:
        super()._record(kind, pod, now)
        metadata = pod.get("metadata", {})
        name = metadata.get("name", "")
        if name not in self.targets:
            return
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        if kind == "DELETED":
            phase = "Deleted"
        elif metadata.get("deletionTimestamp"):
            phase = "Terminating"
        self.phase[name] = phase
        if phase == "Running" and name not in self.running:
            self.running[name] = now
            delay = self._rng.uniform(0, self.within)
            task = asyncio.ensure_future(self._evict_later(name, metadata.get("uid", ""), delay))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _evict_later(self, name: str, uid: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.phase.get(name) != "Running":
            self.missed[name] = f"{self.phase.get(name)} when its eviction was due"
            return
        assert self.evict is not None
        try:
            done = await self.evict(name, uid)
        except Exception as error:  # noqa: BLE001 - recorded, and the check will say so
            self.missed[name] = f"eviction failed: {error!r}"[:200]
            return
        if done:
            self.evicted[name] = time.time()
        else:
            self.missed[name] = "gone before its eviction (404 or another uid)"

    def cancel_pending(self) -> None:
        for task in self._pending:
            task.cancel()

    def report(self) -> dict[str, Any]:
        return {
            "targets": len(self.targets),
            "seen_running": len(self.running),
            "evicted": len(self.evicted),
            "missed": dict(sorted(self.missed.items())),
            "not_seen_running": sorted(self.targets - set(self.running))[:20],
            "evicted_after_running_s": _quantiles(
                [self.evicted[n] - self.running[n] for n in self.evicted]
            ),
        }


def _quantiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    values = sorted(values)
    return {
        "min": round(values[0], 2),
        "p50": round(values[len(values) // 2], 2),
        "max": round(values[-1], 2),
    }


async def _sample_load(samples: list[float]) -> None:
    while True:
        samples.append(os.getloadavg()[0])
        await asyncio.sleep(LOAD_EVERY)


async def _one_run(
    plane: LocalControlPlane,
    args: argparse.Namespace,
    workdir: Path,
    *,
    name: str,
    retries: int | None,
    targets: Sequence[str],
) -> dict[str, Any]:
    load: list[float] = []
    evictors: list[Evictor] = []

    async def beside(namespace: str) -> None:
        sampling = asyncio.ensure_future(_sample_load(load))
        try:
            if targets:
                await _evict(plane, namespace, args, targets, evictors)
            else:
                await asyncio.Event().wait()  # until cancelled
        finally:
            sampling.cancel()

    row = await run_one(
        plane, contender="asyncpod-retries", pods=args.pods, duration=args.duration,
        cap=args.cap, workdir=workdir, audit_path=workdir / "audit.log",
        overrides={"max_in_flight": args.in_flight, "gc_policy": args.gc, "retries": retries},
        during=beside,
    )  # fmt: skip
    row.pop("per_pod", None)
    row["run"] = name
    row["retries"] = retries
    row["max_in_flight"] = args.in_flight
    row["gc_policy"] = args.gc
    row["loadavg_during"] = {
        "mean": sum(load) / len(load) if load else None,
        "max": max(load, default=None),
        "samples": len(load),
    }
    extra = row.get("extra") or {}
    evicted = sorted(evictors[0].evicted) if evictors else []
    row["evictions"] = evictors[0].report() if evictors else None
    s = row["summary"]
    row["check"] = check_attempts(
        pods=args.pods,
        completed=s.get("completed", 0),
        errors=s.get("errors", 0),
        evicted=evicted,
        attempts_over_one=extra.get("tasks_with_more_than_one_attempt", {}),
    )
    if s.get("status") != "ok":
        row["check"].insert(0, f"status {s.get('status')}")
    row["not_final"] = {
        "count": len(extra.get("not_final", [])),
        "by_outcome_reason": dict(
            Counter(
                f"{a['outcome']} {a['reason']}" for a in extra.get("not_final", [])
            ).most_common()
        ),
    }
    return row


async def _evict(
    plane: LocalControlPlane,
    namespace: str,
    args: argparse.Namespace,
    targets: Sequence[str],
    evictors: list[Evictor],
) -> None:
    import asyncpod
    from asyncpod.kube.pods import Pods

    assert plane.admin is not None
    evictor = Evictor(
        plane.admin.server, plane.admin.ssl_context, namespace,
        targets=frozenset(targets), within=args.duration / 2, seed=args.seed,
    )  # fmt: skip
    evictors.append(evictor)
    async with asyncpod.connect(plane.kubeconfig, namespace=namespace, qps=None) as admin:
        pods = Pods(admin.client)

        async def evict(name: str, uid: str) -> bool:
            return await pods.evict(namespace, name, uid=uid)

        evictor.evict = evict
        try:
            await evictor.run()
        finally:
            evictor.cancel_pending()


async def run_all(plane: LocalControlPlane, args: argparse.Namespace, workdir: Path) -> list[Any]:
    if args.warmup:
        log(f"warm-up: {args.warmup} pods (not reported) ...")
        await run_one(
            plane, contender="raw", pods=args.warmup, duration=1.0, cap=120,
            workdir=workdir, audit_path=workdir / "audit.log",
        )  # fmt: skip
    targets = pick_evictions(pod_names(args.pods), args.evict_share, args.seed)
    rows = []
    for name, retries, chosen in (
        ("A: no evictions, no retries", None, []),
        (f"B: {len(targets):,} evicted, --retries {args.retries}", args.retries, targets),
    ):
        log(f"{name}: {args.pods} tasks × {args.duration:g} s, max_in_flight {args.in_flight} ...")
        row = await _one_run(plane, args, workdir, name=name, retries=retries, targets=chosen)
        s = row["summary"]
        log(
            f"{name}: {s['status']}, {s.get('completed')} succeeded, "
            f"{(row.get('extra') or {}).get('attempts')} attempts, wall {fmt(s.get('wall_s'))} s, "
            f"evictions {row['evictions'] and row['evictions']['evicted']}, "
            f"check: {row['check'] or 'ok'}"
        )
        if row.get("failure") or row["exit_code"]:
            log(f"{name}: {row.get('failure') or row['stderr_tail']}")
        rows.append(row)
    return rows


def retries_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The runs side by side, as markdown."""
    lines = [
        (
            "| run | tasks | evicted | status | correct final results | attempts (histogram) "
            "| wall s | pods/s | API requests per final result | own requests by verb "
            "(per final result) | client CPU ms per final result | per attempt "
            "| RSS growth MiB | load avg (before→after; mean, max during) |"
        ),
        "|---|--:|--:|---|--:|---|--:|--:|--:|---|--:|--:|--:|---|",
    ]
    for r in rows:
        s, extra = r["summary"], r.get("extra") or {}
        pods = r["pods"]
        attempts = extra.get("attempts")
        per = per_result(r["requests"]["by_verb"], pods)
        verbs = ", ".join(f"{k} {v:,} ({per[k]:.3f})" for k, v in r["requests"]["by_verb"].items())
        histogram = ", ".join(
            f"{n}: {count:,}" for n, count in (extra.get("attempts_histogram") or {}).items()
        )
        correct = s.get("completed", 0) if not r["check"] else f"{s.get('completed')} (wrong)"
        evicted = r["evictions"]["evicted"] if r.get("evictions") else 0
        cpu_s = s.get("cpu_s")
        during = r.get("loadavg_during") or {}
        load = (
            f"{r['loadavg_before'][0]:.1f}→{r['loadavg_after'][0]:.1f}; "
            f"{fmt(during.get('mean'))}, {fmt(during.get('max'))}"
        )
        lines.append(
            f"| {r['run']} | {pods:,} | {evicted:,} | {s['status']} | {correct} "
            f"| {fmt(attempts, 0)} ({histogram}) | {fmt(s.get('wall_s'))} "
            f"| {fmt(s.get('pods_per_s'))} | {fmt(s.get('requests_per_pod'), 3)} | {verbs} "
            f"| {fmt(None if cpu_s is None else 1000 * cpu_s / pods, 2)} "
            f"| {fmt(None if cpu_s is None or not attempts else 1000 * cpu_s / attempts, 2)} "
            f"| {fmt(s.get('rss_growth_mib'))} | {load} |"
        )
    return "\n".join(lines) + "\n"


def _checks(rows: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for r in rows:
        ev = r.get("evictions")
        verdict = "; ".join(r["check"]) if r["check"] else "all checks passed"
        facts = f"- {r['run']}: {verdict}"
        if ev:
            facts += (
                f"; evictions: {ev['targets']:,} chosen, {ev['seen_running']:,} seen Running, "
                f"{ev['evicted']:,} evicted (after Running: {ev['evicted_after_running_s']} s), "
                f"{len(ev['missed'])} missed"
            )
        nf = r.get("not_final") or {}
        if nf.get("count"):
            facts += f"; retried attempts: {nf['by_outcome_reason']}"
        if r["requests"].get("not_2xx"):
            facts += f"; client requests not 2xx: {r['requests']['not_2xx']}"
        out.append(facts)
    return "\n".join(out) + "\n"


def render(document: Mapping[str, Any], name: str) -> str:
    """A results file's command line, table and checks, as markdown."""
    m = document["machine"]
    heading = (
        f"`{document['command']}` — {document['date']}, commit `{m['commit']}`"
        f"{' (with uncommitted changes)' if m['dirty'] else ''}, {m['nproc']} CPUs; "
        f"raw data: `results/{name}`\n"
    )
    return "\n".join([heading, retries_table(document["runs"]), _checks(document["runs"])])


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.retries",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pods", type=int, default=10_000, help="tasks per run (10,000)")
    parser.add_argument("--duration", type=float, default=20.0, help="pod run time (20 s)")
    parser.add_argument("--in-flight", type=int, default=1_000, help="max_in_flight (1,000)")
    parser.add_argument("--evict-share", type=float, default=0.05, help="of the tasks (0.05)")
    parser.add_argument("--retries", type=int, default=3, help="run B's --retries (3)")
    parser.add_argument("--seed", type=int, default=16, help="which tasks, and when (16)")
    parser.add_argument("--cap", type=float, default=3600.0, help="seconds per run (3,600)")
    parser.add_argument("--gc", choices=GC_POLICIES, default="batch", help="(batch)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed pods first (50)")
    parser.add_argument("--label", default="")
    parser.add_argument(
        "--render", nargs="+", metavar="RESULTS_JSON", type=Path,
        help="print the tables of results files written before, and run nothing",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.render:
        for path in args.render:
            print(render(json.loads(path.read_text()), path.name))
        return 0
    # Stopped by SIGTERM, or by SIGINT though started in the background (where the shell
    # ignores it): the contender's process is killed, the control plane stopped.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    command = shlex.join(["python", "-m", "benchmarks.retries", *argv])
    workdir = Path(tempfile.mkdtemp(prefix="asyncpod-retries-"))
    began = time.time()
    taken_on = machine()  # the commit measured is the one checked out when the run began
    load_at_start = os.getloadavg()
    try:
        plane = bench_control_plane(args.in_flight, workdir)
        log(f"starting the local control plane ({plane.nodes} kwok nodes) ...")
        with plane:
            rows = asyncio.run(run_all(plane, args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    settings = {k: v for k, v in vars(args).items() if k != "render"}
    document = {
        "benchmark": "retries",
        "command": command,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "total_seconds": round(time.time() - began, 1),
        "machine": {**taken_on, "loadavg_at_start": load_at_start},
        "settings": settings,
        "eviction_rule": (
            "the --evict-share of the task keys drawn up front with --seed; each one's first "
            "pod evicted once through the eviction subresource (admin, uid precondition) at "
            "a random moment in [0, duration/2) after the evictor's watch saw it Running, "
            "if still Running then"
        ),
        "runs": rows,
    }
    suffix = f"-{args.label}" if args.label else ""
    path = RESULTS / f"{dt.date.today().isoformat()}-retries{suffix}.json"
    path.write_text(json.dumps(document, indent=1))
    print(render(document, path.name))
    log(f"results: {path}")
    return 0 if all(not r["check"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
