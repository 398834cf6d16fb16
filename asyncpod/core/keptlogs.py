"""A finished attempt's logs, kept on disk before its pod is deleted.

Why: a batch deletes each pod when it is done, and with it the only copy of what a
failed task printed. With :class:`KeepLogs` the launcher reads each kept attempt's
logs once, after the pod has finished and before it is deleted: one GET per container
without ``follow`` (no stream held while the pod runs), written to
``DIRECTORY/<task key>/<attempt>.log`` chunk by chunk as it arrives, so memory is one
chunk whatever the log's size. The file holds every container's log (init containers
first), each after a ``==> container NAME <==`` line, every line as the server sent it
with ``timestamps=true``: ``<RFC3339Nano time> <the bytes the container wrote>``.

A log the server cannot give (the pod was deleted by someone else, the node is gone,
the container never started) is recorded as missing with the reason, not raised: a
lost log must not fail the task or the batch.

What it deliberately does not do: follow a running pod's log (``PodRun.logs()`` does),
decide which attempts keep logs (:func:`wants_log` is the rule the launcher applies), or
delete old files (a resumed batch overwrites the file of an attempt it runs again).
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio

from asyncpod.errors import AsyncpodError, UsageError
from asyncpod.kube.pods import Pods
from asyncpod.results import Outcome, PodResult

__all__ = ["KeepLogs", "KeptLog", "keep_log", "log_path", "wants_log"]

logger = logging.getLogger("asyncpod.launcher")


@dataclass(frozen=True, slots=True)
class KeepLogs:
    """Where kept logs go and whose: ``"failed"`` attempts (the default) or ``"all"``."""

    directory: Path
    which: Literal["failed", "all"] = "failed"

    def __post_init__(self) -> None:
        if self.which not in ("failed", "all"):
            raise UsageError(f"KeepLogs.which must be 'failed' or 'all', got {self.which!r}")
        object.__setattr__(self, "directory", Path(self.directory))


@dataclass(frozen=True, slots=True)
class KeptLog:
    """What became of one attempt's log: its file, and what could not be read."""

    path: Path | None
    missing: str | None = None


def log_path(directory: Path, task_key: str, attempt: int) -> Path:
    """``directory/<task key>/<attempt>.log``; the key percent-encoded where a path
    would misread it (``/``, a leading ``.``, characters outside letters, digits and
    ``-_.=+@,``)."""
    safe = urllib.parse.quote(task_key, safe="-_.=+@,")
    if safe.startswith("."):
        safe = "%2E" + safe[1:]
    return directory / safe / f"{attempt}.log"


def wants_log(keep: KeepLogs | None, result: PodResult) -> bool:
    """Whether the attempt that ended with ``result`` keeps its log. Pure.

    Never for a cancelled attempt (the batch is stopping; its pod is deleted at once)
    or one whose pod never existed; ``"failed"`` keeps every other outcome but success.
    """
    if keep is None or result.uid is None or result.outcome is Outcome.CANCELLED:
        return False
    return keep.which == "all" or not result.ok


def _containers(pod: Mapping[str, Any] | None) -> list[str]:
    spec = (pod or {}).get("spec") or {}
    names: list[str] = []
    for key in ("initContainers", "containers"):
        for item in spec.get(key) or ():
            name = item.get("name") if isinstance(item, Mapping) else None
            if isinstance(name, str):
                names.append(name)
    return names


async def keep_log(
    pods: Pods,
    *,
    namespace: str,
    name: str,
    pod: Mapping[str, Any] | None,
    result: PodResult,
    path: Path,
) -> KeptLog:
    """Write every container's log of pod ``name`` to ``path``; never raises but for
    cancellation (a failure is the returned ``missing``)."""
    if result.outcome is Outcome.DELETED:
        return KeptLog(None, "the pod was deleted before its log could be read")
    containers = _containers(pod) or [c.name for c in result.containers]
    if not containers:
        return KeptLog(None, "no container is known to read the log of")
    missing: list[str] = []
    written = 0
    try:
        await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
        async with await anyio.open_file(path, "wb") as file:
            for container in containers:
                await file.write(f"==> container {container} <==\n".encode())
                chunks = pods.read_log(namespace, name, container=container)
                try:
                    async for chunk in chunks:
                        await file.write(chunk)
                    written += 1
                except AsyncpodError as error:
                    missing.append(f"container {container}: {_short(error)}")
                    await file.write(f"(log unavailable: {_short(error)})\n".encode())
                finally:
                    await chunks.aclose()
    except OSError as error:
        logger.warning("could not write the log of %s/%s to %s: %s", namespace, name, path, error)
        return KeptLog(None, f"could not write {path}: {error}")
    if not written:
        with_reason = "; ".join(missing)
        await anyio.Path(path).unlink(missing_ok=True)
        return KeptLog(None, with_reason)
    return KeptLog(path, "; ".join(missing) or None)


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:299] + "…"
