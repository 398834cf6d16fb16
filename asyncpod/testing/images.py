"""Container images for the real node, built here from Debian's packages.

Why: there is no registry to pull from, and the real node (:mod:`asyncpod.testing.realnode`)
must still run ``busybox:1.36`` when a test asks for it. A busybox image is one static
binary plus a symlink per applet, so we write the image ourselves: one layer tar, an
image config and a Docker-archive ``manifest.json`` naming the tags, which
``ctr images import`` loads into containerd's ``k8s.io`` namespace, where the kubelet's
CRI finds them without pulling.

The archive is deterministic (fixed mtimes, sorted entries), so it is built once per
busybox binary and cached beside the control-plane binaries.

Bigger images, built by ``make real-node`` (root) and only looked up when a node starts:

- ``localhost/python:3.X-slim``: Debian's own ``python3`` (and ``python-is-python3``) on
  an ``mmdebstrap --variant=minbase`` root filesystem of the host's Debian suite, from
  the host's apt sources; one layer, bit-for-bit the same on every build of the same
  package versions (SOURCE_DATE_EPOCH, sorted entries, fixed mtimes, numeric owners).
  Not Docker's official ``python`` image (CPython built from source), hence no plain
  ``python:3.X-slim`` tag: the kubelet would report it under the default registry's name.
- ``localhost/asyncpod:dev``: that plus one layer with this checkout's wheel and its
  dependencies' binary wheels (``pip install --target``, pip's own index settings), the
  ``asyncpod`` entry point, and docker/Dockerfile's user, workdir, ENV, stop signal,
  entry point and CMD.

Each is cached beside the control-plane binaries under a key of what went in (suite,
apt sources and recipe; plus asyncpod's sources), and never pulls.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncpod.testing.binaries import exclusive

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


# ======================================================================================
# Python images: Debian's python3 on a minbase root filesystem, and asyncpod on top.
# ======================================================================================
#
# Built by `make real-node` (``python -m asyncpod.testing --real-node``, root), never by a
# test: a test that needs one of these images skips when it is not in the cache. What
# went in names each cache entry: the Debian suite and the host's apt sources for that
# suite plus this recipe (the Python image), that plus asyncpod's sources and the pinned
# dependency wheels (the asyncpod image).

PYTHON_REPO = "localhost/python"
ASYNCPOD_TAG = "localhost/asyncpod:dev"
# Bump when the recipe below changes in a way that changes the images.
_RECIPE_VERSION = 1
# Every timestamp in the layers (and SOURCE_DATE_EPOCH for mmdebstrap and dpkg).
_EPOCH = 1_700_000_000
_MMDEBSTRAP_TIMEOUT = 900.0
_PIP_TIMEOUT = 600.0
_MIN_FREE_BYTES = 1 << 30
# python3, and `python` for it as in the official images (Debian's python-is-python3).
_PYTHON_PACKAGES = ("python3", "python-is-python3")
# The official slim images leave these out too (docs, man pages, translations).
_DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
)
# What the asyncpod image takes from docker/Dockerfile: its ENV, user, workdir, stop
# signal and entry point (tests/unit check these against the Dockerfile's text).
ASYNCPOD_UID = 10001
ASYNCPOD_HOME = "/home/asyncpod"
ASYNCPOD_ENV: tuple[str, ...] = (
    "PYTHONDONTWRITEBYTECODE=1",
    "PYTHONUNBUFFERED=1",
    "PIP_NO_CACHE_DIR=1",
    "PIP_DISABLE_PIP_VERSION_CHECK=1",
    "PIP_ROOT_USER_ACTION=ignore",
)
ASYNCPOD_STOP_SIGNAL = "SIGINT"
ASYNCPOD_ENTRYPOINT: tuple[str, ...] = ("asyncpod",)
ASYNCPOD_CMD: tuple[str, ...] = ("--help",)
_SITE = "usr/local/lib/python{minor}/dist-packages"


class ImageBuildError(RuntimeError):
    """Building an image failed; the message is one line that says why."""


Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BuiltImage:
    """A cached image archive and what is known about what went in."""

    archive: Path
    names: tuple[str, ...]
    info: dict[str, Any]

    @property
    def name(self) -> str:
        return self.names[0]


# ----------------------------------------------------------------- what goes in (pure)
def suite_from_os_release(text: str) -> str:
    """``VERSION_CODENAME`` of /etc/os-release (``bookworm``)."""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "VERSION_CODENAME" and value.strip().strip('"'):
            return value.strip().strip('"')
    raise ImageBuildError("no VERSION_CODENAME in /etc/os-release: not a Debian release?")


def debian_sources(files: Mapping[str, str], suite: str) -> str:
    """The host's apt sources for ``suite`` (and its -updates/-security), as deb822.

    ``files`` maps each apt source file's name to its text (one-line ``.list`` or deb822
    ``.sources``); entries of other suites (third-party repositories) are left out.
    The mirrors are the host's own: nothing here names one.
    """
    wanted = {suite, f"{suite}-updates", f"{suite}-security"}
    stanzas: list[str] = []
    for name in sorted(files):
        text = files[name]
        if name.endswith(".sources"):
            for block in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in block.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if "deb" not in fields.get("types", "").split():
                    continue
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                suites = [s for s in fields.get("suites", "").split() if s in wanted]
                if not suites or not fields.get("uris"):
                    continue
                stanza = [
                    "Types: deb",
                    f"URIs: {fields['uris']}",
                    f"Suites: {' '.join(suites)}",
                    f"Components: {fields.get('components', 'main')}",
                ]
                if fields.get("signed-by"):
                    stanza.append(f"Signed-By: {fields['signed-by']}")
                stanzas.append("\n".join(stanza))
        else:
            for line in text.splitlines():
                words = line.split("#", 1)[0].split()
                if len(words) < 3 or words[0] != "deb":
                    continue
                options = []
                if words[1].startswith("["):
                    while words and not words[1].endswith("]"):
                        options.append(words.pop(1))
                    options.append(words.pop(1))
                if len(words) < 3 or words[2] not in wanted:
                    continue
                stanza = ["Types: deb", f"URIs: {words[1]}", f"Suites: {words[2]}"]
                stanza.append(f"Components: {' '.join(words[3:]) or 'main'}")
                signed = [o for o in " ".join(options).strip("[]").split() if "signed-by=" in o]
                if signed:
                    stanza.append(f"Signed-By: {signed[0].split('=', 1)[1]}")
                stanzas.append("\n".join(stanza))
    if not stanzas:
        raise ImageBuildError(
            f"the host's apt sources (/etc/apt/sources.list*) name no {suite} repository"
        )
    return "\n\n".join(stanzas) + "\n"


def read_host_sources(root: Path = Path("/etc/apt")) -> dict[str, str]:
    files = {}
    candidates = [root / "sources.list"]
    if (root / "sources.list.d").is_dir():
        candidates += sorted((root / "sources.list.d").iterdir())
    for path in candidates:
        if path.is_file() and path.name.endswith((".list", ".sources")):
            files[path.name] = path.read_text(errors="replace")
    return files


def python_recipe(suite: str, sources: str, arch: str) -> dict[str, Any]:
    """Everything that decides the Python image; its hash names the cache entry."""
    return {
        "recipe": _RECIPE_VERSION,
        "suite": suite,
        "arch": arch,
        "sources": sources,
        "variant": "minbase",
        "include": list(_PYTHON_PACKAGES),
        "dpkgopt": list(_DPKG_OPTIONS),
        "epoch": _EPOCH,
    }


def recipe_key(recipe: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def dpkg_packages(status_text: str) -> dict[str, str]:
    """Installed packages and versions from a dpkg ``status`` file."""
    packages: dict[str, str] = {}
    for block in status_text.split("\n\n"):
        fields = {
            k.strip(): v.strip()
            for k, _, v in (line.partition(":") for line in block.splitlines())
            if k and not k[0].isspace()
        }
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            packages[fields["Package"]] = fields.get("Version", "")
    return dict(sorted(packages.items()))


def python_minor(packages: Mapping[str, str]) -> str:
    """``3.11`` from the installed ``python3`` package's version (``3.11.2-1+b1``)."""
    version = packages.get("python3")
    match = re.match(r"(\d+)\.(\d+)", version or "")
    if match is None:
        raise ImageBuildError(f"python3 is not installed in the root filesystem ({version!r})")
    return f"{match.group(1)}.{match.group(2)}"


def python_tags(minor: str) -> tuple[str, ...]:
    # Only the localhost/ name: a plain python:3.X-slim would be reported (with the
    # default registry's host prepended) as Docker's official image, which this is not.
    return (f"{PYTHON_REPO}:{minor}-slim",)


def checkout_source_hash(checkout: Path) -> str:
    """A hash of what the asyncpod wheel is built from (pyproject, README, sources)."""
    digest = hashlib.sha256()
    paths = [checkout / "pyproject.toml", checkout / "README.md"]
    for top in ("asyncpod", "tools/controlplane"):
        paths += [
            p
            for p in (checkout / top).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]
    for path in sorted(paths):
        digest.update(str(path.relative_to(checkout)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def find_checkout() -> Path | None:
    """The checkout this module lives in (``pyproject.toml`` beside ``asyncpod/``), if any."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "asyncpod" / "testing").is_dir():
        return root
    return None


def manylinux_platforms(glibc: str, machine: str) -> list[str]:
    """pip ``--platform`` tags a glibc ``2.36`` system on ``x86_64`` runs."""
    major, minor = (int(x) for x in glibc.split(".")[:2])
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 4, -1)]
    return [*tags, f"manylinux2014_{machine}", f"manylinux2010_{machine}", f"manylinux1_{machine}"]


def _config(
    diff_ids: Sequence[str], config: Mapping[str, Any], name: str, history: Sequence[str]
) -> bytes:
    body = {
        "architecture": config.get("architecture", "amd64"),
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",  # _EPOCH
        "config": {
            **{k: v for k, v in config.items() if k != "architecture"},
            "Labels": {"org.opencontainers.image.ref.name": name},
        },
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created_by": h, "created": "2023-11-14T22:13:20Z"} for h in history],
    }
    return json.dumps(body, sort_keys=True).encode()


# ------------------------------------------------------------------------ layers (I/O)
def directory_layer(root: Path, out: Path, *, skip: Callable[[str], bool] | None = None) -> str:
    """Write ``root`` as an uncompressed layer tar: sorted, fixed mtimes, numeric owners.

    Device nodes, sockets and fifos are left out (the runtime mounts /dev). Returns the
    layer's digest (its diff_id).
    """
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            base = Path(dirpath)
            for name in sorted([*dirnames, *filenames]):
                path = base / name
                arcname = str(path.relative_to(root))
                if skip is not None and skip(arcname):
                    continue
                info = tar.gettarinfo(str(path), arcname)
                if not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
                    continue
                info.mtime = min(int(info.mtime), _EPOCH)
                info.uname = info.gname = ""
                info.pax_headers = {}
                if info.isreg():
                    with path.open("rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
    return _file_sha256(out)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _write_archive(
    path: Path,
    layers: Sequence[tuple[str, Path | tuple[Path, str]]],
    images: Sequence[tuple[str, bytes, Sequence[str]]],
) -> None:
    """A Docker-format archive: ``layers`` (diff_id, file or (archive, member)), images."""
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    with tarfile.open(staging, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, size: int, handle: Any) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = size, 0o644, _EPOCH
            tar.addfile(info, handle)

        layer_names = {}
        for diff_id, source in layers:
            name = f"{diff_id.removeprefix('sha256:')}/layer.tar"
            layer_names[diff_id] = name
            if isinstance(source, tuple):
                with tarfile.open(source[0]) as other:
                    member = other.getmember(source[1])
                    add(name, member.size, other.extractfile(member))
            else:
                with source.open("rb") as handle:
                    add(name, source.stat().st_size, handle)
        manifest = []
        for name, config, diff_ids in images:
            config_name = f"{hashlib.sha256(config).hexdigest()}.json"
            add(config_name, len(config), io.BytesIO(config))
            manifest.append(
                {
                    "Config": config_name,
                    "RepoTags": [name],
                    "Layers": [layer_names[d] for d in diff_ids],
                }
            )
        data = json.dumps(manifest).encode()
        add("manifest.json", len(data), io.BytesIO(data))
    staging.rename(path)


# ------------------------------------------------------------------ external commands
def _stream(command: Sequence[str], *, timeout: float, say: Say, env: Mapping[str, str]) -> str:
    """Run ``command``, passing its ``I:`` progress lines to ``say``; return its output.

    Killed after ``timeout`` seconds; a failure raises :class:`ImageBuildError` with the
    command's last line.
    """
    started = time.monotonic()
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=dict(env),
        text=True,
        errors="replace",
        start_new_session=True,
    )
    timer = threading.Timer(timeout, lambda: _kill_group(process))
    timer.start()
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            if line.startswith("I: "):
                say(f"  {line[3:].rstrip()} ({time.monotonic() - started:.0f}s)")
        process.wait()
    finally:
        timer.cancel()
        if process.stdout is not None:  # else a ResourceWarning when it is collected
            process.stdout.close()
    program = Path(command[0]).name
    if time.monotonic() - started >= timeout:
        raise ImageBuildError(f"{program} took over {timeout:g}s and was stopped")
    if process.returncode != 0:
        errors = [s for s in lines if s.startswith(("E: ", "ERROR: "))]
        last = errors[0] if errors else next((s for s in reversed(lines) if s.strip()), "no output")
        # apt names the mirror; the message names none (it goes into logs and CI output).
        last = re.sub(r"\S+://\S+", "<apt source>", last)
        last = re.sub(r"resolving '[^']*'", "resolving the mirror's name", last)
        hint = ""
        if any(
            word in "\n".join(lines[-30:]).lower()
            for word in ("could not resolve", "failed to fetch", "temporary failure", "connection")
        ):
            hint = "no network to the package sources? "
        raise ImageBuildError(f"{program} failed (exit {process.returncode}): {hint}{last}")
    return "\n".join(lines)


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _check_space(directory: Path, needed: int = _MIN_FREE_BYTES) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise ImageBuildError(
            f"building the images needs {needed >> 20} MiB free in {directory}; "
            f"{free >> 20} MiB are"
        )


def _dpkg_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


# ---------------------------------------------------------------- the images (cached)
def _python_entry(cache: Path) -> Path:
    suite = suite_from_os_release(Path("/etc/os-release").read_text())
    sources = debian_sources(read_host_sources(), suite)
    return cache / f"images-python-{recipe_key(python_recipe(suite, sources, _dpkg_arch()))}"


def built_python_image(cache: Path) -> BuiltImage | None:
    """The cached Python image for this host's recipe, or ``None`` (never builds)."""
    try:
        entry = _python_entry(cache)
    except (ImageBuildError, OSError):
        return None
    return _load(entry, "python.tar")


def built_asyncpod_image(cache: Path) -> BuiltImage | None:
    """The cached asyncpod image of this checkout's sources, or ``None`` (never builds)."""
    python = built_python_image(cache)
    checkout = find_checkout()
    if python is None or checkout is None:
        return None
    return _load(_asyncpod_entry(cache, python, checkout), "asyncpod.tar")


def _asyncpod_entry(cache: Path, python: BuiltImage, checkout: Path) -> Path:
    key = hashlib.sha256(
        f"{_RECIPE_VERSION}:{python.archive.parent.name}:{checkout_source_hash(checkout)}".encode()
    ).hexdigest()[:16]
    return cache / f"images-asyncpod-{key}"


def _load(entry: Path, archive: str) -> BuiltImage | None:
    try:
        info = json.loads((entry / "info.json").read_text())
    except (OSError, ValueError):
        return None
    if not (entry / archive).is_file():
        return None
    return BuiltImage(archive=entry / archive, names=tuple(info["names"]), info=info)


def image_archives(cache: Path) -> list[Path]:
    """The Python image archives to import into a real node: what the cache holds.

    The asyncpod archive (built for this checkout) carries the Python image too.
    """
    asyncpod_image = built_asyncpod_image(cache)
    if asyncpod_image is not None:
        return [asyncpod_image.archive]
    python = built_python_image(cache)
    return [python.archive] if python is not None else []


def missing_image_reason(cache: Path, which: str = "python") -> str:
    """Why a test cannot have the ``python`` or ``asyncpod`` image (for its skip)."""
    last = cache / "images-last-error.txt"
    detail = ""
    if last.is_file():
        detail = f"; the last build said: {last.read_text().strip()}"
    what = (
        "the Python image (Debian's python3)"
        if which == "python"
        else "the asyncpod image of this checkout"
    )
    return f"{what} is not built: `make real-node` (root) builds it{detail}"


def ensure_python_image(cache: Path, say: Say) -> BuiltImage:
    """Build the Python image once (mmdebstrap, root), or return the cached one."""
    found = built_python_image(cache)
    if found is not None:
        return found
    if os.geteuid() != 0:
        raise ImageBuildError("building the Python image needs root (mmdebstrap --mode=root)")
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise ImageBuildError("mmdebstrap is not installed: apt-get install mmdebstrap")
    suite = suite_from_os_release(Path("/etc/os-release").read_text())
    sources = debian_sources(read_host_sources(), suite)
    recipe = python_recipe(suite, sources, _dpkg_arch())
    entry = _python_entry(cache)
    with exclusive(cache / f".{entry.name}.lock"):
        found = built_python_image(cache)
        if found is not None:
            return found
        _check_space(cache)
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=cache))
        try:
            (work / "debian.sources").write_text(sources)
            rootfs = work / "rootfs"
            command = [
                mmdebstrap,
                "--variant=minbase",
                "--mode=root",
                "--format=directory",
                f"--architectures={recipe['arch']}",
                f"--include={','.join(_PYTHON_PACKAGES)}",
                *(f"--dpkgopt={option}" for option in _DPKG_OPTIONS),
                suite,
                str(rootfs),
                str(work / "debian.sources"),
            ]
            say(f"building the Python image: Debian {suite} minbase + python3 (mmdebstrap)")
            env = {**os.environ, "SOURCE_DATE_EPOCH": str(_EPOCH), "LC_ALL": "C.UTF-8"}
            _stream(command, timeout=_MMDEBSTRAP_TIMEOUT, say=say, env=env)
            packages = dpkg_packages((rootfs / "var/lib/dpkg/status").read_text())
            minor = python_minor(packages)
            names = python_tags(minor)
            say(f"  writing the layer ({len(packages)} Debian packages, python3 {minor})")
            layer = work / "layer.tar"
            diff_id = directory_layer(rootfs, layer, skip=_skip_in_python_layer)
            config = {
                "architecture": recipe["arch"],
                "Env": [_DEFAULT_PATH, "LANG=C.UTF-8"],
                "Cmd": ["python3"],
                "WorkingDir": "/",
            }
            included = " ".join(_PYTHON_PACKAGES)
            history = [f"asyncpod.testing.images: mmdebstrap minbase {suite} + {included}"]
            out = work / "out"
            out.mkdir()
            _write_archive(
                out / "python.tar",
                [(diff_id, layer)],
                [(name, _config([diff_id], config, name, history), [diff_id]) for name in names],
            )
            info = {
                "names": list(names),
                "arch": recipe["arch"],
                "config": config,
                "history": history,
                "python": minor,
                "python3": packages.get("python3", ""),
                "suite": suite,
                "diff_ids": [diff_id],
                "layer_bytes": layer.stat().st_size,
                "build_seconds": round(time.monotonic() - started, 1),
                "packages": packages,
            }
            (out / "info.json").write_text(json.dumps(info, indent=1, sort_keys=True))
            out.rename(entry)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        say(
            f"built {names[0]} in {time.monotonic() - started:.0f}s "
            f"({info['layer_bytes'] / 1e6:.0f} MB) -> {entry}"
        )
    found = built_python_image(cache)
    assert found is not None
    return found


_NOT_IN_PYTHON_LAYER = (
    "dev/",
    "proc/",
    "sys/",
    "run/",
    "var/log/",
    "etc/apt/sources.list.d/",
    "var/cache/ldconfig/aux-cache",
)


def _skip_in_python_layer(arcname: str) -> bool:
    # The host's apt sources stay out of the image (pods reach no mirror anyway);
    # /dev is the runtime's; the rest changes on every build.
    return arcname.startswith(_NOT_IN_PYTHON_LAYER) or arcname in {
        "etc/apt/sources.list",
        "etc/machine-id",
    }


def ensure_asyncpod_image(cache: Path, say: Say) -> BuiltImage:
    """Build the asyncpod image of this checkout once, or return the cached one.

    The Python image plus one layer: asyncpod's wheel (``pip wheel . --no-deps``) and its
    runtime dependencies as binary wheels for the image's Python and glibc (``pip
    install --target``, with pip's own index configuration), byte-compiled; the
    ``asyncpod`` entry point; the user 10001 and the ENV, workdir, stop signal and entry
    point of docker/Dockerfile.
    """
    python = ensure_python_image(cache, say)
    checkout = find_checkout()
    if checkout is None:
        raise ImageBuildError("the asyncpod image is built from a checkout (pyproject.toml)")
    entry = _asyncpod_entry(cache, python, checkout)
    found = _load(entry, "asyncpod.tar")
    if found is not None:
        return found
    with exclusive(cache / ".images-asyncpod.lock"):
        found = _load(entry, "asyncpod.tar")
        if found is not None:
            return found
        _check_space(cache)
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=cache))
        try:
            info = _build_asyncpod(python, checkout, work, say)
            info["build_seconds"] = round(time.monotonic() - started, 1)
            (work / "out" / "info.json").write_text(json.dumps(info, indent=1, sort_keys=True))
            (work / "out").rename(entry)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _prune(cache, "images-asyncpod-", keep=entry)
        say(
            f"built {ASYNCPOD_TAG} in {time.monotonic() - started:.0f}s "
            f"({info['layer_bytes'] / 1e6:.0f} MB on top of {python.name}) -> {entry}"
        )
    found = _load(entry, "asyncpod.tar")
    assert found is not None
    return found


def _build_asyncpod(python: BuiltImage, checkout: Path, work: Path, say: Say) -> dict[str, Any]:
    minor = str(python.info["python"])
    glibc = re.match(r"\d+\.\d+", python.info["packages"].get("libc6", "2.17"))
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(python.info.get("arch", ""), "")
    machine = machine or os.uname().machine
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "SOURCE_DATE_EPOCH": str(_EPOCH)}
    pip = [sys.executable, "-m", "pip"]
    say("building the asyncpod image: pip wheel . --no-deps")
    wheels = work / "wheels"
    _stream(
        [*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(checkout)],
        timeout=_PIP_TIMEOUT,
        say=say,
        env=env,
    )
    wheel = next(wheels.glob("asyncpod-*.whl"), None)
    if wheel is None:
        raise ImageBuildError(f"pip wheel left no asyncpod wheel in {wheels}")
    layer_root = work / "layer"
    site = layer_root / _SITE.format(minor=minor)
    platforms = manylinux_platforms(glibc.group(0) if glibc else "2.17", machine)
    say(f"  pip install --target (binary wheels for CPython {minor}, {platforms[0]})")
    _stream(
        [
            *pip, "install", "--quiet", "--no-compile", "--no-warn-script-location",
            "--retries=2", "--timeout=30",
            "--only-binary=:all:", "--implementation=cp", f"--python-version={minor}",
            f"--abi=cp{minor.replace('.', '')}", *(f"--platform={p}" for p in platforms),
            "--target", str(site), str(wheel),
        ],
        timeout=_PIP_TIMEOUT,
        say=say,
        env=env,
    )  # fmt: skip
    shutil.rmtree(site / "bin", ignore_errors=True)  # scripts for the host's Python
    _forget_build_paths(site)
    distributions = sorted(
        p.name.removesuffix(".dist-info") for p in site.glob("*.dist-info") if p.is_dir()
    )
    entry_points = next(site.glob("asyncpod-*.dist-info")) / "entry_points.txt"
    target = console_script(entry_points.read_text(), "asyncpod")
    script = layer_root / "usr/local/bin/asyncpod"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(entry_point_script(target))
    script.chmod(0o755)
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == minor:
        say("  byte-compiling (checked-hash .pyc, as pip install would)")
        _stream(
            [
                sys.executable, "-m", "compileall", "-q", "-j", "0",
                "--invalidation-mode", "checked-hash",
                "-d", "/" + _SITE.format(minor=minor), str(site),
            ],
            timeout=_PIP_TIMEOUT,
            say=say,
            env=env,
        )  # fmt: skip
    _add_user(python, layer_root)
    say("  writing the layer")
    layer = work / "layer.tar"
    diff_id = directory_layer(layer_root, layer)
    base_ids = list(python.info["diff_ids"])
    config = {
        **python.info["config"],
        "Env": [_DEFAULT_PATH, "LANG=C.UTF-8", *ASYNCPOD_ENV],
        "User": f"{ASYNCPOD_UID}:{ASYNCPOD_UID}",
        "WorkingDir": ASYNCPOD_HOME,
        "StopSignal": ASYNCPOD_STOP_SIGNAL,
        "Entrypoint": list(ASYNCPOD_ENTRYPOINT),
        "Cmd": list(ASYNCPOD_CMD),
    }
    history = [*python.info["history"], f"asyncpod.testing.images: {wheel.name} + dependencies"]
    images = [
        (name, _config(base_ids, python.info["config"], name, python.info["history"]), base_ids)
        for name in python.names
    ]
    images.append(
        (ASYNCPOD_TAG, _config([*base_ids, diff_id], config, ASYNCPOD_TAG, history),
         [*base_ids, diff_id])
    )  # fmt: skip
    out = work / "out"
    out.mkdir()
    base_member = f"{base_ids[0].removeprefix('sha256:')}/layer.tar"
    _write_archive(
        out / "asyncpod.tar",
        [(base_ids[0], (python.archive, base_member)), (diff_id, layer)],
        images,
    )
    return {
        "names": [ASYNCPOD_TAG, *python.names],
        "wheel": wheel.name,
        "distributions": distributions,
        "diff_ids": [*base_ids, diff_id],
        "layer_bytes": layer.stat().st_size,
        "python_image": python.archive.parent.name,
    }


def _forget_build_paths(site: Path) -> None:
    """Drop what names this build's temp dir (``direct_url.json``) or the removed scripts.

    The rest of what ``pip install`` writes is the same on every build.
    """
    for record in site.glob("*.dist-info/RECORD"):
        direct = record.with_name("direct_url.json")
        direct.unlink(missing_ok=True)
        kept = [
            line
            for line in record.read_text().splitlines(keepends=True)
            if not line.startswith(("../", "bin/", f"{record.parent.name}/direct_url.json"))
        ]
        record.write_text("".join(kept))


def console_script(entry_points_txt: str, name: str) -> str:
    """``module:function`` of console script ``name`` in a wheel's entry_points.txt."""
    section = ""
    for line in entry_points_txt.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "console_scripts" and line.partition("=")[0].strip() == name:
            return line.partition("=")[2].strip()
    raise ImageBuildError(f"the wheel has no console script {name!r}")


def entry_point_script(target: str) -> str:
    """The launcher pip writes for a console script, for the image's /usr/bin/python3."""
    module, _, function = target.partition(":")
    return (
        "#!/usr/bin/python3\n"
        "import sys\n"
        f"from {module} import {function.split('.')[0]}\n"
        'if __name__ == "__main__":\n'
        f"    sys.exit({function}())\n"
    )


def _add_user(python: BuiltImage, layer_root: Path) -> None:
    """The Dockerfile's groupadd/useradd --system 10001: passwd, group, shadow, home."""
    base = _python_layer_files(python, ("etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"))
    uid = ASYNCPOD_UID
    lines = {
        "etc/passwd": f"asyncpod:x:{uid}:{uid}::{ASYNCPOD_HOME}:/usr/sbin/nologin\n",
        "etc/group": f"asyncpod:x:{uid}:\n",
        "etc/shadow": "asyncpod:!:19675::::::\n",
        "etc/gshadow": "asyncpod:!::\n",
    }
    for name, line in lines.items():
        path = layer_root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = base.get(name, b"").decode()
        path.write_text(text + ("" if not text or text.endswith("\n") else "\n") + line)
        path.chmod(0o640 if "shadow" in name else 0o644)
    home = layer_root / ASYNCPOD_HOME.lstrip("/")
    home.mkdir(parents=True)
    os.chown(home, uid, uid)


def _python_layer_files(python: BuiltImage, names: Sequence[str]) -> dict[str, bytes]:
    member = f"{python.info['diff_ids'][0].removeprefix('sha256:')}/layer.tar"
    found: dict[str, bytes] = {}
    with tarfile.open(python.archive) as archive:
        handle = archive.extractfile(member)
        assert handle is not None
        with tarfile.open(fileobj=handle) as layer:
            for name in names:
                with contextlib.suppress(KeyError):
                    data = layer.extractfile(name)
                    if data is not None:
                        found[name] = data.read()
    return found


def _prune(cache: Path, prefix: str, *, keep: Path, count: int = 3) -> None:
    """Remove ``prefix*`` cache entries beyond the ``count`` newest, if a day old.

    Other checkouts on the machine share the cache (each its own asyncpod image): a day
    leaves a node that is starting from one of them its archive.
    """
    entries = sorted(
        (p for p in cache.glob(f"{prefix}*") if p.is_dir()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in entries[count:]:
        if old != keep and time.time() - old.stat().st_mtime > 86400:
            shutil.rmtree(old, ignore_errors=True)


def build_images(cache: Path, say: Say) -> list[BuiltImage]:
    """``make real-node``'s image step: both images, each built once; errors recorded."""
    last = cache / "images-last-error.txt"
    try:
        built = [ensure_python_image(cache, say)]
        built.append(ensure_asyncpod_image(cache, say))
    except (ImageBuildError, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        with contextlib.suppress(OSError):
            last.write_text(message + "\n")
        raise ImageBuildError(message) from error
    with contextlib.suppress(OSError):
        last.unlink(missing_ok=True)
    return built
