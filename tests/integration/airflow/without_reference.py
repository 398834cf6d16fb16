"""An environment with asyncpod installed *instead of* the cncf.kubernetes provider.

Why: the dev environment installs the provider (the compatibility tests compare against
it), and with it installed ``@task.kubernetes`` is the provider's by design
(:mod:`asyncpod.airflow.provider`). What a team that switches has is the other case. A
second virtual environment of the same interpreter whose site-packages are symlinks to
this one's, all but the provider's ``.dist-info``: Airflow discovers providers only by
their distributions' entry points, so there the provider is not installed, while its
modules (inside the shared ``airflow`` package directory) stay on disk, unused.
Building it takes a second and copies nothing.
"""

from __future__ import annotations

import re
import sys
import sysconfig
import venv
from pathlib import Path

from asyncpod.airflow.provider import REFERENCE_DISTRIBUTION


def _dist_info_prefix(distribution: str) -> str:
    return re.sub(r"[-_.]+", "_", distribution).lower() + "-"


def environment_without_reference(target: Path) -> Path:
    """Make the environment in ``target``; its ``bin`` directory (``python``, ``airflow``)."""
    venv.EnvBuilder(symlinks=True, with_pip=False).create(target)
    ours = Path(sysconfig.get_paths()["purelib"])
    theirs = Path(
        sysconfig.get_paths(vars={"base": str(target), "platbase": str(target)})["purelib"]
    )
    hidden = _dist_info_prefix(REFERENCE_DISTRIBUTION)
    for entry in sorted(ours.iterdir()):
        if entry.name.lower().startswith(hidden) and entry.name.endswith(".dist-info"):
            continue
        link = theirs / entry.name
        if not link.exists():
            link.symlink_to(entry)
    bin_dir = target / "bin"
    script = (Path(sys.executable).parent / "airflow").read_text().splitlines(keepends=True)
    (bin_dir / "airflow").write_text(f"#!{bin_dir / 'python'}\n" + "".join(script[1:]))
    (bin_dir / "airflow").chmod(0o755)
    return bin_dir
