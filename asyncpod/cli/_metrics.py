"""``--metrics-port``: the commands serve Prometheus' ``/metrics`` while they run.

Why it exists: ``asyncpod run`` and ``asyncpod batch`` share the flags and their
lifetime: the endpoint opens before the session connects and closes after it has
closed, so a scrape sees every request the session made. Scrapes are answered on the
command's own event loop (:func:`asyncpod.metrics.serve`, aiohttp): no thread reads
the counters, nothing outlives the command. The registry is prometheus_client's
default one, so the process's own CPU, memory and file descriptors come with it.

A batch often ends between two scrapes of a Prometheus that scrapes every 15 or 60 s,
and its last counts would be lost: ``--metrics-linger SECONDS`` keeps the endpoint up
after the end until one more scrape has been answered (at most that long).

What it deliberately does not do: listen beyond loopback unless ``--metrics-addr``
says so (the endpoint has no authentication), or push anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from asyncpod.metrics import OFF, Metrics, MetricsOff, serve

__all__ = ["MetricsFlags", "add_metrics_options", "exported", "metrics_flags"]


@dataclass(frozen=True, slots=True)
class MetricsFlags:
    port: int
    addr: str = "127.0.0.1"
    linger: float = 0.0
    loop_lag_interval: float = 0.1


def add_metrics_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("metrics")
    group.add_argument(
        "--metrics-port", type=_port, default=None, metavar="PORT",
        help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics while running "
        "(the metrics extra; 0 picks a free port, printed on stderr)",
    )  # fmt: skip
    group.add_argument(
        "--metrics-addr", default="127.0.0.1", metavar="ADDR",
        help="address to serve metrics on (default 127.0.0.1: loopback only; the "
        "endpoint has no authentication)",
    )  # fmt: skip
    group.add_argument(
        "--metrics-linger", type=float, default=0.0, metavar="SECONDS",
        help="after the end, keep serving until one more scrape (at most SECONDS), so "
        "the last counts are not lost between two scrapes",
    )  # fmt: skip


def metrics_flags(args: argparse.Namespace) -> MetricsFlags | None:
    """The flags given, or None without ``--metrics-port``."""
    if args.metrics_port is None:
        return None
    return MetricsFlags(args.metrics_port, args.metrics_addr, max(0.0, args.metrics_linger))


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, got {port}")
    return port


@contextlib.asynccontextmanager
async def exported(flags: MetricsFlags | None, *, title: str) -> AsyncIterator[MetricsOff]:
    """The metrics to pass to ``connect`` (:data:`~asyncpod.metrics.OFF` without
    flags), served for the block's length with the loop's lag probed; then, unless
    cancelled, up to ``flags.linger`` seconds until one more scrape."""
    if flags is None:
        yield OFF
        return
    metrics = Metrics()
    async with serve(metrics.registry, port=flags.port, host=flags.addr) as server:
        host = f"[{server.host}]" if ":" in server.host else server.host
        sys.stderr.write(f"{title}: metrics at http://{host}:{server.port}/metrics\n")
        probe = asyncio.ensure_future(metrics.probe_loop(flags.loop_lag_interval))
        cancelled = False
        try:
            yield metrics
        except asyncio.CancelledError:
            cancelled = True  # interrupted: no lingering
            raise
        finally:
            probe.cancel()
            await asyncio.gather(probe, return_exceptions=True)
            if flags.linger > 0 and not cancelled:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(server.next_scrape(), flags.linger)
