"""The real node's pure parts: configs, subnet choice and the busybox image layer."""

from __future__ import annotations

import io
import ipaddress
import random
import tarfile
from pathlib import Path

import pytest

from asyncpod.testing import REAL_NODE_SELECTOR, REAL_NODE_TOLERATIONS, realnode
from asyncpod.testing.images import layer_tar
from asyncpod.testing.realnode import (
    REAL_NODE_TAINT,
    NodeLayout,
    cni_config,
    containerd_config,
    kubelet_argv,
    kubelet_config,
    pick_subnet,
)

LAYOUT = NodeLayout(
    name="asyncpod-real-0",
    directory=Path("/tmp/asyncpod-cp-x/node-0"),
    token="0123abcd",
    subnet="10.244.7.0/24",
    kubelet_port=41234,
)


def test_containerd_keeps_everything_under_the_node_directory() -> None:
    text = containerd_config(LAYOUT, "localhost/asyncpod/pause:1")
    # key = "value" lines (TOML; tomllib is not in Python 3.10)
    values = [line.split("=", 1)[1].strip() for line in text.splitlines() if " = " in line]
    absolute = [v.strip('"') for v in values if v.startswith('"/')]
    assert len(absolute) >= 6  # root, state, sockets, opt, runc root, CNI conf dir
    outside = [p for p in absolute if not p.startswith(f"{LAYOUT.directory}/")]
    assert outside == ["/usr/lib/cni"]  # only the plugin binaries are shared
    assert "  netns_mounts_under_state_dir = true\n" in text
    assert '  sandbox_image = "localhost/asyncpod/pause:1"\n' in text


def test_cni_bridge_is_private_and_routes_nowhere() -> None:
    plugin = cni_config(LAYOUT)["plugins"][0]
    assert plugin["bridge"] == LAYOUT.bridge
    assert len(LAYOUT.bridge) <= 15  # Linux interface names
    assert plugin["ipMasq"] is False
    assert plugin["isDefaultGateway"] is False
    assert "routes" not in plugin["ipam"]
    assert plugin["ipam"]["dataDir"].startswith(str(LAYOUT.directory))
    subnet = ipaddress.ip_network(plugin["ipam"]["ranges"][0][0]["subnet"])
    assert subnet.is_private


def test_kubelet_listens_on_the_private_bridge_tainted_and_on_cgroup_v1() -> None:
    config = kubelet_config(LAYOUT, Path("/ca.crt"))
    # Not loopback (the kubelet refuses a loopback node IP): the bridge's .1.
    assert config["address"] == LAYOUT.node_ip == "10.244.7.1"
    assert f"--node-ip={LAYOUT.node_ip}" in kubelet_argv(Path("/bin/kubelet"), LAYOUT)
    assert config["port"] == LAYOUT.kubelet_port
    assert config["readOnlyPort"] == 0
    assert config["failCgroupV1"] is False
    assert config["makeIPTablesUtilChains"] is False
    assert config["cgroupRoot"] == "/asyncpod-0123abcd"
    assert config["registerWithTaints"] == [dict(REAL_NODE_TAINT)]
    assert config["authentication"]["anonymous"]["enabled"] is False
    untainted = NodeLayout(**{**LAYOUT.to_json(), "directory": LAYOUT.directory, "tainted": False})
    assert kubelet_config(untainted, Path("/ca.crt"))["registerWithTaints"] == []


def test_selector_and_toleration_match_what_the_node_registers() -> None:
    argv = kubelet_argv(Path("/bin/kubelet"), LAYOUT)
    labels = next(a for a in argv if a.startswith("--node-labels="))
    for key, value in REAL_NODE_SELECTOR.items():
        assert f"{key}={value}" in labels
    (toleration,) = REAL_NODE_TOLERATIONS
    assert toleration["key"] == REAL_NODE_TAINT["key"]
    assert toleration["effect"] == REAL_NODE_TAINT["effect"]


def test_layout_round_trips_through_state_json() -> None:
    assert NodeLayout.from_json(LAYOUT.to_json()) == LAYOUT


def test_subnet_avoids_routes_already_there() -> None:
    # /proc/net/route: destinations in little-endian hex; 10.244.7.0 is 0007F40A.
    routes = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
    routes += "br0\t0007F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"

    class Always7(random.Random):
        calls = 0

        def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
            self.calls += 1
            # First try the taken 10.244.7.0/24, then 10.244.8.0/24.
            if stop == 256 and start == 240:
                return 244
            return 7 if self.calls <= 2 else 8

    assert pick_subnet(routes, Always7()) == "10.244.8.0/24"


def test_busybox_layer_has_the_binary_and_applet_links() -> None:
    data = layer_tar(b"\x7fELF fake", ["/bin/sh", "/usr/bin/env", "/bin/busybox"])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin/busybox"].mode == 0o755
    assert members["bin/sh"].issym()
    assert members["bin/sh"].linkname == "/bin/busybox"
    assert members["usr/bin/env"].linkname == "/bin/busybox"
    assert members["tmp"].mode == 0o1777
    assert {m.mtime for m in members.values()} == {0}  # reproducible
    assert data == layer_tar(b"\x7fELF fake", ["/bin/sh", "/usr/bin/env", "/bin/busybox"])


def test_real_node_is_refused_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert realnode.real_node_unavailable() == "a real node (kubelet + containerd) needs root"


def test_real_node_is_refused_without_cgroups(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(realnode, "CGROUP_ROOT", tmp_path)
    reason = realnode.real_node_unavailable()
    assert reason is not None
    assert "no cgroup filesystem" in reason
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    reason = realnode.real_node_unavailable()
    assert reason is not None
    assert "cgroup v2" in reason


def test_real_node_names_the_missing_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr(realnode, "CNI_BIN_DIR", Path("/nonexistent"))
    monkeypatch.setattr(realnode, "CGROUP_ROOT", Path("/sys/fs/cgroup"))
    if not Path("/sys/fs/cgroup/memory/cgroup.procs").is_file():
        pytest.skip("this host has no cgroup v1 memory controller")
    reason = realnode.real_node_unavailable()
    assert reason == (
        "missing Debian packages: busybox-static containerd containernetworking-plugins runc"
        " (run `make real-node` as root)"
    )
