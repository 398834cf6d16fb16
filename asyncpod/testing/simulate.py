"""Typed helpers that tell the simulated kubelet (kwok) what a pod should do.

Why: the outcomes in ``data/stages.yaml`` are driven by pod annotations with string
values; a typo there silently gives the default outcome. :func:`outcome` builds those
annotations from checked arguments, and :class:`ContainerLog` writes a CRI-format log
file and registers the kwok ``Logs`` object that makes the real ``pods/log`` endpoint
serve it (including ``follow=true`` and ``timestamps=true``).

Nothing here talks to asyncpod's own client: :func:`register_logs` takes any callable
that performs an admin request (the control plane's, or a test's own).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "PREFIX",
    "ContainerLog",
    "cri_line",
    "logs_object",
    "outcome",
    "register_logs",
]

PREFIX = "sim.asyncpod.dev/"
_DURATION = re.compile(r"^\d+(\.\d+)?(ms|s|m|h)$")


def _duration(value: str | float, what: str) -> str:
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{what} must not be negative, got {value}")
        return f"{int(value * 1000)}ms"
    if not _DURATION.match(value):
        raise ValueError(f"{what} must be a Go duration like '500ms' or '2s', got {value!r}")
    return value


def outcome(
    *,
    duration: str | float | None = None,
    exit_code: int | None = None,
    reason: str | None = None,
    message: str | None = None,
    containers: Mapping[str, Mapping[str, Any]] | None = None,
    init_duration: str | float | None = None,
    image_pull_fails: bool = False,
    image_pull_backoff_after: str | float | None = None,
    ignore_sigterm: bool = False,
) -> dict[str, str]:
    """Annotations that make kwok play out the given outcome for a pod.

    ``exit_code``/``reason``/``message`` apply to every main container;
    ``containers={"name": {"exit_code": 3, "reason": "OOMKilled", "message": "..."}}``
    overrides per container, init containers included. Durations are seconds (float)
    or Go duration strings.
    """
    annotations: dict[str, str] = {}
    if duration is not None:
        annotations[PREFIX + "duration"] = _duration(duration, "duration")
    if init_duration is not None:
        annotations[PREFIX + "init-duration"] = _duration(init_duration, "init_duration")
    if exit_code is not None:
        annotations[PREFIX + "exit-code"] = str(int(exit_code))
    if reason is not None:
        annotations[PREFIX + "reason"] = reason
    if message is not None:
        annotations[PREFIX + "message"] = message
    for name, settings in (containers or {}).items():
        unknown = set(settings) - {"exit_code", "reason", "message"}
        if unknown:
            raise ValueError(f"containers[{name!r}]: unknown settings {sorted(unknown)}")
        if "exit_code" in settings:
            annotations[f"{PREFIX}exit-code.{name}"] = str(int(settings["exit_code"]))
        if "reason" in settings:
            annotations[f"{PREFIX}reason.{name}"] = str(settings["reason"])
        if "message" in settings:
            annotations[f"{PREFIX}message.{name}"] = str(settings["message"])
    if image_pull_fails:
        annotations[PREFIX + "image-pull"] = "fail"
    if image_pull_backoff_after is not None:
        annotations[PREFIX + "image-pull-backoff-after"] = _duration(
            image_pull_backoff_after, "image_pull_backoff_after"
        )
    if ignore_sigterm:
        annotations[PREFIX + "ignore-sigterm"] = "true"
    return annotations


def cri_line(text: str, *, at: dt.datetime | None = None, stream: str = "stdout") -> str:
    """One log line in the CRI format kwok reads: ``<RFC3339Nano> <stream> F <text>``."""
    moment = (at or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    return f"{stamp} {stream} F {text}\n"


@dataclass
class ContainerLog:
    """A container's log file in CRI format; append lines while the pod "runs"."""

    path: Path
    lines_written: list[str] = field(default_factory=list)

    def write(self, lines: Iterable[str], *, at: dt.datetime | None = None) -> None:
        """Append lines (each gets ``at`` or the current time as its timestamp)."""
        with self.path.open("a", encoding="utf-8") as handle:
            for text in lines:
                handle.write(cri_line(text, at=at))
                self.lines_written.append(text)
            handle.flush()


def logs_object(
    namespace: str, pod: str, files: Mapping[str, Path], *, follow: bool = True
) -> dict[str, Any]:
    """The kwok ``Logs`` object mapping each container of ``pod`` to a log file."""
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Logs",
        "metadata": {"name": pod, "namespace": namespace},
        "spec": {
            "logs": [
                {"containers": [container], "logsFile": str(path), "follow": follow}
                for container, path in files.items()
            ]
        },
    }


def register_logs(
    admin_request: Callable[[str, str, Any], Any],
    namespace: str,
    pod: str,
    files: Mapping[str, Path],
    *,
    follow: bool = True,
) -> None:
    """Create the ``Logs`` object so ``pods/{pod}/log`` serves ``files``.

    Create it before the pod (kwok reads it when it starts serving the pod's logs).
    """
    admin_request(
        "POST",
        f"/apis/kwok.x-k8s.io/v1alpha1/namespaces/{namespace}/logs",
        logs_object(namespace, pod, files, follow=follow),
    )
