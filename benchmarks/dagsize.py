"""``python -m benchmarks.dagsize``: a serialized pod task's size, ours against the reference.

Why it exists: on Airflow 3.3 the triggerer deserializes the whole DAG for every
trigger that starts a task there (``start_from_trigger``), on its event loop, so a
task's serialized size is paid per task per trigger (issue 19). This prints the
issue's measure for a DAG of N bare operators, ``len(json.dumps(DagSerialization.
to_dict(dag))) // N``, and what the triggerer pays to get that DAG back from its JSON
(``json.loads`` then ``DagSerialization.from_dict``; median of ``--repeat``), for
asyncpod's operator and, when the cncf.kubernetes provider is installed, the
reference's. No cluster, no Airflow database.

    python -m benchmarks.dagsize                 # 200 tasks
    python -m benchmarks.dagsize --tasks 1000 --repeat 5
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "measure"]

CONTENDERS = {
    "asyncpod": "asyncpod.airflow.operators",
    "reference": "airflow.providers.cncf.kubernetes.operators.pod",
}


def measure(operator: Any, tasks: int, repeat: int) -> tuple[int, float]:
    """(bytes per task, median seconds to load the DAG) for ``tasks`` bare operators."""
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG("dagsize", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
        for index in range(tasks):
            operator(task_id=f"t{index}", image="busybox")
    text = json.dumps(DagSerialization.to_dict(dag))
    size = len(text) // tasks
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        DagSerialization.from_dict(json.loads(text))
        times.append(time.perf_counter() - started)
    return size, statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dagsize", description=__doc__)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{args.tasks} bare operators in one DAG")
    print(f"{'operator':<10} {'bytes/task':>10} {'load DAG (median)':>20}")
    for name, module in CONTENDERS.items():
        try:
            operator = importlib.import_module(module).KubernetesPodOperator
        except ImportError:
            print(f"{name:<10} {'not installed':>10}")
            continue
        size, seconds = measure(operator, args.tasks, args.repeat)
        print(f"{name:<10} {size:>10} {seconds * 1000:>17.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
