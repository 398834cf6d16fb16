"""Stop a local control plane whose owner died without stopping it.

Why: a :class:`~asyncpod.testing.controlplane.LocalControlPlane` starts etcd, the kube
binaries, kwok and a real node's kubelet and containerd in sessions of their own (so a
Ctrl-C aimed at pytest does not kill them mid-teardown), and ``stop()`` ends them. An
owner killed by SIGKILL, or by a SIGTERM it does not handle (``timeout``, a CI runner,
an OOM kill), never reaches ``stop()``: its control plane ran on, a gigabyte and two
open ports each, until somebody noticed. One small watcher process per plane, started
by the plane, waits for the owner's death and then does what ``stop()`` would have:
ends every process whose command line names the plane's directory (they all do),
cleans up what a real node leaves (mounts, cgroups, its bridge) and removes the
directory if the plane made it.

It does nothing when the owner stopped the plane itself (``stop()`` ends the watcher
first) or left it running on purpose (``detach()`` ends the watcher, and the
``state.json`` that ``asyncpod cluster up`` leaves says so as well).

Run as ``python -m asyncpod.testing.reaper OWNER_PID WORKDIR [--remove-workdir]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from asyncpod.testing import nodecleanup
from asyncpod.testing.realnode import NodeLayout

__all__ = ["REAL_NODES_FILE", "main", "reap", "wait_for_exit"]

#: The real nodes' layouts, written by the plane as each one starts: what the reaper
#: needs to clean up after a kubelet and containerd (see :mod:`nodecleanup`).
REAL_NODES_FILE = "real-nodes.json"
#: What ``detach()`` leaves: a plane meant to outlive its owner.
DETACHED_FILE = "state.json"


def wait_for_exit(pid: int) -> None:
    """Return once process ``pid`` has exited (at once if it already has).

    A pidfd where the kernel has them (Linux 5.3+): no polling, and a recycled pid
    cannot fool it. Elsewhere, a check every half second.
    """
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):
        while _running(pid):
            time.sleep(0.5)
        return
    try:
        select.select([descriptor], [], [])
    finally:
        os.close(descriptor)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap(workdir: Path, *, remove_workdir: bool, grace_seconds: float = 10.0) -> list[str]:
    """End what the plane in ``workdir`` left running; return what was done.

    SIGTERM to every process naming the directory, SIGKILL to those still there after
    ``grace_seconds``; then each real node's clean-up, then the directory if asked.
    """
    done: list[str] = []

    def remaining() -> list[int]:
        return _others(nodecleanup.processes_mentioning(str(workdir)))

    if _signal(remaining(), signal.SIGTERM, "terminated", done):
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline and remaining():
            time.sleep(0.1)
        _signal(remaining(), signal.SIGKILL, "killed", done)
    for layout in _layouts(workdir):
        done += nodecleanup.cleanup(layout)
    if remove_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
        done.append(f"removed {workdir}")
    return done


def _signal(pids: Sequence[int], sig: signal.Signals, verb: str, done: list[str]) -> bool:
    """Send ``sig`` to ``pids`` (gone ones skipped); say so in ``done``; any sent?"""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    if pids:
        done.append(f"{verb} pids {sorted(pids)}")
    return bool(pids)


def _others(pids: Sequence[int]) -> list[int]:
    """``pids`` without zombies: they have exited, and only wait for init to reap them."""
    return [pid for pid in pids if not nodecleanup.is_zombie(pid)]


def _layouts(workdir: Path) -> list[NodeLayout]:
    try:
        entries = json.loads((workdir / REAL_NODES_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [NodeLayout.from_json(entry) for entry in entries]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asyncpod.testing.reaper")
    parser.add_argument("owner", type=int, help="the pid whose death ends the plane")
    parser.add_argument("workdir", type=Path, help="the plane's directory")
    parser.add_argument("--remove-workdir", action="store_true")
    args = parser.parse_args(argv)
    wait_for_exit(args.owner)
    if (args.workdir / DETACHED_FILE).exists() or not args.workdir.exists():
        return 0  # left running on purpose, or already stopped
    done = reap(args.workdir, remove_workdir=args.remove_workdir)
    sys.stderr.write(f"owner {args.owner} died without stopping its control plane: {done}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
