"""What to run: :class:`PodSpec` and its parts, rendered into a v1 Pod manifest.

Why this module exists: users describe a pod in a small, typed, snake_case vocabulary
(or the same vocabulary as a dict from a YAML/JSONL batch file). Everything that can be
checked without a server is checked here, before any request, and every
:class:`~asyncpod.errors.SpecError` names the one field to fix. A batch of 10,000 pods
should fail on line 3 of the file, not as 10,000 HTTP 422s. The module also owns pod
identity: the ownership labels and :func:`deterministic_pod_name`, so that a create
retried after a crash gets 409 and reattaches instead of duplicating a pod.

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

import base64
import copy
import difflib
import hashlib
import json
import re
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import KW_ONLY, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from asyncpod.errors import SpecError

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

MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "asyncpod"
RUN_ID_LABEL: Final = "asyncpod.dev/run-id"
#: Task keys are free text (not label-safe); the label holds a hash of the key, the
#: annotation :data:`TASK_KEY_ANNOTATION` the key itself.
TASK_HASH_LABEL: Final = "asyncpod.dev/task-hash"
TASK_KEY_ANNOTATION: Final = "asyncpod.dev/task-key"
#: Tells ``kubectl logs/exec`` which container to pick when there are sidecars.
DEFAULT_CONTAINER_ANNOTATION: Final = "kubectl.kubernetes.io/default-container"
DEFAULT_CONTAINER_NAME: Final = "main"

_RESERVED_LABEL_PREFIX = "asyncpod.dev/"
_DEFAULT_GENERATE_NAME = "asyncpod-"

# --------------------------------------------------------------------------------------
# Kubernetes naming rules (k8s.io/apimachinery/pkg/util/validation)
# --------------------------------------------------------------------------------------

_DNS1123_LABEL_RE = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN_RE = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_QUALIFIED_NAME_RE = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_SIMPLE_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_CONFIG_KEY_RE = re.compile(r"[-._a-zA-Z0-9]+")

# Quantity grammar (k8s.io/apimachinery/pkg/api/resource): a signed decimal number, then
# a binary-SI suffix, a decimal-SI suffix or a decimal exponent. The exponent is tried
# first so that "1E3" is 1000 and a bare "1E" is one exa.
_QUANTITY_RE = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?"
)
_BINARY_SUFFIXES: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIXES: Final = {
    "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
}  # fmt: skip

# Image references (github.com/distribution/reference), which the kubelet applies; a
# reference that fails here ends as the never-recovering InvalidImageName.
_IMG_ALNUM = r"[a-z0-9]+"
_IMG_SEPARATOR = r"(?:[._]|__|-+)"
_IMG_PATH_COMPONENT = rf"{_IMG_ALNUM}(?:{_IMG_SEPARATOR}{_IMG_ALNUM})*"
_IMG_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IMG_DOMAIN = (
    rf"(?:{_IMG_DOMAIN_COMPONENT}(?:\.{_IMG_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_IMG_NAME = rf"(?:{_IMG_DOMAIN}/)?{_IMG_PATH_COMPONENT}(?:/{_IMG_PATH_COMPONENT})*"
_IMG_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_IMG_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_IMAGE_RE = re.compile(rf"(?P<name>{_IMG_NAME})(?::{_IMG_TAG})?(?:@{_IMG_DIGEST})?")

_IMAGE_PULL_POLICIES: Final = ("Always", "IfNotPresent", "Never")
_TERMINATION_MESSAGE_POLICIES: Final = ("File", "FallbackToLogsOnError")
_TOLERATION_OPERATORS: Final = ("Exists", "Equal")
_TOLERATION_EFFECTS: Final = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_AFFINITY_KEYS: Final = ("nodeAffinity", "podAffinity", "podAntiAffinity")
_ANNOTATIONS_MAX_BYTES: Final = 256 * 1024

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


def _key_path(base: str, key: object) -> str:
    """``labels["bad key"]``: the path of one entry of a user-data mapping."""
    text = json.dumps(key, ensure_ascii=False) if isinstance(key, str) else repr(key)
    return f"{base}[{text}]"


def _child(base: str, key: str) -> str:
    """``resources.limits.memory`` but ``resources.limits["nvidia.com/gpu"]``."""
    if _SIMPLE_KEY_RE.fullmatch(key):
        return f"{base}.{key}" if base else key
    return _key_path(base, key)


def _dns_label_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > 63:
        return f"{value!r} is {len(value)} characters long; at most 63 are allowed"
    if not _DNS1123_LABEL_RE.fullmatch(value):
        return (
            f"{value!r} is not a valid DNS-1123 label: use lowercase letters, digits and '-',"
            " starting and ending with a letter or digit"
        )
    return None


def _dns_subdomain_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > 253:
        return f"{value[:20]!r}... is {len(value)} characters long; at most 253 are allowed"
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        return (
            f"{value!r} is not a valid DNS-1123 subdomain: use lowercase letters, digits,"
            " '-' and '.', starting and ending with a letter or digit"
        )
    return None


def _qualified_name_problem(value: object) -> str | None:
    """A label/annotation key: ``[prefix/]name`` with a DNS subdomain prefix."""
    if not isinstance(value, str):
        return f"key must be a string, got {type(value).__name__}"
    prefix, slash, name = value.rpartition("/")
    if slash:
        if not prefix:
            return f"key {value!r} has an empty prefix before '/'"
        problem = _dns_subdomain_problem(prefix)
        if problem is not None:
            return f"key prefix {problem}"
    if not name:
        return f"key {value!r} has an empty name part"
    if len(name) > 63:
        return f"key name part {name[:20]!r}... is {len(name)} characters; at most 63 allowed"
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        return (
            f"key {value!r} is not a valid qualified name: the name part may hold letters,"
            " digits, '-', '_' and '.', starting and ending with a letter or digit"
        )
    return None


def _label_value_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"value must be a string, got {type(value).__name__}"
    if len(value) > 63:
        return f"value {value[:20]!r}... is {len(value)} characters long; at most 63 allowed"
    if value and not _QUALIFIED_NAME_RE.fullmatch(value):
        return (
            f"value {value!r} is not a valid label value: letters, digits, '-', '_' and '.',"
            " starting and ending with a letter or digit (or empty)"
        )
    return None


def _image_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if value != value.strip() or any(ch.isspace() for ch in value):
        return f"{value!r} contains whitespace"
    match = _IMAGE_RE.fullmatch(value) if len(value) <= 1024 else None
    if match is None:
        return (
            f"{value!r} is not a valid image reference: expected"
            " [registry[:port]/]repository[:tag][@digest], with a lowercase repository"
        )
    if len(match.group("name")) > 255:
        return "the repository name is longer than 255 characters"
    return None


def _parse_quantity(text: str) -> Decimal:
    """Parse a Kubernetes quantity ("100m", "1Gi", "1e3", ".5") into its exact value.

    Raises ``ValueError`` when ``text`` does not follow the quantity grammar.
    """
    match = _QUANTITY_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    try:
        number = Decimal(match.group("number"))
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"{text!r} is not a Kubernetes quantity") from None
    if match.group("sign") == "-":
        number = -number
    suffix = match.group("suffix") or ""
    if suffix in _BINARY_SUFFIXES:
        return number * (1 << _BINARY_SUFFIXES[suffix])
    if suffix in _DECIMAL_SUFFIXES:
        return number.scaleb(_DECIMAL_SUFFIXES[suffix])
    return number.scaleb(int(suffix[1:]))


def _is_extended_resource(name: str) -> bool:
    """GPUs and other device-plugin resources: integers only, no overcommit."""
    domain, slash, _ = name.partition("/")
    if not slash:
        return False
    return not (
        domain == "kubernetes.io"
        or domain.endswith(".kubernetes.io")
        or domain.startswith(("requests.", "limits."))
    )


def _snake_case_key_problem(value: Mapping[str, Any]) -> tuple[str, str] | None:
    """Kubernetes field names are camelCase; the server silently drops unknown ones.

    A ``run_as_user`` that is dropped leaves the container running as root, so
    snake_case keys in the raw objects we pass through are flagged, with the fix.
    """
    for key in value:
        if not isinstance(key, str):
            return repr(key), "keys must be strings"
        if "_" in key:
            head, *rest = key.split("_")
            camel = head + "".join(part[:1].upper() + part[1:] for part in rest)
            return key, f"unknown field; Kubernetes objects use camelCase: {camel!r}"
    return None


# --------------------------------------------------------------------------------------
# Normalisers: user input (typed objects or the snake_case dict form) → canonical values
# --------------------------------------------------------------------------------------


def _check_keys(data: Mapping[Any, Any], allowed: Collection[str], path: str) -> None:
    for key in data:
        if key in allowed:
            continue
        where = _child(path, key) if isinstance(key, str) else _key_path(path, key)
        close = difflib.get_close_matches(key, list(allowed), n=1) if isinstance(key, str) else []
        if close:
            raise SpecError(where, f"unknown key; did you mean {close[0]!r}?")
        raise SpecError(where, f"unknown key (expected one of: {', '.join(allowed)})")


def _need_mapping(value: object, path: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(path, f"must be a mapping, got {type(value).__name__}")
    return value


def _need_str(value: object, path: str) -> str:
    if value is None:
        raise SpecError(path, "is required")
    if not isinstance(value, str):
        raise SpecError(path, f"must be a string, got {type(value).__name__}")
    return value


def _opt_str(value: object, path: str) -> str | None:
    return None if value is None else _need_str(value, path)


def _scalar_str(value: object, path: str) -> str:
    """A string, or an int taken literally; floats and bools must be quoted.

    YAML reads ``1.10`` as the float 1.1 and ``yes`` as True: converting those would
    silently change the value, so they are rejected with the fix.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, float)):
        raise SpecError(path, f"must be a string, got {value!r}; quote it in YAML")
    if isinstance(value, int):
        return str(value)
    raise SpecError(path, f"must be a string, got {type(value).__name__}")


def _opt_int(value: object, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(path, f"must be an integer, got {value!r}")
    return value


def _need_bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(path, f"must be true or false, got {value!r}")
    return value


def _str_tuple(value: object, path: str, *, hint: str = "") -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)):
        raise SpecError(path, f"must be a list of strings, not a single string{hint}")
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise SpecError(path, f"must be a list of strings, got {type(value).__name__}")
    return tuple(_scalar_str(item, f"{path}[{i}]") for i, item in enumerate(value))


def _str_map(value: object, path: str) -> dict[str, str]:
    if value is None:
        return {}
    mapping = _need_mapping(value, path)
    out: dict[str, str] = {}
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise SpecError(_key_path(path, key), "keys must be strings")
        if not isinstance(item, str):
            raise SpecError(
                _key_path(path, key), f"value must be a string, got {item!r}; quote it in YAML"
            )
        out[key] = item
    return out


def _raw_map(value: object, path: str) -> dict[str, Any] | None:
    if value is None:
        return None
    return copy.deepcopy(dict(_need_mapping(value, path)))


def _list_items(value: object, path: str, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise SpecError(path, f"must be a list of {what}, got {type(value).__name__}")
    return list(value)


def _raw_maps(value: object, path: str) -> tuple[dict[str, Any], ...]:
    return tuple(
        copy.deepcopy(dict(_need_mapping(item, f"{path}[{i}]")))
        for i, item in enumerate(_list_items(value, path, "mappings"))
    )


_ENV_REF_KEYS: Final = ("secret", "config_map", "key", "optional", "field_path")
_ENV_KEYS: Final = ("name", "value", *_ENV_REF_KEYS)


def _env_var_from_mapping(data: Mapping[Any, Any], path: str) -> EnvVar:
    if "name" not in data:
        raise SpecError(_child(path, "name"), "is required")
    value = data.get("value")
    return EnvVar(
        _need_str(data["name"], _child(path, "name")),
        None if value is None else _scalar_str(value, _child(path, "value")),
        secret=_opt_str(data.get("secret"), _child(path, "secret")),
        config_map=_opt_str(data.get("config_map"), _child(path, "config_map")),
        key=_opt_str(data.get("key"), _child(path, "key")),
        optional=_need_bool(data.get("optional", False), _child(path, "optional")),
        field_path=_opt_str(data.get("field_path"), _child(path, "field_path")),
    )


def _env_tuple(value: object, path: str) -> tuple[EnvVar, ...]:
    if value is None:
        return ()
    out: list[EnvVar] = []
    if isinstance(value, Mapping):
        for name, item in value.items():
            where = _key_path(path, name)
            if not isinstance(name, str):
                raise SpecError(where, "names must be strings")
            if isinstance(item, Mapping):
                _check_keys(item, _ENV_REF_KEYS, where)
                out.append(_env_var_from_mapping({"name": name, **item}, where))
            else:
                out.append(EnvVar(name, _scalar_str(item, where)))
        return tuple(out)
    for i, item in enumerate(_list_items(value, path, "env vars (or a NAME: value mapping)")):
        where = f"{path}[{i}]"
        if isinstance(item, EnvVar):
            out.append(item)
        elif isinstance(item, Mapping):
            _check_keys(item, _ENV_KEYS, where)
            out.append(_env_var_from_mapping(item, where))
        else:
            raise SpecError(where, f"must be an EnvVar or a mapping, got {type(item).__name__}")
    return tuple(out)


_ENV_FROM_KEYS: Final = ("secret", "config_map", "prefix", "optional")


def _env_from_tuple(value: object, path: str) -> tuple[EnvFrom, ...]:
    out: list[EnvFrom] = []
    for i, item in enumerate(_list_items(value, path, "env_from sources")):
        where = f"{path}[{i}]"
        if isinstance(item, EnvFrom):
            out.append(item)
            continue
        data = _need_mapping(item, where)
        _check_keys(data, _ENV_FROM_KEYS, where)
        out.append(
            EnvFrom(
                secret=_opt_str(data.get("secret"), _child(where, "secret")),
                config_map=_opt_str(data.get("config_map"), _child(where, "config_map")),
                prefix=_opt_str(data.get("prefix"), _child(where, "prefix")),
                optional=_need_bool(data.get("optional", False), _child(where, "optional")),
            )
        )
    return tuple(out)


def _quantity_map(value: object, path: str) -> dict[str, str]:
    if value is None:
        return {}
    out: dict[str, str] = {}
    for name, quantity in _need_mapping(value, path).items():
        if not isinstance(name, str):
            raise SpecError(_key_path(path, name), "resource names must be strings")
        where = _child(path, name)
        if isinstance(quantity, bool) or not isinstance(quantity, (str, int, float)):
            raise SpecError(where, f"must be a quantity such as '500m' or '1Gi', got {quantity!r}")
        out[name] = quantity if isinstance(quantity, str) else str(quantity)
    return out


def _resources(value: object, path: str) -> Resources:
    if value is None:
        return Resources()
    if isinstance(value, Resources):
        return value
    data = _need_mapping(value, path)
    _check_keys(data, ("requests", "limits"), path)
    return Resources(
        requests=_quantity_map(data.get("requests"), _child(path, "requests")),
        limits=_quantity_map(data.get("limits"), _child(path, "limits")),
    )


_MOUNT_KEYS: Final = ("name", "mount_path", "read_only", "sub_path")


def _mounts(value: object, path: str) -> tuple[VolumeMount, ...]:
    out: list[VolumeMount] = []
    for i, item in enumerate(_list_items(value, path, "volume mounts")):
        where = f"{path}[{i}]"
        if isinstance(item, VolumeMount):
            out.append(item)
            continue
        data = _need_mapping(item, where)
        _check_keys(data, _MOUNT_KEYS, where)
        for required in ("name", "mount_path"):
            if required not in data:
                raise SpecError(_child(where, required), "is required")
        out.append(
            VolumeMount(
                _need_str(data["name"], _child(where, "name")),
                _need_str(data["mount_path"], _child(where, "mount_path")),
                read_only=_need_bool(data.get("read_only", False), _child(where, "read_only")),
                sub_path=_opt_str(data.get("sub_path"), _child(where, "sub_path")),
            )
        )
    return tuple(out)


_TOLERATION_KEYS: Final = ("key", "operator", "value", "effect", "toleration_seconds")


def _tolerations(value: object, path: str) -> tuple[Toleration, ...]:
    out: list[Toleration] = []
    for i, item in enumerate(_list_items(value, path, "tolerations")):
        where = f"{path}[{i}]"
        if isinstance(item, Toleration):
            out.append(item)
            continue
        data = _need_mapping(item, where)
        _check_keys(data, _TOLERATION_KEYS, where)
        seconds = data.get("toleration_seconds")
        out.append(
            Toleration(
                _opt_str(data.get("key"), _child(where, "key")),
                _need_str(data.get("operator", "Equal"), _child(where, "operator")),
                value=_opt_str(data.get("value"), _child(where, "value")),
                effect=_opt_str(data.get("effect"), _child(where, "effect")),
                toleration_seconds=_opt_int(seconds, _child(where, "toleration_seconds")),
            )
        )
    return tuple(out)


def _containers(value: object, path: str) -> tuple[ContainerSpec, ...]:
    out: list[ContainerSpec] = []
    for i, item in enumerate(_list_items(value, path, "containers")):
        where = f"{path}[{i}]"
        if isinstance(item, ContainerSpec):
            out.append(item)
            continue
        data = _need_mapping(item, where)
        try:
            out.append(ContainerSpec.from_dict(data))
        except SpecError as exc:
            raise SpecError(f"{where}.{exc.field}", exc.problem) from None
    return tuple(out)


# --------------------------------------------------------------------------------------
# Value types
# --------------------------------------------------------------------------------------


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
            yield SpecError(_child(path, "name"), "must be a non-empty string")
        elif "=" in name or not all(" " <= ch <= "~" for ch in name):
            yield SpecError(
                _child(path, "name"),
                f"{name!r} is not a valid variable name: printable ASCII without '='",
            )
        sources = [
            s for s in ("secret", "config_map", "field_path") if getattr(self, s) is not None
        ]
        if len(sources) > 1:
            yield SpecError(path, f"has both {sources[0]} and {sources[1]}; choose one")
            return
        if sources and self.value is not None:
            yield SpecError(_child(path, "value"), f"cannot be combined with {sources[0]}")
        if sources and sources[0] in ("secret", "config_map"):
            problem = _dns_subdomain_problem(getattr(self, sources[0]))
            if problem:
                yield SpecError(_child(path, sources[0]), problem)
            if not self.key:
                yield SpecError(_child(path, "key"), f"is required with {sources[0]}")
            elif len(self.key) > 253 or not _CONFIG_KEY_RE.fullmatch(self.key):
                yield SpecError(
                    _child(path, "key"),
                    f"{self.key!r} is not a valid key: letters, digits, '-', '_' and '.'",
                )
        elif self.key is not None:
            yield SpecError(_child(path, "key"), "is only meaningful with secret or config_map")
        if self.field_path is not None and not self.field_path:
            yield SpecError(_child(path, "field_path"), "must not be empty")
        if self.optional and (not sources or sources[0] == "field_path"):
            yield SpecError(_child(path, "optional"), "only applies to secret or config_map")


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
        problem = _dns_subdomain_problem(getattr(self, which))
        if problem:
            yield SpecError(_child(path, which), problem)
        if self.prefix is not None and "=" in self.prefix:
            yield SpecError(_child(path, "prefix"), "must not contain '='")


@dataclass(frozen=True, slots=True)
class Resources:
    """Requests and limits as Kubernetes quantities (``{"cpu": "500m", "memory": "1Gi"}``).

    Numbers are accepted and kept as their decimal text (``2`` → ``"2"``).
    """

    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Copy so that a caller mutating its dict cannot change a frozen spec.
        object.__setattr__(self, "requests", _quantity_map(self.requests, "resources.requests"))
        object.__setattr__(self, "limits", _quantity_map(self.limits, "resources.limits"))

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
                where = _child(f"{path}.{kind}", name)
                problem = _qualified_name_problem(name)
                if problem:
                    yield SpecError(where, f"invalid resource name: {problem}")
                    continue
                try:
                    amount = _parse_quantity(text)
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
                if _is_extended_resource(name) and amount != amount.to_integral_value():
                    yield SpecError(where, f"{text!r}: extended resources must be whole numbers")
                    continue
                parsed[kind][name] = amount
        for name, request in parsed["requests"].items():
            where = _child(f"{path}.requests", name)
            limit = parsed["limits"].get(name)
            if limit is not None and request > limit:
                yield SpecError(
                    where, f"{self.requests[name]!r} is more than the limit {self.limits[name]!r}"
                )
            elif _is_extended_resource(name) and limit is None and name not in self.limits:
                yield SpecError(
                    _child(f"{path}.limits", name),
                    "is required: extended resources cannot be overcommitted, set the limit"
                    " (requests default to it)",
                )
            elif _is_extended_resource(name) and limit is not None and request != limit:
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
        problem = _dns_label_problem(self.name)
        if problem:
            yield SpecError(_child(path, "name"), problem)
        elif volumes is not None and self.name not in volumes:
            known = ", ".join(sorted(volumes)) or "none"
            yield SpecError(
                _child(path, "name"), f"no volume named {self.name!r} (declared volumes: {known})"
            )
        if not isinstance(self.mount_path, str) or not self.mount_path.startswith("/"):
            yield SpecError(
                _child(path, "mount_path"), f"must be an absolute path, got {self.mount_path!r}"
            )
        if self.sub_path is not None and (
            self.sub_path.startswith("/") or ".." in self.sub_path.split("/")
        ):
            yield SpecError(
                _child(path, "sub_path"), f"must be a relative path without '..': {self.sub_path!r}"
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
                _child(path, "operator"), f"{self.operator!r} is not one of Exists, Equal"
            )
        if self.effect and self.effect not in _TOLERATION_EFFECTS:
            yield SpecError(
                _child(path, "effect"),
                f"{self.effect!r} is not one of {', '.join(_TOLERATION_EFFECTS)} (or empty)",
            )
        if self.key:
            problem = _qualified_name_problem(self.key)
            if problem:
                yield SpecError(_child(path, "key"), problem)
        elif self.operator == "Equal":
            yield SpecError(
                _child(path, "key"), "is required unless operator is Exists (which matches all)"
            )
        if self.operator == "Exists" and self.value:
            yield SpecError(_child(path, "value"), "must be empty when operator is Exists")
        elif self.value:
            problem = _label_value_problem(self.value)
            if problem:
                yield SpecError(_child(path, "value"), problem)
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            yield SpecError(
                _child(path, "toleration_seconds"), "is only allowed with effect NoExecute"
            )


# --------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------

_CONTAINER_FIELDS: Final = (
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


def _container_kwargs(data: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Normalise the container fields shared by ContainerSpec and PodSpec's main container."""

    def at(name: str) -> str:
        return f"{prefix}{name}"

    return {
        "command": _str_tuple(
            data.get("command"), at("command"), hint="; for a shell line use ['sh', '-c', '...']"
        ),
        "args": _str_tuple(data.get("args"), at("args")),
        "env": _env_tuple(data.get("env"), at("env")),
        "env_from": _env_from_tuple(data.get("env_from"), at("env_from")),
        "resources": _resources(data.get("resources"), at("resources")),
        "volume_mounts": _mounts(data.get("volume_mounts"), at("volume_mounts")),
        "security_context": _raw_map(data.get("security_context"), at("security_context")),
        "working_dir": _opt_str(data.get("working_dir"), at("working_dir")),
        "image_pull_policy": _opt_str(data.get("image_pull_policy"), at("image_pull_policy")),
        "termination_message_policy": _opt_str(
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
        normalised = _container_kwargs(
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
        object.__setattr__(self, "name", _need_str(name, "name"))
        object.__setattr__(self, "image", _opt_str(image, "image"))
        for key, value in normalised.items():
            object.__setattr__(self, key, value)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, line: int | None = None) -> ContainerSpec:
        """Build from the snake_case dict form; unknown keys raise :class:`SpecError`."""
        try:
            data = _need_mapping(data, "container")
            _check_keys(data, ("name", "image", *_CONTAINER_FIELDS), "")
            return cls(
                _need_str(data.get("name"), "name"),
                data.get("image"),
                **_container_kwargs(data, ""),
            )
        except SpecError as exc:
            if line is None or exc.line is not None:
                raise
            raise SpecError(exc.field, exc.problem, line=line) from None

    def to_dict(self) -> dict[str, Any]:
        """The snake_case dict form: ``ContainerSpec.from_dict(c.to_dict()) == c``."""
        out: dict[str, Any] = {"name": self.name}
        if self.image is not None:
            out["image"] = self.image
        out.update(_container_fields_to_dict(self))
        return out

    def to_manifest(self) -> dict[str, Any]:
        """The v1 ``Container`` JSON object (only the fields that are set)."""
        return _container_manifest(self)

    def validate(self) -> ContainerSpec:
        """Raise :class:`SpecError` for the first problem; return ``self`` if none."""
        for problem in self._problems("", name_field="name", volumes=None):
            raise problem
        return self

    def _problems(
        self, prefix: str, *, name_field: str, volumes: Collection[str] | None
    ) -> Iterator[SpecError]:
        problem = _dns_label_problem(self.name)
        if problem:
            yield SpecError(name_field, problem)
        if self.image is not None:
            problem = _image_problem(self.image)
            if problem:
                yield SpecError(f"{prefix}image", problem)
        seen_env: dict[str, int] = {}
        for i, var in enumerate(self.env):
            where = f"{prefix}env[{i}]"
            yield from var._problems(where)
            if var.name in seen_env:
                yield SpecError(
                    _child(where, "name"),
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
                    _child(where, "mount_path"),
                    f"{mount.mount_path!r} is already mounted by"
                    f" {prefix}volume_mounts[{seen_paths[mount.mount_path]}]",
                )
            seen_paths.setdefault(mount.mount_path, i)
        if self.security_context is not None:
            bad = _snake_case_key_problem(self.security_context)
            if bad:
                yield SpecError(_child(f"{prefix}security_context", bad[0]), bad[1])
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


def _env_to_dict(env: tuple[EnvVar, ...]) -> dict[str, str] | list[dict[str, Any]]:
    if all(var.is_plain and var.value is not None for var in env) and len(
        {var.name for var in env}
    ) == len(env):
        return {var.name: var.value for var in env if var.value is not None}
    return [var.to_dict() for var in env]


def _container_fields_to_dict(c: ContainerSpec | PodSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if c.command:
        out["command"] = list(c.command)
    if c.args:
        out["args"] = list(c.args)
    if c.env:
        out["env"] = _env_to_dict(c.env)
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


def _container_manifest(c: ContainerSpec) -> dict[str, Any]:
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


# --------------------------------------------------------------------------------------
# The pod
# --------------------------------------------------------------------------------------

_POD_ONLY_FIELDS: Final = (
    "image",
    "name",
    "task_key",
    "container_name",
    "labels",
    "annotations",
    "node_selector",
    "tolerations",
    "affinity",
    "volumes",
    "service_account",
    "image_pull_secrets",
    "init_containers",
    "sidecars",
    "native_sidecars",
    "pod_security_context",
    "active_deadline_seconds",
    "termination_grace_period_seconds",
    "priority_class_name",
    "template",
)
_POD_KEYS: Final = tuple(sorted({*_POD_ONLY_FIELDS, *_CONTAINER_FIELDS}))


@dataclass(frozen=True, slots=True, init=False)
class PodSpec:
    """One pod to run: a main container, optional init containers and sidecars.

    The container fields (``command``, ``env``, ``resources``, ...) describe the main
    container, named :attr:`container_name` (``"main"``). Sidecars run next to it and
    are rendered as native sidecars (init containers with ``restartPolicy: Always``,
    Kubernetes >= 1.29) so the pod completes when the main container does; set
    ``native_sidecars=False`` on older clusters to render them as ordinary containers.

    ``template`` is a raw v1 Pod manifest (camelCase) for fields this class does not
    model; the typed fields are merged over it, containers by name.

    ``task_key`` is the caller's stable name for the work (any text). It is stored in
    an annotation and as a hash label, and lets the runner derive a deterministic pod
    name (:func:`deterministic_pod_name`) so that a retried create reattaches.
    """

    image: str | None
    command: tuple[str, ...]
    args: tuple[str, ...]
    name: str | None
    task_key: str | None
    container_name: str
    env: tuple[EnvVar, ...]
    env_from: tuple[EnvFrom, ...]
    resources: Resources
    volume_mounts: tuple[VolumeMount, ...]
    security_context: Mapping[str, Any] | None
    working_dir: str | None
    image_pull_policy: str | None
    termination_message_policy: str | None
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    node_selector: Mapping[str, str]
    tolerations: tuple[Toleration, ...]
    affinity: Mapping[str, Any] | None
    volumes: tuple[Mapping[str, Any], ...]
    service_account: str | None
    image_pull_secrets: tuple[str, ...]
    init_containers: tuple[ContainerSpec, ...]
    sidecars: tuple[ContainerSpec, ...]
    native_sidecars: bool
    pod_security_context: Mapping[str, Any] | None
    active_deadline_seconds: int | None
    termination_grace_period_seconds: int | None
    priority_class_name: str | None
    template: Mapping[str, Any] | None

    def __init__(
        self,
        image: str | None = None,
        command: Iterable[str] = (),
        *,
        args: Iterable[str] = (),
        name: str | None = None,
        task_key: str | None = None,
        container_name: str = DEFAULT_CONTAINER_NAME,
        env: Mapping[str, str] | Iterable[EnvVar] | None = None,
        env_from: Iterable[EnvFrom] = (),
        resources: Resources | Mapping[str, Mapping[str, str | int | float]] | None = None,
        volume_mounts: Iterable[VolumeMount] = (),
        security_context: Mapping[str, Any] | None = None,
        working_dir: str | None = None,
        image_pull_policy: str | None = None,
        termination_message_policy: str | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        node_selector: Mapping[str, str] | None = None,
        tolerations: Iterable[Toleration] = (),
        affinity: Mapping[str, Any] | None = None,
        volumes: Iterable[Mapping[str, Any]] = (),
        service_account: str | None = None,
        image_pull_secrets: Iterable[str] = (),
        init_containers: Iterable[ContainerSpec] = (),
        sidecars: Iterable[ContainerSpec] = (),
        native_sidecars: bool = True,
        pod_security_context: Mapping[str, Any] | None = None,
        active_deadline_seconds: int | None = None,
        termination_grace_period_seconds: int | None = None,
        priority_class_name: str | None = None,
        template: Mapping[str, Any] | None = None,
    ) -> None:
        values: dict[str, Any] = _container_kwargs(
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
        values.update(
            image=_opt_str(image, "image"),
            name=_opt_str(name, "name"),
            task_key=_opt_str(task_key, "task_key"),
            container_name=_need_str(container_name, "container_name"),
            labels=_str_map(labels, "labels"),
            annotations=_str_map(annotations, "annotations"),
            node_selector=_str_map(node_selector, "node_selector"),
            tolerations=_tolerations(tolerations, "tolerations"),
            affinity=_raw_map(affinity, "affinity"),
            volumes=_raw_maps(volumes, "volumes"),
            service_account=_opt_str(service_account, "service_account"),
            image_pull_secrets=_str_tuple(image_pull_secrets, "image_pull_secrets"),
            init_containers=_containers(init_containers, "init_containers"),
            sidecars=_containers(sidecars, "sidecars"),
            native_sidecars=_need_bool(native_sidecars, "native_sidecars"),
            pod_security_context=_raw_map(pod_security_context, "pod_security_context"),
            active_deadline_seconds=_opt_int(active_deadline_seconds, "active_deadline_seconds"),
            termination_grace_period_seconds=_opt_int(
                termination_grace_period_seconds, "termination_grace_period_seconds"
            ),
            priority_class_name=_opt_str(priority_class_name, "priority_class_name"),
            template=_raw_map(template, "template"),
        )
        for key, value in values.items():
            object.__setattr__(self, key, value)

    # -- the dict form --------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, line: int | None = None) -> PodSpec:
        """Build from the snake_case dict form of a batch file entry.

        Unknown keys raise :class:`SpecError` naming the key (with a "did you mean"),
        and every error carries ``line`` when given. Only shapes and types are checked
        here; call :meth:`validate` once defaults have been applied.
        """
        try:
            data = _need_mapping(data, "spec")
            _check_keys(data, _POD_KEYS, "")
            return cls(**data)
        except SpecError as exc:
            if line is None or exc.line is not None:
                raise
            raise SpecError(exc.field, exc.problem, line=line) from None

    def to_dict(self) -> dict[str, Any]:
        """The snake_case, JSON-ready dict form (defaults omitted).

        ``PodSpec.from_dict(spec.to_dict()) == spec``.
        """
        out: dict[str, Any] = {}
        for name in ("image", "name", "task_key"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.container_name != DEFAULT_CONTAINER_NAME:
            out["container_name"] = self.container_name
        out.update(_container_fields_to_dict(self))
        for name in ("labels", "annotations", "node_selector"):
            mapping = getattr(self, name)
            if mapping:
                out[name] = dict(mapping)
        if self.tolerations:
            out["tolerations"] = [t.to_dict() for t in self.tolerations]
        if self.volumes:
            out["volumes"] = copy.deepcopy([dict(v) for v in self.volumes])
        if self.image_pull_secrets:
            out["image_pull_secrets"] = list(self.image_pull_secrets)
        if self.init_containers:
            out["init_containers"] = [c.to_dict() for c in self.init_containers]
        if self.sidecars:
            out["sidecars"] = [c.to_dict() for c in self.sidecars]
        if not self.native_sidecars:
            out["native_sidecars"] = False
        for name in (
            "affinity",
            "pod_security_context",
            "template",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = copy.deepcopy(dict(value))
        for name in (
            "service_account",
            "active_deadline_seconds",
            "termination_grace_period_seconds",
            "priority_class_name",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    # -- views ----------------------------------------------------------------------

    @property
    def main_container(self) -> ContainerSpec:
        """The main container as a :class:`ContainerSpec`."""
        return ContainerSpec(
            self.container_name,
            self.image,
            command=self.command,
            args=self.args,
            env=self.env,
            env_from=self.env_from,
            resources=self.resources,
            volume_mounts=self.volume_mounts,
            security_context=self.security_context,
            working_dir=self.working_dir,
            image_pull_policy=self.image_pull_policy,
            termination_message_policy=self.termination_message_policy,
        )

    # -- validation -----------------------------------------------------------------

    def validate(self) -> PodSpec:
        """Raise :class:`SpecError` for the first problem found; return ``self`` if none.

        The error's ``field`` is the path of the field to fix in this spec's own
        vocabulary: ``resources.limits.memory`` (main container),
        ``sidecars[0].env[2].name``, ``labels["bad key"]``,
        ``template.spec.containers[1].image``.
        """
        for problem in self._iter_problems():
            raise problem
        return self

    def problems(self) -> list[SpecError]:
        """Every problem :meth:`validate` would raise, in field order (empty if valid)."""
        return list(self._iter_problems())

    def _iter_problems(self) -> Iterator[SpecError]:
        template_problem = _template_problem(self.template)
        if template_problem is not None:
            yield template_problem
            return
        if self.name is not None:
            problem = _dns_subdomain_problem(self.name)
            if problem:
                yield SpecError("name", problem)
        if self.task_key is not None and not self.task_key:
            yield SpecError("task_key", "must not be empty")

        yield from _volume_problems(self.volumes)
        volume_names = {v.get("name") for v in self.volumes if isinstance(v.get("name"), str)}
        volume_names.update(_template_names(self.template, "volumes"))
        known_volumes: set[str] = {n for n in volume_names if isinstance(n, str)}

        yield from self.main_container._problems(
            "", name_field="container_name", volumes=known_volumes
        )
        for group in ("init_containers", "sidecars"):
            for i, container in enumerate(getattr(self, group)):
                prefix = f"{group}[{i}]."
                yield from container._problems(
                    prefix, name_field=f"{prefix}name", volumes=known_volumes
                )

        yield from self._container_set_problems()
        yield from _map_problems("labels", self.labels, label_values=True)
        for key, value in self.labels.items():
            if key == MANAGED_BY_LABEL and value != MANAGED_BY_VALUE:
                yield SpecError(
                    _key_path("labels", key), f"is reserved: asyncpod sets it to {MANAGED_BY_VALUE}"
                )
            elif key.startswith(_RESERVED_LABEL_PREFIX):
                yield SpecError(_key_path("labels", key), "the asyncpod.dev/ prefix is reserved")
        yield from _map_problems("annotations", self.annotations, label_values=False)
        if TASK_KEY_ANNOTATION in self.annotations:
            yield SpecError(
                _key_path("annotations", TASK_KEY_ANNOTATION), "is reserved: set task_key instead"
            )
        size = sum(len(k.encode()) + len(v.encode()) for k, v in self.annotations.items())
        if size > _ANNOTATIONS_MAX_BYTES:
            yield SpecError("annotations", f"total {size} bytes; at most 256 KiB allowed")
        yield from _map_problems("node_selector", self.node_selector, label_values=True)
        for i, toleration in enumerate(self.tolerations):
            yield from toleration._problems(f"tolerations[{i}]")
        if self.affinity is not None:
            for key in self.affinity:
                if key not in _AFFINITY_KEYS:
                    yield SpecError(
                        _child("affinity", str(key)),
                        f"unknown key; expected one of: {', '.join(_AFFINITY_KEYS)}",
                    )
        if self.pod_security_context is not None:
            bad = _snake_case_key_problem(self.pod_security_context)
            if bad:
                yield SpecError(_child("pod_security_context", bad[0]), bad[1])
        for name in ("service_account", "priority_class_name"):
            value = getattr(self, name)
            if value is not None:
                problem = _dns_subdomain_problem(value)
                if problem:
                    yield SpecError(name, problem)
        for i, secret in enumerate(self.image_pull_secrets):
            problem = _dns_subdomain_problem(secret)
            if problem:
                yield SpecError(f"image_pull_secrets[{i}]", problem)
        if self.active_deadline_seconds is not None and self.active_deadline_seconds <= 0:
            yield SpecError(
                "active_deadline_seconds",
                f"must be a positive number of seconds, got {self.active_deadline_seconds}",
            )
        grace = self.termination_grace_period_seconds
        if grace is not None and grace < 0:
            yield SpecError(
                "termination_grace_period_seconds", f"must be zero or positive, got {grace}"
            )

    def _container_set_problems(self) -> Iterator[SpecError]:
        """Names unique across all containers; every container has an image.

        Checked on the rendered pod so that a template can supply what the typed
        fields leave out (an image, a container) and so that template collisions are
        caught too.
        """
        seen: dict[str, str] = {}
        user_paths = [("container_name", self.container_name)]
        for group in ("init_containers", "sidecars"):
            user_paths += [
                (f"{group}[{i}].name", c.name) for i, c in enumerate(getattr(self, group))
            ]
        for path, name in user_paths:
            if name in seen:
                yield SpecError(path, f"container name {name!r} is already used by {seen[name]}")
            else:
                seen[name] = path
        body = self._pod_body()
        template_spec = (self.template or {}).get("spec") or {}
        ours = self._rendered_names()
        names: dict[str, str] = {}
        for key in ("initContainers", "containers"):
            template_names = [
                c.get("name") for c in template_spec.get(key) or () if isinstance(c, Mapping)
            ]
            for container in body.get(key) or ():
                name = container.get("name")
                rendered = ours[key].get(name)
                if rendered is None:
                    path = f"template.spec.{key}[{template_names.index(name)}]"
                else:
                    path = rendered
                if name in names and path != names[name]:
                    other = names[name] or "container_name"
                    yield SpecError(
                        f"{path}.name" if path else "container_name",
                        f"container name {name!r} is already used by {other}",
                    )
                names.setdefault(name, path)
                if not container.get("image"):
                    if path == "":
                        yield SpecError(
                            "image",
                            f"is required (or give the container {self.container_name!r} an"
                            " image in template.spec.containers)",
                        )
                    else:
                        yield SpecError(f"{path}.image", "is required")

    def _rendered_names(self) -> dict[str, dict[str, str]]:
        """Which of our fields each rendered container comes from, per Pod spec list.

        The main container's path is ``""``: its fields sit at the top of the spec.
        """
        containers = {self.container_name: ""}
        init_containers: dict[str, str] = {}
        for i, container in enumerate(self.init_containers):
            init_containers.setdefault(container.name, f"init_containers[{i}]")
        target = init_containers if self.native_sidecars else containers
        for i, container in enumerate(self.sidecars):
            target.setdefault(container.name, f"sidecars[{i}]")
        return {"initContainers": init_containers, "containers": containers}

    # -- rendering ------------------------------------------------------------------

    def to_manifest(
        self,
        *,
        namespace: str,
        name: str | None = None,
        generate_name: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The v1 Pod JSON object (camelCase) to POST.

        The pod name is ``name``, else :attr:`name`; with neither, ``generateName`` is
        ``generate_name`` (default ``"asyncpod-"``). Labels, lowest precedence first:
        the template's, :attr:`labels`, ``labels`` (the runner's, such as the run id),
        then the ownership labels, which always win. ``restartPolicy`` is always
        ``Never``: a pod runs once, and retries are the caller's decision.

        Does not call :meth:`validate`; the runner does, once, before creating.
        """
        extra = _str_map(labels, "labels")
        for key, value in extra.items():
            problem = _qualified_name_problem(key) or _label_value_problem(value)
            if problem:
                raise SpecError(_key_path("labels", key), problem)
        problem = _dns_label_problem(namespace)
        if problem:
            raise SpecError("namespace", problem)
        pod_name = name if name is not None else self.name
        metadata: dict[str, Any] = {"namespace": namespace}
        if pod_name is not None:
            problem = _dns_subdomain_problem(pod_name)
            if problem:
                raise SpecError("name", problem)
            metadata["name"] = pod_name
        else:
            prefix = generate_name if generate_name is not None else _DEFAULT_GENERATE_NAME
            if prefix and _dns_subdomain_problem(prefix.rstrip("-.") or "x") is not None:
                raise SpecError("generate_name", f"{prefix!r} is not a valid name prefix")
            metadata["generateName"] = prefix

        all_labels: dict[str, str] = {**self.labels, **extra}
        if self.task_key is not None:
            all_labels[TASK_HASH_LABEL] = task_key_hash(self.task_key)
        all_labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE
        annotations: dict[str, str] = dict(self.annotations)
        if self.task_key is not None:
            annotations[TASK_KEY_ANNOTATION] = self.task_key
        metadata["labels"] = all_labels
        metadata["annotations"] = annotations

        spec = self._pod_body()
        if self.template is None:
            template_meta: dict[str, Any] = {}
        else:
            template_meta = copy.deepcopy(dict(self.template.get("metadata") or {}))
            for key in _TEMPLATE_METADATA_DROP:
                template_meta.pop(key, None)
        # The default-container hint is set unless the template or the user chose one.
        if DEFAULT_CONTAINER_ANNOTATION not in (template_meta.get("annotations") or {}):
            annotations.setdefault(DEFAULT_CONTAINER_ANNOTATION, self.container_name)
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": _merge(template_meta, metadata),
            "spec": spec,
        }

    def _pod_body(self) -> dict[str, Any]:
        """The Pod ``spec`` object, merged over the template's when there is one."""
        containers = [_container_manifest(self.main_container)]
        init_containers = [_container_manifest(c) for c in self.init_containers]
        sidecars = [_container_manifest(c) for c in self.sidecars]
        if self.native_sidecars:
            for sidecar in sidecars:
                sidecar["restartPolicy"] = "Always"
            init_containers += sidecars
        else:
            containers += sidecars
        body: dict[str, Any] = {"restartPolicy": "Never", "containers": containers}
        if init_containers:
            body["initContainers"] = init_containers
        if self.volumes:
            body["volumes"] = copy.deepcopy([dict(v) for v in self.volumes])
        if self.node_selector:
            body["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            body["tolerations"] = [t.to_manifest() for t in self.tolerations]
        if self.affinity is not None:
            body["affinity"] = copy.deepcopy(dict(self.affinity))
        if self.service_account is not None:
            body["serviceAccountName"] = self.service_account
        if self.image_pull_secrets:
            body["imagePullSecrets"] = [{"name": s} for s in self.image_pull_secrets]
        if self.pod_security_context is not None:
            body["securityContext"] = copy.deepcopy(dict(self.pod_security_context))
        if self.active_deadline_seconds is not None:
            body["activeDeadlineSeconds"] = self.active_deadline_seconds
        if self.termination_grace_period_seconds is not None:
            body["terminationGracePeriodSeconds"] = self.termination_grace_period_seconds
        if self.priority_class_name is not None:
            body["priorityClassName"] = self.priority_class_name
        if self.template is None:
            return body
        base = copy.deepcopy(dict(self.template.get("spec") or {}))
        return _merge(base, body)


def _template_problem(template: Mapping[str, Any] | None) -> SpecError | None:
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


def _template_names(template: Mapping[str, Any] | None, key: str) -> set[str]:
    if template is None:
        return set()
    spec = template.get("spec") or {}
    return {item["name"] for item in spec.get(key) or () if isinstance(item, Mapping)}


def _volume_problems(volumes: tuple[Mapping[str, Any], ...]) -> Iterator[SpecError]:
    seen: dict[str, int] = {}
    for i, volume in enumerate(volumes):
        where = f"volumes[{i}]"
        name = volume.get("name")
        problem = _dns_label_problem(name) if name is not None else "is required"
        if problem:
            yield SpecError(f"{where}.name", problem)
            continue
        assert isinstance(name, str)
        if name in seen:
            yield SpecError(
                f"{where}.name", f"{name!r} is already declared by volumes[{seen[name]}]"
            )
        seen.setdefault(name, i)
        bad = _snake_case_key_problem(volume)
        if bad:
            yield SpecError(_child(where, bad[0]), bad[1])
        elif len(volume) < 2:
            yield SpecError(where, "needs a source, e.g. emptyDir: {} or configMap: {name: ...}")


def _map_problems(
    path: str, mapping: Mapping[str, str], *, label_values: bool
) -> Iterator[SpecError]:
    for key, value in mapping.items():
        problem = _qualified_name_problem(key)
        if problem is None and label_values:
            problem = _label_value_problem(value)
        if problem:
            yield SpecError(_key_path(path, key), problem)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into ``base`` (mutated and returned); override wins.

    Mappings merge recursively. Lists with a strategic-merge key (containers by name,
    volume mounts by mountPath, ...) merge element-wise, template order first; other
    lists and scalars are replaced.
    """
    for key, value in override.items():
        current = base.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            base[key] = _merge(current, value)
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
            out[position] = _merge(out[position], item)
    return out


# --------------------------------------------------------------------------------------
# Identity
# --------------------------------------------------------------------------------------

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
