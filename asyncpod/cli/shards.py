"""Which shard of an in-cluster batch owns which task: ``--shard I/K``.

Why: the K launcher pods of ``asyncpod batch --submit`` (an Indexed Job) each run the
same input and must split it without talking to each other. A task belongs to shard
``stable_hash(task key) mod K``: the same answer in every process, on every Python
version and after any restart (``hash()`` of a ``str`` is salted per process, so it is
not used), and independent of the input's order, so a task keeps its shard when entries
are added to the file. Pure; no I/O.

Each shard's task pods carry :data:`SHARD_LABEL`, and its session's informer selects
them (:attr:`asyncpod.core.cluster.Cluster.run_selector`): K shards watching every pod
of the run would decode K times the events (measured: CPU per pod per shard 5.7, 8.1
and 13 ms at K = 1, 2, 4 before; benchmarks/README.md).

What it does not do: balance by cost (tasks are assumed alike; with many tasks the
shares are even within a few percent) or move tasks between shards.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from asyncpod.errors import UsageError

__all__ = ["SHARD_LABEL", "Shard", "parse_shard", "shard_of", "split_evenly"]

SHARD_LABEL = "batch.asyncpod.dev/shard"
"""On each task pod of a shard (``I-of-K``): the shard's session watches only these.
Outside ``asyncpod.dev/``, which a spec's own labels may not use."""

_SHARD = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count`` (0 <= index < count)."""

    index: int
    count: int

    def owns(self, task_key: str) -> bool:
        return shard_of(task_key, self.count) == self.index

    def select(self, task_keys: Iterable[str]) -> list[str]:
        return [key for key in task_keys if self.owns(key)]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def label(self) -> str:
        """The value of :data:`SHARD_LABEL` on this shard's task pods."""
        return f"{self.index}-of-{self.count}"


def shard_of(task_key: str, count: int) -> int:
    """The shard (0..count-1) of ``task_key``: the first 8 bytes of its SHA-256 mod count."""
    if count < 1:
        raise UsageError(f"the number of shards must be at least 1, got {count}")
    digest = hashlib.sha256(task_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> Shard:
    """``"I/K"`` → :class:`Shard`; a :class:`UsageError` saying the form otherwise."""
    match = _SHARD.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"--shard takes INDEX/COUNT (e.g. 0/3), got {text!r}")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard {text}: the index must be 0..{max(count - 1, 0)}")
    return Shard(index, count)


def split_evenly(total: int, count: int) -> int:
    """Each shard's share of ``total`` (``--max-in-flight``): rounded up, at least 1."""
    return max(1, -(-total // count))
