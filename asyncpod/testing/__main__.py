"""``python -m asyncpod.testing [--real-node]``: build what is missing, print the paths.

Prints where each control-plane binary is. ``--real-node`` also installs the Debian
packages of the real node (root, with apt-get, only those missing), builds the kubelet,
and builds the Python and asyncpod images (:mod:`asyncpod.testing.images`; once, then
from the cache).

Why here and not in :mod:`asyncpod.testing.binaries`: this command stands above the
three modules it drives (the Go builds, the real node's packages, the images), which
import downwards only; in ``binaries`` it made a circle with ``images``, which takes the
cache's lock from ``binaries``.
"""

from __future__ import annotations

import argparse
import sys
import time

from asyncpod.testing import images, realnode
from asyncpod.testing.binaries import cache_dir, ensure_binaries, ensure_kubelet

__all__ = ["main"]

_BINARY_FIELDS = ("etcd", "kube_apiserver", "kube_controller_manager", "kube_scheduler", "kwok")


def main(argv: list[str] | None = None) -> int:
    """The command; returns its exit status (1: the real node cannot be set up here)."""
    parser = argparse.ArgumentParser(prog="python -m asyncpod.testing")
    parser.add_argument(
        "--real-node",
        action="store_true",
        help="also set up the real node: Debian packages (root) and the kubelet",
    )
    args = parser.parse_args(argv)
    binaries = ensure_binaries()
    for field in _BINARY_FIELDS:
        sys.stdout.write(f"{field}: {getattr(binaries, field)}\n")
    if not args.real_node:
        return 0
    try:
        installed = realnode.install_debian_packages(realnode.IMAGE_BUILD_PACKAGES)
    except realnode.RealNodeSetupError as error:
        sys.stderr.write(f"real node: {error}\n")
        return 1
    if installed:
        sys.stdout.write(f"installed: {' '.join(installed)}\n")
    sys.stdout.write(f"kubelet: {ensure_kubelet()}\n")
    reason = realnode.real_node_unavailable()
    if reason is not None:
        sys.stderr.write(f"real node cannot run here: {reason}\n")
        return 1
    _build_images()
    sys.stdout.write("real node: ready (LocalControlPlane(real_nodes=1), cluster up --real-node)\n")
    return 0


def _build_images() -> None:
    """The real node's Python images (built once, cached); a failure is one line, not fatal.

    Without them the real node still runs busybox, and the tests that need a Python image
    skip, quoting the line recorded here.
    """
    started = time.monotonic()
    try:
        built = images.build_images(cache_dir(), _to_stderr)
    except images.ImageBuildError as error:
        sys.stderr.write(f"real node: Python images not built: {error}\n")
        return
    for image in built:
        sys.stdout.write(f"image {' '.join(image.names)}: {image.archive}\n")
    sys.stdout.write(f"images ready in {time.monotonic() - started:.1f}s\n")


def _to_stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    raise SystemExit(main())
