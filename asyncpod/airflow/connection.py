"""Which cluster an Airflow task talks to: the ``kubernetes`` connection, read without the provider.

Why it exists: users who switch from the cncf.kubernetes provider already have a
``kubernetes`` connection (default id ``kubernetes_default``) whose extras say how to
reach the cluster: ``in_cluster``, ``kube_config_path``, ``kube_config`` (a kubeconfig as
JSON, inline), ``namespace``, ``cluster_context``, ``disable_verify_ssl`` - older ones
with an ``extra__kubernetes__`` prefix. This module reads those extras the same way,
so the switch needs no new configuration and no cncf provider installed.

Split as the rest of asyncpod is: :func:`target_from_extras` is a pure decision
(extras and operator overrides in, a :class:`KubeTarget` out, bad combinations
rejected with a :class:`~asyncpod.ConfigError` that names the field), and
:func:`open_client` is the I/O (load the kubeconfig or the service account, build the
HTTP client). Fetching the connection from Airflow lives in :func:`load_target`.

What it deliberately does not do: keep credentials anywhere but in memory. An inline
``kube_config`` is written to a private temporary file only for the moment the
kubeconfig loader reads it; :class:`KubeTarget`'s ``repr`` hides it and
:meth:`KubeTarget.identity` keys it by a hash, so it never reaches a trigger row or a
log line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncpod.errors import ConfigError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.config import ClusterConfig, load_config, load_incluster, load_kubeconfig

__all__ = [
    "DEFAULT_CONN_ID",
    "KubeTarget",
    "load_cluster_config",
    "load_target",
    "open_client",
    "target_from_extras",
]

DEFAULT_CONN_ID = "kubernetes_default"
_PREFIX = "extra__kubernetes__"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


@dataclass(frozen=True, slots=True)
class KubeTarget:
    """How to reach one cluster. ``in_cluster=None`` means: a kubeconfig if one exists
    (``KUBECONFIG`` / ``~/.kube/config``), else the pod's service account."""

    in_cluster: bool | None = None
    config_file: str | None = None
    kube_config: Mapping[str, Any] | None = field(default=None, repr=False)
    context: str | None = None
    namespace: str | None = None
    verify_ssl: bool = True

    def identity(self) -> tuple[object, ...]:
        """A hashable key: targets with equal identities may share one session."""
        inline = None
        if self.kube_config is not None:
            blob = json.dumps(self.kube_config, sort_keys=True, default=str).encode()
            inline = hashlib.sha256(blob).hexdigest()
        return (self.in_cluster, self.config_file, inline, self.context, self.verify_ssl)


def _flag(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"kubernetes connection extra {name!r} must be true or false, got {value!r}")


def _extra(extras: Mapping[str, Any], name: str) -> Any:
    value = extras.get(name)
    if value in (None, ""):
        value = extras.get(_PREFIX + name)
    return None if value == "" else value


def target_from_extras(
    extras: Mapping[str, Any],
    *,
    in_cluster: bool | None = None,
    config_file: str | None = None,
    cluster_context: str | None = None,
) -> KubeTarget:
    """Combine a ``kubernetes`` connection's extras with the operator's own settings.

    The operator's ``in_cluster``/``config_file``/``cluster_context`` win over the
    connection's, as in the reference provider. In-cluster, a kubeconfig path and an
    inline kubeconfig exclude each other.
    """
    in_cluster = (
        in_cluster if in_cluster is not None else _flag(_extra(extras, "in_cluster"), "in_cluster")
    )
    path = config_file or _extra(extras, "kube_config_path")
    inline = _extra(extras, "kube_config")
    if isinstance(inline, str):
        try:
            inline = json.loads(inline)
        except ValueError:
            raise ConfigError(
                "kubernetes connection extra 'kube_config' is not valid JSON; paste the "
                "kubeconfig as JSON, or use 'kube_config_path'"
            ) from None
    if inline is not None and not isinstance(inline, Mapping):
        raise ConfigError("kubernetes connection extra 'kube_config' must be a JSON object")
    chosen = [
        name
        for name, on in (
            ("in_cluster", bool(in_cluster)),
            ("kube_config_path", bool(path)),
            ("kube_config", inline is not None),
        )
        if on
    ]
    if len(chosen) > 1:
        raise ConfigError(
            f"kubernetes connection: {' and '.join(chosen)} exclude each other; keep one"
        )
    disable_verify = _flag(_extra(extras, "disable_verify_ssl"), "disable_verify_ssl")
    namespace = _extra(extras, "namespace")
    context = cluster_context or _extra(extras, "cluster_context")
    return KubeTarget(
        in_cluster=in_cluster,
        config_file=os.fspath(path) if path else None,
        kube_config=inline,
        context=str(context) if context else None,
        namespace=str(namespace) if namespace else None,
        verify_ssl=not disable_verify,
    )


async def load_target(
    conn_id: str | None,
    *,
    in_cluster: bool | None = None,
    config_file: str | None = None,
    cluster_context: str | None = None,
) -> KubeTarget:
    """Read connection ``conn_id`` through Airflow (worker or triggerer) into a target.

    ``None`` skips Airflow entirely (a benchmark, a test). A missing default connection
    means "in-cluster or kubeconfig", as in the reference provider; a missing named one
    is an error.
    """
    extras: Mapping[str, Any] = {}
    if conn_id:
        extras = await _connection_extras(conn_id)
    return target_from_extras(
        extras, in_cluster=in_cluster, config_file=config_file, cluster_context=cluster_context
    )


async def _connection_extras(conn_id: str) -> Mapping[str, Any]:
    from airflow.sdk import Connection

    try:
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:  # Airflow 3.0: not in the task SDK yet
        from airflow.exceptions import AirflowNotFoundException  # type: ignore[attr-defined]

    try:
        getter = getattr(Connection, "async_get", None)
        if getter is not None:
            connection = await getter(conn_id)
            extras = connection.extra_dejson
        else:  # Airflow 3.0 has no async accessor. Through asgiref, as its docs say: its
            # triggerer's comms (async_to_sync in Connection.get and in extra_dejson, which
            # masks secrets) fail from a plain thread ("attached to a different loop") and
            # on the loop's own thread.
            from asgiref.sync import sync_to_async

            def read() -> Any:
                return Connection.get(conn_id).extra_dejson

            extras = await sync_to_async(read)()
    except AirflowNotFoundException:
        if conn_id == DEFAULT_CONN_ID:
            return {}
        raise ConfigError(
            f"Airflow connection {conn_id!r} is not defined; create it (type kubernetes) "
            f"or leave kubernetes_conn_id at {DEFAULT_CONN_ID!r}"
        ) from None
    return extras if isinstance(extras, Mapping) else {}


async def open_client(target: KubeTarget, **client_options: Any) -> KubeClient:
    """Load the target's credentials and open an HTTP client (the caller closes it)."""
    return await KubeClient.from_config(await load_cluster_config(target), **client_options)


async def load_cluster_config(target: KubeTarget) -> ClusterConfig:
    """The target's server, credentials and context namespace (no request is made)."""
    config = await _load(target)
    if not target.verify_ssl:
        config = dataclasses.replace(config, verify_tls=False)
    return config


async def _load(target: KubeTarget) -> ClusterConfig:
    if target.in_cluster:
        return await load_incluster()
    if target.kube_config is not None:
        return await _load_inline(target.kube_config, target.context)
    if target.config_file is not None:
        return await load_kubeconfig(target.config_file, context=target.context)
    if target.in_cluster is False:
        return await load_kubeconfig(context=target.context)
    return await load_config(context=target.context)


async def _load_inline(kube_config: Mapping[str, Any], context: str | None) -> ClusterConfig:
    # The loader reads files; the inline config lives on disk (0600, private dir) only
    # while it does, and relative paths in it resolve against the process's directory.
    with tempfile.TemporaryDirectory(prefix="asyncpod-kubeconfig-") as tmp:
        path = Path(tmp) / "config"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(dict(kube_config), handle)
        return await load_kubeconfig(path, context=context)
