"""Measuring a process from inside: loop stalls, CPU seconds, resident memory, tasks.

Why: every contender runs alone in its own process (:mod:`benchmarks.child`), so its
CPU, peak memory and event-loop stalls are its own; these are the instruments it
carries. The loop probe is a task that sleeps 10 ms again and again and records how
late it wakes: a loop busy parsing or handshaking cannot wake it on time, so its
oversleep is how late *any* callback on that loop would have run then. On a shared
machine the oversleep also holds the time the process waited for a CPU; the same probe
over an idle half second first gives that baseline.

To tell those apart, the probe also records how much CPU the loop's thread used during
each interval (a stall the loop spent working uses about as much CPU as it lasted; one
spent waiting for a CPU uses little), and every garbage-collector pass of the window
(``gc.callbacks``): a full pass stops the loop for as long as it lasts.

Memory: peak is ``VmHWM`` (not ``ru_maxrss``, which on Linux survives fork + exec and
so starts at the parent's size); growth is the largest current RSS seen minus the RSS
before the work began.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.stats import nearest_rank

__all__ = ["LoopProbe", "Sampler", "cpu_seconds", "current_rss_kib", "peak_rss_kib"]


def peak_rss_kib() -> int:
    """This process's peak resident set (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_rss_kib() -> int:
    """This process's resident set now."""
    pages = int(Path("/proc/self/statm").read_bytes().split()[1])
    return pages * (os.sysconf("SC_PAGESIZE") // 1024)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class LoopProbe:
    """Run :meth:`run` in a task; :meth:`reset` starts a new window; :meth:`summary` reads it.

    Every ``sample_every`` seconds it also records the current RSS (its maximum is the
    growth's end point). ``last_wake`` (monotonic) tells :class:`Sampler` whether the
    loop is alive.
    """

    interval: float = 0.010
    sample_every: float = 1.0
    lags: list[float] = field(default_factory=list)
    worst: float = 0.0
    worst_at: float = 0.0
    worst_cpu: float = 0.0
    """CPU seconds the loop's thread used during the interval of the worst stall."""
    gc_passes: list[tuple[int, float]] = field(default_factory=list)
    """(generation, seconds) of every GC pass in the window."""
    gc_longest: dict[str, Any] = field(default_factory=dict)
    """The longest pass: its generation, milliseconds (wall and the thread's CPU),
    objects found, and ``gc.get_count()`` when it began."""
    _gc_started: float = 0.0
    _gc_cpu_started: float = 0.0
    _gc_count: tuple[int, int, int] = (0, 0, 0)
    rss_max_kib: int = 0
    last_wake: float = field(default_factory=time.monotonic)

    def reset(self) -> None:
        self.lags.clear()
        self.gc_passes.clear()
        self.gc_longest = {}
        self.worst = 0.0
        self.worst_at = 0.0
        self.worst_cpu = 0.0
        self.rss_max_kib = current_rss_kib()

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_count = gc.get_count()
            self._gc_cpu_started = time.thread_time()
            self._gc_started = time.perf_counter()
            return
        seconds = time.perf_counter() - self._gc_started
        cpu = time.thread_time() - self._gc_cpu_started
        self.gc_passes.append((info["generation"], seconds))
        if seconds * 1000 > self.gc_longest.get("ms", 0.0):
            self.gc_longest = {
                "generation": info["generation"],
                "ms": seconds * 1000,
                "cpu_ms": cpu * 1000,
                "collected": info["collected"],
                "count_at_start": list(self._gc_count),
            }

    async def run(self) -> None:
        gc.callbacks.append(self._on_gc)
        try:
            await self._tick()
        finally:
            gc.callbacks.remove(self._on_gc)

    async def _tick(self) -> None:
        clock, cpu = time.monotonic, time.thread_time
        next_sample = clock()
        while True:
            before, cpu_before = clock(), cpu()
            await asyncio.sleep(self.interval)
            now = self.last_wake = clock()
            lag = max(0.0, now - before - self.interval)
            self.lags.append(lag)
            if lag > self.worst:
                self.worst, self.worst_at, self.worst_cpu = lag, time.time(), cpu() - cpu_before
            if now >= next_sample:
                next_sample = now + self.sample_every
                self.rss_max_kib = max(self.rss_max_kib, current_rss_kib())

    def summary(self) -> dict[str, Any]:
        full = [seconds for generation, seconds in self.gc_passes if generation == 2]
        collector = {
            "gc_passes": len(self.gc_passes),
            "gc_longest_ms": max((s for _, s in self.gc_passes), default=0.0) * 1000,
            "gc_full_passes": len(full),
            "gc_full_longest_ms": max(full, default=0.0) * 1000,
            "gc_full_total_ms": sum(full) * 1000,
            "gc_longest_pass": dict(self.gc_longest),
        }
        if not self.lags:
            return {"samples": 0, "max_ms": 0.0, "p99_ms": 0.0, "p50_ms": 0.0, "over_100ms": 0,
                    "max_cpu_ms": 0.0, **collector}  # fmt: skip
        return {
            "samples": len(self.lags),
            "max_ms": max(self.lags) * 1000,
            "max_cpu_ms": self.worst_cpu * 1000,
            "p99_ms": (nearest_rank(self.lags, 0.99) or 0.0) * 1000,
            "p50_ms": (nearest_rank(self.lags, 0.50) or 0.0) * 1000,
            "over_100ms": sum(1 for lag in self.lags if lag > 0.1),
            **collector,
        }


class Sampler:
    """A thread that appends one JSON line per ``every`` seconds to ``path``.

    Each line: seconds since start, current RSS (KiB), ``len(asyncio.all_tasks(loop))``,
    CPU seconds, and how long ago the loop probe last woke. A thread, not a task, so that
    it keeps sampling while the event loop is blocked (the age then grows), and a file
    line by line, so that a process killed after the time cap still leaves its series.
    """

    def __init__(
        self, path: Path, loop: asyncio.AbstractEventLoop, probe: LoopProbe, every: float = 1.0
    ) -> None:
        self.path, self.loop, self.probe, self.every = path, loop, probe, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _tasks(self) -> int:
        try:
            return len(asyncio.all_tasks(self.loop))
        except RuntimeError:  # the set changed size too often while being copied
            return -1

    def _run(self) -> None:
        with self.path.open("a") as out:
            while not self._stop.wait(self.every):
                now = time.monotonic()
                sample = {
                    "at": round(now - self._started, 3),
                    "rss_kib": current_rss_kib(),
                    "tasks": self._tasks(),
                    "cpu_s": round(cpu_seconds(), 3),
                    "loop_silent_s": round(now - self.probe.last_wake, 3),
                }
                out.write(json.dumps(sample) + "\n")
                out.flush()
