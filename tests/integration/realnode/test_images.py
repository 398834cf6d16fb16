"""The Python images' recipe, without building anything (no root, no network).

What the images promise is checked here against its sources: the apt sources they are
built from are the host's (for the host's suite only), the cache key moves with what
goes in, and the asyncpod image takes its user, entry point and stop signal from
docker/Dockerfile. Building and running them is tests/integration/core/test_real_node.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from asyncpod.testing import images

ROOT = Path(__file__).resolve().parents[3]

DEB822 = """Types: deb
# a comment
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
"""


def test_the_hosts_sources_of_its_suite_are_kept_and_others_dropped() -> None:
    files = {
        "debian.sources": DEB822,
        "thirdparty.list": "deb [signed-by=/k.gpg] https://vendor.invalid/apt cloud-sdk-bookworm main\n",
        "sources.list": "deb http://old.invalid/debian bookworm contrib # note\n"
        "deb-src http://old.invalid/debian bookworm main\n",
    }
    text = images.debian_sources(files, "bookworm")
    stanzas = text.strip().split("\n\n")
    assert len(stanzas) == 3
    assert "Suites: bookworm bookworm-updates" in stanzas[0]
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in stanzas[0]
    assert "Suites: bookworm-security" in stanzas[1]
    assert stanzas[2].splitlines()[1:] == [
        "URIs: http://old.invalid/debian",
        "Suites: bookworm",
        "Components: contrib",
    ]
    assert "vendor.invalid" not in text


def test_no_source_for_the_suite_is_one_clear_error() -> None:
    with pytest.raises(images.ImageBuildError, match="name no trixie repository"):
        images.debian_sources({"debian.sources": DEB822}, "trixie")


def test_the_cache_key_moves_with_what_goes_in() -> None:
    base = images.python_recipe("bookworm", DEB822, "amd64")
    key = images.recipe_key(base)
    assert key == images.recipe_key(json.loads(json.dumps(base)))
    assert key != images.recipe_key(images.python_recipe("trixie", DEB822, "amd64"))
    assert key != images.recipe_key(images.python_recipe("bookworm", DEB822 + "\n", "amd64"))
    assert key != images.recipe_key(images.python_recipe("bookworm", DEB822, "arm64"))


def test_the_tag_carries_debians_python_minor_version() -> None:
    status = (
        "Package: python3\nStatus: install ok installed\nVersion: 3.11.2-1+b1\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n"
        "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u9\n"
    )
    packages = images.dpkg_packages(status)
    assert packages == {"libc6": "2.36-9+deb12u9", "python3": "3.11.2-1+b1"}
    assert images.python_tags(images.python_minor(packages)) == ("localhost/python:3.11-slim",)
    with pytest.raises(images.ImageBuildError):
        images.python_minor({})


def test_wheels_for_the_images_glibc() -> None:
    platforms = images.manylinux_platforms("2.36", "x86_64")
    assert platforms[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_17_x86_64" in platforms
    assert platforms[-1] == "manylinux1_x86_64"


def test_the_entry_point_is_the_wheels_console_script() -> None:
    entry_points = "[console_scripts]\nasyncpod = asyncpod.cli.main:main\n\n[pytest11]\nx = y\n"
    target = images.console_script(entry_points, "asyncpod")
    assert target == "asyncpod.cli.main:main"
    script = images.entry_point_script(target)
    assert script.startswith("#!/usr/bin/python3\n")
    compile(script, "asyncpod", "exec")
    assert re.search(r"^asyncpod = (\S+)$", _pyproject_scripts(), re.M) is not None


def _pyproject_scripts() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    start = text.index("[project.scripts]")
    return text[start:].split("\n\n")[0].replace('"', "")


def test_the_asyncpod_image_keeps_the_dockerfiles_promises() -> None:
    """USER, STOPSIGNAL, ENTRYPOINT, CMD, WORKDIR and ENV are docker/Dockerfile's."""
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = [
        line.split(None, 1) for line in dockerfile.splitlines() if line and line[0].isupper()
    ]
    last = {word: rest.strip() for word, rest in instructions}  # the final stage's
    uid = images.ASYNCPOD_UID
    assert last["USER"] == f"{uid}:{uid}"
    assert last["WORKDIR"] == images.ASYNCPOD_HOME
    assert last["STOPSIGNAL"] == images.ASYNCPOD_STOP_SIGNAL
    assert json.loads(last["ENTRYPOINT"]) == list(images.ASYNCPOD_ENTRYPOINT)
    assert json.loads(last["CMD"]) == list(images.ASYNCPOD_CMD)
    env = next(rest for word, rest in instructions if word == "ENV").split()
    assert env == list(images.ASYNCPOD_ENV)
    assert f"--uid {uid}" in dockerfile
    assert f"--home-dir {images.ASYNCPOD_HOME}" in dockerfile
