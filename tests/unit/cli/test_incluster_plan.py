"""The in-cluster batch's pure parts: shards, the packed input, the manifests, status."""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from asyncpod.cli import packedinput, submitplan
from asyncpod.cli.batchstatus import job_state, render, report
from asyncpod.cli.incluster import decode_reader_log
from asyncpod.cli.shards import Shard, parse_shard, shard_of, split_evenly
from asyncpod.errors import UsageError


def test_a_task_keeps_its_shard_and_the_shards_split_evenly() -> None:
    keys = [f"task-{i}" for i in range(3000)]
    first = [shard_of(k, 3) for k in keys]
    assert first == [shard_of(k, 3) for k in keys]  # stable (no per-process salt)
    assert shard_of("task-0", 3) == 0 or shard_of("task-0", 3) in (1, 2)
    counts = Counter(first)
    assert set(counts) == {0, 1, 2}
    assert all(900 < n < 1100 for n in counts.values())
    owned = [Shard(i, 3).select(keys) for i in range(3)]
    assert sorted(k for keys_ in owned for k in keys_) == sorted(
        keys
    )  # each task in exactly one shard


def test_the_shard_option() -> None:
    assert parse_shard("2/3") == Shard(2, 3)
    assert str(Shard(0, 1)) == "0/1"
    for bad in ("3/3", "x/3", "1", "0/0"):
        with pytest.raises(UsageError):
            parse_shard(bad)
    assert split_evenly(100, 3) == 34
    assert split_evenly(1, 4) == 1


def _mount(packed: packedinput.Packed, directory: Path) -> None:
    """As a projected ConfigMap volume does: data as text, binaryData decoded."""
    (directory / packedinput.MANIFEST_KEY).write_text(json.dumps(packed.manifest))
    for part in packed.parts:
        for key, value in part.items():
            (directory / key).write_bytes(base64.b64decode(value))


def test_an_input_round_trips_through_configmap_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "".join(f'{{"image": "busybox", "task_key": "t{i}"}}\n' for i in range(2000))
    monkeypatch.setattr(packedinput, "PART_BYTES", 1000)  # several parts
    packed = packedinput.pack(text, name="dir/in.jsonl", format="jsonl")
    assert len(packed.parts) > 1
    _mount(packed, tmp_path)
    assert packedinput.unpack(tmp_path) == (text, "in.jsonl", "jsonl")


def test_an_input_too_big_for_configmaps_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(packedinput, "PART_BYTES", 10)
    monkeypatch.setattr(packedinput, "MAX_PARTS", 2)
    with pytest.raises(packedinput.InputTooLargeError, match="1 MiB"):
        packedinput.pack("x" * 5000 + "y" * 5000 + bytes(range(256)).hex(), name="a", format="yaml")


def _submission(**overrides: object) -> submitplan.Submission:
    fields: dict[str, object] = {
        "run_id": "run-1",
        "namespace": "ns",
        "shards": 3,
        "image": "localhost/asyncpod:dev",
        "tasks": 10,
        "per_shard": (3, 3, 4),
        "shard_args": ("batch", "/input", "--shard", f"{submitplan.INDEX_VAR}/3"),
        "claim": "results",
        "template": {"spec": {"nodeSelector": {"a": "b"}, "hostNetwork": True}},
    }
    fields.update(overrides)
    return submitplan.Submission(**fields)  # type: ignore[arg-type]


def test_the_manifests_of_a_submission() -> None:
    packed = packedinput.pack("- image: busybox\n", name="in.yaml", format="yaml")
    objects = submitplan.manifests(_submission(), packed)
    kinds = [o["kind"] for o in objects]
    assert kinds == ["ConfigMap", "ServiceAccount", "Role", "RoleBinding", "Job"]
    for obj in objects:
        assert obj["metadata"]["labels"][submitplan.BATCH_LABEL] == "run-1"
    job = objects[-1]
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 3
    assert spec["backoffLimitPerIndex"] == 6
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "run-1-launcher"
    assert pod["nodeSelector"] == {"a": "b"}  # the template's
    assert pod["hostNetwork"] is True
    assert pod["containers"][0]["args"][-1] == "$(JOB_COMPLETION_INDEX)/3"
    assert pod["volumes"][1]["persistentVolumeClaim"]["claimName"] == "results"
    submission = json.loads(objects[0]["data"][submitplan.SUBMISSION_KEY])
    assert submission["per_shard"] == [3, 3, 4]
    role = objects[2]
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert "patch" in verbs
    assert not any("jobs" in r["resources"] for r in role["rules"])


def test_a_claim_is_made_only_with_a_size() -> None:
    packed = packedinput.pack("- image: busybox\n", name="in.yaml", format="yaml")
    objects = submitplan.manifests(_submission(claim="run-1-results", claim_size="1Gi"), packed)
    made = [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    assert made[0]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert made[0]["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_template_merge_by_container_name_and_env_appended() -> None:
    base = {"spec": {"containers": [{"name": "shard", "env": [{"name": "A", "value": "1"}]}]}}
    overlay = {"spec": {"containers": [{"name": "shard", "env": [{"name": "B", "value": "2"}]}]}}
    merged = submitplan.merge_template(base, overlay)
    assert [e["name"] for e in merged["spec"]["containers"][0]["env"]] == ["A", "B"]


def _pod(index: int, created: str, phase: str, progress: dict[str, int] | None) -> dict[str, Any]:
    annotations = {"batch.kubernetes.io/job-completion-index": str(index)}
    if progress is not None:
        annotations[submitplan.PROGRESS_ANNOTATION] = json.dumps(progress)
    return {
        "metadata": {"name": f"p{index}-{created}", "creationTimestamp": created,
                     "annotations": annotations},
        "status": {"phase": phase},
    }  # fmt: skip


def test_status_per_shard_from_the_newest_pod_or_its_predecessor() -> None:
    pods = [
        _pod(0, "1", "Succeeded", {"done": 3, "ok": 3, "failed": 0, "in_flight": 0}),
        _pod(1, "1", "Failed", {"done": 1, "ok": 1, "failed": 0, "in_flight": 2}),
        _pod(1, "2", "Running", None),
        _pod(2, "1", "Running", {"done": 2, "ok": 1, "failed": 1, "in_flight": 2}),
    ]
    job = {"metadata": {"name": "run-1-shards"}, "status": {"active": 2}}
    status = report("run-1", submission={"per_shard": [3, 3, 4], "tasks": 10}, job=job, pods=pods)
    rows = status.rows
    assert (rows[0].done, rows[0].phase, rows[0].pods) == (3, "Succeeded", 1)
    assert (rows[1].done, rows[1].stale, rows[1].pods, rows[1].phase) == (1, True, 2, "Running")
    assert (status.done, status.ok, status.failed, status.tasks) == (6, 5, 1, 10)
    text = render(status, job)
    assert "Running (2 shard pods active)" in text
    assert "total: 6/10 done (5 succeeded, 1 failed)" in text
    assert job_state(None).startswith("gone")
    done = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    assert job_state(done) == "Complete"


def test_the_reader_pods_log_decodes_to_each_file() -> None:
    import gzip

    def section(name: str, data: bytes) -> list[str]:
        encoded = base64.b64encode(gzip.compress(data)).decode()
        return [f"== {name}", *(encoded[i : i + 76] for i in range(0, len(encoded), 76))]

    lines = [*section("shard-0.jsonl", b"a\nb\n"), *section("shard-1.jsonl", b"c\npart"), "== end"]
    assert decode_reader_log(lines) == {"shard-0.jsonl": b"a\nb\n", "shard-1.jsonl": b"c\npart"}


def test_each_shard_runs_the_batch_with_its_share_of_the_limits() -> None:
    from asyncpod.cli.batchfile import parse_batch
    from asyncpod.cli.incluster import _shard_args
    from asyncpod.cli.main import parse_args

    args = parse_args(
        ["batch", "in.jsonl", "--submit", "--shards", "4", "--max-in-flight", "10",
         "--qps", "40", "--retries", "1", "--timeout", "60", "--image", "i"]
    )  # fmt: skip
    batch = parse_batch('{"image": "busybox"}\n', format="jsonl")
    words = _shard_args(args, "run-1", "ns", batch)
    joined = " ".join(words)
    assert joined.startswith("batch /input --format jsonl --namespace ns --run-id run-1 --resume")
    assert "--shard $(JOB_COMPLETION_INDEX)/4" in joined
    assert "--results /results/shard-$(JOB_COMPLETION_INDEX).jsonl" in joined
    assert "--max-in-flight 3 --qps 10 " in joined
    assert "--retries 1" in joined
    assert "--timeout 60" in joined
    again = parse_args(["batch", *(w.replace("$(JOB_COMPLETION_INDEX)", "2") for w in words)])
    assert again.shard == "2/4"
    assert again.resume


def test_a_shard_reads_its_input_from_the_mounted_configmaps(tmp_path: Path) -> None:
    from asyncpod.cli.incluster import load_input

    text = '{"image": "busybox", "task_key": "a"}\n{"image": "busybox", "task_key": "b"}\n'
    _mount(packedinput.pack(text, name="x/in.jsonl", format="jsonl"), tmp_path)
    batch = load_input(str(tmp_path), format=None)
    assert [e.task_key for e in batch.entries] == ["a", "b"]
    assert batch.source == "in.jsonl"


def test_a_shards_pods_carry_its_label_and_its_session_watches_only_them() -> None:
    from asyncpod.cli.batch import _shard_entries
    from asyncpod.cli.batchfile import parse_batch
    from asyncpod.cli.shards import SHARD_LABEL

    text = "".join(
        f'{{"image": "busybox", "task_key": "t{i}", "labels": {{"a": "b"}}}}\n' for i in range(30)
    )
    batch = parse_batch(text, format="jsonl")
    entries = _shard_entries(batch, Shard(1, 3))
    assert [e.task_key for e in entries] == Shard(1, 3).select(e.task_key for e in batch.entries)
    for entry in entries:
        entry.spec.validate()  # the label is not in the reserved asyncpod.dev/ prefix
        assert entry.spec.labels == {"a": "b", SHARD_LABEL: "1-of-3"}


def test_options_the_shards_cannot_honour_are_refused_by_name() -> None:
    from asyncpod.cli.submitplan import not_passed_to_shards

    assert not_passed_to_shards(
        logs=None, logs_for=None, metrics_port=None, report=False, clusters=1, cleanup="delete"
    ) == []  # fmt: skip
    refused = not_passed_to_shards(
        logs="/tmp/logs", logs_for=None, metrics_port=9000, report=True, clusters=2, cleanup="keep"
    )
    assert [r.split(" ")[0] for r in refused] == [
        "--logs/--logs-for", "--metrics-port", "--report", "several", "--cleanup",
    ]  # fmt: skip
