"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, controller-manager,
scheduler and kwok, started as child processes in a temporary directory.

Why: a test that talks to a fake API server proves only that we agree with our fake.
This is the same code path as a production cluster, minus the kubelets, which kwok
simulates (see ``data/stages.yaml`` and :mod:`asyncpod.testing.simulate`). It works like
envtest, but with a scheduler, a controller-manager and fake nodes, so pods really
get scheduled, run (in simulation), produce events and serve logs.

The class is synchronous on purpose: it is driven from pytest session fixtures and
from the ``asyncpod cluster`` command, neither of which has an event loop, and the few
admin calls it makes (nodes, namespaces, readiness) are not on anyone's hot path.

It deliberately does not use asyncpod's own client: a harness that shares code with
the library under test would hide that library's bugs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from asyncpod.testing import nodecleanup, realnode
from asyncpod.testing.admin import AdminClient, AdminRequestError
from asyncpod.testing.binaries import Binaries, cache_dir, ensure_binaries, ensure_kubelet
from asyncpod.testing.pki import ClientIdentity, Pki, make_pki
from asyncpod.testing.reaper import REAL_NODES_FILE

__all__ = ["ControlPlaneError", "LocalControlPlane", "RequestCounts", "parse_request_counts"]

_DATA = Path(__file__).with_name("data")
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"


class ControlPlaneError(RuntimeError):
    """A component failed to start or to become ready; the message has its log tail."""


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class RequestCounts:
    """``apiserver_request_total`` summed by (verb, resource, subresource)."""

    counts: Mapping[tuple[str, str, str], float]

    def get(self, verb: str, resource: str, subresource: str = "") -> float:
        return self.counts.get((verb, resource, subresource), 0.0)

    def __sub__(self, before: RequestCounts) -> RequestCounts:
        keys = set(self.counts) | set(before.counts)
        return RequestCounts({k: self.counts.get(k, 0.0) - before.counts.get(k, 0.0) for k in keys})


def parse_request_counts(metrics_text: str, namespaced_lists_only: bool = False) -> RequestCounts:
    """Sum ``apiserver_request_total`` samples by verb, resource and subresource.

    The counters are the whole server's, and the controller-manager, the scheduler and
    kwok LIST and WATCH pods cluster-wide (again after every API server restart).
    ``namespaced_lists_only=True`` counts a LIST or WATCH only when it named a namespace,
    which is how a test or a benchmark counts its own lists apart from theirs. Other verbs
    are counted whatever their ``scope`` label (a create is ``scope="resource"``).
    """
    totals: dict[tuple[str, str, str], float] = {}
    for line in metrics_text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels_text, _, value = line[len("apiserver_request_total{") :].rpartition("} ")
        labels: dict[str, str] = {}
        for part in labels_text.split('",'):
            key, _, raw = part.partition('="')
            labels[key.strip()] = raw.rstrip('"')
        listing = labels.get("verb") in ("LIST", "WATCH")
        if namespaced_lists_only and listing and labels.get("scope") != "namespace":
            continue
        key3 = (labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", ""))
        totals[key3] = totals.get(key3, 0.0) + float(value)
    return RequestCounts(totals)


@dataclass
class _Process:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    env: dict[str, str] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                # A session of its own: a Ctrl-C aimed at pytest does not kill the control
                # plane mid-teardown; stop() ends it deliberately.
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, *, timeout: float = 10.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.popen = None

    def kill(self) -> None:
        """SIGKILL: a crash, with no graceful shutdown of open connections."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)
        self.popen = None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


@dataclass
class LocalControlPlane:
    """Start it with ``with LocalControlPlane() as cp:`` (or :meth:`start`/:meth:`stop`).

    ``cp.kubeconfig`` is an admin kubeconfig (client certificate, O=system:masters).
    ``real_nodes=1`` adds a real kubelet + containerd node (root only; see
    :mod:`asyncpod.testing.realnode` for how pods select it).
    Fault levers for tests: :meth:`stop_apiserver`, :meth:`start_apiserver`,
    :meth:`restart_apiserver`, :meth:`compact_etcd`; :meth:`request_counts` reads the
    API server's own ``/metrics``.
    """

    nodes: int = 3
    workdir: Path | None = None
    binaries: Binaries | None = None
    apiserver_args: Sequence[str] = ()
    # Extra kube-scheduler flags, e.g. ``--kube-api-qps`` for a load test (default 50 QPS).
    scheduler_args: Sequence[str] = ()
    node_capacity: Mapping[str, str] = field(
        default_factory=lambda: {"cpu": "64", "memory": "256Gi", "pods": "2000"}
    )
    ready_timeout: float = 60.0
    real_nodes: int = 0
    # False: the real nodes take any pod (``asyncpod cluster up --real-node``, where
    # they are the only nodes); True: only pods tolerating REAL_NODE_TAINT (tests).
    real_node_taint: bool = True

    def __post_init__(self) -> None:
        self._real_nodes: list[realnode.NodeLayout] = []
        # What nodecleanup.cleanup had to remove at the last stop (empty after a clean one).
        self.real_node_rescues: list[str] = []
        # What even the clean-up could not remove (processes, mounts, cgroups, bridge).
        self.real_node_leftovers: list[str] = []
        self._owns_workdir = self.workdir is None
        self._processes: dict[str, _Process] = {}
        self._ports: dict[str, int] = {}
        self._pki: Pki | None = None
        self._started = False
        # Ends the processes if this process dies without stop() (asyncpod.testing.reaper).
        self._reaper: subprocess.Popen[bytes] | None = None

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> LocalControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self._ports['apiserver']}"

    @property
    def kubeconfig(self) -> Path:
        return self._dir / "admin.kubeconfig"

    @property
    def pids(self) -> dict[str, int]:
        return {n: p.popen.pid for n, p in self._processes.items() if p.popen is not None}

    def start(self) -> None:
        """Start every component and return once pods can be created and scheduled."""
        if self._started:
            return
        started = time.monotonic()
        if self.real_nodes:
            reason = realnode.real_node_unavailable()
            if reason is not None:
                raise ControlPlaneError(f"cannot start a real node: {reason}")
        binaries = self.binaries or ensure_binaries()
        kubelet = ensure_kubelet() if self.real_nodes else None
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="asyncpod-cp-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        (self._dir / "logs").mkdir(exist_ok=True)
        self._started = True
        try:
            self._start_reaper()
            node_names = [f"asyncpod-real-{i}" for i in range(self.real_nodes)]
            self._pki = make_pki(self._dir, node_names=node_names)
            for name in ("etcd", "etcd-peer", "apiserver", "kwok"):
                self._ports[name] = free_port()
            self._write_kubeconfigs()
            self.admin = AdminClient.from_kubeconfig(self.kubeconfig)
            self._define_processes(binaries)
            self._processes["etcd"].start()
            self._wait_etcd()
            self._processes["kube-apiserver"].start()
            self._wait_readyz()
            self._install_kwok_crds()
            for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
                self._processes[name].start()
            self._create_nodes()
            self.wait_for_service_account("default")
            if kubelet is not None:
                self._start_real_nodes(kubelet, node_names)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Stop every process (kwok first, etcd last); remove the temp dir we made.

        Real nodes go first: their pods are deleted while the API server still runs,
        then kubelet and containerd stop and :func:`nodecleanup.cleanup` removes anything
        left (processes, mounts, cgroups, the bridge).
        """
        self._stop_real_nodes()
        for name in ("kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            process = self._processes.get(name)
            if process is not None:
                process.stop()
        self._stop_reaper()
        if self._owns_workdir and self.workdir is not None and self._started:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self._started = False

    # ----------------------------------------------------------- detached use
    def detach(self) -> Path:
        """Leave the processes running after this object is gone (``asyncpod cluster up``).

        Writes ``state.json`` (pids, server, kubeconfig) into the work directory and
        returns its path; :meth:`stop_detached` reads it to end them later.
        """
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "pids": self.pids,
            "binaries": {n: p.argv[0] for n, p in self._processes.items()},
            "real_nodes": [layout.to_json() for layout in self._real_nodes],
        }
        path = self._dir / "state.json"
        path.write_text(json.dumps(state, indent=2))
        self._stop_reaper()
        self._processes = {}
        self._real_nodes = []
        self._owns_workdir = False
        self._started = False
        return path

    def _start_reaper(self) -> None:
        """A watcher that stops the processes should this process die without stop()."""
        argv = [sys.executable, "-m", "asyncpod.testing.reaper", str(os.getpid()), str(self._dir)]
        if self._owns_workdir:
            argv.append("--remove-workdir")
        with (self._dir / "logs" / "reaper.log").open("ab") as log:
            self._reaper = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C aimed at the owner is not for it
            )  # fmt: skip

    def _stop_reaper(self) -> None:
        if self._reaper is None:
            return
        if self._reaper.poll() is None:
            self._reaper.terminate()  # it waits on the owner and holds nothing
            try:
                self._reaper.wait(5)
            except subprocess.TimeoutExpired:
                self._reaper.kill()
                self._reaper.wait(5)
        self._reaper = None

    @staticmethod
    def read_state(workdir: Path) -> dict[str, Any] | None:
        """The state a detached control plane left in ``workdir``, if any."""
        try:
            return json.loads((workdir / "state.json").read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    @staticmethod
    def stop_detached(workdir: Path, *, timeout: float = 10.0) -> list[str]:
        """Stop a control plane left running by :meth:`detach`; return what was stopped.

        A pid is signalled only while its command line still names the binary we
        started, so a recycled pid is never hit.
        """
        state = LocalControlPlane.read_state(workdir)
        stopped: list[str] = []
        if state is None:
            return stopped
        layouts = [realnode.NodeLayout.from_json(n) for n in state.get("real_nodes", [])]
        if layouts:
            with contextlib.suppress(OSError, AdminRequestError):
                _drain_real_nodes(
                    AdminClient.from_kubeconfig(Path(state["kubeconfig"])),
                    [layout.name for layout in layouts],
                )
        order = (
            *(f"kubelet-{i}" for i in range(len(layouts))),
            *(f"containerd-{i}" for i in range(len(layouts))),
            "kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd",
        )  # fmt: skip
        for name in order:
            pid = state["pids"].get(name)
            if pid is None or not _is_our_process(pid, state["binaries"][name]):
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _is_our_process(pid, state["binaries"][name]):
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)
            stopped.append(name)
        for layout in layouts:
            nodecleanup.cleanup(layout)
        shutil.rmtree(workdir, ignore_errors=True)
        return stopped

    # ---------------------------------------------------------------- fault levers
    def stop_apiserver(self) -> None:
        """Stop kube-apiserver (SIGTERM); etcd keeps the data."""
        self._processes["kube-apiserver"].stop()

    def kill_apiserver(self) -> None:
        """SIGKILL kube-apiserver (a crash: answers in flight are lost); etcd keeps the data."""
        self._processes["kube-apiserver"].kill()

    def start_apiserver(self) -> None:
        """Start kube-apiserver again on the same port and wait for /readyz."""
        self._processes["kube-apiserver"].start()
        self._wait_readyz()

    def restart_apiserver(self) -> None:
        self.stop_apiserver()
        self.start_apiserver()

    def compact_etcd(self) -> int:
        """Compact etcd at its current revision; return that revision.

        Any watch or list from an older resourceVersion that reaches etcd then gets
        410 Gone. (kube-apiserver's watch cache still answers recent versions from
        memory; restarting the API server after compaction drops that cache too.)
        """
        base = f"http://127.0.0.1:{self._ports['etcd']}"
        key = base64.b64encode(b"/").decode()
        header = self._etcd_post(f"{base}/v3/kv/range", {"key": key, "limit": 1})
        revision = int(header["header"]["revision"])
        self._etcd_post(f"{base}/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision

    def metrics_text(self) -> str:
        return self._admin_request("GET", "/metrics", raw=True)  # type: ignore[no-any-return]

    def request_counts(self, namespaced_lists_only: bool = False) -> RequestCounts:
        """The API server's own request counters, by verb, resource and subresource.

        ``namespaced_lists_only=True`` leaves out the other components' cluster-wide
        LISTs and WATCHes (see :func:`parse_request_counts`).
        """
        return parse_request_counts(self.metrics_text(), namespaced_lists_only)

    # -------------------------------------------------------------- admin helpers
    def create_namespace(self, name: str) -> None:
        """Create a namespace and wait until pods can be created in it."""
        assert self.admin is not None
        self.admin.create_namespace(name, timeout=self.ready_timeout)

    def delete_namespace(self, name: str) -> None:
        assert self.admin is not None
        self.admin.delete_namespace(name)

    def wait_for_service_account(self, namespace: str, name: str = "default") -> None:
        """Block until the controller-manager has made the namespace's ServiceAccount."""
        assert self.admin is not None
        try:
            self.admin.wait_for(
                f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}",
                timeout=self.ready_timeout,
            )
        except AdminRequestError as error:
            raise ControlPlaneError(
                f"ServiceAccount {namespace}/{name} did not appear: {error}\n"
                + self._processes["kube-controller-manager"].tail()
            ) from error

    # ------------------------------------------------------------------ internals
    @property
    def _dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir

    def _admin_request(self, method: str, path: str, body: Any = None, *, raw: bool = False) -> Any:
        assert self.admin is not None
        return self.admin.request(method, path, body, raw=raw)

    def _etcd_post(self, url: str, body: Mapping[str, Any]) -> Any:
        request = urllib.request.Request(  # noqa: S310 - loopback etcd gateway
            url, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def _kubeconfig_text(self, identity: ClientIdentity, user: str) -> str:
        assert self._pki is not None

        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "asyncpod-local",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": b64(self._pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate-data": b64(identity.cert),
                        "client-key-data": b64(identity.key),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "asyncpod-local",
                    "context": {"cluster": "asyncpod-local", "user": user, "namespace": "default"},
                }
            ],
            "current-context": "asyncpod-local",
        }
        return json.dumps(config, indent=2)  # JSON is valid YAML; no yaml dependency needed

    def _write_kubeconfigs(self) -> None:
        assert self._pki is not None
        for stem, identity, user in (
            ("admin", self._pki.admin, "asyncpod-admin"),
            ("controller-manager", self._pki.controller_manager, "system:kube-controller-manager"),
            ("scheduler", self._pki.scheduler, "system:kube-scheduler"),
            ("kwok", self._pki.kwok, "kwok-controller"),
        ):
            path = self._dir / f"{stem}.kubeconfig"
            path.write_text(self._kubeconfig_text(identity, user))
            path.chmod(0o600)

    def _define_processes(self, b: Binaries) -> None:
        assert self._pki is not None
        pki, d, p = self._pki, self._dir, self._ports
        logs = d / "logs"
        etcd_client = f"http://127.0.0.1:{p['etcd']}"
        etcd_peer = f"http://127.0.0.1:{p['etcd-peer']}"
        self._processes = {
            "etcd": _Process("etcd", [
                str(b.etcd), "--name=asyncpod", f"--data-dir={d / 'etcd'}",
                f"--listen-client-urls={etcd_client}", f"--advertise-client-urls={etcd_client}",
                f"--listen-peer-urls={etcd_peer}", f"--initial-advertise-peer-urls={etcd_peer}",
                f"--initial-cluster=asyncpod={etcd_peer}", "--unsafe-no-fsync",
                "--log-level=warn",
            ], logs / "etcd.log"),
            "kube-apiserver": _Process("kube-apiserver", [
                str(b.kube_apiserver), f"--etcd-servers={etcd_client}",
                "--bind-address=127.0.0.1", f"--secure-port={p['apiserver']}",
                "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
                f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={pki.service_account_pub}",
                f"--service-account-signing-key-file={pki.service_account_key}",
                "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=Node,RBAC",
                "--kubelet-preferred-address-types=InternalIP", "--allow-privileged=true",
                "--profiling=false", "--v=1", *self._kubelet_client_args(), *self.apiserver_args,
            ], logs / "kube-apiserver.log"),
            "kube-controller-manager": _Process("kube-controller-manager", [
                str(b.kube_controller_manager),
                f"--kubeconfig={d / 'controller-manager.kubeconfig'}",
                f"--root-ca-file={pki.ca_cert}",
                f"--service-account-private-key-file={pki.service_account_key}",
                "--use-service-account-credentials=true", "--leader-elect=false",
                "--bind-address=127.0.0.1", "--secure-port=0", "--v=1",
                # Lift the not-ready taint from fresh kwok nodes within a second, not five.
                "--node-monitor-period=1s",
            ], logs / "kube-controller-manager.log"),
            "kube-scheduler": _Process("kube-scheduler", [
                str(b.kube_scheduler), f"--kubeconfig={d / 'scheduler.kubeconfig'}",
                f"--authentication-kubeconfig={d / 'scheduler.kubeconfig'}",
                f"--authorization-kubeconfig={d / 'scheduler.kubeconfig'}",
                "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0", "--v=1",
                *self.scheduler_args,
            ], logs / "kube-scheduler.log"),
            "kwok": _Process("kwok", [
                str(b.kwok), f"--kubeconfig={d / 'kwok.kubeconfig'}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                "--node-ip=127.0.0.1", f"--node-port={p['kwok']}",
                f"--server-address=127.0.0.1:{p['kwok']}",
                f"--config={_DATA / 'stages.yaml'}", "--enable-crds=Logs,ClusterLogs",
                "--node-lease-duration-seconds=40",
            ], logs / "kwok.log"),
        }  # fmt: skip

    def _kubelet_client_args(self) -> list[str]:
        """How the API server authenticates to real kubelets (pods/log, exec).

        With real nodes, also the admission plugins that give every pod of a namespace
        a node selector and tolerations from the namespace's annotations
        (``scheduler.alpha.kubernetes.io/node-selector`` and ``.../defaultTolerations``;
        :func:`realnode.namespace_annotations`): what sends a plain ``asyncpod run``
        (which sets neither) to the tainted real node. Namespaces without the
        annotations are unaffected.
        """
        if not self.real_nodes:
            return []
        assert self._pki is not None
        client = self._pki.apiserver_kubelet_client
        return [
            f"--kubelet-client-certificate={client.cert}",
            f"--kubelet-client-key={client.key}",
            "--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction",
        ]

    # ---------------------------------------------------------------- real nodes
    @property
    def real_node_names(self) -> list[str]:
        return [layout.name for layout in self._real_nodes]

    def _start_real_nodes(self, kubelet: Path, names: Sequence[str]) -> None:
        assert self._pki is not None
        routes = Path("/proc/net/route").read_text()
        ctr = shutil.which("ctr") or "ctr"
        for index, name in enumerate(names):
            token = os.urandom(4).hex()
            layout = realnode.NodeLayout(
                name=name,
                directory=self._dir / f"node-{index}",
                token=token,
                subnet=realnode.pick_subnet(routes),
                kubelet_port=free_port(),
                tainted=self.real_node_taint,
            )
            self._real_nodes.append(layout)
            (self._dir / REAL_NODES_FILE).write_text(
                json.dumps([known.to_json() for known in self._real_nodes])
            )
            kubeconfig = self._kubeconfig_text(self._pki.nodes[name], f"system:node:{name}")
            archives = realnode.prepare(layout, self._pki.ca_cert, kubeconfig, cache_dir())
            containerd = _Process(
                f"containerd-{index}",
                [
                    shutil.which("containerd") or "containerd",
                    f"--config={layout.containerd_config}",
                ],
                self._dir / "logs" / f"containerd-{index}.log",
                env=realnode.containerd_env(),
            )
            self._processes[containerd.name] = containerd
            containerd.start()

            def serving(socket: Path = layout.socket) -> bool:
                result = subprocess.run(
                    [ctr, f"--address={socket}", "version"], capture_output=True, check=False
                )
                return result.returncode == 0

            self._wait(f"containerd of {name}", containerd.name, serving)
            # busybox and pause now (every pod needs the sandbox image); the big Python
            # archives while the kubelet starts, awaited before the node counts as ready.
            first = [a for a in archives if realnode.needed_first(a)]
            realnode.import_images(ctr, layout.socket, first)
            late = [a for a in archives if a not in first]
            importer = realnode.BackgroundImport(ctr, layout.socket, late)
            process = _Process(
                f"kubelet-{index}",
                realnode.kubelet_argv(kubelet, layout),
                self._dir / "logs" / f"kubelet-{index}.log",
            )
            self._processes[process.name] = process
            process.start()

            def node_ready(node: str = name) -> bool:
                body = self._admin_request("GET", f"/api/v1/nodes/{node}")
                return _node_ready(body)

            self._wait(f"real node {name} Ready", process.name, node_ready)
            importer.join()

    def import_images(self, archives: Sequence[Path]) -> None:
        """Import image archives into every real node's containerd, after it started:
        an image built since (``localhost/asyncpod:dev`` of sources changed since the
        session began) replaces the one of the same name."""
        ctr = shutil.which("ctr") or "ctr"
        for layout in self._real_nodes:
            realnode.import_images(ctr, layout.socket, list(archives))

    def _stop_real_nodes(self) -> None:
        if not self._real_nodes:
            return
        apiserver = self._processes.get("kube-apiserver")
        if apiserver is not None and apiserver.alive() and self.admin is not None:
            with contextlib.suppress(OSError, AdminRequestError, ControlPlaneError):
                _drain_real_nodes(self.admin, self.real_node_names)
        for index in range(len(self._real_nodes)):
            for name in (f"kubelet-{index}", f"containerd-{index}"):
                process = self._processes.pop(name, None)
                if process is not None:
                    process.stop()
        for layout in self._real_nodes:
            self.real_node_rescues += nodecleanup.cleanup(layout)
            self.real_node_leftovers += nodecleanup.leftovers(layout)
        self._real_nodes = []

    def _wait(self, what: str, process: str, probe: Any) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self._processes[process].alive():
                raise ControlPlaneError(
                    f"{process} exited while waiting for {what}:\n{self._processes[process].tail()}"
                )
            try:
                if probe():
                    return
            except (OSError, urllib.error.URLError, ValueError, AdminRequestError) as error:
                last_error = error
            time.sleep(0.1)
        raise ControlPlaneError(
            f"timed out waiting for {what} ({last_error}):\n{self._processes[process].tail()}"
        )

    def _wait_etcd(self) -> None:
        url = f"http://127.0.0.1:{self._ports['etcd']}/health"

        def healthy() -> bool:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(json.loads(response.read()).get("health") == "true")

        self._wait("etcd /health", "etcd", healthy)

    def _wait_readyz(self) -> None:
        def ready() -> bool:
            return bool(self._admin_request("GET", "/readyz", raw=True).strip() == "ok")

        self._wait("kube-apiserver /readyz", "kube-apiserver", ready)

    def _install_kwok_crds(self) -> None:
        for crd in json.loads((_DATA / "kwok-crds.json").read_text()):
            try:
                self._admin_request(
                    "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd
                )
            except AdminRequestError as error:
                if error.status != 409:
                    raise
        for crd in ("logs.kwok.x-k8s.io", "clusterlogs.kwok.x-k8s.io"):

            def established(name: str = crd) -> bool:
                body = self._admin_request(
                    "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
                )
                # A CRD just created may answer "conditions": null.
                conditions = (body.get("status") or {}).get("conditions") or []
                return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

            self._wait(f"CRD {crd}", "kube-apiserver", established)

    def _create_nodes(self) -> None:
        for index in range(self.nodes):
            name = f"kwok-node-{index}"
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {FAKE_NODE_ANNOTATION: "fake"},
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                    },
                },
                "status": {
                    "allocatable": dict(self.node_capacity),
                    "capacity": dict(self.node_capacity),
                },
            }
            try:
                self._admin_request("POST", "/api/v1/nodes", node)
            except AdminRequestError as error:
                if error.status != 409:
                    raise

        def nodes_ready() -> bool:
            items = self._admin_request("GET", "/api/v1/nodes")["items"]
            # Ready is not enough: until the node-lifecycle controller lifts the
            # not-ready taint, the scheduler refuses every pod.
            ready = [
                n
                for n in items
                if FAKE_NODE_ANNOTATION in n["metadata"].get("annotations", {}) and _node_ready(n)
            ]
            return len(ready) >= self.nodes

        self._wait(f"{self.nodes} kwok nodes Ready and untainted", "kwok", nodes_ready)


def _node_ready(node: Mapping[str, Any]) -> bool:
    """Ready, and the node-lifecycle controller has lifted its not-ready taint."""
    ready = any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )
    tainted = any(
        t.get("key") == "node.kubernetes.io/not-ready"
        for t in node.get("spec", {}).get("taints") or []
    )
    return ready and not tainted


def _drain_real_nodes(admin: AdminClient, names: Sequence[str], *, timeout: float = 60.0) -> None:
    """Delete every pod on the real nodes (1 s grace) and wait until the kubelets are done.

    While the kubelet still runs, it stops the containers, tears the pod network down,
    unmounts the volumes and only then lets the pod object go; what a crashed node left
    is :func:`nodecleanup.cleanup`'s job.
    """

    def pods() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for name in names:
            found += admin.request("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{name}")[
                "items"
            ]
        return found

    for pod in pods():
        meta = pod["metadata"]
        with contextlib.suppress(AdminRequestError):
            admin.request(
                "DELETE",
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 1},
            )
    realnode.wait_until(lambda: not pods(), timeout, interval=0.5)


def _is_our_process(pid: int, binary: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie (state Z) has exited; it only waits for a parent that is gone.
    if stat.rpartition(")")[2].split()[0] == "Z":
        return False
    return cmdline.split(b"\0", 1)[0].decode(errors="replace") == binary
