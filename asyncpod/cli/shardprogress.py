"""A shard of an in-cluster batch publishes its counts on its own pod, throttled.

Why: ``asyncpod batch status`` reads progress from the API alone (the results volume is
out of its reach), and the shard's own pod is the one object that is the shard's: its
annotation :data:`~asyncpod.cli.submitplan.PROGRESS_ANNOTATION` holds
``{"tasks", "done", "ok", "failed", "in_flight", "cpu_ms"}``. One merge PATCH at most
every ``interval`` seconds, only when the counts changed, and a last one at the end: at 20,000
tasks that is a handful of requests a minute per shard, not one per task.

A failed PATCH is logged and skipped (progress is a courtesy; the results file is the
record). What it does not do: publish results (``asyncpod batch results`` reads them
from the volume).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from asyncpod.cli.submitplan import PROGRESS_ANNOTATION
from asyncpod.errors import AsyncpodError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.objects import POD, Objects

__all__ = ["PodTarget", "ProgressPublisher"]

_log = logging.getLogger("asyncpod.cli.shardprogress")


@dataclass(frozen=True, slots=True)
class PodTarget:
    """The shard's own pod (from ``POD_NAME``/``POD_NAMESPACE``, the downward API)."""

    namespace: str
    name: str


class ProgressPublisher:
    """``run(read)`` publishes ``read()`` every ``interval`` s while it changes;
    ``publish(read())`` once more at the end."""

    def __init__(self, client: KubeClient, target: PodTarget, *, interval: float = 5.0) -> None:
        self._objects = Objects(client)
        self._target = target
        self._interval = interval
        self._last: Mapping[str, int] | None = None
        self.patches = 0

    async def run(self, read: Callable[[], Mapping[str, int]]) -> None:
        while True:
            await self.publish(read())
            await asyncio.sleep(self._interval)

    async def publish(self, counts: Mapping[str, int], *, final: bool = False) -> None:
        """PATCH ``counts`` unless only its ``cpu_ms`` moved (always when ``final``)."""
        unchanged = self._last is not None and all(
            counts.get(k) == self._last.get(k) for k in {*counts, *self._last} - {"cpu_ms"}
        )
        if unchanged and not final:
            return
        patch = {"metadata": {"annotations": {PROGRESS_ANNOTATION: json.dumps(dict(counts))}}}
        try:
            await self._objects.patch(POD, self._target.namespace, self._target.name, patch)
        except AsyncpodError as error:
            _log.warning("could not publish progress on pod %s: %s", self._target.name, error)
            return
        self._last = dict(counts)
        self.patches += 1
