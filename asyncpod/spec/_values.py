"""The small value types a container is made of: env vars, resources, mounts, tolerations.

Why this module exists: these are the parts users build by hand (``EnvVar.from_secret``,
``Resources(limits={"memory": "1Gi"})``) and that a batch file writes as snake_case
dicts. Each is a frozen, slotted dataclass that renders itself two ways, ``to_manifest()``
(the Kubernetes JSON, camelCase) and ``to_dict()`` (the batch-file form), and lists its
own problems for ``validate()``. The ``coerce_*`` functions turn what the user gave
(a value, a dict, a ``NAME: value`` mapping) into a tuple of these values.

What it deliberately does not do: it holds no container or pod logic; checks that need
the whole pod (is this volume declared? is this env name set twice?) live with the
container and the pod.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import KW_ONLY, dataclass, field
from decimal import Decimal
from typing import Any, Final

from asyncpod.errors import SpecError
from asyncpod.spec._coerce import (
    check_keys,
    child,
    key_path,
    list_items,
    need_bool,
    need_mapping,
    need_str,
    opt_int,
    opt_str,
    scalar_str,
)
from asyncpod.spec._naming import (
    CONFIG_KEY_RE,
    dns_label_problem,
    dns_subdomain_problem,
    label_value_problem,
    qualified_name_problem,
)
from asyncpod.spec._quantity import is_extended_resource, parse_quantity

__all__ = [
    "EnvFrom",
    "EnvVar",
    "Resources",
    "Toleration",
    "VolumeMount",
    "coerce_env",
    "coerce_env_from",
    "coerce_mounts",
    "coerce_resources",
    "coerce_tolerations",
    "env_to_dict",
]

_TOLERATION_OPERATORS: Final = ("Exists", "Equal")
_TOLERATION_EFFECTS: Final = ("NoSchedule", "PreferNoSchedule", "NoExecute")


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One environment variable: a literal ``value``, or a reference.

    Exactly one source: ``value`` (``None`` means empty), ``secret`` + ``key``,
    ``config_map`` + ``key``, or ``field_path`` (the downward API, e.g. ``status.podIP``).
    """

    name: str
    value: str | None = None
    _: KW_ONLY
    secret: str | None = None
    config_map: str | None = None
    key: str | None = None
    optional: bool = False
    field_path: str | None = None

    @classmethod
    def from_secret(cls, name: str, secret: str, key: str, *, optional: bool = False) -> EnvVar:
        return cls(name, secret=secret, key=key, optional=optional)

    @classmethod
    def from_config_map(
        cls, name: str, config_map: str, key: str, *, optional: bool = False
    ) -> EnvVar:
        return cls(name, config_map=config_map, key=key, optional=optional)

    @classmethod
    def from_field(cls, name: str, field_path: str) -> EnvVar:
        return cls(name, field_path=field_path)

    @property
    def is_plain(self) -> bool:
        """True for a literal value (no reference)."""
        return self.secret is None and self.config_map is None and self.field_path is None

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.secret is not None:
            ref: dict[str, Any] = {"name": self.secret, "key": self.key}
            if self.optional:
                ref["optional"] = True
            out["valueFrom"] = {"secretKeyRef": ref}
        elif self.config_map is not None:
            ref = {"name": self.config_map, "key": self.key}
            if self.optional:
                ref["optional"] = True
            out["valueFrom"] = {"configMapKeyRef": ref}
        elif self.field_path is not None:
            out["valueFrom"] = {"fieldRef": {"fieldPath": self.field_path}}
        elif self.value is not None:
            out["value"] = self.value
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for name in ("value", "secret", "config_map", "key", "field_path"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.optional:
            out["optional"] = True
        return out

    def _problems(self, path: str) -> Iterator[SpecError]:
        name = self.name
        if not isinstance(name, str) or not name:
            yield SpecError(child(path, "name"), "must be a non-empty string")
        elif "=" in name or not all(" " <= ch <= "~" for ch in name):
            yield SpecError(
                child(path, "name"),
                f"{name!r} is not a valid variable name: printable ASCII without '='",
            )
        sources = [
            s for s in ("secret", "config_map", "field_path") if getattr(self, s) is not None
        ]
        if len(sources) > 1:
            yield SpecError(path, f"has both {sources[0]} and {sources[1]}; choose one")
            return
        if sources and self.value is not None:
            yield SpecError(child(path, "value"), f"cannot be combined with {sources[0]}")
        if sources and sources[0] in ("secret", "config_map"):
            problem = dns_subdomain_problem(getattr(self, sources[0]))
            if problem:
                yield SpecError(child(path, sources[0]), problem)
            if not self.key:
                yield SpecError(child(path, "key"), f"is required with {sources[0]}")
            elif len(self.key) > 253 or not CONFIG_KEY_RE.fullmatch(self.key):
                yield SpecError(
                    child(path, "key"),
                    f"{self.key!r} is not a valid key: letters, digits, '-', '_' and '.'",
                )
        elif self.key is not None:
            yield SpecError(child(path, "key"), "is only meaningful with secret or config_map")
        if self.field_path is not None and not self.field_path:
            yield SpecError(child(path, "field_path"), "must not be empty")
        if self.optional and (not sources or sources[0] == "field_path"):
            yield SpecError(child(path, "optional"), "only applies to secret or config_map")


@dataclass(frozen=True, slots=True)
class EnvFrom:
    """Import every key of a Secret or ConfigMap as environment variables."""

    _: KW_ONLY
    secret: str | None = None
    config_map: str | None = None
    prefix: str | None = None
    optional: bool = False

    def to_manifest(self) -> dict[str, Any]:
        ref: dict[str, Any] = {"name": self.secret if self.secret is not None else self.config_map}
        if self.optional:
            ref["optional"] = True
        out: dict[str, Any] = {"secretRef" if self.secret is not None else "configMapRef": ref}
        if self.prefix:
            out["prefix"] = self.prefix
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("secret", "config_map", "prefix"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.optional:
            out["optional"] = True
        return out

    def _problems(self, path: str) -> Iterator[SpecError]:
        if (self.secret is None) == (self.config_map is None):
            yield SpecError(path, "needs exactly one of secret or config_map")
            return
        which = "secret" if self.secret is not None else "config_map"
        problem = dns_subdomain_problem(getattr(self, which))
        if problem:
            yield SpecError(child(path, which), problem)
        if self.prefix is not None and "=" in self.prefix:
            yield SpecError(child(path, "prefix"), "must not contain '='")


@dataclass(frozen=True, slots=True)
class Resources:
    """Requests and limits as Kubernetes quantities (``{"cpu": "500m", "memory": "1Gi"}``).

    Numbers are accepted and kept as their decimal text (``2`` → ``"2"``).
    """

    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Copy so that a caller mutating its dict cannot change a frozen spec.
        object.__setattr__(self, "requests", quantity_map(self.requests, "resources.requests"))
        object.__setattr__(self, "limits", quantity_map(self.limits, "resources.limits"))

    def __bool__(self) -> bool:
        return bool(self.requests or self.limits)

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.requests:
            out["requests"] = dict(self.requests)
        if self.limits:
            out["limits"] = dict(self.limits)
        return out

    to_dict = to_manifest

    def _problems(self, path: str) -> Iterator[SpecError]:
        parsed: dict[str, dict[str, Decimal]] = {"requests": {}, "limits": {}}
        for kind in ("requests", "limits"):
            for name, text in getattr(self, kind).items():
                where = child(f"{path}.{kind}", name)
                problem = qualified_name_problem(name)
                if problem:
                    yield SpecError(where, f"invalid resource name: {problem}")
                    continue
                try:
                    amount = parse_quantity(text)
                except ValueError:
                    yield SpecError(
                        where,
                        f"{text!r} is not a Kubernetes quantity (examples: 500m, 2, 1.5, 1Gi,"
                        " 512Mi, 1e3)",
                    )
                    continue
                if amount < 0:
                    yield SpecError(where, f"{text!r} is negative")
                    continue
                if is_extended_resource(name) and amount != amount.to_integral_value():
                    yield SpecError(where, f"{text!r}: extended resources must be whole numbers")
                    continue
                parsed[kind][name] = amount
        for name, request in parsed["requests"].items():
            where = child(f"{path}.requests", name)
            limit = parsed["limits"].get(name)
            if limit is not None and request > limit:
                yield SpecError(
                    where, f"{self.requests[name]!r} is more than the limit {self.limits[name]!r}"
                )
            elif is_extended_resource(name) and limit is None and name not in self.limits:
                yield SpecError(
                    child(f"{path}.limits", name),
                    "is required: extended resources cannot be overcommitted, set the limit"
                    " (requests default to it)",
                )
            elif is_extended_resource(name) and limit is not None and request != limit:
                yield SpecError(where, "extended resources need requests equal to limits")


@dataclass(frozen=True, slots=True)
class VolumeMount:
    """Mount the volume ``name`` (declared in :attr:`PodSpec.volumes`) at ``mount_path``."""

    name: str
    mount_path: str
    _: KW_ONLY
    read_only: bool = False
    sub_path: str | None = None

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "mountPath": self.mount_path}
        if self.read_only:
            out["readOnly"] = True
        if self.sub_path:
            out["subPath"] = self.sub_path
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "mount_path": self.mount_path}
        if self.read_only:
            out["read_only"] = True
        if self.sub_path is not None:
            out["sub_path"] = self.sub_path
        return out

    def _problems(self, path: str, volumes: Collection[str] | None) -> Iterator[SpecError]:
        problem = dns_label_problem(self.name)
        if problem:
            yield SpecError(child(path, "name"), problem)
        elif volumes is not None and self.name not in volumes:
            known = ", ".join(sorted(volumes)) or "none"
            yield SpecError(
                child(path, "name"), f"no volume named {self.name!r} (declared volumes: {known})"
            )
        if not isinstance(self.mount_path, str) or not self.mount_path.startswith("/"):
            yield SpecError(
                child(path, "mount_path"), f"must be an absolute path, got {self.mount_path!r}"
            )
        if self.sub_path is not None and (
            self.sub_path.startswith("/") or ".." in self.sub_path.split("/")
        ):
            yield SpecError(
                child(path, "sub_path"), f"must be a relative path without '..': {self.sub_path!r}"
            )


@dataclass(frozen=True, slots=True)
class Toleration:
    """Allow scheduling onto nodes with a matching taint (``Toleration("gpu", "Exists")``)."""

    key: str | None = None
    operator: str = "Equal"
    _: KW_ONLY
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"operator": self.operator}
        if self.key:
            out["key"] = self.key
        if self.value is not None:
            out["value"] = self.value
        if self.effect:
            out["effect"] = self.effect
        if self.toleration_seconds is not None:
            out["tolerationSeconds"] = self.toleration_seconds
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"operator": self.operator}
        for name in ("key", "value", "effect", "toleration_seconds"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def _problems(self, path: str) -> Iterator[SpecError]:
        if self.operator not in _TOLERATION_OPERATORS:
            yield SpecError(
                child(path, "operator"), f"{self.operator!r} is not one of Exists, Equal"
            )
        if self.effect and self.effect not in _TOLERATION_EFFECTS:
            yield SpecError(
                child(path, "effect"),
                f"{self.effect!r} is not one of {', '.join(_TOLERATION_EFFECTS)} (or empty)",
            )
        if self.key:
            problem = qualified_name_problem(self.key)
            if problem:
                yield SpecError(child(path, "key"), problem)
        elif self.operator == "Equal":
            yield SpecError(
                child(path, "key"), "is required unless operator is Exists (which matches all)"
            )
        if self.operator == "Exists" and self.value:
            yield SpecError(child(path, "value"), "must be empty when operator is Exists")
        elif self.value:
            problem = label_value_problem(self.value)
            if problem:
                yield SpecError(child(path, "value"), problem)
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            yield SpecError(
                child(path, "toleration_seconds"), "is only allowed with effect NoExecute"
            )


# -- coercion: user input → tuples of values ------------------------------------------

_ENV_REF_KEYS: Final = ("secret", "config_map", "key", "optional", "field_path")
_ENV_KEYS: Final = ("name", "value", *_ENV_REF_KEYS)


def _env_var_from_mapping(data: Mapping[Any, Any], path: str) -> EnvVar:
    if "name" not in data:
        raise SpecError(child(path, "name"), "is required")
    value = data.get("value")
    return EnvVar(
        need_str(data["name"], child(path, "name")),
        None if value is None else scalar_str(value, child(path, "value")),
        secret=opt_str(data.get("secret"), child(path, "secret")),
        config_map=opt_str(data.get("config_map"), child(path, "config_map")),
        key=opt_str(data.get("key"), child(path, "key")),
        optional=need_bool(data.get("optional", False), child(path, "optional")),
        field_path=opt_str(data.get("field_path"), child(path, "field_path")),
    )


def coerce_env(value: object, path: str) -> tuple[EnvVar, ...]:
    if value is None:
        return ()
    out: list[EnvVar] = []
    if isinstance(value, Mapping):
        for name, item in value.items():
            where = key_path(path, name)
            if not isinstance(name, str):
                raise SpecError(where, "names must be strings")
            if isinstance(item, Mapping):
                check_keys(item, _ENV_REF_KEYS, where)
                out.append(_env_var_from_mapping({"name": name, **item}, where))
            else:
                out.append(EnvVar(name, scalar_str(item, where)))
        return tuple(out)
    for i, item in enumerate(list_items(value, path, "env vars (or a NAME: value mapping)")):
        where = f"{path}[{i}]"
        if isinstance(item, EnvVar):
            out.append(item)
        elif isinstance(item, Mapping):
            check_keys(item, _ENV_KEYS, where)
            out.append(_env_var_from_mapping(item, where))
        else:
            raise SpecError(where, f"must be an EnvVar or a mapping, got {type(item).__name__}")
    return tuple(out)


_ENV_FROM_KEYS: Final = ("secret", "config_map", "prefix", "optional")


def coerce_env_from(value: object, path: str) -> tuple[EnvFrom, ...]:
    out: list[EnvFrom] = []
    for i, item in enumerate(list_items(value, path, "env_from sources")):
        where = f"{path}[{i}]"
        if isinstance(item, EnvFrom):
            out.append(item)
            continue
        data = need_mapping(item, where)
        check_keys(data, _ENV_FROM_KEYS, where)
        out.append(
            EnvFrom(
                secret=opt_str(data.get("secret"), child(where, "secret")),
                config_map=opt_str(data.get("config_map"), child(where, "config_map")),
                prefix=opt_str(data.get("prefix"), child(where, "prefix")),
                optional=need_bool(data.get("optional", False), child(where, "optional")),
            )
        )
    return tuple(out)


def quantity_map(value: object, path: str) -> dict[str, str]:
    if value is None:
        return {}
    out: dict[str, str] = {}
    for name, quantity in need_mapping(value, path).items():
        if not isinstance(name, str):
            raise SpecError(key_path(path, name), "resource names must be strings")
        where = child(path, name)
        if isinstance(quantity, bool) or not isinstance(quantity, (str, int, float)):
            raise SpecError(where, f"must be a quantity such as '500m' or '1Gi', got {quantity!r}")
        out[name] = quantity if isinstance(quantity, str) else str(quantity)
    return out


def coerce_resources(value: object, path: str) -> Resources:
    if value is None:
        return Resources()
    if isinstance(value, Resources):
        return value
    data = need_mapping(value, path)
    check_keys(data, ("requests", "limits"), path)
    return Resources(
        requests=quantity_map(data.get("requests"), child(path, "requests")),
        limits=quantity_map(data.get("limits"), child(path, "limits")),
    )


_MOUNT_KEYS: Final = ("name", "mount_path", "read_only", "sub_path")


def coerce_mounts(value: object, path: str) -> tuple[VolumeMount, ...]:
    out: list[VolumeMount] = []
    for i, item in enumerate(list_items(value, path, "volume mounts")):
        where = f"{path}[{i}]"
        if isinstance(item, VolumeMount):
            out.append(item)
            continue
        data = need_mapping(item, where)
        check_keys(data, _MOUNT_KEYS, where)
        for required in ("name", "mount_path"):
            if required not in data:
                raise SpecError(child(where, required), "is required")
        out.append(
            VolumeMount(
                need_str(data["name"], child(where, "name")),
                need_str(data["mount_path"], child(where, "mount_path")),
                read_only=need_bool(data.get("read_only", False), child(where, "read_only")),
                sub_path=opt_str(data.get("sub_path"), child(where, "sub_path")),
            )
        )
    return tuple(out)


_TOLERATION_KEYS: Final = ("key", "operator", "value", "effect", "toleration_seconds")


def coerce_tolerations(value: object, path: str) -> tuple[Toleration, ...]:
    out: list[Toleration] = []
    for i, item in enumerate(list_items(value, path, "tolerations")):
        where = f"{path}[{i}]"
        if isinstance(item, Toleration):
            out.append(item)
            continue
        data = need_mapping(item, where)
        check_keys(data, _TOLERATION_KEYS, where)
        seconds = data.get("toleration_seconds")
        out.append(
            Toleration(
                opt_str(data.get("key"), child(where, "key")),
                need_str(data.get("operator", "Equal"), child(where, "operator")),
                value=opt_str(data.get("value"), child(where, "value")),
                effect=opt_str(data.get("effect"), child(where, "effect")),
                toleration_seconds=opt_int(seconds, child(where, "toleration_seconds")),
            )
        )
    return tuple(out)


def env_to_dict(env: tuple[EnvVar, ...]) -> dict[str, str] | list[dict[str, Any]]:
    """The batch-file form of ``env``: a ``NAME: value`` mapping when that loses nothing."""
    if all(var.is_plain and var.value is not None for var in env) and len(
        {var.name for var in env}
    ) == len(env):
        return {var.name: var.value for var in env if var.value is not None}
    return [var.to_dict() for var in env]
