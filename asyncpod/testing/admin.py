"""A small synchronous admin client for test setup, built from a kubeconfig.

Why not asyncpod's own client: test setup (namespaces, RBAC, kwok Logs objects,
fixtures' checks) must not depend on the code under test, and pytest fixtures have no
event loop. Why not kubernetes_asyncio: it is async too, and setup is not a hot path.

It understands what the local control plane and kind write: a server URL, CA data or
file, client certificate data or files, or a bearer token. Exec plugins and auth
providers are out of scope here (the library's own client handles those).
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["AdminClient", "AdminRequestError"]


class AdminRequestError(RuntimeError):
    """A setup request failed; ``status`` is the HTTP code (0 when none came back)."""

    def __init__(self, message: str, *, status: int) -> None:
        self.status = status
        super().__init__(message)


@dataclass
class AdminClient:
    """JSON requests against one API server with fixed credentials."""

    server: str
    ssl_context: ssl.SSLContext | None = None
    token: str | None = None
    _headers: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_kubeconfig(cls, path: Path, *, context: str | None = None) -> AdminClient:
        config = yaml.safe_load(path.read_text())
        name = context or config.get("current-context")
        contexts = {c["name"]: c["context"] for c in config.get("contexts", [])}
        if name not in contexts:
            raise AdminRequestError(f"{path}: no context {name!r}", status=0)
        ctx = contexts[name]
        cluster = {c["name"]: c["cluster"] for c in config["clusters"]}[ctx["cluster"]]
        user = {u["name"]: u["user"] for u in config.get("users", [])}.get(ctx.get("user"), {})
        server = cluster["server"].rstrip("/")
        context_ssl: ssl.SSLContext | None = None
        if server.startswith("https://"):
            context_ssl = ssl.create_default_context()
            if cluster.get("insecure-skip-tls-verify"):
                context_ssl.check_hostname = False
                context_ssl.verify_mode = ssl.CERT_NONE
            elif "certificate-authority-data" in cluster:
                ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
                context_ssl.load_verify_locations(cadata=ca)
            elif "certificate-authority" in cluster:
                context_ssl.load_verify_locations(cafile=cluster["certificate-authority"])
            _load_client_certificate(context_ssl, user)
        return cls(server=server, ssl_context=context_ssl, token=user.get("token"))

    def request(self, method: str, path: str, body: Any = None, *, raw: bool = False) -> Any:
        """One request; JSON in and out (``raw=True`` returns the body as text)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if body is not None:
            content_type = "application/json"
            if method == "PATCH":
                content_type = "application/merge-patch+json"
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(  # noqa: S310 - the cluster under test
            self.server + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, context=self.ssl_context, timeout=30
            ) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:500]
            raise AdminRequestError(
                f"{method} {path}: HTTP {error.code}: {detail}", status=error.code
            ) from None
        except (urllib.error.URLError, OSError) as error:
            raise AdminRequestError(f"{method} {path}: {error}", status=0) from None
        if raw:
            return payload.decode()
        return json.loads(payload) if payload else None

    def create_namespace(self, name: str, *, timeout: float = 60.0, grace: float = 5.0) -> None:
        """Create ``name`` and make sure its default ServiceAccount exists.

        The ServiceAccount admission plugin rejects pods in a namespace until the
        controller-manager has created that account. Right after the API server was
        restarted (or etcd compacted) the controller relists with a backoff and can
        lag by tens of seconds; after ``grace`` seconds we create the account
        ourselves, exactly as the controller would (its later attempt gets 409).
        """
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        self.request("POST", "/api/v1/namespaces", namespace)
        path = f"/api/v1/namespaces/{name}/serviceaccounts"
        try:
            self.wait_for(f"{path}/default", timeout=grace)
            return
        except AdminRequestError as error:
            if error.status != 404:
                raise
        try:
            self.request("POST", path, {"metadata": {"name": "default"}})
        except AdminRequestError as error:
            if error.status != 409:
                raise
        self.wait_for(f"{path}/default", timeout=timeout)

    def delete_namespace(self, name: str) -> None:
        try:
            self.request("DELETE", f"/api/v1/namespaces/{name}")
        except AdminRequestError as error:
            if error.status != 404:
                raise

    def wait_for(self, path: str, *, timeout: float = 60.0) -> Any:
        """GET ``path`` until it exists (404s are retried); return the object."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.request("GET", path)
            except AdminRequestError as error:
                if error.status != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(0.1)


def _load_client_certificate(context: ssl.SSLContext, user: dict[str, Any]) -> None:
    """Load the user's client certificate and key, given inline (``-data``) or as files.

    ssl only loads key material from files, so inline data goes through a private
    temporary directory that is removed as soon as the context has read it.
    """
    with tempfile.TemporaryDirectory(prefix="asyncpod-admin-") as scratch:
        paths: list[str] = []
        for key in ("client-certificate", "client-key"):
            if f"{key}-data" in user:
                target = Path(scratch) / key
                target.write_bytes(base64.b64decode(user[f"{key}-data"]))
                target.chmod(0o600)
                paths.append(str(target))
            elif key in user:
                paths.append(str(user[key]))
        if len(paths) == 2:
            context.load_cert_chain(paths[0], paths[1])
