"""Remove what a real node leaves behind, and say what is left.

Why a module of its own: stopping kubelet and containerd is not the end of a real node
(:mod:`asyncpod.testing.realnode`). Containers outlive a killed shim, the kubelet leaves
its root bind-mounted, runc leaves cgroups (the hybrid ``unified`` hierarchy too), the
bridge stays, and a crashed run leaves all of it plus overlay and tmpfs mounts.
:func:`cleanup` removes it all, found by the node's directory (command lines, mount
points) and its token (cgroup root, bridge); :func:`leftovers` says what remains, for
the pytest plugin and ``.ci/run`` to fail on.

It does not stop the kubelet or containerd politely (the control plane does, first),
and it touches nothing of another node: every match is on this node's own directory
or token, and shared host directories go only when no runtime runs at all.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from asyncpod.testing.realnode import NodeLayout, cgroup_hierarchies

__all__ = ["cleanup", "is_zombie", "leftovers", "processes_mentioning"]

_VAR_LOG_CONTAINERS = Path("/var/log/containers")
_CNI_RESULTS = Path("/var/lib/cni/results")


def _cgroup_pids(name: str) -> set[int]:
    pids: set[int] = set()
    for hierarchy in cgroup_hierarchies(unified=True):
        root = hierarchy / name.lstrip("/")
        if not root.is_dir():
            continue
        for directory, _, _ in os.walk(root):
            with contextlib.suppress(OSError, ValueError):
                text = (Path(directory) / "cgroup.procs").read_text()
                pids.update(int(p) for p in text.split())
    return pids


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (the node's directory)."""
    needle = text.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def _kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _mounts_under(directory: Path) -> list[str]:
    prefix = str(directory).rstrip("/") + "/"
    mounts = []
    for line in Path("/proc/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point.startswith(prefix):
            mounts.append(point)
    return mounts


_MNT_DETACH = 2


def _unmount(point: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(point.encode(), _MNT_DETACH) != 0:
        error = ctypes.get_errno()
        if error not in (errno.EINVAL, errno.ENOENT):
            raise OSError(error, os.strerror(error), point)


def cleanup(layout: NodeLayout, *, deadline_seconds: float = 15.0) -> list[str]:
    """Remove whatever the node left: processes, mounts, cgroups, the bridge, symlinks.

    Safe to call more than once and after a crash; returns what it had to remove (an
    empty list after a clean stop), so callers can tell a clean stop from a rescue.
    """
    removed: list[str] = []
    deadline = time.monotonic() + deadline_seconds
    # Containers first (by cgroup), then shims, kubelet and containerd (by their
    # command lines, which all name the node's directory).
    while time.monotonic() < deadline:
        pids = _cgroup_pids(layout.cgroup_name) | set(processes_mentioning(str(layout.directory)))
        pids = {pid for pid in pids if not is_zombie(pid)}
        if not pids:
            break
        removed.append(f"killed pids {sorted(pids)}")
        _kill_all(pids)
        time.sleep(0.2)
    for point in sorted(_mounts_under(layout.directory), key=len, reverse=True):
        with contextlib.suppress(OSError):
            _unmount(point)
            # The kubelet bind-mounts its root dir onto itself (to make it rshared) and
            # leaves that mount when it stops: expected, not a rescue.
            if point != str(layout.kubelet_root):
                removed.append(f"unmounted {point}")
    for hierarchy in cgroup_hierarchies(unified=True):
        root = hierarchy / layout.cgroup_name.lstrip("/")
        if not root.is_dir():
            continue
        for directory, _, _ in sorted(os.walk(root), key=lambda w: len(w[0]), reverse=True):
            with contextlib.suppress(OSError):
                Path(directory).rmdir()
    if Path(f"/sys/class/net/{layout.bridge}").exists():
        # We create the bridge before the kubelet starts and the bridge plugin never
        # deletes it: removing it is part of every stop, not a rescue.
        subprocess.run(["ip", "link", "delete", layout.bridge], check=False, capture_output=True)
    _remove_symlinks_into(_VAR_LOG_CONTAINERS, layout.directory)
    if _CNI_RESULTS.is_dir():
        for entry in _CNI_RESULTS.glob(f"{layout.network}-*"):
            with contextlib.suppress(OSError):
                entry.unlink()
    _tidy_host()
    return removed


# Host paths the kubelet, containerd and CNI create whatever their configuration says
# (empty once a node is gone, except the kubelet's device-plugin socket, left stale).
# (/usr/libexec/kubernetes/kubelet-plugins/volume/exec is not ours: every
# kube-controller-manager, kwok-only planes included, creates and watches it.)
_HOST_DIRS = (
    "/var/lib/kubelet/device-plugins",
    "/var/lib/kubelet",
    "/run/containerd/s",
    "/run/containerd/fifo",
    "/run/containerd",
    "/var/lib/cni/results",
    "/var/lib/cni",
    "/var/log/containers",
)
_RUNTIME_COMMANDS = ("kubelet", "containerd", "containerd-shim", "containerd-shim-runc-v2")


def _tidy_host() -> None:
    """Remove those host paths when no kubelet or containerd runs here any more.

    Only empty directories go (and the stale socket): another node, a system
    containerd or anything else that still uses one keeps it.
    """
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in _RUNTIME_COMMANDS:
                    return
    socket = Path("/var/lib/kubelet/device-plugins/kubelet.sock")
    with contextlib.suppress(OSError):
        if socket.is_socket():
            socket.unlink()
    for directory in _HOST_DIRS:
        with contextlib.suppress(OSError):
            Path(directory).rmdir()


def leftovers(layout: NodeLayout) -> list[str]:
    """What of this node is still there (empty after :func:`cleanup`)."""
    found = []
    pids = [p for p in processes_mentioning(str(layout.directory)) if not is_zombie(p)]
    pids += [p for p in _cgroup_pids(layout.cgroup_name) if not is_zombie(p)]
    if pids:
        found.append(f"processes {sorted(set(pids))}")
    found += [f"mount {m}" for m in _mounts_under(layout.directory)]
    found += [
        f"cgroup {h / layout.cgroup_name.lstrip('/')}"
        for h in cgroup_hierarchies(unified=True)
        if (h / layout.cgroup_name.lstrip("/")).exists()
    ]
    if Path(f"/sys/class/net/{layout.bridge}").exists():
        found.append(f"bridge {layout.bridge}")
    return found


def _remove_symlinks_into(directory: Path, target: Path) -> None:
    if not directory.is_dir():
        return
    prefix = str(target).rstrip("/") + "/"
    for entry in directory.iterdir():
        with contextlib.suppress(OSError):
            if entry.is_symlink() and str(entry.readlink()).startswith(prefix):
                entry.unlink()


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # gone counts as done
    return stat.rpartition(")")[2].split()[0] == "Z"
