"""Where the API server is and how to prove who we are: kubeconfig, in-cluster, tokens.

Why it exists: authentication is a zoo (client certificates, static and file tokens,
exec plugins, in-cluster service accounts, legacy auth providers). We translate each
into a small frozen :class:`ClusterConfig` plus a :class:`Credentials` object that
hands out a fresh ``Authorization`` header value (exec-plugin, token-file and in-cluster
tokens change and are refreshed lazily, never by a background task).

The ordinary kubeconfig (server, CA, client certificate and key, ``token``,
``tokenFile``, basic auth, ``insecure-skip-tls-verify``, ``tls-server-name``,
``proxy-url``) is read here, field for field as ``kubernetes_asyncio``'s loader reads
it. Exec plugins, auth providers (oidc, gcp) and the in-cluster service account are
left to ``kubernetes_asyncio.config``, which speaks all of them, and which is imported
only when one is used: importing any part of that package imports its whole generated
client (~860 modules, about a second), which a CLI start-up or a plain kubeconfig has
no use for (docs/architecture.md, "Imports").

What it deliberately does not do:

* No HTTP. :mod:`asyncpod.kube.client` owns the session; this module only says what
  to connect to and builds the :class:`ssl.SSLContext` for it.
* It never writes the kubeconfig back (the library's ``persist_config`` is off), so
  loading is side-effect free apart from temp files for ``*-data`` keys, which ``ssl``
  can only read from disk (private to the user, removed at exit).
* Error messages never contain tokens, passwords or key material. Library messages are
  redacted against every secret in the loaded kubeconfig before they are shown, and
  YAML errors are reported by position only (a YAML error snippet would quote the line,
  which may be a token).

Merging follows ``kubectl``: ``KUBECONFIG`` lists files separated by ``os.pathsep``;
missing ones are skipped; the first file to define a cluster, user, context or
``current-context`` wins. Relative certificate and token-file paths resolve against
the file that named them.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import binascii
import contextlib
import datetime
import os
import re
import ssl
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import yaml

from asyncpod.errors import ConfigError

__all__ = [
    "ClusterConfig",
    "ConfigSource",
    "Credentials",
    "StaticToken",
    "build_ssl_context",
    "config_source",
    "default_kubeconfig_paths",
    "load_config",
    "load_incluster",
    "load_kubeconfig",
]

SERVICE_TOKEN_FILENAME = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path
SERVICE_CERT_FILENAME = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
SERVICE_NAMESPACE_FILENAME = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

# Refresh an exec-plugin token this long before it expires, so a request never
# leaves with a token that dies in flight.
_EXPIRY_SKEW = datetime.timedelta(seconds=60)

# User-section keys whose values are secrets; used to redact library messages.
_SECRET_USER_KEYS = ("token", "password", "client-key-data", "username")
_REDACTED = "<redacted>"
# User-section keys that only kubernetes_asyncio's loader implements.
_LIBRARY_USER_KEYS = frozenset({"exec", "auth-provider"})
_AUTH_VALUE = re.compile(r"(?i)\b(bearer|basic)\s+\S+")


@runtime_checkable
class Credentials(Protocol):
    """Hands out the ``Authorization`` header value for each request.

    Implementations cache: :meth:`authorization` is called once per request and must be
    cheap when nothing expired. Their ``repr`` never shows the secret.
    """

    async def authorization(self) -> str | None:
        """The header value (``"Bearer …"``), refreshed first if it is about to expire."""
        ...

    async def invalidate(self) -> bool:
        """Drop cached credentials after a 401; True if fresh ones may differ (retry)."""
        ...


class StaticToken:
    """A bearer token that never changes (e.g. from a secret you mounted yourself)."""

    __slots__ = ("_value",)

    def __init__(self, token: str) -> None:
        if not token or token != token.strip():
            raise ConfigError("token is empty or has surrounding whitespace")
        self._value = f"Bearer {token}"

    async def authorization(self) -> str | None:
        return self._value

    async def invalidate(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"


class _ConfigurationCredentials:
    """Credentials held in a filled ``kubernetes_asyncio`` ``Configuration``.

    ``get_api_key_with_prefix`` runs the configuration's ``refresh_api_key_hook``;
    the in-cluster loader installs one that re-reads the projected service-account token
    at most once a minute (a tiny file on tmpfs, so the synchronous read is cheaper than
    a thread hop).
    """

    __slots__ = ("_configuration",)

    def __init__(self, configuration: Any) -> None:
        self._configuration = configuration

    async def authorization(self) -> str | None:
        try:
            value = await self._configuration.get_api_key_with_prefix("BearerToken")
        except Exception as exc:  # noqa: BLE001 - see _config_error
            # The refresh hook re-reads a token file, which may have gone away.
            raise _config_error("refreshing the bearer token failed", exc, frozenset()) from None
        if not value:
            return None
        value = str(value)
        # A bare token without a scheme would be rejected by the server; be lenient.
        return value if " " in value else f"Bearer {value}"

    async def invalidate(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"


class _KubeconfigCredentials(_ConfigurationCredentials):
    """Kubeconfig users whose credentials can be fetched again (exec plugins, files).

    An exec plugin's token is refreshed when its ``expirationTimestamp`` is near, and on
    a 401 (a plugin that gives no expiry is cached until then, as ``kubectl`` does). A
    refresh re-runs the library loader's ``load_and_set``; a lock and a generation count
    make sure many concurrent requests trigger one plugin run, not one each.
    """

    __slots__ = ("_generation", "_label", "_loader", "_lock", "_secrets")

    def __init__(
        self, configuration: Any, loader: Any, *, label: str, secrets: frozenset[str]
    ) -> None:
        super().__init__(configuration)
        self._loader = loader
        self._label = label
        self._secrets = secrets
        self._lock = asyncio.Lock()
        self._generation = 0

    def _expiring(self) -> bool:
        expiry = getattr(self._loader, "exec_plugin_expiry", None)
        if not isinstance(expiry, datetime.datetime):
            return False
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=datetime.timezone.utc)
        return datetime.datetime.now(datetime.timezone.utc) + _EXPIRY_SKEW >= expiry

    async def authorization(self) -> str | None:
        if self._expiring():
            await self._reload(self._generation)
        return await super().authorization()

    async def invalidate(self) -> bool:
        before = await super().authorization()
        await self._reload(self._generation)
        return await super().authorization() != before

    async def _reload(self, seen_generation: int) -> None:
        async with self._lock:
            if self._generation != seen_generation:
                return  # another task refreshed while we waited for the lock
            # The library skips the plugin while its cached expiry is in the future;
            # we decided it is due, so make it run.
            if hasattr(self._loader, "exec_plugin_expiry"):
                del self._loader.exec_plugin_expiry
            try:
                await self._loader.load_and_set(self._configuration)
            except Exception as exc:  # noqa: BLE001 - see _config_error
                raise _config_error(
                    f"{self._label}: refreshing credentials failed", exc, self._secrets
                ) from None
            self._generation += 1


class _FixedAuthorization:
    """A kubeconfig user's ``token`` or username and password: one header value, always."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    async def authorization(self) -> str | None:
        return self._value

    async def invalidate(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"


class _TokenFileCredentials:
    """A kubeconfig user's ``tokenFile``: read at load, and again after a 401.

    The file may have been rotated behind our back; reading it again on every request
    would cost a thread hop each. Surrounding whitespace (the trailing newline of
    ``echo TOKEN > file``) is dropped, as kubectl does. An empty file falls back to the
    user's basic auth, if any. A lock and a generation count make many concurrent 401s
    read the file once.
    """

    __slots__ = ("_fallback", "_generation", "_label", "_lock", "_path", "_secrets", "_value")

    def __init__(
        self, path: str, *, fallback: str | None, label: str, secrets: frozenset[str]
    ) -> None:
        self._path = path
        self._fallback = fallback
        self._label = label
        self._secrets = secrets
        self._lock = asyncio.Lock()
        self._generation = 0
        self._value = self._read()  # blocking: the loader runs in a thread

    def _read(self) -> str | None:
        token = Path(self._path).read_text(encoding="utf-8").strip()
        return f"Bearer {token}" if token else self._fallback

    async def authorization(self) -> str | None:
        return self._value

    async def invalidate(self) -> bool:
        before = self._value
        seen_generation = self._generation
        async with self._lock:
            if self._generation == seen_generation:
                try:
                    self._value = await asyncio.to_thread(self._read)
                except Exception as exc:  # noqa: BLE001 - see _config_error
                    raise _config_error(
                        f"{self._label}: refreshing credentials failed", exc, self._secrets
                    ) from None
                self._generation += 1
        return self._value != before

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """How to reach one API server: a value, safe to share and to print.

    ``server`` is the base URL (``https://host:6443``, possibly with a path prefix).
    Files are paths on disk (inline ``*-data`` from a kubeconfig has already been
    written to temp files by the loader). ``namespace`` is the context's default
    namespace, if it names one. ``source`` says where this came from, for messages.
    """

    server: str
    _: KW_ONLY
    ca_file: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None
    verify_tls: bool = True
    tls_server_name: str | None = None
    proxy: str | None = None
    credentials: Credentials | None = None
    namespace: str | None = None
    context: str | None = None
    source: str = "explicit configuration"

    def __post_init__(self) -> None:
        if not self.server.startswith(("https://", "http://")):
            raise ConfigError(
                f"{self.source}: server must be an http:// or https:// URL, got {self.server!r}"
            )
        if self.client_key_file and not self.client_cert_file:
            raise ConfigError(f"{self.source}: a client key was given without a certificate")

    @property
    def uses_tls(self) -> bool:
        return self.server.startswith("https://")

    @classmethod
    def from_configuration(
        cls,
        configuration: Any,
        *,
        credentials: Credentials | None = None,
        namespace: str | None = None,
        context: str | None = None,
        source: str = "kubernetes_asyncio Configuration",
    ) -> ClusterConfig:
        """Translate a filled ``kubernetes_asyncio.client.Configuration``.

        Reads ``host``, ``ssl_ca_cert``, ``cert_file``, ``key_file``, ``verify_ssl``,
        ``tls_server_name`` and ``proxy``. Unless ``credentials`` is given, the bearer
        token (with its ``api_key_prefix`` and ``refresh_api_key_hook``) is read from the
        configuration on each request.
        """
        if credentials is None and (
            configuration.api_key.get("BearerToken")
            or configuration.refresh_api_key_hook is not None
        ):
            credentials = _ConfigurationCredentials(configuration)
        return cls(
            str(configuration.host).rstrip("/"),
            ca_file=configuration.ssl_ca_cert or None,
            client_cert_file=configuration.cert_file or None,
            client_key_file=configuration.key_file or None,
            verify_tls=bool(configuration.verify_ssl),
            tls_server_name=configuration.tls_server_name or None,
            proxy=configuration.proxy or None,
            credentials=credentials,
            namespace=namespace,
            context=context,
            source=source,
        )


def build_ssl_context(config: ClusterConfig) -> ssl.SSLContext | None:
    """The TLS context for ``config``, or None for a plain-http server.

    Blocking (reads CA and key files, loads the system trust store when no CA is
    given): call it in a thread, as :class:`~asyncpod.kube.client.KubeClient` does.
    """
    if not config.uses_tls:
        return None
    try:
        context = ssl.create_default_context(cafile=config.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{config.source}: cannot load the cluster's certificate-authority "
            f"{config.ca_file}: {_os_reason(exc)}; check certificate-authority(-data)"
        ) from None
    if config.client_cert_file:
        try:
            context.load_cert_chain(config.client_cert_file, keyfile=config.client_key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{config.source}: cannot load the client certificate/key "
                f"({config.client_cert_file}, {config.client_key_file}): {_os_reason(exc)}; "
                "check client-certificate(-data) and client-key(-data)"
            ) from None
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def default_kubeconfig_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """``KUBECONFIG`` split on ``os.pathsep`` (empty entries dropped), else ``~/.kube/config``."""
    env = os.environ if environ is None else environ
    raw = env.get("KUBECONFIG", "")
    paths = [_expand(p) for p in raw.split(os.pathsep) if p.strip()]
    return paths or [_expand("~/.kube/config")]


def _expand(path: str) -> Path:
    try:
        return Path(path).expanduser()
    except RuntimeError:  # no home directory known (no HOME, no passwd entry)
        return Path(path)


ConfigSource = Literal["kubeconfig", "in-cluster"]


def config_source(
    kubeconfig: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    *,
    context: str | None = None,
    in_cluster: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> ConfigSource:
    """Where the cluster configuration comes from: the one auto-detection rule.

    An explicit choice wins: ``in_cluster=True`` (which cannot be combined with a
    kubeconfig or a context), ``in_cluster=False``, a ``kubeconfig`` path or a
    ``context``. Otherwise, as kubectl and client-go do: a kubeconfig when ``KUBECONFIG``
    names one or ``~/.kube/config`` exists, else the pod's service account when
    ``KUBERNETES_SERVICE_HOST`` is set, else a kubeconfig after all (whose loader then
    says what is missing, naming both ways). Reads the environment (``environ``) and
    checks whether files exist; nothing else.
    """
    if in_cluster:
        if kubeconfig is not None or context is not None:
            raise ConfigError(
                "in_cluster=True uses the pod's service account; it cannot be combined "
                "with a kubeconfig or a context"
            )
        return "in-cluster"
    if in_cluster is not None or kubeconfig is not None or context is not None:
        return "kubeconfig"
    env = os.environ if environ is None else environ
    if env.get("KUBECONFIG", "").strip():
        return "kubeconfig"
    if any(path.is_file() for path in default_kubeconfig_paths(env)):
        return "kubeconfig"
    if env.get("KUBERNETES_SERVICE_HOST"):
        return "in-cluster"
    return "kubeconfig"


async def load_kubeconfig(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    *,
    context: str | None = None,
) -> ClusterConfig:
    """Load a kubeconfig (or the ``KUBECONFIG`` list / ``~/.kube/config``).

    ``path`` may be one file or several (merged like ``KUBECONFIG``). An explicitly
    given file must exist; from ``KUBECONFIG`` missing files are skipped, as kubectl
    does. Exec plugins run here (they may take a moment: a cloud CLI, an SSO prompt).
    Raises :class:`ConfigError` naming what to fix.
    """
    if path is None:
        raw: list[str | os.PathLike[str]] | None = None
    elif isinstance(path, (str, os.PathLike)):
        raw = [path]
    else:
        raw = list(path)
    # File reads and YAML parsing are blocking; keep them off the event loop.
    try:
        merged = await asyncio.to_thread(_read_and_merge, raw)
    except OSError as exc:  # e.g. a directory on the way that we may not enter
        raise ConfigError(f"kubeconfig cannot be read: {_os_reason(exc)}") from None
    selected = _select_context(merged, context)
    label = f"kubeconfig {merged.describe()}, context {selected.name!r}"
    secrets = merged.secrets()
    if selected.needs_library:
        return await _load_with_library(merged, selected, label=label, secrets=secrets)
    try:
        # Reads token and certificate files, writes *-data temp files: off the loop too.
        return await asyncio.to_thread(_load_plain, selected, label=label, secrets=secrets)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - see _config_error
        raise _config_error(label, exc, secrets) from None


async def load_incluster(
    *,
    token_file: str = SERVICE_TOKEN_FILENAME,
    ca_file: str = SERVICE_CERT_FILENAME,
    namespace_file: str = SERVICE_NAMESPACE_FILENAME,
    environ: Mapping[str, str] | None = None,
) -> ClusterConfig:
    """The pod's own service account (``KUBERNETES_SERVICE_HOST``/``PORT`` + token + CA).

    The token is re-read from its file at most once a minute, so projected tokens that
    the kubelet rotates keep working.
    """
    env = dict(os.environ if environ is None else environ)
    label = "in-cluster service account"
    if not env.get("KUBERNETES_SERVICE_HOST") or not env.get("KUBERNETES_SERVICE_PORT"):
        raise ConfigError(
            f"{label}: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set; "
            "this process is not running in a pod (use a kubeconfig instead)"
        )

    def load() -> tuple[Any, str | None]:
        # Imported on first use, in this thread (see the module docstring).
        from kubernetes_asyncio.client import Configuration
        from kubernetes_asyncio.config.incluster_config import (
            InClusterConfigLoader,
        )

        configuration = type.__call__(Configuration)
        InClusterConfigLoader(
            token_filename=token_file, cert_filename=ca_file, environ=env
        ).load_and_set(configuration)
        try:
            namespace = Path(namespace_file).read_text(encoding="utf-8").strip() or None
        except OSError:
            namespace = None
        return configuration, namespace

    try:
        configuration, namespace = await asyncio.to_thread(load)
    except Exception as exc:  # noqa: BLE001 - see _config_error
        raise _config_error(
            f"{label} (token {token_file}, CA {ca_file})", exc, frozenset()
        ) from None
    return ClusterConfig.from_configuration(configuration, namespace=namespace, source=label)


async def load_config(
    kubeconfig: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    *,
    context: str | None = None,
    in_cluster: bool | None = None,
) -> ClusterConfig:
    """Load the configuration :func:`config_source` picks: a kubeconfig or in-cluster."""
    source = config_source(kubeconfig, context=context, in_cluster=in_cluster)
    if source == "in-cluster":
        return await load_incluster()
    return await load_kubeconfig(kubeconfig, context=context)


# --------------------------------------------------------------------------- internals


@dataclass(frozen=True, slots=True)
class _Entry:
    """One named cluster, user or context, with the file that defined it."""

    name: str
    body: dict[str, Any]
    path: Path


@dataclass(frozen=True, slots=True)
class _Selected:
    name: str
    namespace: str | None
    has_refreshable_auth: bool
    cluster: _Entry
    user: _Entry | None

    @property
    def needs_library(self) -> bool:
        """Whether the user authenticates in a way only kubernetes_asyncio's loader knows."""
        return self.user is not None and bool(_LIBRARY_USER_KEYS & self.user.body["user"].keys())


@dataclass(slots=True)
class _Merged:
    paths: list[Path]
    current_context: str | None = None
    clusters: dict[str, _Entry] | None = None
    users: dict[str, _Entry] | None = None
    contexts: dict[str, _Entry] | None = None

    def describe(self) -> str:
        return os.pathsep.join(str(p) for p in self.paths)

    def to_config_node(self, config_node: Any) -> Any:
        """The merged kubeconfig as the library's ``ConfigNode`` (passed in: imported late)."""

        def section(kind: str, entries: dict[str, _Entry] | None) -> list[Any]:
            # Each entry keeps its own file path, so relative certificate paths resolve
            # next to the file that named them. Node names appear in library errors,
            # so they name the entry, never its contents.
            return [
                config_node(f"{e.path}: {kind}[name={e.name}]", e.body, str(e.path))
                for e in (entries or {}).values()
            ]

        value = {
            "current-context": self.current_context,
            "clusters": section("clusters", self.clusters),
            "users": section("users", self.users),
            "contexts": section("contexts", self.contexts),
        }
        return config_node("kubeconfig", value, str(self.paths[0]))

    def secrets(self) -> frozenset[str]:
        found: set[str] = set()
        for entry in (self.users or {}).values():
            user = entry.body.get("user")
            if isinstance(user, dict):
                _collect_secrets(user, found)
        return frozenset(s for s in found if len(s) >= 4)


def _collect_secrets(user: Mapping[str, Any], found: set[str]) -> None:
    for key in _SECRET_USER_KEYS:
        value = user.get(key)
        if isinstance(value, str):
            found.add(value)
    provider = user.get("auth-provider")
    if isinstance(provider, dict) and isinstance(provider.get("config"), dict):
        found.update(str(v) for v in provider["config"].values() if v)
    exec_cfg = user.get("exec")
    if isinstance(exec_cfg, dict) and isinstance(exec_cfg.get("env"), list):
        found.update(
            str(item["value"])
            for item in exec_cfg["env"]
            if isinstance(item, dict) and item.get("value")
        )


def _read_and_merge(raw: list[str | os.PathLike[str]] | None) -> _Merged:
    explicit = raw is not None
    paths = default_kubeconfig_paths() if raw is None else [Path(p).expanduser() for p in raw]
    existing = [p for p in paths if p.is_file()]
    if explicit:
        missing = [p for p in paths if p not in existing]
        if missing:
            raise ConfigError(
                f"kubeconfig {missing[0]} does not exist (or is not a file); "
                "pass an existing path, or leave path unset to use KUBECONFIG / ~/.kube/config"
            )
    elif not existing:
        raise ConfigError(
            "no kubeconfig found: looked for "
            + ", ".join(str(p) for p in paths)
            + "; set KUBECONFIG, pass path=, or run inside a pod (in-cluster config)"
        )
    merged = _Merged(paths=existing, clusters={}, users={}, contexts={})
    for file in existing:
        doc = _parse_file(file)
        if merged.current_context is None and doc.get("current-context"):
            merged.current_context = str(doc["current-context"])
        for kind, target in (
            ("clusters", merged.clusters),
            ("users", merged.users),
            ("contexts", merged.contexts),
        ):
            assert target is not None
            for entry in _entries(doc, kind, file):
                target.setdefault(entry.name, entry)  # first file wins, as in kubectl
    return merged


def _parse_file(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"kubeconfig {file} is not UTF-8 text; is it the right file?") from None
    except OSError as exc:
        raise ConfigError(f"kubeconfig {file} cannot be read: {_os_reason(exc)}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Position only: the snippet PyYAML would quote might be a token.
        raise ConfigError(f"kubeconfig {file} is not valid YAML: {_yaml_reason(exc)}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(
            f"kubeconfig {file} is not a kubeconfig: expected a mapping with clusters, "
            f"users and contexts, found a YAML {type(doc).__name__}"
        )
    return doc


def _entries(doc: Mapping[str, Any], kind: str, file: Path) -> Iterable[_Entry]:
    items = doc.get(kind) or []
    if not isinstance(items, list):
        raise ConfigError(f"kubeconfig {file}: {kind} must be a list")
    inner = kind[:-1]  # clusters -> cluster
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConfigError(f"kubeconfig {file}: {kind}[{index}] has no name")
        if not isinstance(item.get(inner) or {}, dict):
            raise ConfigError(
                f"kubeconfig {file}: {kind}[name={item['name']}].{inner} must be a mapping"
            )
        body = dict(item)
        body[inner] = dict(item.get(inner) or {})
        yield _Entry(item["name"], body, file)


def _select_context(merged: _Merged, requested: str | None) -> _Selected:
    contexts = merged.contexts or {}
    available = ", ".join(sorted(contexts)) or "(none)"
    where = merged.describe()
    name = requested or merged.current_context
    if not name:
        raise ConfigError(
            f"kubeconfig {where} has no current-context; pass context= "
            f"(available: {available}) or run `kubectl config use-context NAME`"
        )
    entry = contexts.get(name)
    if entry is None:
        how = "requested" if requested else "current-context"
        raise ConfigError(
            f"context {name!r} ({how}) not found in kubeconfig {where}; available: {available}"
        )
    body = entry.body["context"]
    cluster_name = body.get("cluster")
    cluster = (merged.clusters or {}).get(str(cluster_name)) if cluster_name else None
    if cluster is None:
        raise ConfigError(
            f"context {name!r} in {entry.path} refers to cluster {cluster_name!r}, "
            f"which is not defined in kubeconfig {where}"
        )
    if not cluster.body["cluster"].get("server"):
        raise ConfigError(f"cluster {cluster.name!r} in {cluster.path} has no server URL")
    user_name = body.get("user")
    refreshable = False
    user = None
    if user_name:
        user = (merged.users or {}).get(str(user_name))
        if user is None:
            raise ConfigError(
                f"context {name!r} in {entry.path} refers to user {user_name!r}, "
                f"which is not defined in kubeconfig {where}"
            )
        spec = user.body["user"]
        refreshable = bool({"exec", "auth-provider", "tokenFile"} & spec.keys())
    namespace = body.get("namespace")
    return _Selected(name, str(namespace) if namespace else None, refreshable, cluster, user)


async def _load_with_library(
    merged: _Merged, selected: _Selected, *, label: str, secrets: frozenset[str]
) -> ClusterConfig:
    """Exec plugins and auth providers, by ``kubernetes_asyncio``'s loader.

    The library is imported here, in a thread: the import takes about a second (see the
    module docstring) and the event loop keeps running meanwhile.
    """
    kube_config, configuration_class = await asyncio.to_thread(_import_library)
    try:
        loader = kube_config.KubeConfigLoader(
            config_dict=merged.to_config_node(kube_config.ConfigNode),
            active_context=selected.name,
            config_base_path=None,
            config_persister=None,
        )
        configuration = type.__call__(configuration_class)  # bypass the library's global default
        await loader.load_and_set(configuration)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - see _config_error
        raise _config_error(label, exc, secrets) from None
    credentials: Credentials | None = None
    if configuration.api_key.get("BearerToken") or selected.has_refreshable_auth:
        credentials = _KubeconfigCredentials(configuration, loader, label=label, secrets=secrets)
    return ClusterConfig.from_configuration(
        configuration,
        credentials=credentials,
        namespace=selected.namespace,
        context=selected.name,
        source=label,
    )


def _import_library() -> tuple[Any, Any]:
    from kubernetes_asyncio.client import Configuration
    from kubernetes_asyncio.config import kube_config

    return kube_config, Configuration


def _load_plain(selected: _Selected, *, label: str, secrets: frozenset[str]) -> ClusterConfig:
    """A kubeconfig user without exec plugin or auth provider, read as the library reads it.

    The same precedence (``*-data`` over the file, ``token`` over ``tokenFile`` over
    username and password), the same laziness (certificates are read for https servers
    only) and the same messages. Three departures, each a library bug: client
    certificate paths resolve next to the file that defines the user (the library uses
    the cluster's file), a context without a user works with an https server (the library
    fails on it with a TypeError), and a token file's surrounding whitespace is dropped
    (the library sends its trailing newline, which aiohttp refuses to put in a header).
    Blocking: reads files, writes ``*-data`` temp files.
    """
    cluster = _Section(selected.cluster, "clusters", label)
    user = None if selected.user is None else _Section(selected.user, "users", label)
    server = cluster.get("server")
    if not isinstance(server, str):
        raise ConfigError(
            f"{label}: {cluster}: server must be a URL, not a {type(server).__name__}"
        )
    server = server.rstrip("/")
    # Credentials first, as the library does: its errors come in this order.
    credentials = _plain_credentials(user, label=label, secrets=secrets)
    ca_file = cert_file = key_file = None
    if server.startswith("https"):
        ca_file = cluster.file("certificate-authority")
        if user is not None:
            cert_file = user.file("client-certificate")
            key_file = user.file("client-key")
    skip_verify = cluster.optional("insecure-skip-tls-verify")
    return ClusterConfig(
        server,
        ca_file=ca_file,
        client_cert_file=cert_file,
        client_key_file=key_file,
        verify_tls=not skip_verify,
        tls_server_name=cluster.optional("tls-server-name") or None,
        proxy=cluster.optional("proxy-url") or None,
        credentials=credentials,
        namespace=selected.namespace,
        context=selected.name,
        source=label,
    )


def _plain_credentials(
    user: _Section | None, *, label: str, secrets: frozenset[str]
) -> Credentials | None:
    if user is None or not user.body:
        return None
    if "token" in user:
        token = user.get("token")
        if token:
            return _FixedAuthorization(f"Bearer {token}")
    elif "tokenFile" in user:
        path = user.resolve(user.get("tokenFile"))
        return _TokenFileCredentials(path, fallback=_basic(user), label=label, secrets=secrets)
    basic = _basic(user)
    return None if basic is None else _FixedAuthorization(basic)


def _basic(user: _Section) -> str | None:
    if "username" not in user or "password" not in user:
        return None
    pair = f"{user.get('username')}:{user.get('password')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


@dataclass(frozen=True, slots=True)
class _Section:
    """One cluster's or user's section, with the library's rules for its fields."""

    entry: _Entry
    kind: Literal["clusters", "users"]
    label: str  # the kubeconfig and context, which every message starts with

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.entry.body[self.kind[:-1]]
        return body

    def __contains__(self, key: str) -> bool:
        return key in self.body

    def __str__(self) -> str:
        # The library's name for the section, kept in its messages.
        return f"{self.entry.path}: {self.kind}[name={self.entry.name}]/{self.kind[:-1]}"

    def get(self, key: str) -> Any:
        """A key that is present; null is malformed (the library says so, and so do we)."""
        value = self.body[key]
        if value is None:
            raise ConfigError(
                f"{self.label}: Invalid kube-config file. Expected key {key} in {self}"
            )
        return value

    def optional(self, key: str) -> Any:
        return self.get(key) if key in self.body else None

    def resolve(self, path: str) -> str:
        """``path`` relative to the kubeconfig file that defines this section."""
        return os.path.normpath(self.entry.path.parent.absolute() / path)

    def file(self, key: str) -> str | None:
        """The file for ``key``: ``key-data`` (base64) in a temp file, else ``key``'s path."""
        data_key = f"{key}-data"
        if data_key in self.body:
            data = self.get(data_key)
            if not data:
                return None
            return _temp_file(
                base64.standard_b64decode(data.encode() if isinstance(data, str) else data)
            )
        if key not in self.body:
            return None
        path = self.resolve(self.get(key))
        if not Path(path).is_file():
            # sic: the library's message, kept so that both loaders say the same.
            raise ConfigError(f"{self.label}: File does not exists: {path}")
        return path


_temp_files: dict[bytes, tuple[str, tuple[int, int]]] = {}  # content -> (path, identity)
_temp_files_lock = threading.Lock()


def _temp_file(content: bytes) -> str:
    """A private file holding ``content``: ``ssl`` reads certificates from files only.

    On Linux an anonymous in-memory file (``memfd``), named by its ``/proc/self/fd``
    path: it dies with the process, even one killed by SIGKILL, so nothing is left in
    the temp directory. Elsewhere a temp file (mode 0600) removed when the interpreter
    exits. One per distinct content, so loading a kubeconfig again (each session
    does) creates none; one whose path now names another file (a forked child that
    closed its descriptors, a removed temp file) is made again.
    """
    with _temp_files_lock:
        known = _temp_files.get(content)
        if known is not None and _identity(known[0]) == known[1]:
            return known[0]
        name = _in_memory_file(content) or _disk_file(content)
        identity = _identity(name)
        assert identity is not None
        _temp_files[content] = (name, identity)
        return name


def _identity(name: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(name)  # noqa: PTH116 - follows /proc/self/fd's link
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _in_memory_file(content: bytes) -> str | None:
    create = getattr(os, "memfd_create", None)
    if create is None or not Path("/proc/self/fd").is_dir():
        return None
    try:
        fd = create("asyncpod-kubeconfig")  # close-on-exec: no child inherits it
    except OSError:
        return None
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view) :]
    return f"/proc/self/fd/{fd}"


def _disk_file(content: bytes) -> str:
    fd, name = tempfile.mkstemp(prefix="asyncpod-kubeconfig-")  # mode 0600
    with os.fdopen(fd, "wb") as file:
        file.write(content)
    return name


@atexit.register
def _remove_temp_files() -> None:
    with _temp_files_lock:
        for name, _ in _temp_files.values():
            if not name.startswith("/proc/self/fd/"):  # memfds go with the process
                with contextlib.suppress(OSError):  # gone already, or not ours now
                    Path(name).unlink()
        _temp_files.clear()


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return type(exc).__name__


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every known secret and any ``Bearer``/``Basic`` value blanked."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, _REDACTED)
    return _AUTH_VALUE.sub(lambda m: f"{m.group(1)} {_REDACTED}", text)


def _config_error(label: str, exc: BaseException, secrets: Iterable[str]) -> ConfigError:
    """Wrap anything the library raised while loading into a redacted ConfigError.

    Callers catch ``Exception`` on purpose: for a malformed kubeconfig the library raises
    ConfigException, ValueError, KeyError, AssertionError, ImportError (a missing
    google-auth) or OSError, and each means the same thing to our caller.
    """
    if isinstance(exc, ConfigError):
        return exc
    reason = _os_reason(exc) if isinstance(exc, OSError) else (str(exc) or type(exc).__name__)
    if isinstance(exc, FileNotFoundError) and exc.filename:
        reason = f"{exc.filename}: not found (a file, or an exec plugin command on PATH)"
    elif isinstance(exc, binascii.Error):
        reason = (
            "a *-data value (certificate-authority-data, client-certificate-data or "
            f"client-key-data) is not valid base64 ({exc})"
        )
    reason = _redact(reason, secrets)
    if len(reason) > 500:
        reason = reason[:500] + "…"
    return ConfigError(f"{label}: {reason}")
