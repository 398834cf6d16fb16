"""docker/: what the CLI image and the kind config promise, checked as text (no Docker).

hadolint (tools/lint-docker.sh) catches general Dockerfile mistakes; these tests pin the
project's own promises, which a linter does not know: a multi-stage build, a Python slim
base pinned by version tag and digest, a fixed non-root UID in the final stage, the
``asyncpod`` entry point, a build context limited to what the wheel is built from.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"

# name:tag@sha256:digest, with the tag an exact version (x.y.z), never a moving one.
PINNED = re.compile(
    r"^(?P<repo>[a-z0-9][a-z0-9._/-]*):(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]*)"
    r"@sha256:(?P<digest>[0-9a-f]{64})$"
)
EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+")
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|cc|make|cmake|build-essential|golang(-go)?)\b")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    def last(self, keyword: str) -> Instruction | None:
        found = [i for i in self.instructions if i.keyword == keyword]
        return found[-1] if found else None

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def instructions(text: str) -> list[Instruction]:
    """Logical instructions: comments dropped, backslash continuations joined."""
    result: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # also inside a continuation, where Docker drops them too
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        keyword, _, args = " ".join(parts).partition(" ")
        result.append(Instruction(keyword.upper(), args.strip(), start))
        parts = []
    assert not parts, "the Dockerfile ends inside a line continuation"
    return result


def stages(text: str) -> list[Stage]:
    result: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) in (1, 3), f"line {instruction.line}: FROM {instruction.args}"
            result.append(Stage(words[0], name, instruction.line))
        else:
            assert result, f"line {instruction.line}: {instruction.keyword} before any FROM"
            result[-1].instructions.append(instruction)
    return result


def external_base(all_stages: list[Stage], stage: Stage) -> str:
    """The image a stage is ultimately built from, following ``FROM <stage>`` links."""
    named = {s.name: s for s in all_stages if s.name}
    seen: set[str] = set()
    base = stage.base
    while base in named:
        assert base not in seen, f"FROM loop through stage {base!r}"
        seen.add(base)
        base = named[base].base
    return base


@pytest.fixture(scope="module")
def parsed() -> list[Stage]:
    return stages(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(parsed: list[Stage]) -> Stage:
    return parsed[-1]


def test_parser_joins_continuations_and_drops_comments() -> None:
    text = "# c\nFROM a:1 AS x\nRUN one \\\n  # dropped\n  && two\nFROM x\nUSER 5\n"
    got = stages(text)
    assert [(s.base, s.name) for s in got] == [("a:1", "x"), ("x", None)]
    assert got[0].instructions == [Instruction("RUN", "one && two", 3)]
    assert external_base(got, got[1]) == "a:1"


def test_multi_stage_with_a_builder_and_a_final_stage(parsed: list[Stage], final: Stage) -> None:
    names = [s.name for s in parsed]
    assert len(parsed) >= 2
    assert "builder" in names
    assert final.base != "builder", "the final stage must not extend the builder"
    copies_from_context = [
        c for c in final.all("COPY") + final.all("ADD") if "--from" not in c.args
    ]
    assert copies_from_context == [], "the final stage installs wheels, not sources"


def test_every_external_base_is_pinned_by_exact_version_tag_and_digest(
    parsed: list[Stage],
) -> None:
    names = {s.name for s in parsed if s.name}
    externals = [s for s in parsed if s.base not in names]
    assert externals
    for stage in externals:
        match = PINNED.match(stage.base)
        assert match, f"line {stage.line}: {stage.base} is not name:tag@sha256:digest"
        assert match["tag"] != "latest"
        assert EXACT_VERSION.search(match["tag"]), f"line {stage.line}: tag is not x.y.z"


def test_final_image_is_a_pinned_python_slim(parsed: list[Stage], final: Stage) -> None:
    match = PINNED.match(external_base(parsed, final))
    assert match
    assert match["repo"] == "python"
    assert "slim" in match["tag"]


def test_final_stage_runs_as_the_fixed_non_root_uid_it_creates(final: Stage) -> None:
    user = final.last("USER")
    assert user is not None, "the final stage must set USER itself"
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit(), "numeric, so that Kubernetes runAsNonRoot can check it"
    assert int(uid) != 0
    assert not gid or (gid.isdigit() and int(gid) != 0)
    created = re.findall(
        r"useradd\b[^&;]*--uid[ =](\d+)", " ".join(i.args for i in final.all("RUN"))
    )
    assert created == [uid], "USER must be the UID that useradd creates"
    after_user = final.instructions[final.instructions.index(user) + 1 :]
    assert not [i for i in after_user if i.keyword == "USER"]


def test_entrypoint_is_asyncpod_in_exec_form(final: Stage) -> None:
    entrypoint = final.last("ENTRYPOINT")
    assert entrypoint is not None
    assert json.loads(entrypoint.args) == ["asyncpod"]


def test_final_stage_installs_offline_and_no_build_tools(final: Stage) -> None:
    runs = " ".join(i.args for i in final.all("RUN"))
    assert "pip install" in runs
    assert "--no-index" in runs, "only the wheels the builder made"
    installs = re.findall(r"(?:apt-get|apt|apk)\s+(?:-\S+\s+)*(?:install|add)\s+([^&;|]*)", runs)
    for packages in installs:
        assert not BUILD_TOOLS.search(packages), f"build tools in the final stage: {packages}"


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def test_dockerignore_is_an_allowlist_of_what_the_build_copies(parsed: list[Stage]) -> None:
    patterns = dockerignore()
    assert patterns[0] == "*", "exclude everything, then re-include what the build needs"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for never in (".git", ".venv", "tests", "benchmarks", ".asyncpod", "dist"):
        assert not any(i == never or i.startswith(never + "/") for i in included)
    assert "**/__pycache__" in patterns
    sources: set[str] = set()
    for stage in parsed:
        for copy in stage.all("COPY") + stage.all("ADD"):
            words = [w for w in shlex.split(copy.args) if not w.startswith("--")]
            if "--from" not in copy.args:
                sources.update(w.rstrip("/") for w in words[:-1])
    assert sources, "the builder copies its sources from the context"
    missing = {s for s in sources if not any(s == i or s.startswith(i + "/") for i in included)}
    assert missing == set(), f"COPY sources the .dockerignore leaves out: {missing}"


def kind_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / "docker" / "kind-config.yaml").read_text())
    return config


def test_kind_config_has_one_control_plane_and_workers_on_one_pinned_image() -> None:
    config = kind_config()
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    roles = [node["role"] for node in config["nodes"]]
    assert roles.count("control-plane") == 1
    assert roles.count("worker") >= 1
    images = {node.get("image") for node in config["nodes"]}
    assert len(images) == 1
    (image,) = images
    match = PINNED.match(str(image))
    assert match, f"node image {image} is not pinned by digest"
    assert match["repo"] == "kindest/node"


def test_hadolint_config_and_lint_script() -> None:
    config = yaml.safe_load((ROOT / ".hadolint.yaml").read_text())
    assert config["failure-threshold"] in ("warning", "info", "style")
    raw = (ROOT / ".hadolint.yaml").read_text().splitlines()
    for rule in config.get("ignored") or []:
        lines = [ln for ln in raw if re.match(rf"\s*-\s*{re.escape(rule)}\b", ln)]
        assert lines, f"ignored rule {rule} not found as a list item"
        assert all("#" in ln for ln in lines), f"ignored rule {rule} needs a one-line reason"
    script = ROOT / "tools" / "lint-docker.sh"
    assert os.access(script, os.X_OK)
    assert "set -euo pipefail" in script.read_text()
