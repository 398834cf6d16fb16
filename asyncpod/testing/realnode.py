"""A real node for the local control plane: kubelet + containerd + runc, real containers.

Why: kwok plays every pod from annotations, so nothing there proves that asyncpod reads
a real kubelet's statuses, real container logs, a real termination-message file, a real
OOM kill or a real SIGTERM grace period. ``LocalControlPlane(real_nodes=1)`` adds one
node that runs pods for real, beside the kwok nodes.

The node is tainted and labelled, so only pods that ask for it land there::

    spec.nodeSelector = REAL_NODE_SELECTOR        # {"asyncpod.dev/node": "real"}
    spec.tolerations = REAL_NODE_TOLERATIONS      # tolerate asyncpod.dev/real-node

Everything of a node lives under the control plane's temp dir (``asyncpod-cp-*/node-N``):
containerd's root, state, socket and runc root, the kubelet's root and pod logs, the
CNI config and IP allocations. What must live elsewhere is named after a per-node
token and removed by :func:`asyncpod.testing.nodecleanup.cleanup`: the cgroup root
``/asyncpod-TOKEN`` in each cgroup v1 hierarchy, the bridge ``apbrTOKEN`` (a private
/24 that routes nowhere: no gateway route in pods, no masquerading; its .1 is the node
IP, where the kubelet listens, because a kubelet refuses 127.0.0.1), the kubelet's
symlinks in /var/log/containers, and the shim sockets containerd 1.6 always puts in
/run/containerd/s (they go when the shims exit).

No registry: containerd runs with an HTTP(S) proxy that refuses every connection, so a
pull of an image that was not imported fails at once with a real ``ErrImagePull``;
busybox images are imported from Debian's busybox-static (:mod:`asyncpod.testing.images`),
and so are ``localhost/python:3.X-slim`` (Debian's python3) and ``localhost/asyncpod:dev``
when ``make real-node`` has built them.

What it does not do: kube-proxy (no Services), cluster DNS, iptables (the kubelet's
``makeIPTablesUtilChains`` is off), cgroup v2 specifics, or anything without root.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncpod.testing.images import PAUSE_IMAGE, build_busybox_archive, image_archives

__all__ = [
    "DEBIAN_PACKAGES",
    "REAL_NODE_LABEL",
    "REAL_NODE_SELECTOR",
    "REAL_NODE_TAINT",
    "REAL_NODE_TOLERATIONS",
    "NodeLayout",
    "RealNodeSetupError",
    "cgroup_hierarchies",
    "cni_config",
    "containerd_config",
    "kubelet_config",
    "namespace_annotations",
    "real_node_unavailable",
]

REAL_NODE_LABEL = "asyncpod.dev/node"
REAL_NODE_SELECTOR: Mapping[str, str] = {REAL_NODE_LABEL: "real"}
REAL_NODE_TAINT: Mapping[str, str] = {
    "key": "asyncpod.dev/real-node",
    "value": "true",
    "effect": "NoSchedule",
}
REAL_NODE_TOLERATIONS: tuple[Mapping[str, str], ...] = (
    {"key": "asyncpod.dev/real-node", "operator": "Exists", "effect": "NoSchedule"},
)

# What the real node needs from Debian; `python -m asyncpod.testing --real-node` installs it.
DEBIAN_PACKAGES = ("containerd", "runc", "containernetworking-plugins", "busybox-static")
# What building the Python images needs (asyncpod.testing.images), installed beside them.
IMAGE_BUILD_PACKAGES = ("mmdebstrap",)
_TOOLS = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "busybox": "busybox-static",
}
CNI_BIN_DIR = Path("/usr/lib/cni")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Any connection through this proxy is refused at once: nothing listens on port 9 here.
_NO_REGISTRY_PROXY = "http://127.0.0.1:9"


def real_node_unavailable() -> str | None:
    """Why a real node cannot run on this machine, or ``None`` when it can."""
    if os.geteuid() != 0:
        return "a real node (kubelet + containerd) needs root"
    if (
        not (CGROUP_ROOT / "memory" / "cgroup.procs").is_file()
        and not (CGROUP_ROOT / "cgroup.controllers").is_file()
    ):
        return f"no cgroup filesystem with a memory controller under {CGROUP_ROOT}"
    if (CGROUP_ROOT / "cgroup.controllers").is_file():
        return "cgroup v2 hosts are not wired up yet (this harness was built on cgroup v1)"
    missing = missing_debian_packages()
    if missing:
        return f"missing Debian packages: {' '.join(missing)} (run `make real-node` as root)"
    return None


def namespace_annotations() -> dict[str, str]:
    """Annotations that send every pod of a namespace to the real node.

    The API server of a control plane with real nodes runs the PodNodeSelector and
    PodTolerationRestriction admission plugins, which add these to each pod created in
    an annotated namespace: for clients that set no node selector or toleration (the
    CLI, a launcher running in a pod).
    """
    selector = ",".join(f"{k}={v}" for k, v in REAL_NODE_SELECTOR.items())
    return {
        "scheduler.alpha.kubernetes.io/node-selector": selector,
        "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps(
            [dict(t) for t in REAL_NODE_TOLERATIONS]
        ),
    }


class RealNodeSetupError(RuntimeError):
    """Setting the real node up failed (packages, bridge, images); says what and why."""


def missing_debian_packages() -> list[str]:
    missing = {pkg for tool, pkg in _TOOLS.items() if shutil.which(tool) is None}
    if not (CNI_BIN_DIR / "bridge").is_file():
        missing.add("containernetworking-plugins")
    return sorted(missing)


def install_debian_packages(extra: tuple[str, ...] = ()) -> list[str]:
    """``apt-get install`` what the real node misses (root only); return what it installed.

    ``extra``: more packages, each named after the program it installs (``mmdebstrap``),
    installed when that program is missing.

    Installing ``containerd`` does not start Debian's system service where services
    cannot start (containers, policy-rc.d); the real node never uses it either way.
    """
    missing = missing_debian_packages()
    missing += [name for name in extra if shutil.which(name) is None]
    if not missing:
        return []
    if os.geteuid() != 0:
        names = " ".join(missing)
        raise RealNodeSetupError(f"needs root to install {names}: sudo apt-get install {names}")
    apt = shutil.which("apt-get")
    if apt is None:
        raise RealNodeSetupError(f"no apt-get here; install these yourself: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", *missing]):
        try:
            result = subprocess.run(
                command, env=env, capture_output=True, text=True, check=False, timeout=600
            )
        except subprocess.TimeoutExpired:
            raise RealNodeSetupError(f"`{' '.join(command)}` took over 600s") from None
        if result.returncode != 0:
            raise RealNodeSetupError(
                f"`{' '.join(command)}` failed ({result.returncode}):\n{result.stderr[-2000:]}"
            )
    return missing


def busybox_binary() -> Path:
    found = shutil.which("busybox")
    if found is None:
        raise FileNotFoundError("busybox (Debian busybox-static) is not installed")
    return Path(found)


@dataclass(frozen=True, slots=True)
class NodeLayout:
    """Where one real node keeps everything; derived from its directory and a token."""

    name: str
    directory: Path
    token: str  # 8 hex chars: names the cgroup root, the bridge and the CNI network
    subnet: str  # a private /24 for pod IPs
    kubelet_port: int
    tainted: bool = True  # only pods that tolerate REAL_NODE_TAINT land here

    @property
    def socket(self) -> Path:
        return self.directory / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.directory / "containerd.toml"

    @property
    def kubelet_config(self) -> Path:
        return self.directory / "kubelet.yaml"

    @property
    def kubelet_root(self) -> Path:
        return self.directory / "kubelet"

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubelet.kubeconfig"

    @property
    def cni_conf_dir(self) -> Path:
        return self.directory / "net.d"

    @property
    def cgroup_name(self) -> str:
        return f"/asyncpod-{self.token}"

    @property
    def bridge(self) -> str:
        return f"apbr{self.token}"  # 12 chars; Linux allows 15

    @property
    def node_ip(self) -> str:
        """The bridge's own address (.1 of the subnet): the kubelet listens there.

        Not 127.0.0.1: the kubelet refuses a loopback node IP, and the API server
        reaches a node's kubelet (pods/log, exec) only through the node's addresses.
        """
        return str(next(ipaddress.ip_network(self.subnet).hosts()))

    @property
    def network(self) -> str:
        return f"asyncpod-{self.token}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "directory": str(self.directory),
            "token": self.token,
            "subnet": self.subnet,
            "kubelet_port": self.kubelet_port,
            "tainted": self.tainted,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NodeLayout:
        return cls(
            name=data["name"],
            directory=Path(data["directory"]),
            token=data["token"],
            subnet=data["subnet"],
            kubelet_port=int(data["kubelet_port"]),
            tainted=bool(data.get("tainted", True)),
        )


# ----------------------------------------------------------------- config (pure)
def containerd_config(layout: NodeLayout, pause_image: str) -> str:
    """containerd 1.6 config: every path under the node's directory, CRI on runc.

    ``restrict_oom_score_adj``: the kubelet asks for negative OOM scores (-998 for the
    sandbox), which needs CAP_SYS_RESOURCE; where root lacks it (these VMs) runc would
    fail every sandbox with "can't get final child's PID from pipe: EOF". Restricted,
    containerd never asks for less than its own score.
    """
    d = layout.directory
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    disabled = ", ".join(
        f'"io.containerd.snapshotter.v1.{name}"' for name in ("aufs", "btrfs", "zfs", "devmapper")
    )
    return f"""version = 2
root = "{d / "containerd-root"}"
state = "{d / "containerd-state"}"
disabled_plugins = [{disabled}]

[grpc]
  address = "{layout.socket}"
[ttrpc]
  address = "{layout.socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d / "containerd-opt"}"

[{cri}]
  sandbox_image = "{pause_image}"
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{d / "runc"}"
  [{cri}.cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{layout.cni_conf_dir}"
"""


def cni_config(layout: NodeLayout) -> dict[str, Any]:
    """A bridge on a private /24: pods reach each other and the bridge, nothing beyond."""
    return {
        "cniVersion": "1.0.0",
        "name": layout.network,
        "plugins": [
            {
                "type": "bridge",
                "bridge": layout.bridge,
                "isGateway": True,  # the bridge gets .1, but pods get no default route
                "isDefaultGateway": False,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": layout.subnet}]],
                    "dataDir": str(layout.directory / "cni-ipam"),
                },
            }
        ],
    }


def kubelet_config(layout: NodeLayout, ca_cert: Path) -> dict[str, Any]:
    """KubeletConfiguration (JSON is YAML) for a loopback kubelet on cgroup v1."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": layout.node_ip,
        "port": layout.kubelet_port,
        "readOnlyPort": 0,
        "healthzPort": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        # Only clients with a certificate from our CA get past authentication (the API
        # server, for pods/log and exec); every one of them may do anything.
        "authorization": {"mode": "AlwaysAllow"},
        "containerRuntimeEndpoint": f"unix://{layout.socket}",
        "imageServiceEndpoint": f"unix://{layout.socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": layout.cgroup_name,
        "failCgroupV1": False,
        "failSwapOn": False,
        "makeIPTablesUtilChains": False,
        "podLogsDir": str(layout.directory / "pod-logs"),
        "volumePluginDir": str(layout.directory / "volume-plugins"),
        "registerWithTaints": [dict(REAL_NODE_TAINT)] if layout.tainted else [],
        # Imported images must never be garbage-collected (nothing could pull them back)
        # and a busy shared disk must not evict test pods.
        "imageGCHighThresholdPercent": 100,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "0%",
            "nodefs.inodesFree": "0%",
            "imagefs.available": "0%",
        },
        "nodeStatusUpdateFrequency": "4s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "0s",
        "serializeImagePulls": False,
        "resolvConf": "/etc/resolv.conf",
        "shutdownGracePeriod": "0s",
        "oomScoreAdj": 0,  # -999 by default: needs CAP_SYS_RESOURCE (see containerd_config)
        "logging": {"format": "text"},
    }


def kubelet_argv(kubelet: Path, layout: NodeLayout) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in REAL_NODE_SELECTOR.items())
    return [
        str(kubelet),
        f"--config={layout.kubelet_config}",
        f"--kubeconfig={layout.kubeconfig}",
        f"--root-dir={layout.kubelet_root}",
        f"--cert-dir={layout.directory / 'kubelet-pki'}",
        f"--hostname-override={layout.name}",
        f"--node-ip={layout.node_ip}",
        f"--node-labels={labels},asyncpod.dev/node-token={layout.token}",
        "--v=2",
    ]


def containerd_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[key] = _NO_REGISTRY_PROXY
    env["NO_PROXY"] = env["no_proxy"] = ""
    return env


def pick_subnet(routes_text: str, rng: random.Random | None = None) -> str:
    """A 10.240-10.255 /24 that no route of this machine covers yet (/proc/net/route)."""
    used: set[tuple[int, int]] = set()
    for line in routes_text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        dest = int(fields[1], 16).to_bytes(4, "little")
        if dest[0] == 10:
            used.add((dest[1], dest[2]))
    chooser = rng or random.SystemRandom()
    for _ in range(1000):
        second, third = chooser.randrange(240, 256), chooser.randrange(256)
        if (second, third) not in used:
            return f"10.{second}.{third}.0/24"
    raise RuntimeError("no free 10.240.0.0/12 /24 for the real node's pod network")


# ------------------------------------------------------------ start-up steps (I/O)
def prepare(layout: NodeLayout, ca_cert: Path, kubeconfig_text: str, cache: Path) -> list[Path]:
    """Write configs, create the cgroup root and the bridge; return the image archives."""
    d = layout.directory
    for sub in ("net.d", "cni-ipam", "pod-logs", "kubelet", "kubelet-pki", "volume-plugins"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    layout.containerd_config.write_text(containerd_config(layout, PAUSE_IMAGE))
    (layout.cni_conf_dir / "10-asyncpod.conflist").write_text(json.dumps(cni_config(layout)))
    layout.kubelet_config.write_text(json.dumps(kubelet_config(layout, ca_cert), indent=2))
    layout.kubeconfig.write_text(kubeconfig_text)
    layout.kubeconfig.chmod(0o600)
    _make_cgroup_root(layout.cgroup_name)
    _make_bridge(layout)
    return _image_archives(cache)


def _make_bridge(layout: NodeLayout) -> None:
    """Create the pod bridge with the node IP up front (the bridge plugin adopts it)."""
    prefix = ipaddress.ip_network(layout.subnet).prefixlen
    for command in (
        ["ip", "link", "add", layout.bridge, "type", "bridge"],
        ["ip", "addr", "add", f"{layout.node_ip}/{prefix}", "dev", layout.bridge],
        ["ip", "link", "set", layout.bridge, "up"],
    ):
        _run(command)


def _run(command: list[str], *, timeout: float = 60) -> None:
    """Run a set-up command; a failure says which command and what it printed."""
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout)
    except subprocess.CalledProcessError as error:
        output = (error.stderr or error.stdout or "").strip()[-2000:]
        raise RealNodeSetupError(
            f"`{' '.join(command)}` failed ({error.returncode}): {output}"
        ) from None
    except subprocess.TimeoutExpired as error:
        raise RealNodeSetupError(f"`{' '.join(command)}` took over {timeout:g}s") from error


def _image_archives(cache: Path) -> list[Path]:
    """The busybox and pause archives, built once per busybox binary into ``cache``.

    Plus the Python (and asyncpod) images when ``make real-node`` has built them: they
    are only looked up here, never built (:func:`asyncpod.testing.images.image_archives`).
    """
    busybox = busybox_binary()
    stat = busybox.stat()
    target = cache / f"images-v3-busybox-{stat.st_size}-{int(stat.st_mtime)}"
    if not (target / "pause.tar").is_file():
        staging = cache / f".{target.name}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        build_busybox_archive(busybox, staging)
        with contextlib.suppress(OSError):
            staging.rename(target)
        shutil.rmtree(staging, ignore_errors=True)
    return [target / "busybox.tar", target / "pause.tar", *image_archives(cache)]


def cgroup_hierarchies(*, unified: bool = False) -> list[Path]:
    """The cgroup v1 hierarchies under /sys/fs/cgroup; with ``unified``, the hybrid v2 too.

    runc also creates each container's cgroup in the hybrid ``unified`` hierarchy, so
    clean-up looks there; the kubelet's root is only needed in the v1 ones.
    """
    types = ("cgroup", "cgroup2") if unified else ("cgroup",)
    found = []
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] in types and fields[1].startswith(str(CGROUP_ROOT)):
            found.append(Path(fields[1]))
    return sorted(set(found))


def _make_cgroup_root(name: str) -> None:
    for hierarchy in cgroup_hierarchies():
        path = hierarchy / name.lstrip("/")
        path.mkdir(exist_ok=True)
        if (hierarchy / "cpuset.cpus").is_file():
            # A fresh cpuset cgroup has no CPUs and no memory nodes: inherit the parent's.
            for item in ("cpuset.cpus", "cpuset.mems"):
                (path / item).write_text((hierarchy / item).read_text())


def needed_first(archive: Path) -> bool:
    """Whether ``archive`` must be in containerd before the kubelet starts (busybox, pause)."""
    return archive.name in {"busybox.tar", "pause.tar"}


class BackgroundImport:
    """``import_images`` in a thread (the Python archives take seconds); ``join`` re-raises."""

    def __init__(self, ctr: str, socket: Path, archives: list[Path]) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(ctr, socket, archives), name="image-import", daemon=True
        )
        self._thread.start()

    def _run(self, ctr: str, socket: Path, archives: list[Path]) -> None:
        try:
            import_images(ctr, socket, archives)
        except BaseException as error:  # noqa: BLE001 - handed to join()
            self._error = error

    def join(self, timeout: float = 180.0) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RealNodeSetupError(f"importing the images took over {timeout:g}s")
        if self._error is not None:
            raise self._error


def import_images(ctr: str, socket: Path, archives: list[Path]) -> None:
    for archive in archives:
        _run(
            [ctr, f"--address={socket}", "--namespace=k8s.io", "images", "import", str(archive)],
            timeout=120,
        )


def wait_until(probe: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(interval)
    return probe()
