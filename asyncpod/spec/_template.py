"""Templates: a raw Pod manifest that a spec's typed fields are merged over.

Why this module exists: :class:`~asyncpod.spec.PodSpec` models the fields people use;
the long tail (host aliases, DNS config, overhead, ...) comes through ``template``, often
copied from ``kubectl get pod -o yaml``. This module checks the template's shape,
strips what the server populated, and merges the typed fields over it the way a
strategic merge patch would (containers by name, volume mounts by path).

What it deliberately does not do: judge a template's contents. Those are the API
server's to accept or reject (a 422 becomes ``InvalidRequestError``); only the shape
this module needs to merge is checked.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from asyncpod.errors import SpecError

__all__ = ["merge", "template_metadata", "template_names", "template_problem"]

# Server-populated metadata that a template copied from `kubectl get -o yaml` carries
# and that a create must not send (resourceVersion is rejected outright). The name is
# dropped too: reusing one template name for many pods would make every create after
# the first a 409, and 409 means "reattach" to the runner.
_TEMPLATE_METADATA_DROP: Final = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
)

# Strategic-merge keys of the lists we merge element-wise when applying a template.
_MERGE_KEYS: Final = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}


def template_problem(template: Mapping[str, Any] | None) -> SpecError | None:
    """Check the shape of a template; its contents are the API server's to judge."""
    if template is None:
        return None
    if "spec" not in template and "containers" in template:
        return SpecError(
            "template",
            "must be a whole Pod manifest (apiVersion, kind, metadata, spec), not a pod spec;"
            " nest it under 'spec'",
        )
    kind = template.get("kind")
    if kind is not None and kind != "Pod":
        return SpecError("template.kind", f"must be Pod, got {kind!r}")
    version = template.get("apiVersion")
    if version is not None and version != "v1":
        return SpecError("template.apiVersion", f"must be v1, got {version!r}")
    for key in ("metadata", "spec"):
        value = template.get(key)
        if value is not None and not isinstance(value, Mapping):
            return SpecError(f"template.{key}", "must be a mapping")
    spec = template.get("spec") or {}
    for key in ("containers", "initContainers", "volumes"):
        items = spec.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            return SpecError(f"template.spec.{key}", "must be a list")
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                return SpecError(f"template.spec.{key}[{i}]", "must be a mapping")
            if not isinstance(item.get("name"), str) or not item["name"]:
                return SpecError(f"template.spec.{key}[{i}].name", "is required")
    return None


def template_names(template: Mapping[str, Any] | None, key: str) -> set[str]:
    """The names in the template's ``spec.<key>`` list (containers, volumes, ...)."""
    if template is None:
        return set()
    spec = template.get("spec") or {}
    return {item["name"] for item in spec.get(key) or () if isinstance(item, Mapping)}


def template_metadata(template: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of the template's metadata without what the server populated."""
    if template is None:
        return {}
    metadata = copy.deepcopy(dict(template.get("metadata") or {}))
    for key in _TEMPLATE_METADATA_DROP:
        metadata.pop(key, None)
    return metadata


def merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into ``base`` (mutated and returned); override wins.

    Mappings merge recursively. Lists with a strategic-merge key (containers by name,
    volume mounts by mountPath, ...) merge element-wise, template order first; other
    lists and scalars are replaced.
    """
    for key, value in override.items():
        current = base.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            base[key] = merge(current, value)
        elif key in _MERGE_KEYS and isinstance(value, list) and isinstance(current, list):
            base[key] = _merge_list(current, value, _MERGE_KEYS[key])
        else:
            base[key] = copy.deepcopy(value)
    return base


def _merge_list(base: list[Any], override: list[Any], merge_key: str) -> list[Any]:
    out = list(base)
    index = {item.get(merge_key): i for i, item in enumerate(out) if isinstance(item, dict)}
    for item in override:
        position = index.get(item.get(merge_key)) if isinstance(item, Mapping) else None
        if position is None:
            out.append(copy.deepcopy(item))
        else:
            out[position] = merge(out[position], item)
    return out
