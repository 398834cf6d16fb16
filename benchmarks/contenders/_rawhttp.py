"""The least a client can do: aiohttp, a bearer token, orjson, no library logic.

Why: the raw reference contender is built from this, and so is the "operator" side of
the two Airflow-trigger contenders (in Airflow the worker creates the pod before the
task defers, and deletes it when the task resumes), so that what those contenders add
on top is the trigger's alone. Only the kubeconfig shape written by
:func:`asyncpod.testing.rbac.service_account_kubeconfig` is understood: one cluster with
inline CA data, one user with a token.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

__all__ = ["Endpoint", "RawPods"]


@dataclass(frozen=True)
class Endpoint:
    server: str
    token: str
    ssl_context: ssl.SSLContext

    @classmethod
    def from_kubeconfig(cls, path: str) -> Endpoint:
        config = yaml.safe_load(Path(path).read_text())
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        context = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
        return cls(server=cluster["server"], token=user["token"], ssl_context=context)


class RawPods:
    """POST, DELETE and WATCH pods of one namespace over one aiohttp session."""

    def __init__(self, endpoint: Endpoint, namespace: str, *, pool: int = 100) -> None:
        self.endpoint = endpoint
        self.url = f"{endpoint.server}/api/v1/namespaces/{namespace}/pods"
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool, ssl=endpoint.ssl_context),
            headers={"Authorization": f"Bearer {endpoint.token}"},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        )
        self.sent: dict[str, int] = {}

    async def aclose(self) -> None:
        await self.session.close()

    def _count(self, verb: str) -> None:
        self.sent[verb] = self.sent.get(verb, 0) + 1

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self._count("POST")
        async with self.session.post(
            self.url, data=orjson.dumps(manifest), headers={"Content-Type": "application/json"}
        ) as response:
            body = await response.read()
            if response.status != 201:
                raise RuntimeError(f"POST {response.status}: {body[:200]!r}")
            return orjson.loads(body)  # type: ignore[no-any-return]

    async def delete(self, name: str) -> None:
        """Delete one pod; a 404 (already gone) is fine."""
        self._count("DELETE")
        async with self.session.delete(f"{self.url}/{name}") as response:
            body = await response.read()
            if response.status not in (200, 202, 404):
                raise RuntimeError(f"DELETE {response.status}: {body[:200]!r}")

    def watch(self, session: aiohttp.ClientSession, version: str | None = None) -> Any:
        """The namespace's pod watch (a streaming response context): from ``version``, or now."""
        self._count("WATCH")
        params = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": "3600"}
        if version:
            params["resourceVersion"] = version
        return session.get(self.url, params=params)

    def stream_session(self) -> aiohttp.ClientSession:
        """A session of its own for one long-lived stream, so it never waits for the pool."""
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1, ssl=self.endpoint.ssl_context),
            headers={"Authorization": f"Bearer {self.endpoint.token}"},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            read_bufsize=2**21,
        )
