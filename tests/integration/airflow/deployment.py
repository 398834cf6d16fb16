"""Real Airflow components (api-server, scheduler, dag-processor, triggerer) for e2e tests.

SQLite, LocalExecutor, a temporary AIRFLOW_HOME, a fixed JWT secret and Fernet key,
free loopback ports (the api-server's and both log servers'). The ``kubernetes_default``
connection (an ``AIRFLOW_CONN_*`` variable) points at the test cluster's kubeconfig and
namespace. Every wait is bounded and every
process is killed (its process group: LocalExecutor's workers included) in ``stop()``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncpod.testing.controlplane import free_port

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
FERNET_KEY = "n7Qm3dYB0yd1V8b6fR3yC1aH4dXb2Q9mJ5tK0pL6wE4="  # test-only, fixed


class AirflowError(RuntimeError):
    pass


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``, from /proc (Linux)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


@dataclass
class AirflowDeployment:
    home: Path
    kubeconfig: Path
    namespace: str
    port: int = field(default_factory=free_port)
    #: The log servers' ports (Airflow's defaults, 8793 and 8794, are the same for every
    #: deployment: a second triggerer, or two suites on one machine, would collide).
    worker_log_port: int = field(default_factory=free_port)
    trigger_log_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: More environment for every component (e.g. ``AIRFLOW__METRICS__*``).
    extra_env: dict[str, str] = field(default_factory=dict)
    #: The metadata database (default: ``home/airflow.db``). A second triggerer with its
    #: own AIRFLOW_HOME shares the first one's (and its api-server ``port``).
    database: Path | None = None
    _token: str | None = None

    # ------------------------------------------------------------------ processes
    @property
    def bin(self) -> Path:
        return Path(sys.executable).parent

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("AIRFLOW_CONFIG", None)
        connection = {
            "conn_type": "kubernetes",
            "extra": {"kube_config_path": str(self.kubeconfig), "namespace": self.namespace},
        }
        env.update(
            PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}",
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.home / "dags"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM="8",
            AIRFLOW__CORE__FERNET_KEY=FERNET_KEY,
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{self.port}/execution/",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{self.database or self.home / 'airflow.db'}",
            AIRFLOW__API_AUTH__JWT_SECRET="asyncpod-e2e-jwt-secret-not-for-production",
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{self.port}",
            AIRFLOW__API__WORKERS="1",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
            AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(self.home / "logs"),
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(self.worker_log_port),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(self.trigger_log_port),
            AIRFLOW_CONN_KUBERNETES_DEFAULT=json.dumps(connection),
            PYTHONWARNINGS="ignore",
        )
        env.update(self.extra_env)
        return env

    def migrate(self) -> None:
        result = subprocess.run(
            [str(self.bin / "airflow"), "db", "migrate"],
            env=self.env(), capture_output=True, timeout=240, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise AirflowError(f"airflow db migrate failed:\n{result.stderr.decode()[-3000:]}")

    def start(self, component: str) -> None:
        args = [str(self.bin / "airflow"), component]
        if component == "api-server":
            args += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        log = (self.home / f"{component}.log").open("ab")
        self.processes[component] = subprocess.Popen(
            args, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def stop(self, component: str, *, sig: int = signal.SIGTERM, limit: float = 40.0) -> int | None:
        process = self.processes.pop(component, None)
        if process is None:
            return None
        if process.poll() is None:
            os.killpg(process.pid, sig)
            try:
                process.wait(limit)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        # Children (LocalExecutor workers, the triggerer's forked runner) share the group:
        # kill what is left of it and check that nothing of it survives.
        deadline = time.monotonic() + 15
        while survivors := _group_members(process.pid):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            if time.monotonic() > deadline:
                raise AirflowError(f"processes {survivors} of {component} outlived stop()")
            time.sleep(0.2)
        return process.returncode

    def stop_all(self) -> None:
        for component in list(self.processes):
            self.stop(component, limit=20)

    def log_tail(self, component: str, lines: int = 60) -> str:
        path = self.home / f"{component}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------------ REST API
    def api(self, method: str, path: str, body: Any = None) -> Any:
        if self._token is None:
            self._token = self._request("GET", "/auth/token", None, auth=False)["access_token"]
        return self._request(method, path, body, auth=True)

    def _request(self, method: str, path: str, body: Any, *, auth: bool) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if auth and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:800]
            raise AirflowError(f"{method} {path}: HTTP {error.code}: {detail}") from None
        return json.loads(payload) if payload else None

    def wait(self, what: str, check: Callable[[], Any], *, limit: float = 120.0) -> Any:
        """Poll ``check`` until it returns something truthy; fail after ``limit`` s."""
        deadline = time.monotonic() + limit
        last: Any = None
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise AirflowError(f"{name} exited:\n{self.log_tail(name)}")
            try:
                last = check()
            except (AirflowError, OSError) as error:
                last = error
            else:
                if last:
                    return last
            time.sleep(0.5)
        raise AirflowError(f"timed out waiting for {what} (last: {last!r})")

    def wait_ready(self, dag_ids: list[str]) -> None:
        self.wait(
            "the api-server",
            lambda: self._request("GET", "/api/v2/monitor/health", None, auth=False),
            limit=180,
        )

        def parsed() -> bool:
            known = {d["dag_id"] for d in self.api("GET", "/api/v2/dags?limit=100")["dags"]}
            return set(dag_ids) <= known

        self.wait(f"the DAGs {dag_ids} to be parsed", parsed, limit=180)

    # ------------------------------------------------------------------ DAG runs
    def trigger(self, dag_id: str, run_id: str) -> str:
        self.api(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None}
        )
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_run(self, dag_id: str, run_id: str, *, limit: float = 180.0) -> str:
        def done() -> str | None:
            state = self.run_state(dag_id, run_id)
            return state if state in ("success", "failed") else None

        return str(self.wait(f"run {dag_id}/{run_id}", done, limit=limit))

    def task(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        result: dict[str, Any] = self.api("GET", path)
        return result

    def wait_task_state(
        self, dag_id: str, run_id: str, task_id: str, state: str, *, limit: float = 120.0
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            ti = self.task(dag_id, run_id, task_id)
            return ti if ti["state"] == state else None

        result: dict[str, Any] = self.wait(f"{task_id} to be {state}", reached, limit=limit)
        return result

    def clear(self, dag_id: str, run_id: str, task_id: str) -> None:
        self.api(
            "POST",
            f"/api/v2/dags/{dag_id}/clearTaskInstances",
            {"dry_run": False, "task_ids": [task_id], "dag_run_id": run_id, "only_failed": False},
        )

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}?deserialize=true"
        return self.api("GET", path)["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, attempt: int | None = None) -> str:
        """Everything written for the task (worker and triggerer files), oldest first."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        pattern = f"attempt={attempt}*" if attempt is not None else "attempt=*"
        files = (
            sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime) if folder.exists() else []
        )
        return "\n".join(p.read_text(errors="replace") for p in files)
