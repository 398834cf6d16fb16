"""docker/airflow.Dockerfile: the Airflow image's promises, checked as text (no Docker).

The same parser as the CLI image's checks (tests/unit/test_docker.py); hadolint lints
the file in tools/lint-docker.sh.
"""

from __future__ import annotations

import re
import shlex

import pytest

from tests.unit.test_docker import EXACT_VERSION, ROOT, Stage, dockerignore, external_base, stages

DOCKERFILE = ROOT / "docker" / "airflow.Dockerfile"
TAG = re.compile(
    r"^apache/airflow:(?P<version>\d+\.\d+\.\d+)-python(?P<python>3\.\d+)(@sha256:[0-9a-f]{64})?$"
)


@pytest.fixture(scope="module")
def parsed() -> list[Stage]:
    return stages(DOCKERFILE.read_text())


def test_base_is_the_official_airflow_image_at_an_exact_tested_version(parsed: list[Stage]) -> None:
    base = external_base(parsed, parsed[-1])
    match = TAG.match(base)
    assert match, f"{base} is not apache/airflow:<x.y.z>-python<3.y>"
    assert EXACT_VERSION.fullmatch(match["version"])
    assert match["version"].startswith("3.3."), "3.3 is the Airflow version the e2e tests run"
    runs = " ".join(i.args for i in parsed[-1].all("RUN"))
    assert f'"apache-airflow=={match["version"]}"' in runs, "pip must not move Airflow"


def test_builder_makes_only_asyncpods_wheel_and_the_final_stage_installs_it(
    parsed: list[Stage],
) -> None:
    builder = next(s for s in parsed if s.name == "builder")
    assert "pip wheel" in " ".join(i.args for i in builder.all("RUN"))
    assert "--no-deps" in " ".join(i.args for i in builder.all("RUN"))
    final = parsed[-1]
    assert final.base != "builder"
    assert not [c for c in final.all("COPY") + final.all("ADD") if "--from" not in c.args]
    runs = " ".join(i.args for i in final.all("RUN"))
    assert "from=builder" in runs
    assert "import asyncpod.airflow.operators" in runs, "a smoke test of the operator"
    assert "airflow providers get asyncpod" in runs, "a smoke test of provider registration"


def test_final_stage_runs_as_the_images_non_root_uid(parsed: list[Stage]) -> None:
    user = parsed[-1].last("USER")
    assert user is not None
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()


def test_copies_stay_inside_the_dockerignore_allowlist(parsed: list[Stage]) -> None:
    included = {p[1:].rstrip("/") for p in dockerignore() if p.startswith("!")}
    sources: set[str] = set()
    for stage in parsed:
        for copy in stage.all("COPY"):
            words = [w for w in shlex.split(copy.args) if not w.startswith("--")]
            if "--from" not in copy.args:
                sources.update(w.rstrip("/") for w in words[:-1])
    assert sources
    assert {
        s for s in sources if not any(s == i or s.startswith(i + "/") for i in included)
    } == set()
