"""The version matrix (issue 18): every supported Python and Airflow, in venvs made by uv.

Why pairs and not the product: 4 Pythons x 4 Airflows would be 16 venvs running the same
unit tests; pairing each Python with one Airflow covers every Python and every Airflow
in 4 sessions. ``make test``'s venv (the machine's python3, 3.11, with the newest Airflow
the ``dev`` extra resolves, 3.3) runs the whole suite, the Airflow e2e DAGs on 3.3
included; these sessions add:

============  ======  =======  ====  ====  ========  ===========  ==========
session       Python  Airflow  lint  unit  triggers  integration  Airflow e2e
============  ======  =======  ====  ====  ========  ===========  ==========
matrix-3.10   3.10    3.0.6    yes   yes   yes       yes          yes
matrix-3.11   3.11    3.1.8    yes   yes   yes
matrix-3.12   3.12    3.2.2    yes   yes   yes
matrix-3.13   3.13    3.3.2    yes   yes   yes       yes
airflow2      3.11    2.11     the import refuses, naming the supported versions
============  ======  =======  ====  ====  ========  ===========  ==========

"lint" is ruff, mypy with that ``--python-version`` (and the main venv's packages, so
the newest Airflow's types), and the import layers; "unit" is
``tests/unit`` (the operator's, the trigger's and the version checks' unit tests run on
that Airflow); "triggers" is the trigger against the local control plane
(``tests/integration/airflow/test_trigger.py``, ``test_worker_path.py``); "integration"
is the library's own against the control plane (:data:`INTEGRATION`), without the real
node's (containers, whose runtime does not depend on the Python version: the main
run's); "Airflow e2e" is the DAGs of ``tests/integration/airflow/test_airflow_e2e.py``
on real Airflow components (scheduler,
dag processor, triggerer, api-server, workers) on the oldest Airflow; on 3.3 the main run
has them and the other Airflow modules. What differs below 3.3 (no start in the
triggerer, no ``on_kill`` in the triggerer) is asserted by tests that skip on the other
side (``tests/unit/airflow/test_versions.py``, the e2e's mark-failed test).

``nox -s matrix-3.12 -- tests/unit/airflow`` runs only the paths given (lint skipped).
Interpreters: pyenv's newest 3.X first on PATH, else ``python3.X``; uv never downloads one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nox
from uv import find_uv_bin

nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True
# The oldest pair last: the longest session (the e2e DAGs on Airflow 3.0.6).
nox.options.sessions = ["matrix-3.11", "matrix-3.12", "matrix-3.13", "airflow2", "matrix-3.10"]


@dataclass(frozen=True, slots=True)
class Pair:
    airflow: str
    integration: bool = False
    e2e: bool = False
    #: Packages held at ``as_of``, as Airflow's constraints file of that release would
    #: hold them (that file is not reachable from here; uv's per-package date is).
    dated: tuple[str, ...] = ()
    as_of: str = ""


#: What Airflow 3.0.6 (August 2025) breaks on with today's releases (seen: cadwyn 8.2, its
#: execution API answered 422 to every task start; cryptography 51, whose MultiFernet
#: refuses the attribute its Fernet sets; PyJWT 2.15, which cannot sign its tokens
#: without a jwt_issuer), with the fastapi/starlette/pydantic of then.
AIRFLOW_3_0_DATED = ("cadwyn", "fastapi", "starlette", "pydantic", "pydantic-core",
                     "cryptography", "pyjwt")  # fmt: skip

MATRIX = {
    "3.10": Pair("3.0.6", integration=True, e2e=True, dated=AIRFLOW_3_0_DATED, as_of="2025-09-01"),
    "3.11": Pair("3.1.8"),
    "3.12": Pair("3.2.2"),
    "3.13": Pair("3.3.2", integration=True),
}
#: Airflow 2's last line, past its end of life and still widely run: refused on import.
AIRFLOW_2 = "2.11.0"

TRIGGERS = [
    "tests/integration/airflow/test_trigger.py",
    "tests/integration/airflow/test_worker_path.py",
]
E2E = "tests/integration/airflow/test_airflow_e2e.py"
#: The library against the control plane: the client, runs, logs, cancellation, attach.
#: Not the fault, outage, fleet and garbage modules (minutes of timed waits, no Python
#: version in them): CI's 90 minutes hold the main run's and the matrix's, not those twice.
INTEGRATION = [
    "tests/integration/kube",
    "tests/integration/test_controlplane.py",
    "tests/integration/core/test_runs.py",
    "tests/integration/core/test_logs.py",
    "tests/integration/core/test_cancellation.py",
    "tests/integration/core/test_attach.py",
]


def _pyenv_interpreters() -> None:
    """Put pyenv's newest 3.X first on PATH for each matrix Python (its shims answer only
    for the selected version), so that nox and uv find them by ``python3.X``."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = []
    for python in MATRIX:
        candidates = sorted(
            root.glob(f"{python}.*/bin/python{python}"),
            key=lambda path: int(path.parent.parent.name.split(".")[2].split("-")[0] or 0),
        )
        if candidates:
            found.append(str(candidates[-1].parent))
    os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])
    os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


_pyenv_interpreters()


@nox.session(python=list(MATRIX))
def matrix(session: nox.Session) -> None:
    """Lint and test on one Python with its paired Airflow (the table above)."""
    assert isinstance(session.python, str)
    pair = MATRIX[session.python]
    held: list[str] = []
    for name in pair.dated:  # --reinstall-package: a kept venv resolves it again, to the date
        held += [
            f"--exclude-newer-package={name}={pair.as_of}T00:00:00Z",
            f"--reinstall-package={name}",
        ]
    session.install("-e", ".[dev]", f"apache-airflow=={pair.airflow}", *held)
    # Matplotlib builds its font cache on first import and Airflow's logging prints that
    # line; the report's CLI test reads the output, so build it before the tests run.
    session.run("python", "-c", "import matplotlib.font_manager", silent=True)
    if session.posargs:
        session.run("pytest", *session.posargs)
        return
    session.run("ruff", "check", "asyncpod", "tests", "benchmarks")
    session.run("ruff", "format", "--check", "asyncpod", "tests", "benchmarks")
    # Against that Python's standard library, and against the newest Airflow's types (the
    # main venv's, make install): the ones this session installed would flag every
    # fallback to an older Airflow's home of a name; the tests run those on each.
    main_venv = Path(".venv/bin").absolute()
    session.run(f"{main_venv}/mypy", "--python-version", session.python, external=True)
    session.run("lint-imports")
    paths = ["tests/unit", *TRIGGERS]
    if pair.e2e:
        paths += [E2E]
    if pair.integration:
        paths += INTEGRATION
    session.run("pytest", "-m", "not real_node", "-p", "no:cacheprovider", *paths)


@nox.session(python="3.11")
def airflow2(session: nox.Session) -> None:
    """Airflow 2.11 beside asyncpod: importing asyncpod.airflow names the supported
    versions, and the ``airflow`` extra does not resolve beside it."""
    session.install(f"apache-airflow=={AIRFLOW_2}")
    session.install("-e", ".[testing]", "pytest-timeout")
    test = "tests/unit/airflow/test_versions.py::test_importing_under_airflow_2_names_the_supported_versions"  # noqa: E501
    session.run("pytest", "-p", "no:cacheprovider", "-rs", test)
    refused = session.run(
        find_uv_bin(), "pip", "install", "--python", f"{session.bin}/python", "--dry-run",
        "-e", ".[airflow]", f"apache-airflow=={AIRFLOW_2}",
        external=True, success_codes=[1], silent=True,
    )  # fmt: skip
    assert isinstance(refused, str)
    if "apache-airflow>=3.0.6" not in refused:
        session.error(f"the airflow extra's refusal does not name its range:\n{refused}")
    session.log("the airflow extra does not resolve beside Airflow 2.11, naming its range")
