"""Follow N pods to completion: asyncpod vs the Airflow trigger pattern vs a watch per pod.

Why: the design (docs/architecture.md) claims that one shared watch beats per-pod
polling and per-pod watches on API requests, client CPU, memory, loop stalls and
notification latency. This measures all of them side by side, in one invocation,
against one real local control plane (etcd + kube-apiserver + scheduler +
controller-manager + kwok nodes on loopback) that it starts itself::

    python -m benchmarks.follow_pods                  # N=200 and N=1000
    python -m benchmarks.follow_pods --pods 200       # one size
    python -m benchmarks.follow_pods --quick          # N=50, under a minute

For each pod count and each variant (see :mod:`benchmarks.follow_pods_child`) it
makes a fresh namespace with a least-privilege ServiceAccount, runs the variant in a
subprocess of its own, and measures:

- wall time from the variant's first call to the last pod's result (terminal seen and
  the pod's delete returned);
- API server requests for pods, by verb: the delta of the server's own
  ``apiserver_request_total`` around the variant. It is cluster-wide, so kwok, the
  scheduler and the controller-manager are in it too (every variant equally); the
  runner's own observer watch is subtracted;
- client CPU seconds (user + sys, ``getrusage`` in the child) and peak RSS
  (the child's ``VmHWM``; its ``ru_maxrss`` would include the runner's RSS, inherited
  across fork + exec on Linux) with the growth of its current RSS during the run;
- event-loop stalls: a 10 ms sleeper's oversleep, max and p99;
- notification latency, per pod: from the moment an independent admin watch in this
  runner received the pod's terminal update (phase Succeeded/Failed) to the moment the
  variant's code knew. Both sides read the same host clock; both watches are fed by
  the same API server watch cache, so for a watching client this is its own queueing
  and decoding delay, and for a poller it adds the wait for its next poll.

The markdown tables go to stdout; progress to stderr; the raw numbers (every pod's
times included) to ``benchmarks/results/<date>-follow_pods.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import secrets
import shlex
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from asyncpod.testing import LocalControlPlane, RequestCounts, parse_request_counts
from asyncpod.testing.rbac import service_account_kubeconfig
from benchmarks.follow_pods_child import POD_PREFIX, VARIANTS, pod_description

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).with_name("results")
DEFAULT_VARIANTS = (
    "asyncpod",
    "asyncpod-default-qps",
    "airflow-poll",
    "k8s-watch",
    "k8s-watch-pool100",
)
POD_VERBS = ("GET", "LIST", "WATCH", "POST", "DELETE")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- observer
@dataclass
class Observer:
    """An admin watch on the namespace: when each pod turned terminal, and was deleted.

    It runs in the runner, not in the measured process, and authenticates as the
    control plane's admin (exempt from API priority and fairness), so its timestamps
    do not depend on the variant under test.
    """

    server: str
    ssl_context: ssl.SSLContext | None
    namespace: str
    added: dict[str, float] = field(default_factory=dict)
    terminal: dict[str, float] = field(default_factory=dict)
    deleted: dict[str, float] = field(default_factory=dict)
    events: int = 0
    watches_opened: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        url = f"{self.server}/api/v1/namespaces/{self.namespace}/pods"
        version = ""
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=10)
        async with aiohttp.ClientSession(timeout=timeout, read_bufsize=2**21) as session:
            while True:
                params = {"watch": "1", "timeoutSeconds": "3600"}
                if version:
                    params["resourceVersion"] = version
                async with session.get(url, params=params, ssl=self.ssl_context) as response:
                    response.raise_for_status()
                    self.watches_opened += 1
                    self.ready.set()
                    async for line in response.content:
                        now = time.time()
                        if not line.strip():
                            continue
                        event = orjson.loads(line)
                        pod = event.get("object") or {}
                        if event.get("type") == "ERROR":
                            version = ""  # 410: start over from now (cannot happen in minutes)
                            break
                        version = pod.get("metadata", {}).get("resourceVersion", version)
                        self._record(event["type"], pod, now)

    def _record(self, kind: str, pod: dict[str, Any], now: float) -> None:
        name = pod.get("metadata", {}).get("name", "")
        if not name.startswith(POD_PREFIX):
            return
        self.events += 1
        self.added.setdefault(name, now)
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            self.terminal.setdefault(name, now)
        if kind == "DELETED":
            self.deleted.setdefault(name, now)
        self._changed.set()

    async def wait_deleted(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.deleted) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True


class ApiserverLog:
    """Counts the watches kube-apiserver closed on slow readers since it was made.

    A watcher whose buffer stays full is cut ("Forcing ... watcher close due to
    unresponsiveness"); it then reconnects, which shows up as extra WATCH requests
    (the control plane's own components included) that no variant asked for.
    """

    def __init__(self, plane: LocalControlPlane) -> None:
        assert plane.workdir is not None
        self.path = plane.workdir / "logs" / "kube-apiserver.log"
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def forced_closes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with contextlib.suppress(OSError), self.path.open("rb") as log:
            log.seek(self.offset)
            for line in log.read().decode(errors="replace").splitlines():
                if "watcher close due to unresponsiveness" in line:
                    # 'Forcing pods watcher close ...: key: "/pods/<ns>", ...': a key
                    # with a namespace is a namespaced watch (a variant's or the
                    # observer's); "/pods" alone is cluster-wide (kwok, the scheduler).
                    who = line.partition('key: "')[2].partition('"')[0] or "?"
                    counts[who] = counts.get(who, 0) + 1
        return counts


# ---------------------------------------------------------------------- one variant
@dataclass(frozen=True)
class Settings:
    duration: float
    poll_interval: float
    startup_check_interval: float
    timeout: float


def pod_requests(delta: RequestCounts) -> dict[str, float]:
    """The delta's requests on pods, keyed ``VERB`` or ``VERB pods/<subresource>``."""
    out: dict[str, float] = {}
    for (verb, resource, sub), value in sorted(delta.counts.items()):
        if resource == "pods" and value:
            out[f"{verb} pods/{sub}" if sub else verb] = value
    return out


def pod_requests_by_code(metrics_text: str) -> dict[str, float]:
    """``apiserver_request_total`` for pods keyed ``VERB[ pods/<sub>] <HTTP code>``."""
    out: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if not line.startswith("apiserver_request_total{") or 'resource="pods"' not in line:
            continue
        labels_text, _, value = line[len("apiserver_request_total{") :].rpartition("} ")
        labels = dict(
            part.split("=", 1) for part in labels_text.replace('"', "").split(",") if "=" in part
        )
        verb, sub = labels.get("verb", ""), labels.get("subresource", "")
        key = f"{verb} pods/{sub}" if sub else verb
        key = f"{key} {labels.get('code', '?')}"
        out[key] = out.get(key, 0.0) + float(value)
    return out


async def run_variant(
    plane: LocalControlPlane, variant: str, pods: int, settings: Settings, workdir: Path
) -> dict[str, Any]:
    namespace = f"fp-{variant}-{pods}-{secrets.token_hex(2)}"
    await asyncio.to_thread(plane.create_namespace, namespace)
    kubeconfig = await asyncio.to_thread(
        service_account_kubeconfig,
        plane.admin,
        plane.kubeconfig,
        namespace=namespace,
        out=workdir / f"{namespace}.kubeconfig",
    )
    observer = Observer(plane.admin.server, plane.admin.ssl_context, namespace)
    watching = asyncio.ensure_future(observer.run())
    ready = asyncio.ensure_future(observer.ready.wait())
    await asyncio.wait({watching, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if watching.done():
        watching.result()  # raises what went wrong
    if not observer.ready.is_set():
        raise RuntimeError(f"the observer watch on {namespace} did not open within 30 s")
    out = workdir / f"{namespace}.json"
    pod_file = workdir / "pod.json"
    pod_file.write_text(json.dumps(pod_description(settings.duration)))
    argv = [
        sys.executable, "-m", "benchmarks.follow_pods_child",
        "--variant", variant, "--kubeconfig", str(kubeconfig), "--namespace", namespace,
        "--pods", str(pods), "--duration", str(settings.duration),
        "--poll-interval", str(settings.poll_interval),
        "--startup-check-interval", str(settings.startup_check_interval),
        "--pod", str(pod_file), "--out", str(out),
    ]  # fmt: skip
    apiserver_log = ApiserverLog(plane)
    load_before = os.getloadavg()
    before_text = await asyncio.to_thread(plane.metrics_text)
    started = time.monotonic()
    stderr_path = workdir / f"{namespace}.stderr"
    with stderr_path.open("wb") as stderr:
        child = await asyncio.create_subprocess_exec(*argv, stdout=stderr, stderr=stderr, cwd=REPO)
        timed_out = False
        try:
            await asyncio.wait_for(child.wait(), settings.timeout)
        except asyncio.TimeoutError:
            timed_out = True
            child.kill()
            await child.wait()
    child_seconds = time.monotonic() - started
    all_deleted = await observer.wait_deleted(pods, timeout=120)
    watching.cancel()
    with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
        await watching
    await asyncio.sleep(1)  # the server counts a watch when it ends
    after_text = await asyncio.to_thread(plane.metrics_text)
    load_after = os.getloadavg()
    delta = parse_request_counts(after_text) - parse_request_counts(before_text)
    requests = pod_requests(delta)
    before_codes = pod_requests_by_code(before_text)
    by_code = {
        key: value - before_codes.get(key, 0.0)
        for key, value in pod_requests_by_code(after_text).items()
        if value - before_codes.get(key, 0.0)
    }
    requests["WATCH"] = requests.get("WATCH", 0) - observer.watches_opened
    report: dict[str, Any] = {
        "variant": variant,
        "pods_requested": pods,
        "namespace": namespace,
        "exit_code": child.returncode,
        "timed_out": timed_out,
        "child_seconds": child_seconds,
        "all_deleted_seen": all_deleted,
        "pod_requests": requests,
        "pod_requests_by_code": by_code,
        "observer": {"watches_opened": observer.watches_opened, "events": observer.events},
        "all_requests_delta": {
            " ".join(k for k in key if k): v for key, v in sorted(delta.counts.items()) if v
        },
        "apiserver_forced_watch_closes": apiserver_log.forced_closes(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "child_stderr_tail": stderr_path.read_text(errors="replace")[-3000:],
    }
    if out.exists():
        child_report = json.loads(out.read_text())
        report.update(child_report)
        for pod in report["pods"]:
            pod["observer_added"] = observer.added.get(pod["name"])
            pod["observer_terminal"] = observer.terminal.get(pod["name"])
            pod["observer_deleted"] = observer.deleted.get(pod["name"])
        report["summary"] = summarize(report)
    if timed_out or not all_deleted:
        await asyncio.to_thread(plane.delete_namespace, namespace)
    return report


def _pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    pods = report["pods"]
    started = report["started"]
    done = [p["done"] for p in pods if p["done"] is not None]
    notify = [
        p["seen"] - p["observer_terminal"]
        for p in pods
        if p["seen"] is not None and p["observer_terminal"] is not None
    ]
    result = [
        p["done"] - p["observer_terminal"]
        for p in pods
        if p["done"] is not None and p["observer_terminal"] is not None
    ]
    created = [p["created"] for p in pods if p["created"] is not None]
    terminal = [p["observer_terminal"] for p in pods if p["observer_terminal"] is not None]
    seen = [p["seen"] for p in pods if p["seen"] is not None]
    return {
        "pods": len(pods),
        "completed": len(done),
        "errors": sum(1 for p in pods if p["error"]),
        "first_errors": sorted({p["error"] for p in pods if p["error"]})[:5],
        "phases": {
            phase: sum(1 for p in pods if p["phase"] == phase)
            for phase in sorted({str(p["phase"]) for p in pods})
        },
        "wall_s": (max(done) - started) if done else None,
        "all_created_s": (max(created) - started) if created else None,
        "first_terminal_s": (min(terminal) - started) if terminal else None,
        "first_seen_s": (min(seen) - started) if seen else None,
        "last_terminal_s": (max(terminal) - started) if terminal else None,
        "last_seen_s": (max(seen) - started) if seen else None,
        "loop_lag_max_at_s": report["loop_lag"]["max_at"] - started,
        "cpu_s": report["cpu_user_s"] + report["cpu_sys_s"],
        "rss_peak_mib": report["rss_peak_kib"] / 1024,
        "rss_before_mib": report["rss_before_kib"] / 1024,
        "rss_growth_mib": (report["rss_current_max_kib"] - report["rss_current_before_kib"]) / 1024,
        "loop_lag_max_ms": report["loop_lag"]["max_ms"],
        "loop_lag_p99_ms": report["loop_lag"]["p99_ms"],
        "idle_loop_lag_max_ms": report["idle_loop_lag"]["max_ms"],
        "idle_loop_lag_p99_ms": report["idle_loop_lag"]["p99_ms"],
        "notify_s": {
            "n": len(notify),
            "p50": _pct(notify, 0.5),
            "p95": _pct(notify, 0.95),
            "max": max(notify) if notify else None,
        },
        "result_s": {
            "n": len(result),
            "p50": _pct(result, 0.5),
            "p95": _pct(result, 0.95),
            "max": max(result) if result else None,
        },
    }


# ---------------------------------------------------------------------- output
def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _cuts(closes: dict[str, int], namespace: str) -> str:
    ours = sum(n for key, n in closes.items() if key.endswith("/" + namespace))
    others = sum(closes.values()) - ours
    return f"{ours} in ns, {others} cluster-wide" if closes else "0"


def _triple(stats: dict[str, Any], digits: int = 2) -> str:
    return " / ".join(_f(stats[k], digits) for k in ("p50", "p95", "max"))


def tables(runs: list[dict[str, Any]]) -> str:
    """Three markdown tables: outcomes, API server requests, and run conditions."""
    ok = [run for run in runs if run.get("summary")]
    out = [
        (
            "| variant | pods | done | wall s | client CPU s | peak RSS MiB (growth) "
            "| loop lag max / p99 ms | notify p50 / p95 / max s | result p50 / p95 / max s |\n"
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|\n"
        )
    ]
    for run in runs:
        s = run.get("summary")
        if s is None:
            out.append(
                f"| {run['variant']} | {run['pods_requested']} | failed: exit "
                f"{run['exit_code']}, timed out {run['timed_out']} |" + " - |" * 6 + "\n"
            )
            continue
        out.append(
            f"| {run['variant']} | {run['pods_requested']} | {s['completed']} "
            f"| {_f(s['wall_s'])} | {_f(s['cpu_s'], 2)} "
            f"| {_f(s['rss_peak_mib'])} (+{_f(s['rss_growth_mib'])}) "
            f"| {_f(s['loop_lag_max_ms'])} / {_f(s['loop_lag_p99_ms'])} "
            f"| {_triple(s['notify_s'])} | {_triple(s['result_s'])} |\n"
        )
    out.append(
        "\n| variant | pods | GET | LIST | WATCH | POST | DELETE | of which not 2xx "
        "| sent by the variant | pods/status, pods/binding |\n"
        "|---|--:|--:|--:|--:|--:|--:|---|---|---|\n"
    )
    for run in ok:
        r = run["pod_requests"]
        verbs = " | ".join(_n(r.get(v, 0)) for v in POD_VERBS)
        failed = ", ".join(
            f"{k}: {_n(v)}"
            for k, v in run["pod_requests_by_code"].items()
            if not k.rsplit(" ", 1)[-1].startswith("2")
        )
        sent = ", ".join(
            f"{k} {_n(v)}" for k, v in sorted(run["extra"].get("client_requests_sent", {}).items())
        )
        other = ", ".join(f"{k} {_n(v)}" for k, v in r.items() if k not in POD_VERBS)
        out.append(
            f"| {run['variant']} | {run['pods_requested']} | {verbs} | {failed or '-'} "
            f"| {sent} | {other} |\n"
        )
    out.append(
        "\n| variant | pods | all created s | pods finished (reference watch) first / last s "
        "| variant knew first / last s | longest stall at s | idle loop lag max ms "
        "| watches cut by the server | load avg before → after | errors |\n"
        "|---|--:|--:|--:|--:|--:|--:|---|---|---|\n"
    )
    for run in ok:
        s = run["summary"]
        errors = f"{s['errors']}: {s['first_errors'][0][:80]}" if s["errors"] else "0"
        out.append(
            f"| {run['variant']} | {run['pods_requested']} | {_f(s['all_created_s'])} "
            f"| {_f(s['first_terminal_s'])} / {_f(s['last_terminal_s'])} "
            f"| {_f(s['first_seen_s'])} / {_f(s['last_seen_s'])} "
            f"| {_f(s['loop_lag_max_at_s'])} | {_f(s['idle_loop_lag_max_ms'])} "
            f"| {_cuts(run['apiserver_forced_watch_closes'], run['namespace'])} "
            f"| {run['loadavg_before'][0]:.1f} → {run['loadavg_after'][0]:.1f} | {errors} |\n"
        )
    return "".join(out)


def machine() -> dict[str, Any]:
    memory = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.partition(":")[2].strip()
                break
    versions = {}
    for package in ("asyncpod", "kubernetes_asyncio", "aiohttp", "orjson"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    git = None
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        git = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "memory": memory,
        "cpu": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "git": git,
    }


# ---------------------------------------------------------------------- main
async def run_all(
    plane: LocalControlPlane,
    sizes: Sequence[int],
    variants: Sequence[str],
    settings: Settings,
    workdir: Path,
    warmup: int,
) -> list[dict[str, Any]]:
    runs = []
    if warmup:
        # Untimed: the first pods on a fresh control plane meet cold caches (watch
        # cache, scheduler, kwok); no measured variant should pay for that alone.
        log(f"warm-up: {warmup} pods with asyncpod (not reported) ...")
        await run_variant(plane, "asyncpod", warmup, settings, workdir)
    for pods in sizes:
        for variant in variants:
            log(f"{variant}: {pods} pods ...")
            run = await run_variant(plane, variant, pods, settings, workdir)
            s = run.get("summary") or {}
            log(
                f"{variant}: {pods} pods: wall {_f(s.get('wall_s'))} s, "
                f"completed {s.get('completed')}, errors {s.get('errors')}, "
                f"requests {run['pod_requests']}"
            )
            if run["exit_code"] != 0:
                log(f"{variant} exited {run['exit_code']}:\n{run['child_stderr_tail']}")
            runs.append(run)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.follow_pods",
        description="Follow N pods to completion with asyncpod and its peers.",
    )
    parser.add_argument("--pods", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--quick", action="store_true", help="N=50 only (under a minute)")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=None)
    parser.add_argument("--duration", type=float, default=3.0, help="each pod's run time (s)")
    parser.add_argument("--nodes", type=int, default=3, help="kwok nodes")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="Airflow's default")
    parser.add_argument(
        "--startup-check-interval", type=float, default=5.0, help="Airflow's default"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="per variant; a slower one is killed"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed pods first, on the fresh cluster (default 50; 0 with --quick)",
    )
    parser.add_argument("--json", type=Path, default=None, help="where the raw results go")
    args = parser.parse_args(argv)
    sizes = [50] if args.quick else args.pods
    if args.warmup is None:
        args.warmup = 0 if args.quick else 50
    variants = args.variants or list(DEFAULT_VARIANTS)
    settings = Settings(
        duration=args.duration,
        poll_interval=args.poll_interval,
        startup_check_interval=args.startup_check_interval,
        timeout=args.timeout,
    )
    today = dt.date.today().isoformat()
    json_path = args.json or RESULTS / f"{today}-follow_pods{'-quick' if args.quick else ''}.json"
    command = shlex.join(["python", "-m", "benchmarks.follow_pods", *(argv or sys.argv[1:])])

    workdir = Path(tempfile.mkdtemp(prefix="asyncpod-bench-"))
    began = time.time()
    try:
        log(f"starting the local control plane ({args.nodes} kwok nodes) ...")
        with LocalControlPlane(nodes=args.nodes) as plane:
            log(f"control plane ready in {plane.startup_seconds:.1f}s at {plane.server}")
            runs = asyncio.run(run_all(plane, sizes, variants, settings, workdir, args.warmup))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    document: dict[str, Any] = {
        "benchmark": "follow_pods",
        "command": command,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "total_seconds": time.time() - began,
        "machine": machine(),
        "settings": {
            "sizes": sizes,
            "variants": variants,
            "duration": settings.duration,
            "poll_interval": settings.poll_interval,
            "startup_check_interval": settings.startup_check_interval,
            "timeout": settings.timeout,
            "nodes": args.nodes,
            "warmup": args.warmup,
        },
        "runs": runs,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(document, indent=1))
    print(f"`{command}` — {document['date']}, {document['machine']['nproc']} cores\n")
    print(tables(runs))
    log(f"raw results: {json_path}")
    failed = [r for r in runs if r["exit_code"] != 0 or r["timed_out"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
