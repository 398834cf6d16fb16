"""``asyncpod batch`` over several clusters: the options, and what a bad one says."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from asyncpod.cli.fleetoptions import ClusterChoice, cluster_choices, parse_weighted
from asyncpod.cli.main import main
from asyncpod.cli.resultsfile import ResultsWriter, read_results
from asyncpod.errors import UsageError
from asyncpod.results import Outcome, PodResult


def test_several_contexts_are_clusters_named_by_context_with_weights() -> None:
    assert cluster_choices(["k.yaml"], ["east=3", "west"]) == (
        ClusterChoice("east", "k.yaml", "east", 3),
        ClusterChoice("west", "k.yaml", "west", 1),
    )


def test_several_kubeconfigs_are_clusters_named_by_path() -> None:
    assert cluster_choices(["a.yaml=2", "/x/b.yaml"], ["prod"]) == (
        ClusterChoice("a.yaml", "a.yaml", "prod", 2),
        ClusterChoice("/x/b.yaml", "/x/b.yaml", "prod", 1),
    )


def test_one_cluster_is_the_plain_batch() -> None:
    assert cluster_choices([], []) == (ClusterChoice("default", None, None),)
    assert cluster_choices(["k.yaml"], ["east"]) == (ClusterChoice("east", "k.yaml", "east"),)


@pytest.mark.parametrize(
    ("kubeconfigs", "contexts", "named"),
    [
        ([], ["east=0", "west"], "'east=0'"),
        ([], ["east=-1", "west"], "'east=-1'"),
        ([], ["east=x", "west"], "'x'"),
        ([], ["=3", "west"], "'=3'"),
        ([], ["east", "east=2"], "'east' is given twice"),
        (["a", "b"], ["x", "y"], "several --kubeconfig and several --context"),
    ],
)
def test_bad_cluster_choices_name_what_is_wrong(
    kubeconfigs: list[str], contexts: list[str], named: str
) -> None:
    with pytest.raises(UsageError, match=named):
        cluster_choices(kubeconfigs, contexts)


def test_parse_weighted() -> None:
    assert parse_weighted("a=b=2", option="--context") == ("a=b", 2)
    assert parse_weighted("a", option="--context") == ("a", 1)


KUBECONFIG = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Config
    clusters:
    - name: c
      cluster: {server: "https://127.0.0.1:9"}
    users:
    - name: u
      user: {token: t}
    contexts:
    - name: east
      context: {cluster: c, user: u}
    - name: west
      context: {cluster: c, user: u}
    current-context: east
    """
)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    batch = tmp_path / "jobs.yaml"
    batch.write_text("- image: busybox:1.36\n- image: busybox:1.36\n")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    return batch, kubeconfig


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--context", "east", "--context", "nowhere"], "'nowhere'"),
        (["--context", "east=2", "--context", "west=zero"], "'zero'"),
        (["--context", "east", "--context", "west", "--max-in-flight", "1"], "max_in_flight 1"),
        (["--context", "east", "--context", "west", "--cluster-lost-after", "0"], "positive"),
    ],
)
def test_bad_clusters_are_usage_errors_before_anything_is_created(
    files: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    said: str,
) -> None:
    batch, kubeconfig = files
    results = tmp_path / "r.jsonl"
    argv = ["batch", str(batch), "--kubeconfig", str(kubeconfig), "--results", str(results)]
    code = main([*argv, "--progress", "none", *extra])
    assert code == 2
    assert said in capsys.readouterr().err
    assert not results.exists()


def test_a_results_line_names_its_cluster_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    result = PodResult("ns", "p", "u", outcome=Outcome.SUCCEEDED, task_key="t1")
    with ResultsWriter(path, run_id="r") as writer:
        writer.write(result, extra={"attempt": 1, "final": True, "cluster": "east"})
    recorded = read_results(path)
    assert recorded.clusters == {"t1": "east"}
