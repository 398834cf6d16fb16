"""What one pod watch event costs to decode: orjson vs json vs a typed ``V1Pod``.

Why: the design keeps watch events and list pages as orjson-decoded dicts and never
builds kubernetes_asyncio's typed models on the hot path (docs/architecture.md,
"Facts"). This measures that choice on recorded pods from the unit tests' fixtures,
in one process, no server needed::

    python -m benchmarks.decode                # every fixture pod, 2,000 rounds each
    python -m benchmarks.decode --rounds 500

For each pod it times, per event: ``orjson.loads`` of the bytes, ``json.loads`` of the
same bytes, and kubernetes_asyncio's path to a ``V1Pod`` (``json.loads`` then
``ApiClient.deserialize``-equivalent ``__deserialize(data, "V1Pod")``), and prints the
median over the fixtures in microseconds. The fixtures carry no ``managedFields``; one
real watch event that does (``tests/unit/kube/data``) is then timed whole and with
``managedFields`` cut first, as the informer decodes it. Figures depend on the machine and its load:
quote them with the command and say what else was running.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "unit" / "pods"
RECORDED_EVENT = (
    Path(__file__).resolve().parent.parent
    / "tests" / "unit" / "kube" / "data" / "watch-event-running-pod.json"
)  # fmt: skip


def per_call_us(function: Callable[[], Any], rounds: int) -> float:
    """The best of three timings of ``rounds`` calls, in microseconds per call."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(rounds):
            function()
        best = min(best, time.perf_counter() - start)
    return best / rounds * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=2000)
    asyncio.run(measure(parser.parse_args(argv).rounds))


async def measure(rounds: int) -> None:
    # The ApiClient needs a running loop (it opens an aiohttp connector); no request
    # is made, only its deserializer is used.
    from kubernetes_asyncio.client import ApiClient

    async with ApiClient() as api:
        to_v1pod: Callable[[Any, str], Any] = getattr(api, "_ApiClient__deserialize")  # noqa: B009
        report(rounds, to_v1pod)


def _typed(to_v1pod: Callable[[Any, str], Any], event: bytes) -> Any:
    return to_v1pod(json.loads(event)["object"], "V1Pod")


def report(rounds: int, to_v1pod: Callable[[Any, str], Any]) -> None:
    paths = sorted(FIXTURES.glob("*.json")) + sorted((FIXTURES / "recorded").glob("*.json"))
    pods = [p for p in paths if not p.name.endswith(".events.json")]
    rows: dict[str, list[float]] = {"orjson.loads": [], "json.loads": [], "V1Pod": []}
    sizes: list[int] = []
    for path in pods:
        raw = path.read_bytes()
        data = orjson.loads(raw)
        if not isinstance(data, dict) or data.get("kind") != "Pod":
            continue
        event = orjson.dumps({"type": "MODIFIED", "object": data})
        sizes.append(len(event))
        rows["orjson.loads"].append(per_call_us(functools.partial(orjson.loads, event), rounds))
        rows["json.loads"].append(per_call_us(functools.partial(json.loads, event), rounds))
        typed = functools.partial(_typed, to_v1pod, event)
        rows["V1Pod"].append(per_call_us(typed, max(1, rounds // 20)))
    base = statistics.median(rows["orjson.loads"])
    print(
        f"{len(sizes)} recorded pods, events of {min(sizes)}-{max(sizes)} bytes"
        f" (median {statistics.median(sizes):.0f}); median per event:"
    )
    print("| decode | µs per event | relative to orjson |")
    print("|---|---|---|")
    for name, values in rows.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {median / base:.0f}x |")
    report_managed_fields(rounds)


def report_managed_fields(rounds: int) -> None:
    """One real watch event (a running pod, as the local kube-apiserver sent it, with
    its ``managedFields``): decoded whole, and cut first as asyncpod's informer does."""
    from asyncpod.kube._managedfields import without_managed_fields

    event = RECORDED_EVENT.read_bytes().strip()
    cut = without_managed_fields(event)
    whole_us = per_call_us(functools.partial(orjson.loads, event), rounds)
    cut_us = per_call_us(lambda: orjson.loads(without_managed_fields(event)), rounds)
    print(
        f"\none real watch event ({RECORDED_EVENT.name}): {len(event)} bytes,"
        f" {len(cut)} without managedFields; containers decoded:"
        f" {_containers(orjson.loads(event))} and {_containers(orjson.loads(cut))}"
    )
    print("| decode | µs per event |")
    print("|---|---|")
    print(f"| orjson.loads | {whole_us:.1f} |")
    print(f"| managedFields cut, then orjson.loads | {cut_us:.1f} |")


def _containers(value: Any) -> int:
    """Dicts and lists in a decoded document: what the garbage collector tracks."""
    if isinstance(value, dict):
        return 1 + sum(_containers(item) for item in value.values())
    if isinstance(value, list):
        return 1 + sum(_containers(item) for item in value)
    return 0


if __name__ == "__main__":
    main()
