"""What to run: :class:`PodSpec` and its parts, rendered into a v1 Pod manifest.

Why this package exists: users describe a pod in a small, typed, snake_case vocabulary
(or the same vocabulary as a dict from a YAML/JSONL batch file). Everything that can be
checked without a server is checked here, before any request, and every
:class:`~asyncpod.errors.SpecError` names the one field to fix. A batch of 10,000 pods
should fail on line 3 of the file, not as 10,000 HTTP 422s. The package also owns pod
identity: the ownership labels and :func:`deterministic_pod_name`, so that a create
retried after a crash gets 409 and reattaches instead of duplicating a pod.

Its modules, one concern each (private; import from ``asyncpod.spec``):

- ``_naming``: Kubernetes naming rules (DNS names, label keys and values, images);
- ``_quantity``: resource quantities ("500m", "1Gi") parsed to exact decimals;
- ``_coerce``: user input to canonical shapes, errors naming the field path;
- ``_values``: the value types :class:`EnvVar`, :class:`EnvFrom`, :class:`Resources`,
  :class:`VolumeMount`, :class:`Toleration`;
- ``_container``: :class:`ContainerSpec`;
- ``_pod``: :class:`PodSpec`, pod-level validation, the manifest;
- ``_template``: checking and merging a raw Pod manifest under the typed fields;
- ``_identity``: ownership labels, :func:`deterministic_pod_name`, :func:`task_key_hash`.

What it deliberately does not do:

- No I/O and no Kubernetes client models: manifests are plain dicts (what orjson
  encodes), never ``V1Pod``.
- It does not model every Pod field. The long tail (host aliases, DNS config, overhead,
  ...) goes through ``template``: a raw Pod manifest that the typed fields are merged
  over. Fields that mirror a Kubernetes object verbatim (``volumes``, ``affinity``, the
  security contexts, ``template``) take the Kubernetes JSON form, camelCase.
- Validation mirrors the API server's rules where mistakes are common and costly; the
  server stays the authority (a 422 still becomes ``InvalidRequestError``). We never
  reject what a recent server accepts just to be strict (env var names, for instance,
  follow the relaxed rule of Kubernetes >= 1.30).
- Construction only normalises shapes and types (a mapping of env vars becomes a tuple
  of :class:`EnvVar`; a wrong type raises ``SpecError`` at once). Semantic checks run in
  :meth:`PodSpec.validate`, which the runner calls before creating a pod, so a batch
  loader can build specs first and fill in defaults before validating.
"""

from __future__ import annotations

from asyncpod.spec._container import DEFAULT_CONTAINER_NAME, ContainerSpec
from asyncpod.spec._identity import (
    DEFAULT_CONTAINER_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    RUN_ID_LABEL,
    TASK_HASH_LABEL,
    TASK_KEY_ANNOTATION,
    deterministic_pod_name,
    task_key_hash,
)
from asyncpod.spec._pod import PodSpec
from asyncpod.spec._values import EnvFrom, EnvVar, Resources, Toleration, VolumeMount

__all__ = [
    "DEFAULT_CONTAINER_ANNOTATION",
    "DEFAULT_CONTAINER_NAME",
    "MANAGED_BY_LABEL",
    "MANAGED_BY_VALUE",
    "RUN_ID_LABEL",
    "TASK_HASH_LABEL",
    "TASK_KEY_ANNOTATION",
    "ContainerSpec",
    "EnvFrom",
    "EnvVar",
    "PodSpec",
    "Resources",
    "Toleration",
    "VolumeMount",
    "deterministic_pod_name",
    "task_key_hash",
]
