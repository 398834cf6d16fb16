"""``asyncpod cluster up | down | env | status``: a local control plane for a person.

Why: trying asyncpod should not need a cloud account or Docker. ``up`` builds the
binaries if needed (minutes, once), starts etcd, kube-apiserver, controller-manager,
scheduler and kwok on loopback, and leaves them running; ``env`` prints the line that
points ``KUBECONFIG`` at it; ``down`` stops every process and removes the directory.

Its nodes are simulated by kwok: pods are scheduled and "run", but no container
executes. Everything said here says so, so nobody mistakes it for a real cluster.

``up --real-node`` (root; ``make real-node`` first) starts a real node instead: a
kubelet with containerd and runc, so ``asyncpod run busybox:1.36 -- ...`` runs a real
container (busybox images are imported locally; there is no registry). Its kwok nodes
default to none then, so every pod lands on the real node.

The control plane makes its PKI with ``cryptography``, which comes with the ``testing``
extra, not with asyncpod itself: it is imported when a command needs it, and when it is
missing the command says which extra to install (:func:`missing_testing_extra`) instead
of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from asyncpod.testing.binaries import BuildError, cache_dir  # standard library only

__all__ = [
    "TESTING_EXTRA",
    "add_parser",
    "default_state_dir",
    "ensure_local_cluster",
    "missing_testing_extra",
]

#: What ``pip install 'asyncpod[testing]'`` adds (pyproject.toml), by import name.
TESTING_EXTRA = frozenset({"cryptography", "pytest", "pytest_asyncio"})

SIMULATED_NOTE = "nodes are simulated by kwok: pods are scheduled and run, no container executes"
REAL_NOTE = (
    "real node: a kubelet with containerd and runc runs every container "
    "(local images: busybox:1.36, busybox:1.35)"
)


def default_state_dir() -> Path:
    return cache_dir().parent / "cluster"


def missing_testing_extra(command: str) -> str | None:
    """None when the local control plane can be imported; else the one line saying why not.

    ``command`` starts the line (``asyncpod cluster up: ...``). Only a missing module of
    the ``testing`` extra is explained; any other import error is a bug, and raised.
    """
    try:
        importlib.import_module("asyncpod.testing.controlplane")
    except ModuleNotFoundError as error:
        missing = (error.name or "").partition(".")[0]
        if missing not in TESTING_EXTRA:
            raise
        return (
            f"{command}: the local control plane needs the testing extra ({missing} is not "
            "installed): pip install 'asyncpod[testing]'"
        )
    return None


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "cluster", help="start/stop a local Kubernetes control plane (simulated nodes)"
    )
    parser.add_argument(
        "--state-dir", type=Path, default=None,
        help=f"where the running control plane lives (default {default_state_dir()})",
    )  # fmt: skip
    actions = parser.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="start it (builds the binaries the first time)")
    up.add_argument(
        "--nodes", type=int, default=None,
        help="number of kwok nodes (default 3; 0 with --real-node)",
    )  # fmt: skip
    up.add_argument(
        "--real-node", action="store_true",
        help="add a real node (kubelet + containerd + runc; root, `make real-node` first)",
    )  # fmt: skip
    actions.add_parser("down", help="stop every process and remove the state directory")
    actions.add_parser("env", help="print `export KUBECONFIG=...` for a shell to eval")
    actions.add_parser("status", help="say whether it runs, and where")
    parser.set_defaults(handler=_handle)


def _alive(state_dir: Path) -> dict[str, object] | None:
    from asyncpod.testing.controlplane import LocalControlPlane

    state = LocalControlPlane.read_state(state_dir)
    if state is None:
        return None
    pids = state.get("pids", {})
    if isinstance(pids, dict) and all(Path(f"/proc/{pid}").exists() for pid in pids.values()):
        return state
    return None


def _note(state: dict[str, object]) -> str:
    return REAL_NOTE if state.get("real_nodes") else SIMULATED_NOTE


def ensure_local_cluster(state_dir: Path, *, nodes: int = 3, real_node: bool = False) -> Path:
    """Start the local control plane in ``state_dir`` unless it runs; return its kubeconfig.

    ``real_node``: with a real node (untainted, so every pod may land there). Needs the
    ``testing`` extra (:func:`missing_testing_extra` says whether it is there).
    """
    from asyncpod.testing.controlplane import ControlPlaneError, LocalControlPlane

    state = _alive(state_dir)
    if state is not None:
        if real_node and not state.get("real_nodes"):
            raise ControlPlaneError(
                "a local control plane without a real node is running; "
                "`asyncpod cluster down` first, then `asyncpod cluster up --real-node`"
            )
        return Path(str(state["kubeconfig"]))
    LocalControlPlane.stop_detached(state_dir)  # half-dead leftovers of an earlier run
    state_dir.mkdir(parents=True, exist_ok=True)
    plane = LocalControlPlane(
        nodes=nodes, workdir=state_dir, real_nodes=1 if real_node else 0, real_node_taint=False
    )
    plane.start()
    real_names = plane.real_node_names
    plane.detach()
    what = f"{nodes} kwok nodes; {SIMULATED_NOTE}"
    if real_node:
        what = f"{nodes} kwok nodes + real node {', '.join(real_names)}; {REAL_NOTE}"
    sys.stderr.write(
        f"local control plane up in {plane.startup_seconds:.1f}s at {plane.server} ({what})\n"
    )
    return plane.kubeconfig


def _handle(args: argparse.Namespace) -> int:
    missing = missing_testing_extra(f"asyncpod cluster {args.action}")
    if missing is not None:
        sys.stderr.write(missing + "\n")
        return 2
    from asyncpod.testing.controlplane import ControlPlaneError, LocalControlPlane

    state_dir: Path = args.state_dir or default_state_dir()
    try:
        if args.action == "up":
            nodes = args.nodes if args.nodes is not None else (0 if args.real_node else 3)
            kubeconfig = ensure_local_cluster(state_dir, nodes=nodes, real_node=args.real_node)
            sys.stdout.write(
                f"KUBECONFIG={kubeconfig}\n"
                f'  point tools at it:  eval "$(asyncpod cluster env)"\n'
                f"  stop it:            asyncpod cluster down\n"
            )
            return 0
        if args.action == "down":
            stopped = LocalControlPlane.stop_detached(state_dir)
            sys.stdout.write(f"stopped: {', '.join(stopped) or 'nothing was running'}\n")
            return 0
        state = _alive(state_dir)
        if args.action == "env":
            if state is None:
                sys.stderr.write("no local control plane runs; start one: asyncpod cluster up\n")
                return 1
            sys.stdout.write(f"export KUBECONFIG={state['kubeconfig']}\n")
            return 0
        if state is None:
            sys.stdout.write("not running\n")
            return 1
        sys.stdout.write(f"running at {state['server']} ({_note(state)})\n")
        sys.stdout.write(f"KUBECONFIG={state['kubeconfig']}\n")
        return 0
    except (BuildError, ControlPlaneError, OSError) as error:
        sys.stderr.write(f"asyncpod cluster {args.action}: {error}\n")
        return 1


if os.name != "posix":  # pragma: no cover - the control plane needs POSIX process control
    raise ImportError("asyncpod cluster needs a POSIX system")
