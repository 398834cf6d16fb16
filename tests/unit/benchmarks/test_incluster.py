"""benchmarks.incluster's pure parts: CPU per pod per shard, and the table."""

from __future__ import annotations

from benchmarks.incluster import per_pod_cpu, table


def test_cpu_per_pod_is_each_shards_own() -> None:
    shards = [{"tasks": 100, "cpu_ms": 250}, {"tasks": 0, "cpu_ms": 10}, {"cpu_ms": 5}]
    assert per_pod_cpu(shards) == [2.5, 0.0, 0.0]


def test_the_table_has_a_row_per_run() -> None:
    rows = [
        {"run": "local", "wall_s": 10.0, "pods_per_s": 100.0, "cpu_ms_per_pod": [3.0]},
        {"run": "2 shards", "wall_s": 12.0, "pods_per_s": 83.3, "cpu_ms_per_pod": [4.0, 4.5]},
    ]
    text = table(rows)
    assert "| local | 10.0 | 100.0 | 3.00 |" in text
    assert "| 2 shards | 12.0 | 83.3 | 4.00, 4.50 |" in text
