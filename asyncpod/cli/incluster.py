"""The batch launcher in the cluster: ``asyncpod batch FILE --submit`` and its follow-ups.

Why: a batch of a million pods outlives a laptop. Kubernetes is the engine: an Indexed
Job of K launcher shards (``asyncpod batch ... --shard I/K --resume``), each owning the
tasks :mod:`asyncpod.cli.shards` gives it, each appending to its own results file on a
volume. A shard pod that dies (deleted, SIGKILLed, its node lost) is replaced by the Job
with the same index; the new pod resumes from that index's file and reattaches to the
task pods still running (their names are deterministic), so nothing is lost or run
twice. No state lives anywhere but in Kubernetes objects and the results volume.

* ``--submit`` validates FILE exactly as a local batch does, checks the results claim
  and every object with a server-side dry run (a missing permission, say to create Jobs,
  is one clear error, and nothing is created), then creates them
  (:mod:`asyncpod.cli.submitplan`), prints the run id and the commands below, and exits.
* ``status RUN_ID``: per shard and in total, from the Job, the shard pods and the counts
  each shard publishes on its own pod (:mod:`asyncpod.cli.batchstatus`).
* ``results RUN_ID [-o FILE]``: the volume is not reachable from here, so a short-lived
  reader pod mounts the claim (read-only, placed like the shards) and prints each
  shard's file gzip-compressed in base64 on its log; this command follows the log,
  decodes, drops a line a shard is still writing, and prints the merged JSONL (the same
  lines as a local batch's) and the same summary. It works during the run and after.
  Chosen over publishing results through the API (ConfigMaps: 1 MiB each, a write per
  result, etcd holding what a volume holds better) and over a long-lived server (state
  and a port to secure). Limit: the kubelet rotates a container log at 10 MiB by
  default, ~100 MB of results compressed; beyond that, read the volume directly.
* ``cancel RUN_ID``: deletes the Job, waits for its shard pods to go (a shard exits at
  once on SIGTERM/SIGINT, leaving its pods), then deletes every task pod of the run;
  says what it deleted. The input, ServiceAccount, Role and claim stay (``results``
  still works); they carry the run's label for ``kubectl delete``.

What it deliberately does not do: build or push the shards' image (``--image``), provide
storage (name a claim, or ``--results-size`` asks the default storage class for a
ReadWriteMany claim: K shards on K nodes write to it at once), or reach the API server
for the shards (they use their ServiceAccount's in-cluster configuration).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gzip
import json
import os
import re
import secrets
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from asyncpod.cli._common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, describe_error
from asyncpod.cli.batchfile import Batch, detect_format, load_batch, new_run_id, parse_batch
from asyncpod.cli.batchstatus import render as render_status
from asyncpod.cli.batchstatus import report
from asyncpod.cli.fleetoptions import cluster_choices
from asyncpod.cli.packedinput import pack, unpack
from asyncpod.cli.resultsfile import read_results
from asyncpod.cli.shardprogress import PodTarget
from asyncpod.cli.shards import shard_of, split_evenly
from asyncpod.cli.submitplan import (
    BATCH_LABEL,
    INDEX_VAR,
    ROLE_LABEL,
    SUBMISSION_KEY,
    Submission,
    claim_name,
    input_name,
    job_name,
    manifests,
    not_passed_to_shards,
    selector,
    shard_results_path,
)
from asyncpod.cli.summary import render, summarize
from asyncpod.core.cluster import Cluster, connect
from asyncpod.errors import AsyncpodError, NotFoundError, UsageError
from asyncpod.kube.objects import (
    CONFIG_MAP,
    JOB,
    PERSISTENT_VOLUME_CLAIM,
    POD,
    ROLE,
    ROLE_BINDING,
    SERVICE_ACCOUNT,
    Kind,
    Objects,
)
from asyncpod.spec import RUN_ID_LABEL, PodSpec

__all__ = [
    "ACTIONS",
    "add_incluster_options",
    "handle_action",
    "load_input",
    "progress_target",
    "submit",
]

ACTIONS = frozenset({"status", "results", "cancel"})
_SUBMIT_RUN_ID = re.compile(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?")
_KINDS = {
    k.name: k
    for k in (CONFIG_MAP, SERVICE_ACCOUNT, ROLE, ROLE_BINDING, PERSISTENT_VOLUME_CLAIM, JOB)
}
_SECTION = "== "


def add_incluster_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("in the cluster (an Indexed Job of launcher shards)")
    group.add_argument(
        "--submit", action="store_true",
        help="validate FILE, create the batch's Job in the cluster, print its run id, exit",
    )  # fmt: skip
    group.add_argument(
        "--shards", type=int, default=1, metavar="K",
        help="launcher pods (Job completions and parallelism; default 1)",
    )  # fmt: skip
    group.add_argument("--image", default=None, help="the shards' image (asyncpod installed)")
    claim = group.add_mutually_exclusive_group()
    claim.add_argument(
        "--results-claim", default=None, metavar="NAME",
        help="a PersistentVolumeClaim for the shards' results files (must exist)",
    )  # fmt: skip
    claim.add_argument(
        "--results-size", default=None, metavar="SIZE",
        help="create a ReadWriteMany claim of SIZE (e.g. 1Gi) in the default storage class",
    )  # fmt: skip
    group.add_argument(
        "--shard-template", type=Path, default=None, metavar="FILE",
        help="YAML/JSON pod template merged into the shards' (nodeSelector, tolerations, env)",
    )  # fmt: skip
    group.add_argument(
        "--backoff-limit-per-index", type=int, default=6, metavar="N",
        help="replacements of one shard pod before its index fails (default 6)",
    )  # fmt: skip
    group.add_argument(
        "--shard", default=None, metavar="I/K",
        help="run only the tasks of shard I of K (what each pod of --submit's Job runs)",
    )  # fmt: skip
    group.add_argument(
        "-o", "--output", type=Path, default=None, metavar="FILE",
        help="batch results RUN_ID: write the merged JSONL here (default stdout)",
    )  # fmt: skip


def load_input(path: str, *, format: str | None) -> Batch:
    """FILE as a local batch reads it, or a packed input mounted in a directory (a shard)."""
    if path != "-" and Path(path).is_dir():
        text, name, packed_format = unpack(Path(path))
        fmt = format or packed_format or detect_format(name, text)
        return parse_batch(text, format=fmt, source=name)  # type: ignore[arg-type]
    return load_batch(path, format=format)  # type: ignore[arg-type]


def progress_target(args: argparse.Namespace) -> PodTarget | None:
    """A shard publishes its counts on its own pod, named by the downward API."""
    if args.shard is None:
        return None
    name, namespace = os.environ.get("POD_NAME"), os.environ.get("POD_NAMESPACE")
    return PodTarget(namespace, name) if name and namespace else None


# --------------------------------------------------------------------------------------
# submit
# --------------------------------------------------------------------------------------


def submit(args: argparse.Namespace, batch: Batch) -> int:
    """Create the in-cluster batch; exit 2 with nothing created on any problem found first."""
    try:
        submission, packed = _plan(args, batch)
    except UsageError as error:
        sys.stderr.write(f"asyncpod batch --submit: {error}; nothing was created\n")
        return EXIT_USAGE
    return asyncio.run(_submit(args, submission, packed))


def _plan(args: argparse.Namespace, batch: Batch) -> tuple[Submission, Any]:
    if args.file == "-":
        raise UsageError("--submit needs the input in a file, not on stdin")
    if args.shards < 1:
        raise UsageError(f"--shards must be at least 1, got {args.shards}")
    if not args.image:
        raise UsageError("--submit needs --image: an image with asyncpod installed")
    if args.results_claim is None and args.results_size is None:
        raise UsageError("--submit needs --results-claim NAME or --results-size SIZE")
    if args.resume or args.shard:
        raise UsageError("--submit starts a new run; --resume and --shard are for its shards")
    refused = not_passed_to_shards(
        logs=args.logs,
        logs_for=args.logs_for,
        metrics_port=args.metrics_port,
        report=args.report,
        clusters=len(cluster_choices(args.kubeconfig or [], args.context or [])),
        cleanup=args.cleanup,
    )
    if refused:
        raise UsageError("--submit cannot pass to its shards: " + "; ".join(refused))
    run_id = args.run_id or new_run_id(batch.source)
    if not _SUBMIT_RUN_ID.fullmatch(run_id):
        raise UsageError(
            f"--run-id {run_id!r}: an in-cluster run id names objects: at most 40 lowercase "
            "letters, digits or '-', starting and ending with a letter or digit"
        )
    template: dict[str, Any] = {}
    if args.shard_template is not None:
        try:
            loaded = yaml.safe_load(args.shard_template.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise UsageError(f"--shard-template {args.shard_template}: {error}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"--shard-template {args.shard_template}: not a mapping")
        template = loaded
    text = Path(args.file).read_text(encoding="utf-8")
    packed = pack(text, name=batch.source, format=batch.format)
    per_shard = [0] * args.shards
    for entry in batch.entries:
        per_shard[shard_of(entry.task_key, args.shards)] += 1
    namespace = args.namespace or _default_namespace(args)
    submission = Submission(
        run_id=run_id,
        namespace=namespace,
        shards=args.shards,
        image=args.image,
        tasks=len(batch),
        per_shard=tuple(per_shard),
        shard_args=tuple(_shard_args(args, run_id, namespace, batch)),
        claim=args.results_claim or claim_name(run_id),
        claim_size=args.results_size,
        backoff_limit_per_index=args.backoff_limit_per_index,
        template=template,
    )
    return submission, packed


def _default_namespace(args: argparse.Namespace) -> str:
    """The kubeconfig context's namespace, as a local batch would use (read without I/O
    to the server: the shards need it spelled out)."""
    from asyncpod.kube.config import load_config

    choice = cluster_choices(args.kubeconfig or [], args.context or [])[0]

    async def read() -> str:
        config = await load_config(choice.kubeconfig, context=choice.context)
        return config.namespace or "default"

    return asyncio.run(read())


def _shard_args(args: argparse.Namespace, run_id: str, namespace: str, batch: Batch) -> list[str]:
    """What every shard runs: the same options, ``--max-in-flight`` and ``--qps`` split."""
    k = args.shards
    words = ["batch", "/input", "--format", batch.format, "--namespace", namespace]
    words += ["--run-id", run_id, "--resume", "--shard", f"{INDEX_VAR}/{k}"]
    words += ["--results", shard_results_path(INDEX_VAR)]
    words += ["--max-in-flight", str(split_evenly(args.max_in_flight, k))]
    words += ["--qps", f"{max(args.qps, 0) / k:g}"]  # 0: unlimited, in every shard too
    if args.burst is not None:
        words += ["--burst", str(split_evenly(args.burst, k))]
    if args.retries is not None:
        words += ["--retries", str(args.retries)]
    for rule in args.retry_on:
        words += ["--retry-on", rule]
    if args.max_failures is not None:
        words += ["--max-failures", str(args.max_failures)]
    for option, value in (
        ("--timeout", args.timeout),
        ("--schedule-timeout", args.schedule_timeout),
        ("--startup-timeout", args.startup_timeout),
        ("--image-pull-timeout", args.image_pull_timeout),
    ):
        words += [option, "0" if value is None else f"{value:g}"]
    words += ["--cleanup", args.cleanup, "--progress", "lines", "--progress-interval", "30"]
    return words


async def _submit(args: argparse.Namespace, submission: Submission, packed: Any) -> int:
    title = "asyncpod batch --submit"
    objects = manifests(submission, packed)
    created: list[tuple[Kind, str]] = []
    try:
        async with _session(args, submission.namespace) as cluster:
            api = Objects(cluster.client)
            namespace = cluster.namespace
            if submission.claim_size is None:
                try:
                    await api.get(PERSISTENT_VOLUME_CLAIM, namespace, submission.claim)
                except NotFoundError:
                    raise UsageError(
                        f"the results claim {submission.claim!r} does not exist in namespace "
                        f"{namespace}; create it (ReadWriteMany: every shard writes to it) "
                        "or pass --results-size SIZE to have one made"
                    ) from None
            # A binding's dry run would look for its Role, which is not there yet.
            for manifest in objects:
                if manifest["kind"] != "RoleBinding":
                    await api.create(_KINDS[manifest["kind"]], namespace, manifest, dry_run=True)
            try:
                for manifest in objects:
                    kind = _KINDS[manifest["kind"]]
                    await api.create(kind, namespace, manifest)
                    created.append((kind, manifest["metadata"]["name"]))
            except BaseException:
                with contextlib.suppress(AsyncpodError):
                    for kind, name in reversed(created):
                        await api.delete(kind, namespace, name)
                raise
    except AsyncpodError as error:
        undone = f"; the {len(created)} objects made were deleted" if created else ""
        sys.stderr.write(f"{title}: {describe_error(error)}; nothing was created{undone}\n")
        return EXIT_USAGE if isinstance(error, UsageError) else EXIT_FAILED
    run = submission.run_id
    where = _where(args, submission.namespace)
    sys.stdout.write(
        f"{run}\n"
        f"submitted: {submission.tasks} tasks in {submission.shards} shards "
        f"({', '.join(map(str, submission.per_shard))}) · Job {job_name(run)} · results on "
        f"claim {submission.claim} · input in {len(packed.parts)} ConfigMap(s), "
        f"{packed.compressed_bytes:,} bytes compressed\n"
        f"  asyncpod batch status {run}{where}\n"
        f"  asyncpod batch results {run}{where} -o {run}.results.jsonl\n"
        f"  asyncpod batch cancel {run}{where}\n"
    )
    return EXIT_OK


def _where(args: argparse.Namespace, namespace: str) -> str:
    words = []
    for option, values in (("--kubeconfig", args.kubeconfig), ("--context", args.context)):
        for value in values or ():
            words += [option, value]
    words += ["--namespace", namespace]
    return " " + " ".join(words)


@contextlib.asynccontextmanager
async def _session(args: argparse.Namespace, namespace: str | None) -> AsyncIterator[Cluster]:
    choice = cluster_choices(args.kubeconfig or [], args.context or [])[0]
    async with connect(choice.kubeconfig, context=choice.context, namespace=namespace) as cluster:
        yield cluster


# --------------------------------------------------------------------------------------
# status, results, cancel
# --------------------------------------------------------------------------------------


def handle_action(args: argparse.Namespace) -> int:
    title = f"asyncpod batch {args.file}"
    if len(args.words) != 1:
        sys.stderr.write(f"{title}: give one RUN_ID (the run id --submit printed)\n")
        return EXIT_USAGE
    action = {"status": _status, "results": _results, "cancel": _cancel}[args.file]
    try:
        return asyncio.run(action(args, args.words[0]))
    except AsyncpodError as error:
        sys.stderr.write(f"{title}: {describe_error(error)}\n")
        return EXIT_USAGE if isinstance(error, UsageError) else EXIT_FAILED


async def _submission(api: Objects, namespace: str, run_id: str) -> dict[str, Any]:
    try:
        first = await api.get(CONFIG_MAP, namespace, input_name(run_id, 0))
    except NotFoundError:
        raise UsageError(
            f"no in-cluster batch {run_id!r} in namespace {namespace} (its input ConfigMap "
            f"{input_name(run_id, 0)} is not there)"
        ) from None
    value = json.loads((first.get("data") or {}).get(SUBMISSION_KEY) or "{}")
    return value if isinstance(value, dict) else {}


async def _job(api: Objects, namespace: str, run_id: str) -> dict[str, Any] | None:
    try:
        return await api.get(JOB, namespace, job_name(run_id))
    except NotFoundError:
        return None


async def _status(args: argparse.Namespace, run_id: str) -> int:
    async with _session(args, args.namespace) as cluster:
        api = Objects(cluster.client)
        submission = await _submission(api, cluster.namespace, run_id)
        job = await _job(api, cluster.namespace, run_id)
        pods = await api.list(POD, cluster.namespace, label_selector=selector(run_id, "shard"))
    status = report(run_id, submission=submission, job=job, pods=pods)
    sys.stdout.write(render_status(status, job) + "\n")
    return EXIT_OK


async def _results(args: argparse.Namespace, run_id: str) -> int:
    async with _session(args, args.namespace) as cluster:
        api = Objects(cluster.client)
        submission = await _submission(api, cluster.namespace, run_id)
        files = await _read_volume(cluster, run_id, submission)
    merged = b"".join(_whole_lines(files[name]) for name in sorted(files, key=_shard_number))
    if args.output is not None:
        args.output.write_bytes(merged)
        path = args.output
        out = Console(file=sys.stdout, highlight=False, width=100)
    else:
        sys.stdout.buffer.write(merged)
        sys.stdout.flush()
        path = None
        out = Console(file=sys.stderr, highlight=False, width=100)
    recorded = read_results(path) if path is not None else _recorded_from(merged)
    summary = summarize(
        recorded.results.values(),
        total=int(submission.get("tasks") or 0),
        run_id=run_id,  # no elapsed time: how long reading took says nothing of the run
    )
    render(summary, out, title=f"asyncpod batch results {run_id}")
    return EXIT_OK


def _recorded_from(data: bytes) -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "merged.jsonl"
        path.write_bytes(data)
        return read_results(path)


def _shard_number(name: str) -> int:
    match = re.search(r"(\d+)", name)
    return int(match[1]) if match else 0


def _whole_lines(data: bytes) -> bytes:
    """A file's complete lines: a shard may be writing its last one right now."""
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""


def reader_script() -> str:
    """Each shard file gzip-compressed in base64 under a ``== NAME`` line (portable sh)."""
    return (
        'cd /results || exit 3; for f in shard-*.jsonl; do [ -f "$f" ] || continue; '
        f'echo "{_SECTION}$f"; gzip -c "$f" | base64; done; echo "{_SECTION}end"'
    )


def decode_reader_log(lines: list[str]) -> dict[str, bytes]:
    """The reader pod's log → {file name: contents}. Pure."""
    files: dict[str, bytes] = {}
    name: str | None = None
    chunks: list[str] = []
    for line in [*lines, f"{_SECTION}end"]:
        if line.startswith(_SECTION):
            if name is not None and name != "end":
                files[name] = gzip.decompress(base64.b64decode("".join(chunks)))
            name, chunks = line[len(_SECTION) :].strip(), []
        else:
            chunks.append(line.strip())
    return files


async def _read_volume(
    cluster: Cluster, run_id: str, submission: dict[str, Any]
) -> dict[str, bytes]:
    """Start the reader pod on the claim, placed like the shards; decode its log."""
    template = submission.get("template") or {}
    spec_part = template.get("spec") or {} if isinstance(template, dict) else {}
    placement = {
        k: spec_part[k] for k in ("nodeSelector", "tolerations", "affinity") if k in spec_part
    }
    spec = PodSpec(
        str(submission.get("image") or "busybox"),
        name=f"{run_id}-results-{secrets.token_hex(3)}",
        command=["sh", "-c", reader_script()],
        template={
            # In the template: a spec's own labels may not use asyncpod.dev/ (reserved).
            "metadata": {"labels": {BATCH_LABEL: run_id, ROLE_LABEL: "results"}},
            "spec": {
                **placement,
                "automountServiceAccountToken": False,
                "volumes": [
                    {
                        "name": "results",
                        "persistentVolumeClaim": {
                            "claimName": str(submission.get("claim")),
                            "readOnly": True,
                        },
                    }
                ],
                "containers": [
                    {
                        "name": "main",
                        "volumeMounts": [
                            {"name": "results", "mountPath": "/results", "readOnly": True}
                        ],
                    }
                ],
            },
        },
    )
    run = await cluster.start(spec)
    async with contextlib.aclosing(run.logs()) as stream:
        lines = [line.text async for line in stream]
    result = await run
    if not result.ok:
        raise UsageError(
            f"the results reader pod {result.name} did not succeed: {result.describe()}"
        )
    if not lines or lines[-1].strip() != f"{_SECTION}end":
        raise UsageError(f"the results reader pod {result.name}'s log was cut short")
    return decode_reader_log(lines)


async def _cancel(args: argparse.Namespace, run_id: str) -> int:
    async with _session(args, args.namespace) as cluster:
        api = Objects(cluster.client)
        namespace = cluster.namespace
        await _submission(api, namespace, run_id)  # a clear error for an unknown run
        job = await api.delete(JOB, namespace, job_name(run_id))
        shard_pods = await _delete_pods(api, namespace, selector(run_id, "shard"))
        # Until its shard pods are gone a shard may still create a task pod.
        await _wait_gone(api, namespace, selector(run_id, "shard"), timeout=120)
        task_pods = await _delete_pods(api, namespace, f"{RUN_ID_LABEL}={run_id}")
        readers = await _delete_pods(api, namespace, selector(run_id, "results"))
        await _wait_gone(api, namespace, f"{RUN_ID_LABEL}={run_id}", timeout=120)
    sys.stdout.write(
        f"cancelled {run_id}: Job {job_name(run_id)} "
        f"{'deleted' if job else 'was already gone'}; deleted {len(shard_pods)} shard pods, "
        f"{len(task_pods)} task pods"
        + (f", {len(readers)} results reader pods" if readers else "")
        + f". Kept: the results claim, the input ConfigMaps and the shards' ServiceAccount "
        f"and Role (label {selector(run_id)}; `asyncpod batch results {run_id}` still works)\n"
    )
    return EXIT_OK


async def _delete_pods(api: Objects, namespace: str, label_selector: str) -> list[str]:
    deleted = []
    for pod in await api.list(POD, namespace, label_selector=label_selector):
        name = pod["metadata"]["name"]
        if pod["metadata"].get("deletionTimestamp") or await api.delete(POD, namespace, name):
            deleted.append(name)
    return deleted


async def _wait_gone(api: Objects, namespace: str, label_selector: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = await api.list(POD, namespace, label_selector=label_selector)
        if not left:
            return
        for pod in left:  # made since the last pass
            if not pod["metadata"].get("deletionTimestamp"):
                await api.delete(POD, namespace, pod["metadata"]["name"])
        await asyncio.sleep(1.0)
