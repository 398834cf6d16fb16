"""``python -m benchmarks.airflow_deployment``: both operators in a real Airflow deployment.

Why it exists: a trigger measured alone (``python -m benchmarks``' airflow contenders)
says nothing about what a team switching operators meets: Airflow's triggerer
deserializing DAGs, importing trigger modules and rendering templates on the same
event loop, workers creating pods, a triggerer killed mid-run (issue 19). This runs the
real components (``tests/integration/airflow/deployment.py``: api-server, scheduler,
dag-processor, triggerer, LocalExecutor on SQLite) against one local control plane,
with the reference operator (the cncf.kubernetes provider's ``KubernetesPodOperator``)
and then asyncpod's, each in a fresh Airflow home and namespace, the same DAGs: N
unmapped deferrable pod tasks over D DAGs, each pod running ``--duration`` seconds
under kwok, ``get_logs=False``. Mid-run, once a quarter of the tasks are deferred,
the triggerer is SIGKILLed (its whole process group) and started again. Two more
contenders on request: ``asyncpod-start`` (asyncpod's opt-in ``start_from_trigger``)
and ``floor`` (no pod: each task defers to Airflow's ``TimeDeltaTrigger`` for the same
time, so its triggerer CPU is what Airflow spends per deferred task whatever the
trigger).

Reported per contender (raw JSON in ``benchmarks/results/``):

* requests on pods, from the API server's audit log (the contender's ServiceAccount,
  which workers and triggerer share; LISTs and WATCHes split by label selector:
  ``ti`` = one task instance's pods, ``managed`` = every asyncpod pod of the namespace,
  ``other``), for the whole run and for what came after the SIGKILL; and the API
  server's ``apiserver_request_total`` delta (namespace-scoped LIST/WATCH only, GETs of
  everyone: kwok and the controllers included);
* triggerer CPU (user + system of every process of its group, the forked trigger
  runner included, summed over the killed and the restarted triggerer), also per task;
  the scheduler's group likewise (LocalExecutor's workers run in it);
* the longest triggerer loop block: Airflow's own warnings in the triggerer log
  (``blocked for X seconds``, threshold 0.2 s) and :mod:`benchmarks.airflow_probe`, a
  trigger sleeping 50 ms over and over in the same loop;
* task wall time (each task instance's start to end, from Airflow's API) and each DAG
  run's; the 1-minute load average before and after.

``loopcost`` prints what the triggerer's loop pays per trigger of a task that starts in
the triggerer (rebuilding the task from the serialized DAG), at several DAG sizes,
without a cluster.

    python -m benchmarks.airflow_deployment run --scenarios 100x1
    python -m benchmarks.airflow_deployment run --scenarios 100x1 1000x1 1000x10
    python -m benchmarks.airflow_deployment loopcost --tasks 1 100 1000

What it deliberately does not do: compare logs or XComs (``get_logs=False``, no
``do_xcom_push``), or run the triggerer on another host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from benchmarks.plane import bench_control_plane, pod_requests, prepare_namespace
from benchmarks.run import machine
from tests.integration.airflow.deployment import COMPONENTS, AirflowDeployment

__all__ = ["classify_request", "loopcost", "main", "parse_blocked", "parse_blocked_at"]

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
#: name: (the operator's module, extra operator arguments).
CONTENDERS: dict[str, tuple[str, str]] = {
    "reference": ("airflow.providers.cncf.kubernetes.operators.pod", ""),
    "asyncpod": ("asyncpod.airflow.operators", ""),
    # asyncpod's opt-in: the task starts in the triggerer (Airflow 3.3), no worker
    # until execute_complete; what the default's choice of the worker path is judged by.
    "asyncpod-start": ("asyncpod.airflow.operators", "start_from_trigger=True,"),
    # No pod: each task defers to Airflow's own TimeDeltaTrigger for the pod's duration,
    # the same worker -> triggerer -> worker path. What Airflow itself spends per
    # deferred task, whatever the trigger: the floor under both operators.
    "floor": ("", ""),
}
#: The reference's trigger and operator read and watch events while a pod starts.
EVENT_RULES = ({"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},)
BLOCKED = re.compile(r"async thread was blocked for ([0-9.]+) seconds")
# A triggerer log line's leading time: "2026-12-06 02:02:52 " or "2026-12-06T11:49:08.5Z ".
LINE_TIME = re.compile(r"\[?(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?")
TI_SELECTOR = "asyncpod.dev/ti"
MANAGED_SELECTOR = "app.kubernetes.io/managed-by"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- pure helpers
def parse_blocked(text: str) -> list[float]:
    """Airflow's 'loop blocked' warnings in a triggerer log, in seconds (pure)."""
    return [float(m) for m in BLOCKED.findall(text)]


def parse_blocked_at(text: str) -> list[tuple[float | None, float]]:
    """Each 'loop blocked' warning as (when, epoch seconds from the line's leading
    timestamp, read as UTC; None without one) and how long, in seconds (pure)."""
    found: list[tuple[float | None, float]] = []
    for line in text.splitlines():
        blocked = BLOCKED.search(line)
        if blocked is None:
            continue
        stamp = LINE_TIME.match(line)
        when = None
        if stamp is not None:
            # strptime, not fromisoformat: Python 3.10 reads no fraction but 3 or 6 digits.
            moment = dt.datetime.strptime(f"{stamp[1]} {stamp[2]}", "%Y-%m-%d %H:%M:%S")
            fraction = float(stamp[3]) if stamp[3] else 0.0
            when = moment.replace(tzinfo=dt.timezone.utc).timestamp() + fraction
        found.append((when, float(blocked[1])))
    return found


def classify_request(entry: dict[str, Any]) -> str:
    """An audit entry as ``VERB resource[/sub]``, LIST/WATCH with their selector kind."""
    verb = {"create": "POST", "get": "GET", "list": "LIST", "watch": "WATCH",
            "delete": "DELETE", "patch": "PATCH", "update": "PUT"}.get(
        entry.get("verb", ""), str(entry.get("verb", "?")).upper())  # fmt: skip
    ref = entry.get("objectRef") or {}
    resource = ref.get("resource") or "?"
    if ref.get("subresource"):
        resource += "/" + ref["subresource"]
    key = f"{verb} {resource}"
    if verb in ("LIST", "WATCH"):
        query = parse_qs(urlsplit(entry.get("requestURI", "")).query)
        selector = unquote(",".join(query.get("labelSelector", [])))
        if TI_SELECTOR in selector:
            key += " [ti]"
        elif MANAGED_SELECTOR in selector:
            key += " [managed]"
        elif selector:
            key += " [other]"
        else:
            key += " [none]"
    return key


def audit_counts(path: Path, start: int, end: int | None, user: str) -> dict[str, int]:
    """Requests of ``user`` in the audit log between two byte offsets, by kind."""
    counts: dict[str, int] = {}
    with contextlib.suppress(OSError), path.open("rb") as file:
        file.seek(start)
        data = file.read() if end is None else file.read(max(0, end - start))
    for line in data.splitlines():
        if user.encode() not in line:
            continue
        entry = json.loads(line)
        if entry.get("user", {}).get("username") != user:
            continue
        key = classify_request(entry)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def spread(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "median": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 2),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "max": round(ordered[-1], 2),
    }


# ---------------------------------------------------------------------- DAG files
def dag_source(contender: str, tasks: int, dags: int, duration: float) -> str:
    """The benchmark's DAG file: ``tasks`` pod tasks spread over ``dags`` DAGs."""
    per_dag = [tasks // dags + (1 if i < tasks % dags else 0) for i in range(dags)]
    module, extra = CONTENDERS[contender]
    if not module:
        return FLOOR_DAG.format(per_dag=per_dag, duration=duration)
    return textwrap.dedent(
        f'''\
        """Benchmark DAGs ({contender}): {tasks} pod tasks over {dags} DAG(s)."""
        import datetime

        from airflow.sdk import DAG
        from {module} import KubernetesPodOperator
        from asyncpod.testing import outcome

        START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
        for d, count in enumerate({per_dag!r}):
            with DAG(f"bench_{{d}}", schedule=None, start_date=START, catchup=False,
                     max_active_tasks=10000, default_args={{"retries": 0}}):
                for i in range(count):
                    KubernetesPodOperator(
                        task_id=f"pod_{{i}}",
                        image="busybox:1.36",
                        annotations=outcome(duration={duration}),
                        get_logs=False,
                        deferrable=True,
                        {extra}
                    )
        '''
    )


FLOOR_DAG = '''\
"""Benchmark DAGs (floor): tasks that defer to Airflow's TimeDeltaTrigger, no pod."""
import datetime

from airflow.sdk import DAG, BaseOperator

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


class Wait(BaseOperator):
    def execute(self, context):
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        self.defer(trigger=TimeDeltaTrigger(datetime.timedelta(seconds={duration})),
                   method_name="done")

    def done(self, context, event=None):
        return None


for d, count in enumerate({per_dag!r}):
    with DAG(f"bench_{{d}}", schedule=None, start_date=START, catchup=False,
             max_active_tasks=10000, default_args={{"retries": 0}}):
        for i in range(count):
            Wait(task_id=f"pod_{{i}}")
'''


PROBE_DAG = '''\
"""The loop probe: one task that defers to benchmarks.airflow_probe.LoopProbe."""
import datetime

from airflow.sdk import DAG, BaseOperator

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


class Probe(BaseOperator):
    def __init__(self, *, out_dir, stop_file, **kwargs):
        super().__init__(**kwargs)
        self.out_dir, self.stop_file = out_dir, stop_file

    def execute(self, context):
        from benchmarks.airflow_probe import LoopProbe

        self.defer(trigger=LoopProbe(out_dir=self.out_dir, stop_file=self.stop_file),
                   method_name="done")

    def done(self, context, event):
        return event


with DAG("bench_probe", schedule=None, start_date=START, catchup=False):
    Probe(task_id="probe", out_dir=OUT_DIR, stop_file=STOP_FILE)
'''


# ---------------------------------------------------------------------- processes
def _group_cpu(pgid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each live process of group ``pgid`` (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


class CpuSampler:
    """The CPU of components' process groups, sampled every ``every`` seconds.

    Keeps each process's last reading, so processes that end (a SIGKILLed triggerer,
    LocalExecutor's finished workers) still count with what they had used by then.
    """

    def __init__(self, deployment: AirflowDeployment, components: Sequence[str]) -> None:
        self.deployment = deployment
        self.components = components
        self.seen: dict[str, dict[int, float]] = {c: {} for c in components}
        self.baseline: dict[str, dict[int, float]] = {c: {} for c in components}
        self.leaders: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> None:
        for component in self.components:
            process = self.deployment.processes.get(component)
            if process is not None:
                self.leaders.add(process.pid)
                self.seen[component].update(_group_cpu(process.pid))

    def reset(self) -> None:
        """From now on: what each process had used so far is not counted."""
        self.sample()
        self.baseline = {c: dict(v) for c, v in self.seen.items()}

    def seconds(self, component: str) -> float:
        base = self.baseline[component]
        return round(sum(v - base.get(p, 0.0) for p, v in self.seen[component].items()), 2)

    def split(self, component: str) -> dict[str, float]:
        """CPU seconds of the group leaders (the components' main processes: the
        triggerer's job runner) and of their children (the triggerer's forked trigger
        runner, which runs every trigger; the scheduler's LocalExecutor workers)."""
        base = self.baseline[component]
        out = {"main": 0.0, "children": 0.0}
        for pid, value in self.seen[component].items():
            out["main" if pid in self.leaders else "children"] += value - base.get(pid, 0.0)
        return {key: round(value, 2) for key, value in out.items()}

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class Deployment(AirflowDeployment):
    """The e2e harness, with the probe importable and the API's page limit raised."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["AIRFLOW__API__MAXIMUM_PAGE_LIMIT"] = "1000"
        env["AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG"] = "10000"
        return env

    def count(self, state: str) -> int:
        path = f"/api/v2/dags/~/dagRuns/~/taskInstances?state={state}&limit=1"
        return int(self.api("GET", path)["total_entries"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self.api(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
                f"?limit=1000&offset={len(found)}",
            )
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


# ---------------------------------------------------------------------- one contender
def run_contender(
    plane: Any, contender: str, tasks: int, dags: int, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    label = f"{contender}-{tasks}x{dags}"
    namespace = f"af-{label}-{secrets.token_hex(2)}"
    kubeconfig = asyncio.run(prepare_namespace(plane, namespace, workdir, EVENT_RULES))
    home = workdir / label
    (home / "dags").mkdir(parents=True)
    probe_dir = home / "probe"
    probe_dir.mkdir()
    stop_file = home / "probe.stop"
    (home / "dags" / "bench_pods.py").write_text(dag_source(contender, tasks, dags, args.duration))
    (home / "dags" / "bench_probe.py").write_text(
        f"OUT_DIR = {str(probe_dir)!r}\nSTOP_FILE = {str(stop_file)!r}\n" + PROBE_DAG
    )
    dag_ids = [f"bench_{d}" for d in range(dags)]
    deployment = Deployment(home=home, kubeconfig=kubeconfig, namespace=namespace)
    user = f"system:serviceaccount:{namespace}:bench-runner"
    audit = workdir / "audit.log"
    row: dict[str, Any] = {"contender": contender, "tasks": tasks, "dags": dags,
                           "namespace": namespace, "pod_seconds": args.duration}  # fmt: skip
    try:
        deployment.migrate()
        for component in COMPONENTS:
            deployment.start(component)
        deployment.wait_ready([*dag_ids, "bench_probe"])
        deployment.trigger("bench_probe", "probe")
        deployment.wait_task_state("bench_probe", "probe", "probe", "deferred", limit=300)
        deployment.wait("the probe's first figures", lambda: list(probe_dir.glob("*.json")))
        with CpuSampler(deployment, ["triggerer", "scheduler"]) as cpu:
            # What a triggerer costs before any pod task: its start (imports, DB, the
            # probe's trigger) and its idle rate (heartbeats, the probe's 20 wake-ups a
            # second), for the net figure below.
            cpu.sample()
            row["triggerer_startup_cpu_s"] = cpu.seconds("triggerer")
            cpu.reset()
            time.sleep(args.idle)
            cpu.sample()
            idle_rate = cpu.seconds("triggerer") / args.idle
            row["triggerer_idle_cpu_per_s"] = round(idle_rate, 4)
            cpu.reset()
            row["loadavg_before"] = os.getloadavg()
            metrics_before = plane.request_counts(namespaced_lists_only=True)
            audit_start = audit.stat().st_size if audit.exists() else 0
            began = time.time()
            for dag_id in dag_ids:
                deployment.trigger(dag_id, "bench")
            killed_at: float | None = None
            audit_kill = None
            kill_when = max(1, int(tasks * args.kill_at))
            peak_deferred = 0
            deadline = time.monotonic() + args.limit
            while True:
                if time.monotonic() > deadline:
                    row["failure"] = f"not done within {args.limit} s"
                    break
                states = [deployment.run_state(d, "bench") for d in dag_ids]
                if all(s in ("success", "failed") for s in states):
                    break
                deferred = deployment.count("deferred") - 1  # the probe
                peak_deferred = max(peak_deferred, deferred)
                if args.kill_at and killed_at is None and deferred >= kill_when:
                    cpu.sample()
                    time.sleep(1.5)  # the audit log's batch flushes within 1 s
                    audit_kill = audit.stat().st_size
                    killed_at = time.time()
                    log(f"{label}: {deferred} deferred: SIGKILL the triggerer, start another")
                    deployment.stop("triggerer", sig=signal.SIGKILL)
                    deployment.start("triggerer")
                time.sleep(2)
            ended = time.time()
            cpu.sample()
            row["loadavg_after"] = os.getloadavg()
            row["triggerer_cpu_s"] = cpu.seconds("triggerer")
            row["scheduler_and_workers_cpu_s"] = cpu.seconds("scheduler")
            row["triggerer_cpu_split_s"] = cpu.split("triggerer")
        time.sleep(2)  # the audit log's last batch
        row["dag_run_states"] = states
        row["wall_s"] = round(ended - began, 1)
        row["peak_deferred"] = peak_deferred
        row["killed_triggerer_after_s"] = round(killed_at - began, 1) if killed_at else None
        row["requests"] = audit_counts(audit, audit_start, None, user)
        if audit_kill is not None:
            row["requests_after_kill"] = audit_counts(audit, audit_kill, None, user)
        row["apiserver_request_total"] = pod_requests(
            plane.request_counts(namespaced_lists_only=True) - metrics_before
        )
        row["triggerer_cpu_ms_per_task"] = round(1000 * row["triggerer_cpu_s"] / tasks, 1)
        # Net: less the idle rate over the run and, when it was killed, one more start.
        net = row["triggerer_cpu_s"] - idle_rate * (ended - began)
        if killed_at is not None:
            net -= row["triggerer_startup_cpu_s"]
        row["triggerer_net_cpu_s"] = round(net, 2)
        row["triggerer_net_cpu_ms_per_task"] = round(1000 * net / tasks, 1)
        warnings = parse_blocked_at((home / "triggerer.log").read_text(errors="replace"))
        blocked = [seconds for _, seconds in warnings]
        row["airflow_blocked_warnings"] = {
            "count": len(blocked),
            "longest_s": max(blocked, default=0.0),
            "all_s": blocked,
            # When, from the DAG runs' start (compare killed_triggerer_after_s).
            "at_s": [None if when is None else round(when - began, 1) for when, _ in warnings],
        }
        probes = [json.loads(p.read_text()) for p in sorted(probe_dir.glob("probe-*.json"))]
        row["probe"] = probes
        row["probe_longest_s"] = max((p["longest_s"] for p in probes), default=None)
        durations: list[float] = []
        runs: list[float] = []
        states_count: dict[str, int] = {}
        for dag_id in dag_ids:
            run = deployment.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/bench")
            if (seconds := _seconds(run.get("start_date"), run.get("end_date"))) is not None:
                runs.append(seconds)
            for ti in deployment.task_instances(dag_id, "bench"):
                states_count[ti["state"]] = states_count.get(ti["state"], 0) + 1
                if (seconds := _seconds(ti.get("start_date"), ti.get("end_date"))) is not None:
                    durations.append(seconds)
        row["task_states"] = states_count
        # Per task that ended: a run cut by --limit ended only some of its tasks.
        ended_tasks = states_count.get("success", 0) + states_count.get("failed", 0)
        if ended_tasks and ended_tasks != tasks:
            row["triggerer_net_cpu_ms_per_ended_task"] = round(1000 * net / ended_tasks, 1)
        row["task_wall_s"] = spread(durations)
        row["dag_run_wall_s"] = spread(runs)
    except Exception as error:  # noqa: BLE001 - a failed contender is a result, not a crash
        row["failure"] = f"{type(error).__name__}: {error}"
        row["triggerer_log_tail"] = deployment.log_tail("triggerer", 40)
        row["scheduler_log_tail"] = deployment.log_tail("scheduler", 40)
    finally:
        stop_file.touch()
        deployment.stop_all()
        with contextlib.suppress(Exception):
            plane.delete_namespace(namespace)
    return row


def summary(row: dict[str, Any]) -> str:
    if "requests" not in row:
        return f"{row['contender']}: FAILED {row.get('failure')}"
    get = row["requests"].get("GET pods", 0)
    after = (row.get("requests_after_kill") or {}).get("GET pods", 0)
    return (
        f"{row['contender']} {row['tasks']}x{row['dags']}: states {row['task_states']}, "
        f"wall {row['wall_s']} s, GET pods {get} ({after} after the SIGKILL), "
        f"triggerer CPU {row['triggerer_cpu_s']} s, net {row['triggerer_net_cpu_s']} s "
        f"({row['triggerer_net_cpu_ms_per_task']} ms/task), "
        f"longest block: probe {row['probe_longest_s']} s, Airflow's warnings "
        f"{row['airflow_blocked_warnings']['count']} (longest "
        f"{row['airflow_blocked_warnings']['longest_s']} s); requests {row['requests']}"
    )


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    command = shlex.join(["python", "-m", "benchmarks.airflow_deployment", *argv])
    scenarios = [tuple(int(x) for x in s.split("x")) for s in args.scenarios]
    workdir = Path(tempfile.mkdtemp(prefix="asyncpod-afbench-"))
    taken_on = machine()
    rows: list[dict[str, Any]] = []
    began = time.time()
    today = dt.date.today().isoformat()
    out = (
        args.out
        or RESULTS / f"{today}-airflow-deployment{'-' + args.label if args.label else ''}.json"
    )

    def save() -> None:
        document = {
            "benchmark": "airflow_deployment",
            "command": command,
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "total_seconds": round(time.time() - began, 1),
            "machine": taken_on,
            "settings": {
                "scenarios": args.scenarios,
                "contenders": args.contenders,
                "pod_seconds": args.duration,
                "kill_at": args.kill_at,
                "parallelism": 8,
            },
            "runs": rows,
        }
        out.write_text(json.dumps(document, indent=1) + "\n")

    try:
        plane = bench_control_plane(max(t for t, _ in scenarios), workdir)
        log(f"starting the local control plane ({plane.nodes} kwok nodes) ...")
        with plane:
            for tasks, dags in scenarios:
                for contender in args.contenders:
                    log(f"{contender}: {tasks} tasks over {dags} DAG(s) ...")
                    rows.append(run_contender(plane, contender, tasks, dags, args, workdir))
                    log(summary(rows[-1]))
                    save()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    save()
    log(f"results: {out}")
    return 0


# ---------------------------------------------------------------------- loopcost
def loopcost(tasks: int, repeat: int, *, start_from_trigger: bool) -> dict[str, Any]:
    """What the triggerer's loop pays per trigger of a task started in the triggerer.

    Airflow 3.3's ``create_runtime_ti`` rebuilds the task from the whole serialized
    DAG (``DagSerialization.from_dict``) for each such trigger; the worker path's
    trigger skips it. Median seconds of that rebuild, and the DAG's bytes per task.
    """
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    from asyncpod.airflow.operators import KubernetesPodOperator

    start = dt.datetime(2024, 1, 1)
    with DAG("loopcost", schedule=None, start_date=start) as dag:
        for index in range(tasks):
            KubernetesPodOperator(
                task_id=f"t{index}", image="busybox", start_from_trigger=start_from_trigger
            )
    text = json.dumps(DagSerialization.to_dict(dag))
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        DagSerialization.from_dict(json.loads(text)).get_task("t0")
        times.append(time.perf_counter() - began)
    return {"tasks": tasks, "bytes_per_task": len(text) // tasks,
            "rebuild_ms": round(1000 * statistics.median(times), 1)}  # fmt: skip


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Stopped by SIGTERM, or by SIGINT though started in the background (where the
    # shell ignores it): the finally blocks still stop Airflow and the control plane.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.airflow_deployment")
    sub = parser.add_subparsers(dest="command", required=True)
    runner = sub.add_parser("run", help="both operators in a real Airflow deployment")
    runner.add_argument("--scenarios", nargs="+", default=["100x1"],
                        help="TASKSxDAGS, e.g. 100x1 1000x1 1000x10 (default 100x1)")  # fmt: skip
    runner.add_argument("--contenders", nargs="+", choices=list(CONTENDERS),
                        default=["reference", "asyncpod"])  # fmt: skip
    runner.add_argument("--duration", type=float, default=30.0, help="each pod's seconds (30)")
    runner.add_argument("--kill-at", type=float, default=0.25,
                        help="SIGKILL the triggerer once this share of tasks is deferred "
                             "(0: never; default 0.25)")  # fmt: skip
    runner.add_argument("--limit", type=float, default=3600.0, help="seconds per contender")
    runner.add_argument("--idle", type=float, default=20.0,
                        help="seconds of the idle triggerer measured first (20)")  # fmt: skip
    runner.add_argument("--label", default="")
    runner.add_argument("--out", type=Path, default=None)
    cost = sub.add_parser("loopcost", help="the triggerer's rebuild of a started task")
    cost.add_argument("--tasks", type=int, nargs="+", default=[1, 100, 1000])
    cost.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args, argv)
    print("per trigger of a task started in the triggerer (DagSerialization.from_dict)")
    for tasks in args.tasks:
        for flag in (False, True):
            figures = loopcost(tasks, args.repeat, start_from_trigger=flag)
            print(
                f"tasks {tasks:>5}  start_from_trigger={flag!s:<5}  "
                f"{figures['bytes_per_task']:>5} bytes/task  {figures['rebuild_ms']:>7} ms"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
