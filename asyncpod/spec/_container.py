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
from typing import TYPE_CHECKING, Any, Final

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

if TYPE_CHECKING:
    from asyncpod.spec._pod import PodSpec

__all__ = [
    "CONTAINER_FIELDS",
    "DEFAULT_CONTAINER_NAME",
    "ContainerSpec",
    "coerce_containers",
    "container_fields_to_dict",
    "container_kwargs",
    "container_manifest",
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


def container_kwargs(data: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Normalise the container fields shared by ContainerSpec and PodSpec's main container."""

    def at(name: str) -> str:
        return f"{prefix}{name}"

    return {
        "command": str_tuple(
            data.get("command"), at("command"), hint="; for a shell line use ['sh', '-c', '...']"
        ),
        "args": str_tuple(data.get("args"), at("args")),
        "env": coerce_env(data.get("env"), at("env")),
        "env_from": coerce_env_from(data.get("env_from"), at("env_from")),
        "resources": coerce_resources(data.get("resources"), at("resources")),
        "volume_mounts": coerce_mounts(data.get("volume_mounts"), at("volume_mounts")),
        "security_context": raw_map(data.get("security_context"), at("security_context")),
        "working_dir": opt_str(data.get("working_dir"), at("working_dir")),
        "image_pull_policy": opt_str(data.get("image_pull_policy"), at("image_pull_policy")),
        "termination_message_policy": opt_str(
            data.get("termination_message_policy"), at("termination_message_policy")
        ),
    }


@dataclass(frozen=True, slots=True, init=False)
class ContainerSpec:
    """An init container or a sidecar (the main container lives in :class:`PodSpec`).

    ``env`` takes a ``{"NAME": "value"}`` mapping or a sequence of :class:`EnvVar`;
    ``resources`` a :class:`Resources` or ``{"requests": {...}, "limits": {...}}``.
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
        normalised = container_kwargs(
            {
                "command": command,
                "args": args,
                "env": env,
                "env_from": env_from,
                "resources": resources,
                "volume_mounts": volume_mounts,
                "security_context": security_context,
                "working_dir": working_dir,
                "image_pull_policy": image_pull_policy,
                "termination_message_policy": termination_message_policy,
            },
            "",
        )
        object.__setattr__(self, "name", need_str(name, "name"))
        object.__setattr__(self, "image", opt_str(image, "image"))
        for key, value in normalised.items():
            object.__setattr__(self, key, value)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, line: int | None = None) -> ContainerSpec:
        """Build from the snake_case dict form; unknown keys raise :class:`SpecError`."""
        with at_line(line):
            data = need_mapping(data, "container")
            check_keys(data, ("name", "image", *CONTAINER_FIELDS), "")
            return cls(
                need_str(data.get("name"), "name"),
                data.get("image"),
                **container_kwargs(data, ""),
            )

    def to_dict(self) -> dict[str, Any]:
        """The snake_case dict form: ``ContainerSpec.from_dict(c.to_dict()) == c``."""
        out: dict[str, Any] = {"name": self.name}
        if self.image is not None:
            out["image"] = self.image
        out.update(container_fields_to_dict(self))
        return out

    def to_manifest(self) -> dict[str, Any]:
        """The v1 ``Container`` JSON object (only the fields that are set)."""
        return container_manifest(self)

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


def container_fields_to_dict(c: ContainerSpec | PodSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if c.command:
        out["command"] = list(c.command)
    if c.args:
        out["args"] = list(c.args)
    if c.env:
        out["env"] = env_to_dict(c.env)
    if c.env_from:
        out["env_from"] = [source.to_dict() for source in c.env_from]
    if c.resources:
        out["resources"] = c.resources.to_dict()
    if c.volume_mounts:
        out["volume_mounts"] = [mount.to_dict() for mount in c.volume_mounts]
    if c.security_context is not None:
        out["security_context"] = copy.deepcopy(dict(c.security_context))
    for name in ("working_dir", "image_pull_policy", "termination_message_policy"):
        value = getattr(c, name)
        if value is not None:
            out[name] = value
    return out


def container_manifest(c: ContainerSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c.name}
    if c.image is not None:
        out["image"] = c.image
    if c.command:
        out["command"] = list(c.command)
    if c.args:
        out["args"] = list(c.args)
    if c.working_dir is not None:
        out["workingDir"] = c.working_dir
    if c.env:
        out["env"] = [var.to_manifest() for var in c.env]
    if c.env_from:
        out["envFrom"] = [source.to_manifest() for source in c.env_from]
    if c.resources:
        out["resources"] = c.resources.to_manifest()
    if c.volume_mounts:
        out["volumeMounts"] = [mount.to_manifest() for mount in c.volume_mounts]
    if c.security_context is not None:
        out["securityContext"] = copy.deepcopy(dict(c.security_context))
    if c.image_pull_policy is not None:
        out["imagePullPolicy"] = c.image_pull_policy
    if c.termination_message_policy is not None:
        out["terminationMessagePolicy"] = c.termination_message_policy
    return out


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
