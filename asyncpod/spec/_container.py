"""Containers: :class:`ContainerSpec`, its normalisation, validation and rendering.

Why this module exists: a container (the main one, an init container, a sidecar) is
the unit most fields of a spec belong to: image, command, env, resources, mounts. It is
built, checked and rendered here once, whichever role it plays in the pod.

What it deliberately does not do: pod-level rules (unique names across containers,
volumes declared by the pod, sidecars rendered as init containers) belong to the pod;
a container only checks itself, given the pod's volume names.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from asyncpod.errors import SpecError
from asyncpod.spec._coerce import (
    at_line,
    check_keys,
    child,
    list_items,
    need_mapping,
    need_str,
    opt_str,
    raw_map,
    str_tuple,
)
from asyncpod.spec._naming import dns_label_problem, image_problem, snake_case_key_problem
from asyncpod.spec._values import (
    EnvFrom,
    EnvVar,
    Resources,
    VolumeMount,
    coerce_env,
    coerce_env_from,
    coerce_mounts,
    coerce_resources,
    env_to_dict,
)

__all__ = [
    "CONTAINER_FIELDS",
    "DEFAULT_CONTAINER_NAME",
    "ContainerSpec",
    "coerce_containers",
]

DEFAULT_CONTAINER_NAME: Final = "main"
_IMAGE_PULL_POLICIES: Final = ("Always", "IfNotPresent", "Never")
_TERMINATION_MESSAGE_POLICIES: Final = ("File", "FallbackToLogsOnError")

CONTAINER_FIELDS: Final = (
    "command",
    "args",
    "env",
    "env_from",
    "resources",
    "volume_mounts",
    "security_context",
    "working_dir",
    "image_pull_policy",
    "termination_message_policy",
)


@dataclass(frozen=True, slots=True, init=False)
class ContainerSpec:
    """One container: the pod's main container, an init container or a sidecar.

    ``env`` takes a ``{"NAME": "value"}`` mapping or a sequence of :class:`EnvVar`;
    ``resources`` a :class:`Resources` or ``{"requests": {...}, "limits": {...}}``.
    ``image`` may be ``None`` only where a pod template supplies it.
    """

    name: str
    image: str | None
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[EnvVar, ...]
    env_from: tuple[EnvFrom, ...]
    resources: Resources
    volume_mounts: tuple[VolumeMount, ...]
    security_context: Mapping[str, Any] | None
    working_dir: str | None
    image_pull_policy: str | None
    termination_message_policy: str | None

    def __init__(
        self,
        name: str,
        image: str | None,
        *,
        command: Iterable[str] = (),
        args: Iterable[str] = (),
        env: Mapping[str, str] | Iterable[EnvVar] | None = None,
        env_from: Iterable[EnvFrom] = (),
        resources: Resources | Mapping[str, Mapping[str, str | int | float]] | None = None,
        volume_mounts: Iterable[VolumeMount] = (),
        security_context: Mapping[str, Any] | None = None,
        working_dir: str | None = None,
        image_pull_policy: str | None = None,
        termination_message_policy: str | None = None,
    ) -> None:
        # Field paths have no prefix: inside a pod, the caller re-roots them
        # (sidecars[0].env[1]), and the main container's fields sit at the top of the spec.
        values = {
            "command": str_tuple(
                command, "command", hint="; for a shell line use ['sh', '-c', '...']"
            ),
            "args": str_tuple(args, "args"),
            "env": coerce_env(env, "env"),
            "env_from": coerce_env_from(env_from, "env_from"),
            "resources": coerce_resources(resources, "resources"),
            "volume_mounts": coerce_mounts(volume_mounts, "volume_mounts"),
            "security_context": raw_map(security_context, "security_context"),
            "working_dir": opt_str(working_dir, "working_dir"),
            "image_pull_policy": opt_str(image_pull_policy, "image_pull_policy"),
            "termination_message_policy": opt_str(
                termination_message_policy, "termination_message_policy"
            ),
            "name": need_str(name, "name"),
            "image": opt_str(image, "image"),
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, line: int | None = None) -> ContainerSpec:
        """Build from the snake_case dict form; unknown keys raise :class:`SpecError`."""
        with at_line(line):
            data = need_mapping(data, "container")
            check_keys(data, ("name", "image", *CONTAINER_FIELDS), "")
            fields = {key: data[key] for key in CONTAINER_FIELDS if key in data}
            return cls(need_str(data.get("name"), "name"), data.get("image"), **fields)

    def to_dict(self) -> dict[str, Any]:
        """The snake_case dict form: ``ContainerSpec.from_dict(c.to_dict()) == c``.

        Fields left at their defaults are omitted.
        """
        out: dict[str, Any] = {"name": self.name}
        if self.image is not None:
            out["image"] = self.image
        if self.command:
            out["command"] = list(self.command)
        if self.args:
            out["args"] = list(self.args)
        if self.env:
            out["env"] = env_to_dict(self.env)
        if self.env_from:
            out["env_from"] = [source.to_dict() for source in self.env_from]
        if self.resources:
            out["resources"] = self.resources.to_dict()
        if self.volume_mounts:
            out["volume_mounts"] = [mount.to_dict() for mount in self.volume_mounts]
        if self.security_context is not None:
            out["security_context"] = copy.deepcopy(dict(self.security_context))
        for name in ("working_dir", "image_pull_policy", "termination_message_policy"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def to_manifest(self) -> dict[str, Any]:
        """The v1 ``Container`` JSON object (only the fields that are set)."""
        out: dict[str, Any] = {"name": self.name}
        if self.image is not None:
            out["image"] = self.image
        if self.command:
            out["command"] = list(self.command)
        if self.args:
            out["args"] = list(self.args)
        if self.working_dir is not None:
            out["workingDir"] = self.working_dir
        if self.env:
            out["env"] = [var.to_manifest() for var in self.env]
        if self.env_from:
            out["envFrom"] = [source.to_manifest() for source in self.env_from]
        if self.resources:
            out["resources"] = self.resources.to_manifest()
        if self.volume_mounts:
            out["volumeMounts"] = [mount.to_manifest() for mount in self.volume_mounts]
        if self.security_context is not None:
            out["securityContext"] = copy.deepcopy(dict(self.security_context))
        if self.image_pull_policy is not None:
            out["imagePullPolicy"] = self.image_pull_policy
        if self.termination_message_policy is not None:
            out["terminationMessagePolicy"] = self.termination_message_policy
        return out

    def validate(self) -> ContainerSpec:
        """Raise :class:`SpecError` for the first problem; return ``self`` if none."""
        for problem in self._problems("", name_field="name", volumes=None):
            raise problem
        return self

    def _problems(
        self, prefix: str, *, name_field: str, volumes: Collection[str] | None
    ) -> Iterator[SpecError]:
        problem = dns_label_problem(self.name)
        if problem:
            yield SpecError(name_field, problem)
        if self.image is not None:
            problem = image_problem(self.image)
            if problem:
                yield SpecError(f"{prefix}image", problem)
        seen_env: dict[str, int] = {}
        for i, var in enumerate(self.env):
            where = f"{prefix}env[{i}]"
            yield from var._problems(where)
            if var.name in seen_env:
                yield SpecError(
                    child(where, "name"),
                    f"{var.name!r} is already set by {prefix}env[{seen_env[var.name]}]",
                )
            seen_env.setdefault(var.name, i)
        for i, source in enumerate(self.env_from):
            yield from source._problems(f"{prefix}env_from[{i}]")
        yield from self.resources._problems(f"{prefix}resources")
        seen_paths: dict[str, int] = {}
        for i, mount in enumerate(self.volume_mounts):
            where = f"{prefix}volume_mounts[{i}]"
            yield from mount._problems(where, volumes)
            if mount.mount_path in seen_paths:
                yield SpecError(
                    child(where, "mount_path"),
                    f"{mount.mount_path!r} is already mounted by"
                    f" {prefix}volume_mounts[{seen_paths[mount.mount_path]}]",
                )
            seen_paths.setdefault(mount.mount_path, i)
        if self.security_context is not None:
            bad = snake_case_key_problem(self.security_context)
            if bad:
                yield SpecError(child(f"{prefix}security_context", bad[0]), bad[1])
        if self.image_pull_policy is not None and (
            self.image_pull_policy not in _IMAGE_PULL_POLICIES
        ):
            yield SpecError(
                f"{prefix}image_pull_policy",
                f"{self.image_pull_policy!r} is not one of {', '.join(_IMAGE_PULL_POLICIES)}",
            )
        if self.termination_message_policy is not None and (
            self.termination_message_policy not in _TERMINATION_MESSAGE_POLICIES
        ):
            yield SpecError(
                f"{prefix}termination_message_policy",
                f"{self.termination_message_policy!r} is not one of"
                f" {', '.join(_TERMINATION_MESSAGE_POLICIES)}",
            )
        if self.working_dir is not None and not self.working_dir.startswith("/"):
            yield SpecError(
                f"{prefix}working_dir", f"must be an absolute path, got {self.working_dir!r}"
            )


def coerce_containers(value: object, path: str) -> tuple[ContainerSpec, ...]:
    out: list[ContainerSpec] = []
    for i, item in enumerate(list_items(value, path, "containers")):
        where = f"{path}[{i}]"
        if isinstance(item, ContainerSpec):
            out.append(item)
            continue
        data = need_mapping(item, where)
        try:
            out.append(ContainerSpec.from_dict(data))
        except SpecError as exc:
            raise SpecError(f"{where}.{exc.field}", exc.problem) from None
    return tuple(out)
