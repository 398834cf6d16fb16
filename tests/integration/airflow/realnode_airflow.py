"""Real Airflow components whose pods run on the real node, in the images DAGs name.

Why: DAGs say ``image="python:3.11-slim"`` and set no node selector; the e2e tests run
them unchanged. Two things make that work on the local control plane's real node:

- **The namespace.** :func:`real_node_namespace` annotates a namespace with
  :func:`~asyncpod.testing.realnode.namespace_annotations` (the API server's
  PodNodeSelector and PodTolerationRestriction admission then send every pod created
  there to the real node) and takes the annotations off afterwards.
- **The image's name.** ``make real-node`` builds Debian's python3 as
  ``localhost/python:3.11-slim`` and deliberately gives it no plain ``python:3.11-slim``
  tag (``asyncpod/testing/images.py``: it is not Docker's official image).
  :func:`short_name_alias` tags it, in the real node's containerd only and for the length
  of a test module, under the name the kubelet asks for ``python:3.11-slim`` (a short name
  is normalised with the default registry's host, which this file learns from the
  imported ``busybox:1.36`` rather than spelling it), then removes the tag. The pod runs
  Debian's Python 3.11 under a DAG's name for the official image, and nothing is pulled.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from asyncpod.testing import images
from asyncpod.testing.binaries import cache_dir
from asyncpod.testing.pytest_plugin import TestCluster
from asyncpod.testing.realnode import namespace_annotations

#: The name DAGs use, and the image built here that answers to it.
SHORT_PYTHON = "python:3.11-slim"
BUSYBOX = "busybox:1.36"


def python_image() -> str:
    """``localhost/python:3.11-slim`` once built (``make real-node``); skips otherwise."""
    image = images.built_python_image(cache_dir())
    if image is None:
        pytest.skip(images.missing_image_reason(cache_dir(), "python"))
    if not image.name.endswith(f"/{SHORT_PYTHON}"):
        pytest.skip(f"the Python image built here is {image.name}, not {SHORT_PYTHON}")
    return image.name


def _containerd_socket(kube_cluster: TestCluster) -> Path:
    # The real node keeps its containerd socket in node-0/ of the control plane's work
    # directory (realnode.NodeLayout.socket), beside the admin kubeconfig.
    assert kube_cluster.local is not None
    socket = kube_cluster.local.kubeconfig.parent / "node-0" / "containerd.sock"
    assert socket.exists(), f"no containerd socket at {socket}"
    return socket


def _ctr(socket: Path, *args: str) -> str:
    ctr = shutil.which("ctr")
    assert ctr is not None, "ctr (Debian's containerd) is not installed"
    result = subprocess.run(
        [ctr, f"--address={socket}", "--namespace=k8s.io", "images", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"ctr images {' '.join(args)}: {result.stderr}"
    return result.stdout


def normalised_name(short: str, known_short: str, names: list[str]) -> str:
    """The full name containerd stores ``short`` under, learnt from ``known_short``'s."""
    for name in names:
        if name.endswith(f"/library/{known_short}") and not name.startswith("localhost/"):
            return name[: -len(known_short)] + short
    raise AssertionError(f"containerd holds no normalised {known_short}: {names}")


@contextmanager
def short_name_alias(kube_cluster: TestCluster, source: str) -> Iterator[str]:
    """``source`` also answers to :data:`SHORT_PYTHON` on the real node, for a while."""
    socket = _containerd_socket(kube_cluster)
    names = _ctr(socket, "ls", "-q").split()
    assert source in names, f"{source} is not in the real node's containerd: {names}"
    alias = normalised_name(SHORT_PYTHON, BUSYBOX, names)
    made = alias not in names
    if made:
        _ctr(socket, "tag", source, alias)
    try:
        yield alias
    finally:
        if made:
            _ctr(socket, "rm", alias)


@contextmanager
def real_node_namespace(kube_cluster: TestCluster, namespace: str) -> Iterator[str]:
    """Every pod created in ``namespace`` goes to the real node, until the block ends."""
    path = f"/api/v1/namespaces/{namespace}"
    annotations = namespace_annotations()
    kube_cluster.admin.request("PATCH", path, {"metadata": {"annotations": annotations}})
    try:
        yield namespace
    finally:
        removal = {"metadata": {"annotations": dict.fromkeys(annotations)}}
        kube_cluster.admin.request("PATCH", path, removal)
