"""The informer's memory of pods that ended unfollowed, and its resourceVersion test."""

from __future__ import annotations

from typing import Any

from asyncpod.core.informer import PodInformer, RecentlyEnded


def _pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": f"uid-{name}"}, "status": {"phase": "Succeeded"}}


def test_an_entry_lives_keep_for_seconds() -> None:
    recent = RecentlyEnded(keep_for=10, capacity=100)
    recent.remember("a", _pod("a"), deleted=False, now=0.0)

    assert recent.recall("a", now=9.9) is not None
    assert recent.recall("a", now=10.0) is None
    assert len(recent) == 0


def test_the_oldest_goes_first_when_full_and_a_newer_sighting_renews() -> None:
    recent = RecentlyEnded(keep_for=100, capacity=2)
    recent.remember("a", _pod("a"), deleted=False, now=0.0)
    recent.remember("b", _pod("b"), deleted=False, now=1.0)
    recent.remember("a", _pod("a"), deleted=True, now=2.0)  # deleted since: newest now
    recent.remember("c", _pod("c"), deleted=False, now=3.0)

    assert recent.recall("b", now=3.0) is None
    entry = recent.recall("a", now=3.0)
    assert entry is not None
    assert entry.deleted
    assert recent.recall("c", now=3.0) is not None


def test_forget_and_a_zero_capacity() -> None:
    recent = RecentlyEnded(keep_for=100, capacity=0)
    recent.remember("a", _pod("a"), deleted=False, now=0.0)
    assert recent.recall("a", now=0.0) is None

    kept = RecentlyEnded(keep_for=100, capacity=5)
    kept.remember("a", _pod("a"), deleted=False, now=0.0)
    assert kept.forget("a") is not None
    assert kept.forget("a") is None


def test_has_seen_compares_integer_versions_and_refuses_opaque_ones() -> None:
    informer = PodInformer(client=None, namespace="ns")  # type: ignore[arg-type]
    informer._advance("120")

    assert informer.has_seen("119") is True
    assert informer.has_seen("120") is True
    assert informer.has_seen("1000") is False  # "1000" > "120" as numbers, not as text
    assert informer.has_seen("opaque-v1") is None


def test_a_deleted_pod_is_kept_as_its_identity_only() -> None:
    recent = RecentlyEnded(keep_for=100, capacity=5)
    pod = {**_pod("a"), "spec": {"containers": [{"name": "main"}]}}
    pod["metadata"]["namespace"] = "ns"
    recent.remember("a", pod, deleted=True, now=0.0)

    entry = recent.recall("a", now=0.0)
    assert entry is not None
    assert entry.pod == {"metadata": {"name": "a", "namespace": "ns", "uid": "uid-a"}}
