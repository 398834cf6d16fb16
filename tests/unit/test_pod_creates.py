"""The CLI tests' count of POST pods: a 504 (a client gone mid-create) may have stored a pod."""

from __future__ import annotations

from tests.cli.helpers import PodCreates, count_pod_creates


def sample(
    count: int, *, code: str, resource: str = "pods", subresource: str = "", dry_run: str = ""
) -> str:
    labels = (
        f'code="{code}",component="apiserver",dry_run="{dry_run}",group="",resource="{resource}",'
        f'scope="resource",subresource="{subresource}",verb="POST",version="v1"'
    )
    return f"apiserver_request_total{{{labels}}} {count}"


METRICS = "\n".join(
    [
        "# HELP apiserver_request_total Counter of apiserver requests",
        sample(600, code="201"),
        sample(3, code="201", dry_run="All"),  # the batch's preflight stores nothing
        sample(1, code="504"),  # the client went away mid-create
        sample(7, code="409"),
        sample(600, code="201", subresource="binding"),
        sample(2, code="201", resource="configmaps"),
    ]
)


def test_counts_201_as_certain_and_5xx_as_unsure_and_nothing_else() -> None:
    assert count_pod_creates(METRICS) == PodCreates(certain=600, unsure=1)


def test_allows_the_expected_count_only_within_the_unsure_creates() -> None:
    created = count_pod_creates(METRICS) - PodCreates(certain=0, unsure=0)
    assert created.allow(600)
    assert created.allow(601)
    assert not created.allow(599)  # every 201 is a pod made
    assert not created.allow(602)
    assert PodCreates(certain=5, unsure=0).allow(5)
    assert not PodCreates(certain=5, unsure=0).allow(6)


def test_two_servers_counts_add_up() -> None:
    both = PodCreates(certain=20, unsure=1) + PodCreates(certain=19, unsure=0)
    assert both == PodCreates(certain=39, unsure=1)
    assert both.allow(40)
    assert not both.allow(41)
