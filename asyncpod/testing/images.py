"""Container images for the real node, built here from Debian's ``busybox-static``.

Why: there is no registry to pull from, and the real node (:mod:`asyncpod.testing.realnode`)
must still run ``busybox:1.36`` when a test asks for it. A busybox image is one static
binary plus a symlink per applet, so we write the image ourselves: one layer tar, an
image config and a Docker-archive ``manifest.json`` naming the tags, which
``ctr images import`` loads into containerd's ``k8s.io`` namespace, where the kubelet's
CRI finds them without pulling.

The archive is deterministic (fixed mtimes, sorted entries), so it is built once per
busybox binary and cached beside the control-plane binaries.

It does not build anything bigger (no Python image: that would need a whole Debian
root filesystem) and it never pulls.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BUSYBOX_TAGS",
    "PAUSE_IMAGE",
    "ImageArchive",
    "build_busybox_archive",
    "busybox_applets",
    "layer_tar",
]

# The names tests and the demo use. Tags (not :latest) resolve to IfNotPresent, so
# the kubelet takes the imported image and never tries a registry; ``busybox:latest``
# is imported too for specs that say it (they then need imagePullPolicy: IfNotPresent).
# ``localhost/busybox:1.36`` is for recordings: the kubelet reports a short name with
# the default registry's host prepended, and no such host name goes into this repository.
BUSYBOX_TAGS: tuple[str, ...] = (
    "busybox:1.36",
    "busybox:1.35",
    "busybox:latest",
    "localhost/busybox:1.36",
)
# The sandbox ("pause") image containerd starts first in every pod: busybox sleeping.
# containerd stops sandboxes with SIGKILL, so a sleeping shell is enough here.
PAUSE_IMAGE = "localhost/asyncpod/pause:1"

_MTIME = 0  # reproducible layers
_DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True)
class ImageArchive:
    """An image archive on disk and the names it carries."""

    path: Path
    names: tuple[str, ...]


def busybox_applets(busybox: Path) -> list[str]:
    """The applet paths (``/bin/sh``, ``/usr/bin/env``, ...) this busybox installs."""
    listing = subprocess.run(
        [str(busybox), "--list-full"], check=True, capture_output=True, text=True
    ).stdout
    return sorted({line.strip() for line in listing.splitlines() if line.strip()})


def layer_tar(busybox_bytes: bytes, applets: Sequence[str]) -> bytes:
    """One uncompressed layer: /bin/busybox, a symlink per applet, /tmp, /etc/passwd."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, _MTIME
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, _MTIME
            tar.addfile(info, io.BytesIO(data))

        dirs = {"bin", "etc", "root", "tmp", "usr", "usr/bin", "usr/sbin", "sbin", "var"}
        dirs |= {str(Path(a.lstrip("/")).parent) for a in applets} - {"."}
        for name in sorted(dirs):
            add_dir(name, 0o1777 if name == "tmp" else 0o755)
        add_file("bin/busybox", busybox_bytes, 0o755)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        for applet in applets:
            name = applet.lstrip("/")
            if name == "bin/busybox":
                continue
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, "/bin/busybox", _MTIME
            info.mode = 0o777
            tar.addfile(info)
    return buffer.getvalue()


def _image_config(layer_digest: str, cmd: Sequence[str], name: str) -> bytes:
    # The name as a label gives each tag its own image ID: the kubelet reports a
    # container's image by ID, and tags sharing one would all read "busybox:1.35".
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": [_DEFAULT_PATH],
            "Cmd": list(cmd),
            "WorkingDir": "/",
            "Labels": {"org.opencontainers.image.ref.name": name},
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "asyncpod.testing.images (Debian busybox-static)"}],
    }
    return json.dumps(config, sort_keys=True).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_busybox_archive(busybox: Path, target: Path) -> list[ImageArchive]:
    """Write the busybox and pause image archives into ``target``; return them.

    Each archive is a Docker-format tar (``manifest.json`` with ``RepoTags``), the
    input ``ctr images import`` understands without a registry.
    """
    target.mkdir(parents=True, exist_ok=True)
    layer = layer_tar(busybox.read_bytes(), busybox_applets(busybox))
    layer_digest = _sha256(layer)
    layer_name = f"{layer_digest.removeprefix('sha256:')}/layer.tar"
    archives = []
    for stem, names, cmd in (
        ("busybox", BUSYBOX_TAGS, ["sh"]),
        ("pause", (PAUSE_IMAGE,), ["sleep", "infinity"]),
    ):
        files: dict[str, bytes] = {layer_name: layer}
        manifest = []
        for image_name in names:
            config = _image_config(layer_digest, cmd, image_name)
            config_name = f"{hashlib.sha256(config).hexdigest()}.json"
            files[config_name] = config
            manifest.append(
                {"Config": config_name, "RepoTags": [image_name], "Layers": [layer_name]}
            )
        files["manifest.json"] = json.dumps(manifest).encode()
        path = target / f"{stem}.tar"
        with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, _MTIME
                tar.addfile(info, io.BytesIO(data))
        archives.append(ImageArchive(path=path, names=tuple(names)))
    return archives
