"""A server never reached fails fast: a typo, a stopped cluster or the wrong CA.

Until a session has had any answer from its API server, a refused connection, an
unknown host or a TLS failure is a configuration problem: ``asyncpod run`` and
``asyncpod batch`` exit 2 (nothing was created) with one message naming the server and
the kubeconfig and context it came from, and no summary of a run that never started;
the library raises :class:`~asyncpod.ServerUnreachableError`. The old behaviour was
16 "watch interrupted" warnings and an exit 1 after 2 min 10 s.

The bound asserted on the time is loose on purpose (a loaded machine must pass): it
tells "fails fast" from "rides out an outage window" (60 s and more), not a figure.
"""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import asyncpod
from asyncpod import PodSpec, ServerUnreachableError
from asyncpod.testing.pki import make_pki
from asyncpod.testing.pytest_plugin import TestCluster
from tests.cli.helpers import Cli, pods

pytestmark = pytest.mark.integration

FAST_ENOUGH = 45.0  # seconds; the outage windows it must not wait out are 60 s and more


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kubeconfig(path: Path, server: str, *, ca_data: str | None = None) -> Path:
    cluster: dict[str, object] = {"server": server}
    if ca_data is None:
        cluster["insecure-skip-tls-verify"] = True
    else:
        cluster["certificate-authority-data"] = ca_data
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": "not-a-secret"}}],
                "contexts": [{"name": "far", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "far",
            }
        ),
        encoding="utf-8",
    )
    return path


def _closed_port_config(tmp: Path) -> tuple[Path, str, str]:
    server = f"https://127.0.0.1:{_closed_port()}"
    return _kubeconfig(tmp / "closed.kubeconfig", server), server, "connection refused"


def _unknown_host_config(tmp: Path) -> tuple[Path, str, str]:
    server = "https://no-such-api-server.invalid:6443"
    return (
        _kubeconfig(tmp / "unknown.kubeconfig", server),
        server,
        "unknown host 'no-such-api-server.invalid'",
    )


def _wrong_ca_config(tmp: Path, kube_cluster: TestCluster) -> tuple[Path, str, str]:
    """The test cluster's own server, verified against a CA that did not sign it."""
    real = yaml.safe_load(kube_cluster.kubeconfig.read_text(encoding="utf-8"))
    current = next(c for c in real["contexts"] if c["name"] == real["current-context"])
    server = next(
        c["cluster"]["server"]
        for c in real["clusters"]
        if c["name"] == current["context"]["cluster"]
    )
    (tmp / "other-pki").mkdir()
    other_ca = make_pki(tmp / "other-pki").ca_cert.read_bytes()
    ca_data = base64.b64encode(other_ca).decode()
    return (
        _kubeconfig(tmp / "wrong-ca.kubeconfig", server, ca_data=ca_data),
        server,
        "TLS verification failed",
    )


Case = Callable[[Path, TestCluster], tuple[Path, str, str]]
CASES: dict[str, Case] = {
    "closed-port": lambda tmp, _: _closed_port_config(tmp),
    "unknown-host": lambda tmp, _: _unknown_host_config(tmp),
    "wrong-ca": _wrong_ca_config,
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", ["run", "batch"])
def test_the_cli_exits_2_at_once_naming_the_server(
    cli: Cli, kube_cluster: TestCluster, namespace: str, tmp_path: Path, case: str, command: str
) -> None:
    kubeconfig, server, problem = CASES[case](tmp_path, kube_cluster)
    if command == "run":
        args = ["run", "busybox:1.36", "--kubeconfig", str(kubeconfig), "--", "echo", "hi"]
    else:
        batch = tmp_path / "jobs.yaml"
        batch.write_text(
            "- image: busybox:1.36\n  command: [echo, hi]\n"
            "- image: busybox:1.36\n  command: [echo, ho]\n",
            encoding="utf-8",
        )
        args = ["batch", str(batch), "--kubeconfig", str(kubeconfig), "--run-id", "never"]
    args += ["--namespace", namespace]

    started = time.monotonic()
    process = cli.run(*args, timeout=FAST_ENOUGH * 2)
    elapsed = time.monotonic() - started

    assert process.popen.returncode == 2, process.stderr
    # One message: no repeated warnings, no summary, no --resume hint for a run never started.
    [line] = process.stderr.splitlines()
    said = f"cannot reach the API server {server} (kubeconfig {kubeconfig}, context 'far'): "
    assert line.startswith(f"asyncpod {command}: {said}"), line
    assert problem in line
    assert process.stdout == ""
    assert elapsed < FAST_ENOUGH, f"took {elapsed:.1f}s"
    assert not (cli.workdir / "never.results.jsonl").exists()
    assert pods(kube_cluster, namespace) == []


@pytest.mark.parametrize("case", list(CASES))
async def test_the_library_raises_server_unreachable(
    kube_cluster: TestCluster, namespace: str, tmp_path: Path, case: str
) -> None:
    kubeconfig, server, problem = CASES[case](tmp_path, kube_cluster)
    started = time.monotonic()
    with pytest.raises(ServerUnreachableError) as caught:  # on entry: first contact
        async with asyncpod.connect(kubeconfig, namespace=namespace) as cluster:
            await cluster.run(PodSpec("busybox:1.36", ["true"]))  # pragma: no cover
    elapsed = time.monotonic() - started

    assert caught.value.server == server
    assert caught.value.source == f"kubeconfig {kubeconfig}, context 'far'"
    assert problem in str(caught.value)
    assert elapsed < FAST_ENOUGH, f"took {elapsed:.1f}s"
    assert pods(kube_cluster, namespace) == []
