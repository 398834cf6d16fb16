"""Pod identity: the labels and annotations asyncpod owns, and deterministic pod names.

Why this module exists: asyncpod must recognise its own pods — to watch only them, to
clean up after a crash, and to make a retried create idempotent. Every pod carries
:data:`MANAGED_BY_LABEL`; launcher pods carry the run id and a hash of their task key
(task keys are free text, not label-safe), with the key itself in an annotation. The
same ``(run_id, task_key)`` always gives the same :func:`deterministic_pod_name`, so a
create retried after a crash gets 409 AlreadyExists and the runner reattaches instead
of starting a duplicate.

What it deliberately does not do: it does not decide whether a pod found under a name
is ours (the runner compares the annotation); it only defines the names. The hashes are
pinned by tests: changing them would orphan the pods of an older asyncpod on resume.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Final

from asyncpod.errors import SpecError
from asyncpod.spec._coerce import key_path

__all__ = [
    "DEFAULT_CONTAINER_ANNOTATION",
    "MANAGED_BY_LABEL",
    "MANAGED_BY_VALUE",
    "RUN_ID_LABEL",
    "TASK_HASH_LABEL",
    "TASK_KEY_ANNOTATION",
    "deterministic_pod_name",
    "identity_metadata",
    "reserved_annotation_problems",
    "reserved_label_problems",
    "task_key_hash",
]

MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "asyncpod"
RUN_ID_LABEL: Final = "asyncpod.dev/run-id"
#: Task keys are free text (not label-safe); the label holds a hash of the key, the
#: annotation :data:`TASK_KEY_ANNOTATION` the key itself.
TASK_HASH_LABEL: Final = "asyncpod.dev/task-hash"
TASK_KEY_ANNOTATION: Final = "asyncpod.dev/task-key"
#: Tells ``kubectl logs/exec`` which container to pick when there are sidecars.
DEFAULT_CONTAINER_ANNOTATION: Final = "kubectl.kubernetes.io/default-container"

_RESERVED_LABEL_PREFIX: Final = "asyncpod.dev/"
_HASH_CHARS: Final = 13  # base32: 65 bits; ~1e-10 collision odds at 100,000 tasks per run


def _b32(data: bytes) -> str:
    return base64.b32encode(hashlib.sha256(data).digest()).decode("ascii").lower().rstrip("=")


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def deterministic_pod_name(run_id: str, task_key: str) -> str:
    """A stable pod name for a task of a run: readable prefix + short hash.

    The same ``(run_id, task_key)`` always gives the same name, so a create retried
    after a crash gets 409 AlreadyExists and the runner reattaches to the existing pod
    (it should confirm :data:`TASK_KEY_ANNOTATION` on that pod). The result is a
    DNS-1123 label of at most 63 characters (also usable as the pod's hostname):
    ``<run-id slug ≤12>-<task-key slug>-<13 base32 chars of sha256>``.
    """
    digest = _b32(f"{run_id}\x00{task_key}".encode())[:_HASH_CHARS]
    run = _slug(run_id)[:12].rstrip("-")
    room = 63 - _HASH_CHARS - 1 - (len(run) + 1 if run else 0)
    task = _slug(task_key)[:room].rstrip("-")
    parts = [part for part in (run, task) if part] or ["asyncpod"]
    return "-".join([*parts, digest])


def task_key_hash(task_key: str) -> str:
    """The label-safe hash of a task key stored in :data:`TASK_HASH_LABEL` (20 chars)."""
    return _b32(task_key.encode())[:20]


def identity_metadata(
    labels: Mapping[str, str], annotations: Mapping[str, str], *, task_key: str | None
) -> tuple[dict[str, str], dict[str, str]]:
    """The pod's labels and annotations with asyncpod's own set over the user's.

    The ownership label always wins; a task key adds its hash label and its annotation.
    """
    all_labels = dict(labels)
    if task_key is not None:
        all_labels[TASK_HASH_LABEL] = task_key_hash(task_key)
    all_labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE
    all_annotations = dict(annotations)
    if task_key is not None:
        all_annotations[TASK_KEY_ANNOTATION] = task_key
    return all_labels, all_annotations


def reserved_label_problems(labels: Mapping[str, str]) -> Iterator[SpecError]:
    """User labels that would impersonate asyncpod's own."""
    for key, value in labels.items():
        if key == MANAGED_BY_LABEL and value != MANAGED_BY_VALUE:
            yield SpecError(
                key_path("labels", key), f"is reserved: asyncpod sets it to {MANAGED_BY_VALUE}"
            )
        elif key.startswith(_RESERVED_LABEL_PREFIX):
            yield SpecError(key_path("labels", key), "the asyncpod.dev/ prefix is reserved")


def reserved_annotation_problems(annotations: Mapping[str, str]) -> Iterator[SpecError]:
    """User annotations that would impersonate asyncpod's own."""
    if TASK_KEY_ANNOTATION in annotations:
        yield SpecError(
            key_path("annotations", TASK_KEY_ANNOTATION), "is reserved: set task_key instead"
        )
