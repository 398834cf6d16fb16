"""Every code example of the README and of the site runs as written (issue 18).

The blocks are read from the Markdown (tests/docs/blocks.py says how a block is
marked). Python programs run in a subprocess, alone or against the test cluster through
``KUBECONFIG`` (a copy of the session's kubeconfig whose context names a fresh
namespace, as a user's would); shell blocks of ``asyncpod`` commands run one line at a
time in a directory holding the page's ``file=`` blocks; the testing page's example is
a new project of its own, run by its own pytest. Nothing here asserts a duration.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from asyncpod.testing.pytest_plugin import TestCluster
from tests.docs.blocks import OUTPUT_LANGUAGES, Example, all_examples, commands

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package, when installed
    tomllib = pytest.importorskip("tomli")

EXAMPLES = all_examples()
BIN = Path(sys.executable).parent
RUN_TIMEOUT = 240.0

CLUSTER_KINDS = {"cluster", "cli"}
# PromQL needs a Prometheus server; tests/unit/test_metrics.py checks every metric name
# the page (and so its queries) uses against the metrics asyncpod exposes.
SKIPPED_LANGUAGES = {"promql": "PromQL, for a Prometheus server: names checked by test_metrics"}


def _params(kinds: set[str]) -> list[object]:
    marks = [pytest.mark.integration, pytest.mark.simulated]
    return [
        pytest.param(e, id=e.id, marks=marks if e.kind in CLUSTER_KINDS else ())
        for e in EXAMPLES
        if e.kind in kinds
    ]


def _env(tmp_path: Path, kubeconfig: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "ASYNCPOD_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["KUBECONFIG"] = str(kubeconfig) if kubeconfig else str(tmp_path / "no-kubeconfig")
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow-home")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["NO_COLOR"] = "1"
    return env


def _kubeconfig(
    cluster: TestCluster, namespace: str, path: Path, *, contexts: tuple[str, ...] = ()
) -> Path:
    """The session's kubeconfig with ``namespace`` as its contexts' namespace, plus the
    contexts a block names (all the same cluster)."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for entry in config["contexts"]:
        entry["context"]["namespace"] = namespace
    current = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    for name in contexts:
        config["contexts"].append({"name": name, "context": dict(current["context"])})
    path.write_text(yaml.safe_dump(config))
    return path


def _page_files(page: str) -> dict[str, str]:
    return {e.options["file"]: e.code for e in EXAMPLES if e.page == page and e.kind == "file"}


def _explain(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-5000:]}"


# ---------------------------------------------------------------- the collection itself


def test_the_collector_finds_the_examples() -> None:
    kinds = {e.kind for e in EXAMPLES}
    assert {"python", "cluster", "cli", "file", "new-project", "skip"} <= kinds
    assert any(e.page == "README.md" and e.kind == "cluster" for e in EXAMPLES)


@pytest.mark.parametrize("example", [pytest.param(e, id=e.id) for e in EXAMPLES])
def test_every_block_is_run_or_says_why_not(example: Example) -> None:
    if example.kind == "skip":
        assert example.options.get("reason"), "a skipped example names what tests it instead"
        return
    if example.kind:
        return
    runnable_by_default = {"yaml", "toml", "python"} | set(SKIPPED_LANGUAGES)
    assert example.language in OUTPUT_LANGUAGES | runnable_by_default | {""}, (
        f"a {example.language!r} block needs an <!-- example: ... --> marker (tests/docs/blocks.py)"
    )


def test_cli_blocks_hold_only_asyncpod_commands() -> None:
    for example in EXAMPLES:
        if example.kind == "cli":
            for line in commands(example.code):
                assert line.startswith("asyncpod "), f"{example.id}: {line}"


# ---------------------------------------------------------------- data blocks


@pytest.mark.parametrize(
    "example",
    [
        pytest.param(e, id=e.id)
        for e in EXAMPLES
        if e.language in ("yaml", "toml") and e.kind in ("", "file", "new-project")
    ],
)
def test_data_blocks_parse(example: Example) -> None:
    if example.language == "yaml":
        assert yaml.safe_load(example.code) is not None
    else:
        assert tomllib.loads(example.code)


# ---------------------------------------------------------------- Python


@pytest.mark.parametrize("example", _params({"python"}))
def test_python_example_runs_alone(example: Example, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example.code)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=_env(tmp_path, None),
        capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, _explain(done)


@pytest.mark.parametrize("example", _params({"cluster"}))
def test_python_example_runs_against_a_cluster(
    example: Example, kube_cluster: TestCluster, namespace: str, tmp_path: Path
) -> None:
    script = tmp_path / "example.py"
    script.write_text(example.code)
    kubeconfig = _kubeconfig(kube_cluster, namespace, tmp_path / "kubeconfig")
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=_env(tmp_path, kubeconfig),
        capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, _explain(done)


# ---------------------------------------------------------------- the command line


@pytest.fixture
def extra_namespaces(kube_cluster: TestCluster) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:
        kube_cluster.admin.delete_namespace(name)


@pytest.mark.parametrize("example", _params({"cli"}))
def test_cli_example_runs(
    example: Example,
    kube_cluster: TestCluster,
    namespace: str,
    tmp_path: Path,
    extra_namespaces: list[str],
) -> None:
    contexts = tuple(filter(None, example.options.get("contexts", "").split(",")))
    kubeconfig = _kubeconfig(kube_cluster, namespace, tmp_path / "kubeconfig", contexts=contexts)
    for name in filter(None, example.options.get("files", "").split(",")):
        _kubeconfig(kube_cluster, namespace, tmp_path / name)
    for name in filter(None, example.options.get("namespaces", "").split(",")):
        kube_cluster.admin.create_namespace(name)
        extra_namespaces.append(name)
    for name, text in _page_files(example.page).items():
        (tmp_path / name).write_text(text)
    env = _env(tmp_path, kubeconfig)

    for line in commands(example.code):
        done = subprocess.run(
            ["bash", "-c", line], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
        )  # fmt: skip
        # A pod may fail (exit 1: that is a result); a usage error (2), a missing
        # command (127) or a traceback is the example's fault.
        assert done.returncode in (0, 1), f"{line}\n{_explain(done)}"
        assert "Traceback" not in done.stderr, f"{line}\n{_explain(done)}"


# ---------------------------------------------------------------- a new project


NEW_PROJECT_PAGES = sorted({e.page for e in EXAMPLES if e.kind == "new-project"})


def _new_project(page: str, root: Path) -> Path:
    for example in EXAMPLES:
        if example.page == page and example.kind == "new-project":
            path = root / example.options["file"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(example.code)
    return root


def _pytest_in(project: Path, kube_cluster: TestCluster) -> subprocess.CompletedProcess[str]:
    env = _env(project, None)
    # The plugin's documented switch: the new project's tests use this session's control
    # plane instead of starting a second one beside it.
    env["ASYNCPOD_TEST_KUBECONFIG"] = str(kube_cluster.kubeconfig)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(project)],
        cwd=project, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip


@pytest.mark.integration
@pytest.mark.simulated
@pytest.mark.parametrize("page", NEW_PROJECT_PAGES)
def test_new_project_example_passes_as_written(
    page: str, kube_cluster: TestCluster, tmp_path: Path
) -> None:
    project = _new_project(page, tmp_path / "project")
    assert (project / "pyproject.toml").is_file(), "the example's project has its configuration"

    done = _pytest_in(project, kube_cluster)

    assert done.returncode == 0, _explain(done)
    assert " passed" in done.stdout, done.stdout
    assert "skipped" not in done.stdout, done.stdout


@pytest.mark.integration
@pytest.mark.simulated
@pytest.mark.parametrize("page", NEW_PROJECT_PAGES)
def test_new_project_example_needs_what_the_page_says(
    page: str, kube_cluster: TestCluster, tmp_path: Path
) -> None:
    """Without ``asyncio_mode = "auto"`` the same project fails as issue 18 saw it: the
    page is right to insist on it."""
    project = _new_project(page, tmp_path / "project")
    config = project / "pyproject.toml"
    config.write_text(
        "".join(
            line
            for line in config.read_text().splitlines(keepends=True)
            if "asyncio_mode" not in line
        )
    )

    done = _pytest_in(project, kube_cluster)

    assert done.returncode != 0, _explain(done)
    assert "async def functions are not natively supported" in done.stdout + done.stderr
