"""Build and cache the official control-plane binaries from the Go module proxy.

Why this exists: there is no Docker engine here, so kind cannot run; the tests use the
real etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, compiled
from their published Go modules through our small wrapper modules in
``tools/controlplane`` (shipped inside the wheel as ``asyncpod/testing/_gomodules``).

Binaries are cached by component, version and the hash of the wrapper's go.mod/go.sum
under ``$ASYNCPOD_CACHE_DIR`` (default ``~/.cache/asyncpod``), outside any checkout,
so a warm call returns in milliseconds. A build goes to a temporary directory and is
renamed into place under an exclusive file lock, so two builds that race (two pytest
sessions, a CI run and a developer) neither corrupt nor duplicate the work.

It deliberately does not download prebuilt binaries: only ``go`` and the module proxy.
``ASYNCPOD_CONTROLPLANE_BIN`` may point at a directory that already holds all five
binaries (for a machine that has them from elsewhere); nothing is built then.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "COMPONENTS",
    "Binaries",
    "BuildError",
    "Component",
    "build_announcement",
    "cache_dir",
    "ensure_binaries",
    "ensure_kubelet",
    "exclusive",
    "gomodules_dir",
]

Progress = Callable[[str], None]


class BuildError(RuntimeError):
    """A control-plane binary could not be built; the message holds go's own output."""


@dataclass(frozen=True, slots=True)
class Component:
    """One wrapper module under tools/controlplane and the binaries it produces."""

    name: str
    module: str  # the module whose version names the cache entry
    packages: tuple[str, ...]
    binaries: tuple[str, ...]
    ldflags: str = "-s -w"
    kube_version_stamp: bool = False


def _kube_ldflags(version: str) -> str:
    match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+", version)
    if not match:
        raise BuildError(f"cannot stamp kubernetes version {version!r}")
    major, minor = match.groups()
    stamp = "k8s.io/component-base/version"
    return (
        f"-s -w -X {stamp}.gitVersion={version} -X {stamp}.gitMajor={major}"
        f" -X {stamp}.gitMinor={minor} -X {stamp}.gitTreeState=clean"
    )


COMPONENTS: tuple[Component, ...] = (
    Component("etcd", "go.etcd.io/etcd/server/v3", ("go.etcd.io/etcd/server/v3",), ("etcd",)),
    Component("kwok", "sigs.k8s.io/kwok", ("sigs.k8s.io/kwok/cmd/kwok",), ("kwok",)),
    Component(
        "kube",
        "k8s.io/kubernetes",
        (
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-scheduler",
        ),
        ("kube-apiserver", "kube-controller-manager", "kube-scheduler"),
        kube_version_stamp=True,
    ),
)

# Only for the optional real node (``LocalControlPlane(real_nodes=1)``): a module of its
# own, so that it has its own cache entry and the kube binaries' key does not change.
# Built with CGO_ENABLED=0 like the others. Upstream leaves cgo on for the kubelet (it is
# not in KUBE_STATIC_BINARIES, hack/lib/golang.sh of k8s.io/kubernetes v1.34.4), but the
# static build runs the real node's pods here (tests/integration/core/test_real_node.py),
# and a cgo build would share no compiled package with the kube binaries' build cache
# (CGO_ENABLED changes the standard library, so every package above it).
KUBELET = Component(
    "kubelet",
    "k8s.io/kubernetes",
    ("k8s.io/kubernetes/cmd/kubelet",),
    ("kubelet",),
    kube_version_stamp=True,
)


# Cold builds measured on this project's machine (2 cores, 24 GiB), module downloads
# included: seconds on a quiet machine (2026-12-05, the whole in 7 min 8 s; another cold
# build took 6 min 25 s)
# and on one loaded by other work (2026-12-05, issue 18: 17 min in all). The kubelet's
# quiet figure is with the kube binaries' Go build cache warm, as `make real-node` has it.
MEASURED_BUILD_SECONDS: dict[str, tuple[int, int]] = {
    "etcd": (44, 140),
    "kwok": (99, 200),
    "kube": (267, 556),
    "kubelet": (18, 388),
}
MEASURED_ON = "2-core machine"


def build_announcement(missing: tuple[Component, ...]) -> str:
    """What a first build is about to do, and how long it took here: said before it starts.

    Pure: the components that are not in the cache in, one line out (``""`` for none).
    """
    if not missing:
        return ""
    names = [binary for component in missing for binary in component.binaries]
    quiet = sum(MEASURED_BUILD_SECONDS.get(c.name, (0, 0))[0] for c in missing)
    loaded = sum(MEASURED_BUILD_SECONDS.get(c.name, (0, 0))[1] for c in missing)
    each = ", ".join(
        f"{c.name} {MEASURED_BUILD_SECONDS[c.name][0]}-{MEASURED_BUILD_SECONDS[c.name][1]} s"
        for c in missing
        if c.name in MEASURED_BUILD_SECONDS
    )
    return (
        f"building {', '.join(names)} from the Go module proxy with `go` (once; cached in "
        f"{cache_dir()}): about {_minutes(quiet)} on a quiet {MEASURED_ON}, up to "
        f"{_minutes(loaded)} on a loaded one (measured: {each})"
    )


def _minutes(seconds: int) -> str:
    return f"{max(1, round(seconds / 60))} min"


@dataclass(frozen=True, slots=True)
class Binaries:
    """Absolute paths of the five executables a local control plane needs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kwok: Path
    kubernetes_version: str

    @classmethod
    def from_dir(cls, directory: Path, *, kubernetes_version: str = "unknown") -> Binaries:
        paths = {
            name: directory / name
            for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
        }
        paths["kwok"] = directory / "kwok"
        missing = [str(p) for p in paths.values() if not os.access(p, os.X_OK)]
        if missing:
            raise BuildError(f"not executable or missing: {', '.join(missing)}")
        return cls.from_paths(paths, kubernetes_version=kubernetes_version)

    @classmethod
    def from_paths(cls, paths: dict[str, Path], *, kubernetes_version: str) -> Binaries:
        """From a map of binary name (``kube-apiserver``, ...) to path."""
        return cls(
            etcd=paths["etcd"],
            kube_apiserver=paths["kube-apiserver"],
            kube_controller_manager=paths["kube-controller-manager"],
            kube_scheduler=paths["kube-scheduler"],
            kwok=paths["kwok"],
            kubernetes_version=kubernetes_version,
        )


def cache_dir() -> Path:
    """Where built binaries live: ``$ASYNCPOD_CACHE_DIR`` or ``~/.cache/asyncpod``."""
    env = os.environ.get("ASYNCPOD_CACHE_DIR")
    base = Path(env) if env else Path.home() / ".cache" / "asyncpod"
    return base / "controlplane"


def gomodules_dir() -> Path:
    """The wrapper modules: the packaged copy, else ``tools/controlplane`` of a checkout."""
    packaged = Path(__file__).with_name("_gomodules")
    if (packaged / "kube" / "go.mod").is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "tools" / "controlplane"
    if (checkout / "kube" / "go.mod").is_file():
        return checkout
    raise BuildError("the Go wrapper modules are missing (expected tools/controlplane/)")


def _required_version(gomod: Path, module: str) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", gomod.read_text(), re.M)
    if not match:
        raise BuildError(f"{gomod} does not require {module}")
    return match.group(1)


def _entry_name(component: Component, moddir: Path) -> tuple[str, str]:
    gomod = moddir / "go.mod"
    version = _required_version(gomod, component.module)
    digest = hashlib.sha256(gomod.read_bytes() + (moddir / "go.sum").read_bytes()).hexdigest()
    return f"{component.name}-{version}-{digest[:10]}", version


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive file lock for the block: one build of a cache entry at a time,
    across processes and checkouts that share the cache."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(component: Component, moddir: Path, version: str, target: Path, say: Progress) -> None:
    go = shutil.which("go")
    if go is None:
        raise BuildError("`go` is not on PATH; install Go >= 1.24 to build the control plane")
    ldflags = _kube_ldflags(version) if component.kube_version_stamp else component.ldflags
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        # One package: name the output ourselves (etcd's module path ends in /v3, so go
        # would call it "server"); several: go names each after its package directory.
        output_path = (
            str(staging / component.binaries[0])
            if len(component.packages) == 1
            else str(staging) + os.sep
        )
        command = [go, "build", "-trimpath", "-ldflags", ldflags, "-o", output_path]
        command += component.packages
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
        say(f"building {component.name} {version} (go build {' '.join(component.packages)})")
        started = time.monotonic()
        # `go` prints nothing while compiling; a heartbeat shows the build is alive.
        process = subprocess.Popen(
            command, cwd=moddir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output: list[bytes] = []
        assert process.stdout is not None
        os.set_blocking(process.stdout.fileno(), False)
        last_note = started
        while process.poll() is None:
            time.sleep(0.5)
            chunk = process.stdout.read()
            if chunk:
                output.append(chunk)
            if time.monotonic() - last_note >= 30:
                last_note = time.monotonic()
                say(f"  ... still building {component.name} ({last_note - started:.0f}s)")
        rest = process.stdout.read()
        if rest:
            output.append(rest)
        if process.returncode != 0:
            text = b"".join(output).decode("utf-8", "replace")[-4000:]
            raise BuildError(
                f"`{' '.join(command)}` in {moddir} failed (exit {process.returncode}):\n{text}"
            )
        for binary in component.binaries:
            if not (staging / binary).is_file():
                raise BuildError(f"go build produced no {binary} in {staging}")
        staging.rename(target)
        say(f"built {component.name} in {time.monotonic() - started:.0f}s -> {target}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _to_stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def ensure_binaries(*, progress: Progress | None = None) -> Binaries:
    """Return the five binaries, building whichever are missing from the cache."""
    say: Progress = progress or _to_stderr
    override = os.environ.get("ASYNCPOD_CONTROLPLANE_BIN")
    if override:
        return Binaries.from_dir(Path(override))
    paths: dict[str, Path] = {}
    kube_version = "unknown"
    announcement = build_announcement(tuple(c for c in COMPONENTS if not _cached(c)))
    if announcement:
        say(announcement)
    for component in COMPONENTS:
        if component.name == "kube":
            kube_version = _required_version(gomodules_dir() / "kube" / "go.mod", component.module)
        target = _ensure_component(component, say)
        for binary in component.binaries:
            paths[binary] = target / binary
    return Binaries.from_paths(paths, kubernetes_version=kube_version)


def ensure_kubelet(*, progress: Progress | None = None) -> Path:
    """Return the kubelet (same Kubernetes version as the kube binaries), building it once.

    ``ASYNCPOD_CONTROLPLANE_BIN`` may hold a ``kubelet`` too; then nothing is built.
    """
    override = os.environ.get("ASYNCPOD_CONTROLPLANE_BIN")
    if override:
        path = Path(override) / "kubelet"
        if not os.access(path, os.X_OK):
            raise BuildError(f"not executable or missing: {path}")
        return path
    say = progress or _to_stderr
    if not _cached(KUBELET):
        say(build_announcement((KUBELET,)))
    return _ensure_component(KUBELET, say) / "kubelet"


def _cached(component: Component) -> bool:
    entry, _ = _entry_name(component, gomodules_dir() / component.name)
    return (cache_dir() / entry).is_dir()


def _ensure_component(component: Component, say: Progress) -> Path:
    moddir = gomodules_dir() / component.name
    entry, version = _entry_name(component, moddir)
    root = cache_dir()
    target = root / entry
    if not target.is_dir():
        with exclusive(root / f".{entry}.lock"):
            if not target.is_dir():  # another process may have built it meanwhile
                _build(component, moddir, version, target, say)
    return target
