"""The first build says what it builds and how long that took here (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncpod.testing.binaries import (
    COMPONENTS,
    KUBELET,
    MEASURED_BUILD_SECONDS,
    BuildError,
    build_announcement,
    ensure_binaries,
)


def test_nothing_to_build_says_nothing() -> None:
    assert build_announcement(()) == ""


def test_a_cold_build_names_every_binary_and_an_estimate_from_the_measurements() -> None:
    line = build_announcement(COMPONENTS)

    for name in ("etcd", "kwok", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert name in line
    quiet = sum(MEASURED_BUILD_SECONDS[c.name][0] for c in COMPONENTS)
    loaded = sum(MEASURED_BUILD_SECONDS[c.name][1] for c in COMPONENTS)
    assert f"about {round(quiet / 60)} min on a quiet 2-core machine" in line
    assert f"up to {round(loaded / 60)} min on a loaded one" in line
    assert "etcd 44-140 s" in line
    assert "\n" not in line


def test_only_what_is_missing_is_announced() -> None:
    line = build_announcement((KUBELET,))
    assert line.startswith("building kubelet from the Go module proxy")
    assert "etcd" not in line


def test_ensure_binaries_announces_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCPOD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ASYNCPOD_CONTROLPLANE_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-go-here"))  # the build fails at once
    said: list[str] = []

    with pytest.raises(BuildError, match="`go` is not on PATH"):
        ensure_binaries(progress=said.append)

    assert said[0] == build_announcement(COMPONENTS)
