"""Loading cluster configuration: broken kubeconfigs, merging, exec plugins, TLS, tokens.

The happy paths talk to a real loopback server (plain http with a token, and https with
a client certificate) so the whole chain kubeconfig → ClusterConfig → SSL context →
request headers is exercised, not just the parsing.

Plain kubeconfigs (no exec plugin, no auth provider) are read by asyncpod itself, so
that connecting does not import kubernetes_asyncio; each is also loaded by the library's
loader, and both must agree field for field and message for message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from asyncpod.errors import ConfigError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.config import (
    ClusterConfig,
    StaticToken,
    _load_with_library,
    _read_and_merge,
    _select_context,
    build_ssl_context,
    config_source,
    load_config,
    load_incluster,
    load_kubeconfig,
)
from asyncpod.testing.pki import Pki, make_pki
from tests.unit.kube.fakeapi import TOKEN, FakeApiServer, reply

PODS = "/api/v1/namespaces/ns/pods"
SECRET_PASSWORD = "hunter2-password-xyz"


def kubeconfig(
    server: str = "http://127.0.0.1:1",
    *,
    user: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
    current: str | None = "dev",
    extra_contexts: tuple[str, ...] = (),
) -> dict[str, Any]:
    contexts = [
        {"name": name, "context": {"cluster": "c", "user": "u", "namespace": "team-a"}}
        for name in ("dev", *extra_contexts)
    ]
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": "u", "user": user if user is not None else {"token": TOKEN}}],
        "contexts": contexts,
    }
    if current:
        doc["current-context"] = current
    return doc


def write(path: Path, doc: Any) -> Path:
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
    return path


def assert_no_secrets(error: BaseException) -> None:
    text = f"{error} {error!r}"
    assert TOKEN not in text
    assert SECRET_PASSWORD not in text


# ----------------------------------------------------------------------------- broken files


async def test_missing_kubeconfig_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml does not exist"):
        await load_kubeconfig(tmp_path / "missing.yaml")


async def test_no_kubeconfig_anywhere_says_what_was_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="no kubeconfig found") as caught:
        await load_kubeconfig()
    assert str(tmp_path / "nope") in str(caught.value)


async def test_unknown_context_lists_the_available_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "config", kubeconfig(extra_contexts=("prod",)))

    with pytest.raises(ConfigError) as caught:
        await load_kubeconfig(path, context="staging")

    message = str(caught.value)
    assert "'staging'" in message
    assert "available: dev, prod" in message
    assert_no_secrets(caught.value)


async def test_no_current_context_asks_for_one(tmp_path: Path) -> None:
    path = write(tmp_path / "config", kubeconfig(current=None))

    with pytest.raises(ConfigError, match="no current-context; pass context="):
        await load_kubeconfig(path)
    assert (await load_kubeconfig(path, context="dev")).context == "dev"


async def test_invalid_yaml_reports_position_not_content(tmp_path: Path) -> None:
    # The broken line holds the token; PyYAML's own message would quote it.
    path = write(
        tmp_path / "config",
        f"users:\n- name: u\n  user:\n    token: {TOKEN}: {SECRET_PASSWORD}\n",
    )

    with pytest.raises(ConfigError, match="not valid YAML") as caught:
        await load_kubeconfig(path)

    assert "line 4" in str(caught.value)
    assert_no_secrets(caught.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8"),
        ("- just\n- a list\n", "found a YAML list"),
        ("hello world\n", "found a YAML str"),
        ("clusters: {c: 1}\n", "clusters must be a list"),
        ("users:\n- user: {token: x}\n", r"users\[0\] has no name"),
    ],
)
async def test_garbage_files_are_config_errors(
    tmp_path: Path, content: bytes | str, expected: str
) -> None:
    path = tmp_path / "config"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)

    with pytest.raises(ConfigError, match=expected):
        await load_kubeconfig(path)


async def test_context_pointing_at_a_missing_cluster_or_user(tmp_path: Path) -> None:
    doc = kubeconfig()
    doc["contexts"][0]["context"]["cluster"] = "elsewhere"
    with pytest.raises(ConfigError, match=r"cluster 'elsewhere'.*not defined"):
        await load_kubeconfig(write(tmp_path / "a", doc))

    doc = kubeconfig()
    doc["contexts"][0]["context"]["user"] = "ghost"
    with pytest.raises(ConfigError, match=r"user 'ghost'.*not defined"):
        await load_kubeconfig(write(tmp_path / "b", doc))


async def test_missing_certificate_file_is_named(tmp_path: Path) -> None:
    doc = kubeconfig(
        "https://127.0.0.1:6443",
        user={"client-certificate": "certs/me.crt", "client-key": "certs/me.key"},
    )
    path = write(tmp_path / "config", doc)

    with pytest.raises(ConfigError) as caught:
        await load_kubeconfig(path)

    # Relative paths resolve next to the kubeconfig, and the message says which file.
    assert str(tmp_path / "certs" / "me.crt") in str(caught.value)


async def test_unreadable_certificate_content_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "me.crt").write_text("-----BEGIN CERTIFICATE-----\nnot base64!\n")
    (tmp_path / "me.key").write_text(f"-----BEGIN PRIVATE KEY-----\n{SECRET_PASSWORD}\n")
    doc = kubeconfig(
        "https://127.0.0.1:6443", user={"client-certificate": "me.crt", "client-key": "me.key"}
    )
    config = await load_kubeconfig(write(tmp_path / "config", doc))

    with pytest.raises(ConfigError, match="client certificate/key") as caught:
        await KubeClient.from_config(config)

    assert_no_secrets(caught.value)


async def test_bad_certificate_data_is_a_config_error(tmp_path: Path) -> None:
    doc = kubeconfig("https://127.0.0.1:6443", cluster={"certificate-authority-data": "abc"})
    with pytest.raises(ConfigError, match="not valid base64"):
        await load_kubeconfig(write(tmp_path / "a", doc))

    # Decodes (to nothing useful), so it only fails when the TLS context is built.
    doc = kubeconfig("https://127.0.0.1:6443", cluster={"certificate-authority-data": "%%%%"})
    config = await load_kubeconfig(write(tmp_path / "b", doc))
    with pytest.raises(ConfigError, match="certificate-authority"):
        await KubeClient.from_config(config)


async def test_basic_auth_password_never_appears_in_errors(tmp_path: Path) -> None:
    doc = kubeconfig(user={"username": "admin", "password": SECRET_PASSWORD})
    doc["contexts"][0]["context"]["cluster"] = "missing"

    with pytest.raises(ConfigError) as caught:
        await load_kubeconfig(write(tmp_path / "config", doc))
    assert_no_secrets(caught.value)


def test_cluster_config_validates_the_server_url() -> None:
    with pytest.raises(ConfigError, match="http:// or https://"):
        ClusterConfig("127.0.0.1:6443")
    with pytest.raises(ConfigError, match="empty"):
        StaticToken(" ")


# ----------------------------------------------------------------------------- merging


async def test_kubeconfig_env_merges_files_first_one_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = kubeconfig("http://first:1", current="dev")
    second = kubeconfig("http://second:2", current="other", extra_contexts=("other",))
    second["users"][0]["user"] = {"token": "second-token"}
    paths = [
        write(tmp_path / "one", first),
        tmp_path / "does-not-exist",  # skipped, like kubectl
        write(tmp_path / "two", second),
    ]
    monkeypatch.setenv("KUBECONFIG", ":".join(str(p) for p in paths))

    config = await load_kubeconfig()

    assert config.context == "dev"  # the first current-context wins
    assert config.server == "http://first:1"  # and the first definition of cluster "c"
    assert config.namespace == "team-a"
    assert config.credentials is not None
    assert await config.credentials.authorization() == f"Bearer {TOKEN}"
    # A context only the second file defines is usable.
    assert (await load_kubeconfig(context="other")).context == "other"


# ----------------------------------------------------------------------------- auth plumbing


async def test_kubeconfig_token_reaches_the_server(tmp_path: Path, api: FakeApiServer) -> None:
    api.on("GET", PODS, reply({"items": []}))
    path = write(tmp_path / "config", kubeconfig(api.url))

    async with await KubeClient.from_kubeconfig(str(path), qps=None) as client:
        assert await client.request("GET", PODS) == {"items": []}
        assert client.config.namespace == "team-a"

    (seen,) = api.seen()
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_token_file_is_reread_after_a_401(tmp_path: Path, api: FakeApiServer) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first-token")

    async def check(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != "Bearer rotated-token":
            return web.Response(status=401, text="Unauthorized")
        return web.json_response({"ok": True})

    api.on("GET", PODS, check)
    path = write(tmp_path / "config", kubeconfig(api.url, user={"tokenFile": str(token_file)}))

    async with await KubeClient.from_kubeconfig(str(path), qps=None) as client:
        token_file.write_text("rotated-token")  # the file was rotated behind our back
        assert await client.request("GET", PODS) == {"ok": True}
        assert client.statistics().auth_refreshes == 1

    assert [r.headers["Authorization"] for r in api.seen()] == [
        "Bearer first-token",
        "Bearer rotated-token",
    ]


EXEC_PLUGIN = textwrap.dedent(
    """
    import datetime, json, os, sys
    calls, expires_in = sys.argv[1], float(sys.argv[2])
    with open(calls, "a") as f:
        f.write("x")
    n = len(open(calls).read())
    if expires_in < 0:
        sys.stderr.write("login expired for " + os.environ["PLUGIN_SECRET"] + "\\n")
        sys.exit(3)
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=expires_in)
    print(json.dumps({
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {"token": f"exec-token-{n}",
                   "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }))
    """
)


def exec_user(tmp_path: Path, expires_in: float) -> dict[str, Any]:
    script = tmp_path / "plugin.py"
    script.write_text(EXEC_PLUGIN)
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": [str(script), str(tmp_path / "calls"), str(expires_in)],
            "env": [{"name": "PLUGIN_SECRET", "value": SECRET_PASSWORD}],
        }
    }


def plugin_calls(tmp_path: Path) -> int:
    return len((tmp_path / "calls").read_text())


async def test_exec_plugin_token_is_cached_until_near_expiry(
    tmp_path: Path, api: FakeApiServer
) -> None:
    api.on("GET", PODS, reply({}))
    path = write(tmp_path / "config", kubeconfig(api.url, user=exec_user(tmp_path, 3600)))

    async with await KubeClient.from_kubeconfig(str(path), qps=None) as client:
        for _ in range(3):
            await client.request("GET", PODS)

    assert plugin_calls(tmp_path) == 1
    assert {r.headers["Authorization"] for r in api.seen()} == {"Bearer exec-token-1"}


async def test_exec_plugin_token_is_refreshed_when_expiring(tmp_path: Path) -> None:
    # Expires in 30 s: inside the 60 s safety margin, so every use refreshes it.
    path = write(tmp_path / "config", kubeconfig(user=exec_user(tmp_path, 30)))
    config = await load_kubeconfig(path)
    assert config.credentials is not None

    assert await config.credentials.authorization() == "Bearer exec-token-2"
    assert await config.credentials.authorization() == "Bearer exec-token-3"
    assert await config.credentials.invalidate()  # a 401 forces a new one as well
    assert await config.credentials.authorization() == "Bearer exec-token-5"


async def test_failing_exec_plugin_is_a_redacted_config_error(tmp_path: Path) -> None:
    path = write(tmp_path / "config", kubeconfig(user=exec_user(tmp_path, -1)))

    with pytest.raises(ConfigError, match="login expired for <redacted>") as caught:
        await load_kubeconfig(path)

    assert_no_secrets(caught.value)


async def test_missing_exec_plugin_command(tmp_path: Path) -> None:
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "definitely-not-a-real-plugin",
        }
    }
    path = write(tmp_path / "config", kubeconfig(user=user))

    with pytest.raises(ConfigError, match="definitely-not-a-real-plugin"):
        await load_kubeconfig(path)


# ----------------------------------------------------------------------------- in-cluster


async def test_incluster_reads_the_service_account(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "namespace").write_text("jobs\n")

    config = await load_incluster(
        token_file=str(tmp_path / "token"),
        ca_file=str(tmp_path / "ca.crt"),
        namespace_file=str(tmp_path / "namespace"),
        environ={"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
    )

    assert config.server == "https://10.96.0.1:443"
    assert config.ca_file == str(tmp_path / "ca.crt")
    assert config.namespace == "jobs"
    assert config.credentials is not None
    assert await config.credentials.authorization() == "Bearer sa-token"


async def test_incluster_outside_a_pod_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not running in a pod"):
        await load_incluster(environ={})
    with pytest.raises(ConfigError, match="token"):
        await load_incluster(
            token_file=str(tmp_path / "missing"),
            environ={"KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"},
        )


# ----------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def tls_api(pki: Pki) -> AsyncIterator[FakeApiServer]:
    """The fake API server on https, requiring a client certificate from our CA."""
    server = FakeApiServer()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.serving_cert), str(pki.serving_key))
    context.verify_mode = ssl.CERT_REQUIRED
    test_server = TestServer(server.app)
    await test_server.start_server(ssl=context)
    server.url = f"https://127.0.0.1:{test_server.port}"
    try:
        yield server
    finally:
        await test_server.close()


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


async def test_client_certificate_and_ca_data_over_tls(
    tmp_path: Path, pki: Pki, tls_api: FakeApiServer
) -> None:
    tls_api.on("GET", PODS, reply({"items": []}))
    doc = kubeconfig(
        tls_api.url,
        cluster={"certificate-authority-data": b64(pki.ca_cert)},
        user={
            "client-certificate-data": b64(pki.admin.cert),
            "client-key-data": b64(pki.admin.key),
        },
    )
    path = write(tmp_path / "config", doc)

    async with await KubeClient.from_kubeconfig(str(path), qps=None) as client:
        assert await client.request("GET", PODS) == {"items": []}
        assert client.config.credentials is None  # certificates only, no token

    assert "Authorization" not in tls_api.seen()[0].headers


async def test_wrong_ca_is_a_config_error_not_retried(
    tmp_path: Path, tls_api: FakeApiServer
) -> None:
    other = make_pki(tmp_path)
    config = ClusterConfig(tls_api.url, ca_file=str(other.ca_cert))

    async with await KubeClient.from_config(config, qps=None) as client:
        with pytest.raises(ConfigError, match="TLS verification"):
            await client.request("GET", PODS)
        assert client.statistics().requests_sent == {"GET": 1}


def test_ssl_context_honours_insecure_skip_verify(pki: Pki) -> None:
    config = ClusterConfig("https://127.0.0.1:1", verify_tls=False)
    context = build_ssl_context(config)
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE
    assert build_ssl_context(ClusterConfig("http://127.0.0.1:1")) is None


# ----------------------------------------------------------------------------- which source


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home directory (no ~/.kube/config) for the auto-detection rule."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


IN_POD = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def test_source_in_a_pod_without_kubeconfig_is_in_cluster(home: Path) -> None:
    assert config_source(environ=IN_POD) == "in-cluster"


def test_source_outside_a_pod_without_kubeconfig_is_kubeconfig(home: Path) -> None:
    # Its loader then says what is missing, naming both ways.
    assert config_source(environ={}) == "kubeconfig"


def test_source_prefers_a_home_kubeconfig_even_in_a_pod(home: Path) -> None:
    (home / ".kube").mkdir()
    write(home / ".kube" / "config", kubeconfig())

    assert config_source(environ=IN_POD) == "kubeconfig"


def test_source_prefers_kubeconfig_env_even_in_a_pod(home: Path) -> None:
    assert config_source(environ={**IN_POD, "KUBECONFIG": "/x/config"}) == "kubeconfig"
    # An empty KUBECONFIG names nothing.
    assert config_source(environ={**IN_POD, "KUBECONFIG": ""}) == "in-cluster"


@pytest.mark.parametrize(
    "explicit", [{"kubeconfig": "/x"}, {"context": "dev"}, {"in_cluster": False}]
)
def test_source_explicit_kubeconfig_choices_win(home: Path, explicit: dict[str, Any]) -> None:
    assert config_source(environ=IN_POD, **explicit) == "kubeconfig"


def test_source_in_cluster_true_wins_and_refuses_a_kubeconfig(home: Path) -> None:
    assert config_source(in_cluster=True, environ={"KUBECONFIG": "/x"}) == "in-cluster"
    with pytest.raises(ConfigError, match="cannot be combined"):
        config_source("/x/config", in_cluster=True)


def test_no_home_directory_is_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(Path, "expanduser", _no_home)

    assert config_source(environ=IN_POD) == "in-cluster"


def _no_home(self: Path) -> Path:
    raise RuntimeError("Could not determine home directory.")


async def test_load_config_follows_the_source(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(write(tmp_path / "k.yaml", kubeconfig())))

    config = await load_config()

    assert config.context == "dev"
    assert config.namespace == "team-a"


async def test_load_config_outside_a_pod_names_both_ways(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    with pytest.raises(ConfigError, match="no kubeconfig found") as caught:
        await load_config()
    assert "inside a pod" in str(caught.value)


async def test_a_token_refresh_that_fails_is_a_config_error() -> None:
    class Broken:
        def __init__(self) -> None:
            self.api_key = {"BearerToken": "x"}
            self.refresh_api_key_hook = None

        async def get_api_key_with_prefix(self, name: str) -> str:
            raise FileNotFoundError(2, "No such file", "/var/run/secrets/token")

    config = ClusterConfig.from_configuration(_configuration(Broken()))
    assert config.credentials is not None

    with pytest.raises(ConfigError, match="refreshing the bearer token failed"):
        await config.credentials.authorization()


def _configuration(stub: Any) -> Any:
    stub.host = "http://127.0.0.1:1"
    stub.ssl_ca_cert = stub.cert_file = stub.key_file = stub.tls_server_name = stub.proxy = None
    stub.verify_ssl = True
    return stub


# ----------------------------------------------------------------------------- plain kubeconfigs


async def by_library(path: Path) -> ClusterConfig:
    """``path`` loaded by kubernetes_asyncio's loader, as exec-plugin users' kubeconfigs are."""
    merged = _read_and_merge([path])
    selected = _select_context(merged, None)
    label = f"kubeconfig {merged.describe()}, context {selected.name!r}"
    return await _load_with_library(merged, selected, label=label, secrets=merged.secrets())


async def observed(config: ClusterConfig) -> dict[str, Any]:
    """What a connection uses from ``config``: temp files by their content, not their name."""

    credentials = config.credentials
    return {
        "server": config.server,
        "ca": file_bytes(config.ca_file),
        "cert": file_bytes(config.client_cert_file),
        "key": file_bytes(config.client_key_file),
        "verify_tls": config.verify_tls,
        "tls_server_name": config.tls_server_name,
        "proxy": config.proxy,
        "namespace": config.namespace,
        "context": config.context,
        "source": config.source,
        "authorization": None if credentials is None else await credentials.authorization(),
        "refreshes": None if credentials is None else await credentials.invalidate(),
    }


def file_bytes(name: str | None) -> bytes | None:
    return None if name is None else Path(name).read_bytes()


PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def plain_cases(tmp_path: Path) -> dict[str, dict[str, Any]]:
    (tmp_path / "certs").mkdir()
    for name in ("ca.crt", "me.crt", "me.key"):
        (tmp_path / "certs" / name).write_text(f"{name}\n{PEM}")
    (tmp_path / "token").write_text("file-token")
    data = base64.b64encode(PEM.encode()).decode()
    https = "https://127.0.0.1:6443/prefix/"
    return {
        "token": kubeconfig(),
        "no user fields": kubeconfig(user={}),
        "basic auth": kubeconfig(user={"username": "admin", "password": SECRET_PASSWORD}),
        "empty token falls back to basic auth": kubeconfig(
            user={"token": "", "tokenFile": "token", "username": "u", "password": "p"}
        ),
        "token before token file": kubeconfig(user={"token": TOKEN, "tokenFile": "token"}),
        "relative token file": kubeconfig(user={"tokenFile": "token"}),
        "http ignores certificates": kubeconfig(
            cluster={"certificate-authority": "nowhere.crt"},
            user={"client-certificate": "no.crt", "client-key-data": "!!", "token": TOKEN},
        ),
        "data": kubeconfig(
            https,
            cluster={"certificate-authority-data": data},
            user={"client-certificate-data": data, "client-key-data": data},
        ),
        "data before files, empty data is none": kubeconfig(
            https,
            cluster={"certificate-authority-data": "", "certificate-authority": "certs/ca.crt"},
            user={"client-certificate-data": data, "client-certificate": "nowhere"},
        ),
        "relative files": kubeconfig(
            https,
            cluster={"certificate-authority": "certs/ca.crt"},
            user={"client-certificate": "certs/../certs/me.crt", "client-key": "certs/me.key"},
        ),
        "tls options": kubeconfig(
            https,
            cluster={
                "insecure-skip-tls-verify": True,
                "tls-server-name": "kubernetes",
                "proxy-url": "http://proxy:3128",
            },
        ),
        "verify stays on": kubeconfig(https, cluster={"insecure-skip-tls-verify": False}),
    }


async def test_plain_kubeconfigs_read_as_the_library_reads_them(tmp_path: Path) -> None:
    for name, doc in plain_cases(tmp_path).items():
        path = write(tmp_path / "config", doc)
        ours = await observed(await load_kubeconfig(path))
        assert ours == await observed(await by_library(path)), name


def broken_cases(tmp_path: Path) -> dict[str, dict[str, Any]]:
    https = "https://127.0.0.1:6443"
    return {
        "missing CA file": kubeconfig(https, cluster={"certificate-authority": "ca.crt"}),
        "missing key file": kubeconfig(https, user={"client-key": "/nowhere/me.key"}),
        "missing token file": kubeconfig(user={"tokenFile": "token"}),
        "bad base64": kubeconfig(https, user={"client-certificate-data": "abc"}),
        "null token": kubeconfig(user={"token": None}),
        "null password": kubeconfig(user={"username": "u", "password": None}),
        "null CA": kubeconfig(https, cluster={"certificate-authority-data": None}),
        "null skip-verify": kubeconfig(cluster={"insecure-skip-tls-verify": None}),
        "key without certificate": kubeconfig(
            https, user={"client-key-data": base64.b64encode(b"key").decode()}
        ),
    }


async def test_broken_plain_kubeconfigs_fail_as_the_library_does(tmp_path: Path) -> None:
    for name, doc in broken_cases(tmp_path).items():
        path = write(tmp_path / "config", doc)
        with pytest.raises(ConfigError) as ours:
            await load_kubeconfig(path)
        with pytest.raises(ConfigError) as theirs:
            await by_library(path)
        assert str(ours.value) == str(theirs.value), name
        assert str(path) in str(ours.value), name


async def test_a_server_that_is_not_a_string_is_named(tmp_path: Path) -> None:
    # The library failed on it with a bare AssertionError.
    with pytest.raises(ConfigError, match=r"clusters\[name=c\]/cluster: server must be a URL"):
        await load_kubeconfig(write(tmp_path / "config", kubeconfig(6443)))  # type: ignore[arg-type]


async def test_token_file_whitespace_is_dropped(tmp_path: Path, api: FakeApiServer) -> None:
    # The library sent the newline too, which aiohttp refused to put in a header.
    api.on("GET", PODS, reply({}))
    (tmp_path / "token").write_text(f"  {TOKEN}\n")
    path = write(tmp_path / "config", kubeconfig(api.url, user={"tokenFile": "token"}))

    async with await KubeClient.from_kubeconfig(str(path), qps=None) as client:
        await client.request("GET", PODS)

    assert api.seen()[0].headers["Authorization"] == f"Bearer {TOKEN}"


async def test_a_token_file_gone_on_refresh_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("first-token")
    path = write(tmp_path / "config", kubeconfig(user={"tokenFile": "token"}))
    config = await load_kubeconfig(path)
    assert config.credentials is not None
    (tmp_path / "token").unlink()

    with pytest.raises(ConfigError, match="refreshing credentials failed") as caught:
        await config.credentials.invalidate()
    assert str(tmp_path / "token") in str(caught.value)
    assert "first-token" not in repr(config.credentials)


async def test_concurrent_401s_read_the_token_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_text("first-token")
    config = await load_kubeconfig(
        write(tmp_path / "config", kubeconfig(user={"tokenFile": "token"}))
    )
    credentials = config.credentials
    assert credentials is not None
    reads: list[str] = []
    read_text = Path.read_text

    def counting(self: Path, *args: Any, **kwargs: Any) -> str:
        reads.append(str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    (tmp_path / "token").write_text("rotated-token")

    assert await asyncio.gather(*(credentials.invalidate() for _ in range(5))) == [True] * 5
    assert reads == [str(tmp_path / "token")]
    assert await credentials.authorization() == "Bearer rotated-token"


async def test_client_files_resolve_next_to_the_file_defining_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As kubectl does; the library resolved them next to the cluster's file.
    (tmp_path / "users").mkdir()
    (tmp_path / "users" / "me.crt").write_text(PEM)
    (tmp_path / "users" / "token").write_text("user-file-token")
    clusters = kubeconfig("https://127.0.0.1:6443")
    del clusters["users"]
    users = {
        "users": [{"name": "u", "user": {"client-certificate": "me.crt", "tokenFile": "token"}}]
    }
    paths = [write(tmp_path / "config", clusters), write(tmp_path / "users" / "config", users)]
    monkeypatch.setenv("KUBECONFIG", ":".join(str(p) for p in paths))

    config = await load_kubeconfig()

    assert config.client_cert_file == str(tmp_path / "users" / "me.crt")
    assert config.credentials is not None
    assert await config.credentials.authorization() == "Bearer user-file-token"


async def test_https_context_without_a_user(tmp_path: Path, pki: Pki) -> None:
    doc = kubeconfig(
        "https://127.0.0.1:6443", cluster={"certificate-authority-data": b64(pki.ca_cert)}
    )
    del doc["contexts"][0]["context"]["user"]

    config = await load_kubeconfig(write(tmp_path / "config", doc))

    assert config.credentials is None
    assert config.client_cert_file is None
    assert file_bytes(config.ca_file) == pki.ca_cert.read_bytes()


async def test_data_temp_files_are_private_and_reused(tmp_path: Path) -> None:
    doc = kubeconfig("https://127.0.0.1:6443", user={"client-key-data": b64_text("a key")})
    doc["users"][0]["user"]["client-certificate-data"] = b64_text("a certificate")
    path = write(tmp_path / "config", doc)

    first, second = await load_kubeconfig(path), await load_kubeconfig(path)

    assert first.client_key_file is not None
    assert first.client_key_file == second.client_key_file  # one file per content
    assert file_bytes(first.client_key_file) == b"a key"
    if first.client_key_file.startswith("/proc/self/fd/"):  # reachable from this process only
        assert hasattr(os, "memfd_create")
    else:
        assert os.stat(first.client_key_file).st_mode & 0o077 == 0  # noqa: PTH116


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="Linux keeps them in memory")
async def test_data_files_leave_nothing_behind_even_when_the_process_is_killed(
    tmp_path: Path,
) -> None:
    doc = kubeconfig("https://127.0.0.1:6443", user={"client-key-data": b64_text("a key")})
    doc["users"][0]["user"]["client-certificate-data"] = b64_text("a certificate")
    path = write(tmp_path / "config", doc)
    temp = tmp_path / "temp"
    temp.mkdir()
    load_and_wait = (
        "import asyncio, sys, pathlib\n"
        "from asyncpod.kube.config import load_kubeconfig\n"
        "config = asyncio.run(load_kubeconfig(sys.argv[1]))\n"
        "print(pathlib.Path(config.client_key_file).read_text(), flush=True)\n"
        "sys.stdin.read()\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        load_and_wait,
        str(path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    assert process.stdout is not None
    assert (await process.stdout.readline()).strip() == b"a key"
    process.kill()  # SIGKILL: no atexit handler runs
    await process.wait()

    assert list(temp.iterdir()) == []


def b64_text(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# A fresh interpreter connects and reports which of kubernetes_asyncio's modules it loaded.
CONNECT = """
import asyncio, json, sys
from asyncpod.kube.client import KubeClient

async def main():
    async with await KubeClient.from_kubeconfig(sys.argv[1], qps=None) as client:
        return await client.request("GET", sys.argv[2])

answer = asyncio.run(main())
loaded = [m for m in sys.modules if m.partition(".")[0] == "kubernetes_asyncio"]
print(json.dumps({"answer": answer, "loaded": loaded}))
"""


async def connect_in_a_fresh_python(path: Path) -> tuple[Any, list[str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CONNECT,
        str(path),
        PODS,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    found = json.loads(stdout.decode().splitlines()[-1])
    return found["answer"], found["loaded"]


async def test_a_token_kubeconfig_connects_without_kubernetes_asyncio(
    tmp_path: Path, api: FakeApiServer
) -> None:
    api.on("GET", PODS, reply({"items": []}))
    path = write(tmp_path / "config", kubeconfig(api.url))

    assert await connect_in_a_fresh_python(path) == ({"items": []}, [])
    assert api.seen()[0].headers["Authorization"] == f"Bearer {TOKEN}"


async def test_a_client_certificate_kubeconfig_connects_without_kubernetes_asyncio(
    tmp_path: Path, pki: Pki, tls_api: FakeApiServer
) -> None:
    tls_api.on("GET", PODS, reply({"items": []}))
    (tmp_path / "ca.crt").write_bytes(pki.ca_cert.read_bytes())
    doc = kubeconfig(
        tls_api.url,
        cluster={"certificate-authority": "ca.crt"},
        user={
            "client-certificate-data": b64(pki.admin.cert),
            "client-key-data": b64(pki.admin.key),
        },
    )

    answer, loaded = await connect_in_a_fresh_python(write(tmp_path / "config", doc))

    assert (answer, loaded) == ({"items": []}, [])


async def test_an_exec_plugin_kubeconfig_connects_through_kubernetes_asyncio(
    tmp_path: Path, api: FakeApiServer
) -> None:
    api.on("GET", PODS, reply({"items": []}))
    path = write(tmp_path / "config", kubeconfig(api.url, user=exec_user(tmp_path, 3600)))

    answer, loaded = await connect_in_a_fresh_python(path)

    assert answer == {"items": []}
    assert "kubernetes_asyncio.config.kube_config" in loaded
    assert api.seen()[0].headers["Authorization"] == "Bearer exec-token-1"
