"""``python -m asyncpod.testing``: build the control-plane binaries that are missing.

Prints where each binary is. ``--real-node`` also installs the Debian packages of the
real node (root) and builds the kubelet. (A ``__main__`` of the package, rather than ``python -m
asyncpod.testing.binaries``, because the package imports that module itself.)
"""

from __future__ import annotations

from asyncpod.testing.binaries import main

if __name__ == "__main__":
    raise SystemExit(main())
