"""What ``@task.kubernetes`` runs in its pod: a Python function, its arguments, one command.

Why it exists: the decorator (:mod:`asyncpod.airflow.decorators`) ships a function defined
in a DAG file into a pod of any image that has ``python``. What travels, and how it runs
there, is decided here by pure functions, tested without Airflow or a cluster.

What the pod gets, as the cncf provider's decorator gives it (so images and DAGs written
for it work unchanged):

- ``__PYTHON_SCRIPT``: a Python script in base64 holding the function's source (its task
  decorators removed) that calls it and writes its JSON to ``/airflow/xcom/return.json``
  when ``do_xcom_push``; the script imports ``json``, ``sys`` and the pickling library
  (``pickle``, or ``dill`` with ``use_dill``, which the image must then have) before the
  function's source, under ``from __future__ import annotations``, and integrates
  Airflow's plugin macros first when the image has Airflow;
- ``__PYTHON_INPUT``: ``{"args": [...], "kwargs": {...}}`` pickled, in base64, read only
  when the function takes arguments;
- ``python -c <bootstrap>`` as the base container's command; the bootstrap runs the script.

Where it differs, on purpose: the provider writes both to ``/tmp`` with ``bash -cx`` and runs
``python /tmp/script.py``; here nothing is written but the XCom file (a read-only root
file system works) and no shell is needed. An exception in the function prints its
traceback, the function's own lines included (registered with ``linecache``, since the
source is not a file), to stderr, which is the task log, and exits 1: the task fails.
``SystemExit`` passes through, so ``skip_on_exit_code`` sees the function's exit code.
A return value is serialized only when ``do_xcom_push`` (the provider serializes it to
``/dev/null`` otherwise, failing tasks whose value is not JSON).

What it deliberately does not do: inject Airflow's context (``ti``, ``ds``) into the
function (the provider does not either), or check that the image has Python.
"""

from __future__ import annotations

import ast
import base64
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from asyncpod.airflow.xcom import XCOM_FILE

__all__ = [
    "BOOTSTRAP",
    "INPUT_ENV",
    "SCRIPT_ENV",
    "PodProgram",
    "env_list",
    "function_source",
    "generated_command",
    "pod_program",
    "render_script",
    "with_program_env",
]

#: The environment variables the provider's decorator uses, with the same contents' roles.
SCRIPT_ENV = "__PYTHON_SCRIPT"
INPUT_ENV = "__PYTHON_INPUT"

#: The base container's ``python -c`` program: decode the script and run it as ``__main__``.
_SCRIPT_NAME = "<task script>"
BOOTSTRAP = (
    "import base64, os; "
    f"exec(compile(base64.b64decode(os.environ[{SCRIPT_ENV!r}]), {_SCRIPT_NAME!r}, 'exec'))"
)

# Decorators that only tell Airflow what the function is; the pod has no ``task``.
_TASK_DECORATOR_ROOTS = frozenset({"task", "setup", "teardown"})


@dataclass(frozen=True, slots=True)
class PodProgram:
    """What the base container runs: its command and the two variables it reads."""

    cmds: list[str]
    env: dict[str, str]


def _dotted_root(node: ast.expr) -> str | None:
    """``task`` for ``task``, ``task.kubernetes`` and ``task.kubernetes(...)``."""
    if isinstance(node, ast.Call):
        node = node.func
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def function_source(source: str, name: str) -> str:
    """The function ``name``'s source without its task decorators, dedented.

    ``source`` is what :func:`inspect.getsource` gives (decorators included, indented
    as in the DAG file). Decorators rooted at ``task``, ``setup`` or ``teardown``
    (``@task.kubernetes(...)``, ``@task.asyncpod_kubernetes``, ``@setup``) go; any
    other decorator stays, as the provider leaves it.
    """
    text = textwrap.dedent(source)
    tree = ast.parse(text)
    functions = [
        node
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name
    ]
    if not functions:
        raise ValueError(f"no function {name!r} in its own source")
    function = functions[0]
    lines = text.splitlines(keepends=True)
    kept = [
        ast.get_source_segment(text, decorator) or ""
        for decorator in function.decorator_list
        if _dotted_root(decorator) not in _TASK_DECORATOR_ROOTS
    ]
    end = function.end_lineno or len(lines)
    body = "".join(lines[function.lineno - 1 : end])
    return "".join(f"@{decorator}\n" for decorator in kept) + body


def render_script(
    source: str,
    name: str,
    *,
    pickling_library: str = "pickle",
    has_arguments: bool,
    xcom: bool,
    output: str = XCOM_FILE,
) -> str:
    """The script the pod runs (``__PYTHON_SCRIPT``), from the function's clean source.

    With ``xcom``, the return value goes to ``output`` as JSON (nothing for ``None``).
    """
    if pickling_library not in ("pickle", "dill"):
        raise ValueError(f"pickling_library must be pickle or dill, not {pickling_library!r}")
    filename = f"<@task.kubernetes {name}>"
    arguments = (
        f"{pickling_library}.loads(base64.b64decode(os.environ[{INPUT_ENV!r}]))"
        if has_arguments
        else '{"args": [], "kwargs": {}}'
    )
    write = (
        f"    os.makedirs({str(PurePosixPath(output).parent)!r}, exist_ok=True)\n"
        f"    with open({output!r}, 'w') as file:\n"
        "        if result is not None:\n"
        "            file.write(json.dumps(result))\n"
        if xcom
        else ""
    )
    return (
        f'"""Runs {name}() of a @task.kubernetes task (asyncpod)."""\n'
        "from __future__ import annotations\n\n"
        "import base64\n"
        "import json\n"
        "import linecache\n"
        "import os\n"
        "import sys\n"
        "import traceback\n\n"
        f"import {pickling_library}\n\n"
        "# As the provider's script: Airflow's plugin macros before unpickling, if present.\n"
        "try:\n"
        "    from airflow.plugins_manager import integrate_macros_plugins\n"
        "except ImportError:\n"
        "    pass\n"
        "else:\n"
        "    integrate_macros_plugins()\n\n"
        f"_TASK_SOURCE = {source!r}\n"
        f"_TASK_FILE = {filename!r}\n"
        "# Not a file: linecache lets the traceback show the function's lines.\n"
        "linecache.cache[_TASK_FILE] = (\n"
        "    len(_TASK_SOURCE), None, _TASK_SOURCE.splitlines(True), _TASK_FILE\n"
        ")\n\n\n"
        "def _run_task():\n"
        f"    arguments = {arguments}\n"
        "    exec(compile(_TASK_SOURCE, _TASK_FILE, 'exec'), globals())\n"
        f"    result = globals()[{name!r}](*arguments['args'], **arguments['kwargs'])\n"
        f"{write}"
        "\n\n"
        "try:\n"
        "    _run_task()\n"
        "except Exception as error:\n"
        "    # From the function's first frame on: this script's own frames say nothing.\n"
        "    tb = error.__traceback__\n"
        "    while tb.tb_next is not None and tb.tb_frame.f_code.co_filename == "
        f"{_SCRIPT_NAME!r}:\n"
        "        tb = tb.tb_next\n"
        "    traceback.print_exception(type(error), error, tb)\n"
        "    sys.exit(1)\n"
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def pod_program(
    source: str,
    name: str,
    *,
    pickled_input: bytes,
    pickling_library: str = "pickle",
    has_arguments: bool,
    xcom: bool,
) -> PodProgram:
    """The base container's command and environment for one call of the function."""
    script = render_script(
        function_source(source, name),
        name,
        pickling_library=pickling_library,
        has_arguments=has_arguments,
        xcom=xcom,
    )
    return PodProgram(
        cmds=["python", "-c", BOOTSTRAP],
        env={SCRIPT_ENV: _b64(script.encode()), INPUT_ENV: _b64(pickled_input)},
    )


def generated_command(value: Any, function: str) -> list[str]:
    """What a ``@task.kubernetes_cmd`` function returned, checked as the provider checks it:
    a non-empty list of strings (the messages are the provider's)."""
    if not isinstance(value, list):
        raise TypeError(
            f"Expected python_callable to return a list of strings, but got {type(value)}"
        )
    if not all(isinstance(item, str) for item in value):
        raise TypeError(f"Expected {function} to return a list of strings, but got {value}")
    if not value:
        raise ValueError(f"The {function} returned an empty list of commands")
    return list(value)


def env_list(env_vars: Any) -> list[Any]:
    """The operator's ``env_vars`` (None, a mapping, or a list of models/dicts) as a list."""
    if env_vars is None:
        return []
    if isinstance(env_vars, Mapping):
        return [{"name": str(k), "value": str(v)} for k, v in env_vars.items()]
    if isinstance(env_vars, Iterable) and not isinstance(env_vars, (str, bytes)):
        return list(env_vars)
    raise TypeError(f"env_vars must be a mapping or a list, not {type(env_vars).__name__}")


def with_program_env(env_vars: Any, program: PodProgram) -> list[Any]:
    """``env_vars`` plus the program's two variables (replacing any of the same name)."""

    def named(entry: Any) -> str | None:
        value = entry.get("name") if isinstance(entry, Mapping) else getattr(entry, "name", None)
        return None if value is None else str(value)

    kept: Sequence[Any] = [e for e in env_list(env_vars) if named(e) not in program.env]
    return [*kept, *({"name": k, "value": v} for k, v in program.env.items())]
