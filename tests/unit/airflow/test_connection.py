"""The kubernetes connection's extras → KubeTarget (pure), and the inline kubeconfig loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncpod.airflow.connection import KubeTarget, open_client, target_from_extras
from asyncpod.errors import ConfigError


def test_empty_extras_mean_auto_detection() -> None:
    assert target_from_extras({}) == KubeTarget()


def test_every_extra_is_read() -> None:
    target = target_from_extras(
        {
            "kube_config_path": "/etc/kube/config",
            "namespace": "jobs",
            "cluster_context": "prod",
            "disable_verify_ssl": True,
        }
    )
    assert target == KubeTarget(
        config_file="/etc/kube/config", context="prod", namespace="jobs", verify_ssl=False
    )


def test_old_prefixed_extras_are_read() -> None:
    target = target_from_extras(
        {
            "extra__kubernetes__in_cluster": "True",
            "extra__kubernetes__namespace": "old",
            "extra__kubernetes__disable_verify_ssl": "false",
        }
    )
    assert target.in_cluster is True
    assert target.namespace == "old"
    assert target.verify_ssl is True


def test_unprefixed_wins_over_prefixed() -> None:
    target = target_from_extras({"namespace": "new", "extra__kubernetes__namespace": "old"})
    assert target.namespace == "new"


def test_operator_settings_win_over_the_connection() -> None:
    target = target_from_extras(
        {"kube_config_path": "/conn", "cluster_context": "conn-ctx", "in_cluster": False},
        config_file="/op",
        cluster_context="op-ctx",
    )
    assert (target.config_file, target.context) == ("/op", "op-ctx")


def test_inline_kube_config_as_json_text_or_dict() -> None:
    doc = {"apiVersion": "v1", "clusters": []}
    assert target_from_extras({"kube_config": json.dumps(doc)}).kube_config == doc
    assert target_from_extras({"kube_config": doc}).kube_config == doc


def test_inline_kube_config_is_hidden_from_repr_and_identity() -> None:
    target = target_from_extras({"kube_config": {"users": [{"user": {"token": "s3cret"}}]}})
    assert "s3cret" not in repr(target)
    assert "s3cret" not in repr(target.identity())


@pytest.mark.parametrize(
    "extras",
    [
        {"in_cluster": True, "kube_config_path": "/x"},
        {"kube_config_path": "/x", "kube_config": "{}"},
        {"in_cluster": "true", "kube_config": {"a": 1}},
    ],
)
def test_exclusive_sources_are_rejected_by_name(extras: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="exclude each other"):
        target_from_extras(extras)


def test_bad_json_and_bad_flags_name_the_extra() -> None:
    with pytest.raises(ConfigError, match="'kube_config' is not valid JSON"):
        target_from_extras({"kube_config": "{nope"})
    with pytest.raises(ConfigError, match="'disable_verify_ssl'"):
        target_from_extras({"disable_verify_ssl": "maybe"})


def test_identity_separates_clusters_and_joins_equal_ones() -> None:
    a = target_from_extras({"kube_config_path": "/a"})
    assert a.identity() == target_from_extras({"kube_config_path": "/a"}).identity()
    assert a.identity() != target_from_extras({"kube_config_path": "/b"}).identity()
    assert (
        a.identity()
        != target_from_extras({"kube_config_path": "/a"}, cluster_context="x").identity()
    )


async def test_inline_kubeconfig_loads_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "ns1"}}],
        "current-context": "x",
    }
    client = await open_client(KubeTarget(kube_config=doc, verify_ssl=False))
    try:
        assert client.config.server == "http://127.0.0.1:1"
        assert client.config.namespace == "ns1"
        assert client.config.verify_tls is False
    finally:
        await client.aclose()
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - a test's one look at a temp dir
