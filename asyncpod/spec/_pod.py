"""The pod: :class:`PodSpec`, its pod-level validation and its manifest.

Why this module exists: a pod is a main container, init containers and sidecars, plus
the fields that belong to the pod (labels, scheduling, volumes, security context).
This module holds the rules that need the whole pod — container names unique across
the rendered pod, every mount naming a declared volume, sidecars rendered as native
sidecars — and composes the manifest from the parts' own renderings, the identity
metadata and the template.

What it deliberately does not do: no I/O, no Kubernetes client models (manifests are
plain dicts), and no rule that belongs to one part: a container, an env var or a
toleration checks itself.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import FrozenInstanceError, dataclass
from typing import Any, Final

from asyncpod.errors import SpecError
from asyncpod.spec._coerce import (
    at_line,
    check_keys,
    child,
    key_path,
    need_bool,
    need_mapping,
    need_str,
    opt_int,
    opt_str,
    raw_map,
    raw_maps,
    str_map,
    str_tuple,
)
from asyncpod.spec._container import (
    CONTAINER_FIELDS,
    DEFAULT_CONTAINER_NAME,
    ContainerSpec,
    coerce_containers,
)
from asyncpod.spec._identity import (
    DEFAULT_CONTAINER_ANNOTATION,
    identity_metadata,
    reserved_annotation_problems,
    reserved_label_problems,
)
from asyncpod.spec._naming import (
    dns_label_problem,
    dns_subdomain_problem,
    label_value_problem,
    qualified_name_problem,
    snake_case_key_problem,
)
from asyncpod.spec._template import merge, template_metadata, template_names, template_problem
from asyncpod.spec._values import (
    EnvFrom,
    EnvVar,
    Resources,
    Toleration,
    VolumeMount,
    coerce_tolerations,
)

__all__ = ["POD_KEYS", "PodSpec"]

_DEFAULT_GENERATE_NAME: Final = "asyncpod-"
_AFFINITY_KEYS: Final = ("nodeAffinity", "podAffinity", "podAntiAffinity")
_ANNOTATIONS_MAX_BYTES: Final = 256 * 1024

# The batch-file keys that describe the main container; the rest describe the pod.
_MAIN_CONTAINER_KEYS: Final = ("image", "container_name", *CONTAINER_FIELDS)
_POD_FIELDS: Final = (
    "name",
    "task_key",
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
#: The keys of :meth:`PodSpec.from_dict` (the batch-file vocabulary).
POD_KEYS: Final = tuple(sorted({*_POD_FIELDS, *_MAIN_CONTAINER_KEYS}))


class _Default:
    """The default of the main container's keywords: "not given" (see ``PodSpec``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<default>"


# Typed Any so that the signature shows each keyword's real type.
_DEFAULT: Any = _Default()


@dataclass(frozen=True, slots=True, init=False, match_args=False)
class PodSpec:
    """One pod to run: a main container, optional init containers and sidecars.

    The main container is :attr:`main_container`, a :class:`ContainerSpec` named
    :attr:`container_name` (``"main"``). For convenience its fields are also keywords
    of the constructor and read-only attributes of the spec (``image``, ``command``,
    ``env``, ``resources``, ...), the form batch files use. Given both
    ``main_container`` and some of those keywords, the keywords override the
    container's fields (so ``dataclasses.replace(spec, image=...)`` works).

    Sidecars run next to the main container and are rendered as native sidecars (init
    containers with ``restartPolicy: Always``, Kubernetes >= 1.29) so the pod
    completes when the main container does; set ``native_sidecars=False`` on older
    clusters to render them as ordinary containers.

    ``template`` is a raw v1 Pod manifest (camelCase) for fields this class does not
    model; the typed fields are merged over it, containers by name.

    ``task_key`` is the caller's stable name for the work (any text). It is stored in
    an annotation and as a hash label, and lets the runner derive a deterministic pod
    name (:func:`deterministic_pod_name`) so that a retried create reattaches.
    """

    main_container: ContainerSpec
    name: str | None
    task_key: str | None
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

    # Positional patterns match the constructor's order, as they did when the main
    # container's fields were the dataclass's own.
    __match_args__ = ("image", "command", "args", "name", "task_key", "container_name")

    def __init__(
        self,
        image: str | None = _DEFAULT,
        command: Iterable[str] = _DEFAULT,
        *,
        args: Iterable[str] = _DEFAULT,
        name: str | None = None,
        task_key: str | None = None,
        container_name: str = _DEFAULT,
        env: Mapping[str, str] | Iterable[EnvVar] | None = _DEFAULT,
        env_from: Iterable[EnvFrom] = _DEFAULT,
        resources: Resources | Mapping[str, Mapping[str, str | int | float]] | None = _DEFAULT,
        volume_mounts: Iterable[VolumeMount] = _DEFAULT,
        security_context: Mapping[str, Any] | None = _DEFAULT,
        working_dir: str | None = _DEFAULT,
        image_pull_policy: str | None = _DEFAULT,
        termination_message_policy: str | None = _DEFAULT,
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
        main_container: ContainerSpec | None = None,
    ) -> None:
        given = {
            key: value
            for key, value in (
                ("command", command),
                ("args", args),
                ("env", env),
                ("env_from", env_from),
                ("resources", resources),
                ("volume_mounts", volume_mounts),
                ("security_context", security_context),
                ("working_dir", working_dir),
                ("image_pull_policy", image_pull_policy),
                ("termination_message_policy", termination_message_policy),
            )
            if value is not _DEFAULT
        }
        values: dict[str, Any] = {
            "main_container": _main_container(main_container, container_name, image, given),
            "name": opt_str(name, "name"),
            "task_key": opt_str(task_key, "task_key"),
            "labels": str_map(labels, "labels"),
            "annotations": str_map(annotations, "annotations"),
            "node_selector": str_map(node_selector, "node_selector"),
            "tolerations": coerce_tolerations(tolerations, "tolerations"),
            "affinity": raw_map(affinity, "affinity"),
            "volumes": raw_maps(volumes, "volumes"),
            "service_account": opt_str(service_account, "service_account"),
            "image_pull_secrets": str_tuple(image_pull_secrets, "image_pull_secrets"),
            "init_containers": coerce_containers(init_containers, "init_containers"),
            "sidecars": coerce_containers(sidecars, "sidecars"),
            "native_sidecars": need_bool(native_sidecars, "native_sidecars"),
            "pod_security_context": raw_map(pod_security_context, "pod_security_context"),
            "active_deadline_seconds": opt_int(active_deadline_seconds, "active_deadline_seconds"),
            "termination_grace_period_seconds": opt_int(
                termination_grace_period_seconds, "termination_grace_period_seconds"
            ),
            "priority_class_name": opt_str(priority_class_name, "priority_class_name"),
            "template": raw_map(template, "template"),
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)

    # -- the main container's fields, read-only -------------------------------------

    @property
    def image(self) -> str | None:
        """The main container's image (``None`` when the template supplies it)."""
        return self.main_container.image

    @property
    def container_name(self) -> str:
        """The main container's name (``"main"`` unless set)."""
        return self.main_container.name

    @property
    def command(self) -> tuple[str, ...]:
        """The main container's command (the image's entrypoint when empty)."""
        return self.main_container.command

    @property
    def args(self) -> tuple[str, ...]:
        """The main container's args."""
        return self.main_container.args

    @property
    def env(self) -> tuple[EnvVar, ...]:
        """The main container's environment variables."""
        return self.main_container.env

    @property
    def env_from(self) -> tuple[EnvFrom, ...]:
        """The Secrets and ConfigMaps imported into the main container's environment."""
        return self.main_container.env_from

    @property
    def resources(self) -> Resources:
        """The main container's requests and limits."""
        return self.main_container.resources

    @property
    def volume_mounts(self) -> tuple[VolumeMount, ...]:
        """The main container's volume mounts."""
        return self.main_container.volume_mounts

    @property
    def security_context(self) -> Mapping[str, Any] | None:
        """The main container's security context (Kubernetes JSON form)."""
        return self.main_container.security_context

    @property
    def working_dir(self) -> str | None:
        """The main container's working directory."""
        return self.main_container.working_dir

    @property
    def image_pull_policy(self) -> str | None:
        """The main container's image pull policy."""
        return self.main_container.image_pull_policy

    @property
    def termination_message_policy(self) -> str | None:
        """The main container's termination message policy."""
        return self.main_container.termination_message_policy

    # -- the dict form --------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, line: int | None = None) -> PodSpec:
        """Build from the snake_case dict form of a batch file entry.

        Unknown keys raise :class:`SpecError` naming the key (with a "did you mean"),
        and every error carries ``line`` when given. Only shapes and types are checked
        here; call :meth:`validate` once defaults have been applied.
        """
        with at_line(line):
            data = need_mapping(data, "spec")
            check_keys(data, POD_KEYS, "")
            return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The snake_case, JSON-ready dict form (defaults omitted).

        ``PodSpec.from_dict(spec.to_dict()) == spec``. The main container's fields sit
        at the top, as in a batch file.
        """
        main = self.main_container.to_dict()
        out: dict[str, Any] = {}
        if "image" in main:
            out["image"] = main.pop("image")
        for name in ("name", "task_key"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        container_name = main.pop("name")
        if container_name != DEFAULT_CONTAINER_NAME:
            out["container_name"] = container_name
        out.update(main)
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
        for name in ("affinity", "pod_security_context", "template"):
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
        bad_template = template_problem(self.template)
        if bad_template is not None:
            yield bad_template
            return
        if self.name is not None:
            problem = dns_subdomain_problem(self.name)
            if problem:
                yield SpecError("name", problem)
        if self.task_key is not None and not self.task_key:
            yield SpecError("task_key", "must not be empty")

        yield from _volume_problems(self.volumes)
        volume_names = {v.get("name") for v in self.volumes if isinstance(v.get("name"), str)}
        volume_names.update(template_names(self.template, "volumes"))
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
        yield from reserved_label_problems(self.labels)
        yield from _map_problems("annotations", self.annotations, label_values=False)
        yield from reserved_annotation_problems(self.annotations)
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
                        child("affinity", str(key)),
                        f"unknown key; expected one of: {', '.join(_AFFINITY_KEYS)}",
                    )
        if self.pod_security_context is not None:
            bad = snake_case_key_problem(self.pod_security_context)
            if bad:
                yield SpecError(child("pod_security_context", bad[0]), bad[1])
        for name in ("service_account", "priority_class_name"):
            value = getattr(self, name)
            if value is not None:
                problem = dns_subdomain_problem(value)
                if problem:
                    yield SpecError(name, problem)
        for i, secret in enumerate(self.image_pull_secrets):
            problem = dns_subdomain_problem(secret)
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
        extra = str_map(labels, "labels")
        for key, value in extra.items():
            problem = qualified_name_problem(key) or label_value_problem(value)
            if problem:
                raise SpecError(key_path("labels", key), problem)
        problem = dns_label_problem(namespace)
        if problem:
            raise SpecError("namespace", problem)
        pod_name = name if name is not None else self.name
        metadata: dict[str, Any] = {"namespace": namespace}
        if pod_name is not None:
            problem = dns_subdomain_problem(pod_name)
            if problem:
                raise SpecError("name", problem)
            metadata["name"] = pod_name
        else:
            prefix = generate_name if generate_name is not None else _DEFAULT_GENERATE_NAME
            if prefix and dns_subdomain_problem(prefix.rstrip("-.") or "x") is not None:
                raise SpecError("generate_name", f"{prefix!r} is not a valid name prefix")
            metadata["generateName"] = prefix

        all_labels, annotations = identity_metadata(
            {**self.labels, **extra}, self.annotations, task_key=self.task_key
        )
        metadata["labels"] = all_labels
        metadata["annotations"] = annotations

        spec = self._pod_body()
        template_meta = template_metadata(self.template)
        # The default-container hint is set unless the template or the user chose one.
        if DEFAULT_CONTAINER_ANNOTATION not in (template_meta.get("annotations") or {}):
            annotations.setdefault(DEFAULT_CONTAINER_ANNOTATION, self.container_name)
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": merge(template_meta, metadata),
            "spec": spec,
        }

    def _pod_body(self) -> dict[str, Any]:
        """The Pod ``spec`` object, merged over the template's when there is one."""
        containers = [self.main_container.to_manifest()]
        init_containers = [c.to_manifest() for c in self.init_containers]
        sidecars = [c.to_manifest() for c in self.sidecars]
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
        return merge(base, body)


def _volume_problems(volumes: tuple[Mapping[str, Any], ...]) -> Iterator[SpecError]:
    seen: dict[str, int] = {}
    for i, volume in enumerate(volumes):
        where = f"volumes[{i}]"
        name = volume.get("name")
        problem = dns_label_problem(name) if name is not None else "is required"
        if problem:
            yield SpecError(f"{where}.name", problem)
            continue
        assert isinstance(name, str)
        if name in seen:
            yield SpecError(
                f"{where}.name", f"{name!r} is already declared by volumes[{seen[name]}]"
            )
        seen.setdefault(name, i)
        bad = snake_case_key_problem(volume)
        if bad:
            yield SpecError(child(where, bad[0]), bad[1])
        elif len(volume) < 2:
            yield SpecError(where, "needs a source, e.g. emptyDir: {} or configMap: {name: ...}")


def _map_problems(
    path: str, mapping: Mapping[str, str], *, label_values: bool
) -> Iterator[SpecError]:
    for key, value in mapping.items():
        problem = qualified_name_problem(key)
        if problem is None and label_values:
            problem = label_value_problem(value)
        if problem:
            yield SpecError(key_path(path, key), problem)


def _refuse_assignment(self: PodSpec, name: str, *value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


# A slotted frozen dataclass refuses assignment to its fields only: on Python 3.11 its
# generated __setattr__ fails with a TypeError for any other name (it calls super() on
# the class that slots=True replaced), and the main container's attributes are
# properties. Every assignment is refused the same way, as before.
PodSpec.__setattr__ = _refuse_assignment  # type: ignore[method-assign,assignment]
PodSpec.__delattr__ = _refuse_assignment  # type: ignore[method-assign,assignment]


def _main_container(
    base: ContainerSpec | None, name: object, image: object, fields: dict[str, Any]
) -> ContainerSpec:
    """The main container: ``base`` (if any) with the keywords given over it."""
    if base is not None and not isinstance(base, ContainerSpec):
        raise SpecError("main_container", f"must be a ContainerSpec, got {type(base).__name__}")
    if name is _DEFAULT:
        container_name = DEFAULT_CONTAINER_NAME if base is None else base.name
    else:
        container_name = need_str(name, "container_name")
    if image is _DEFAULT:
        container_image = None if base is None else base.image
    else:
        container_image = opt_str(image, "image")
    if base is None:
        return ContainerSpec(container_name, container_image, **fields)
    if not fields and (container_name, container_image) == (base.name, base.image):
        return base
    inherited = {key: getattr(base, key) for key in CONTAINER_FIELDS}
    return ContainerSpec(container_name, container_image, **(inherited | fields))
