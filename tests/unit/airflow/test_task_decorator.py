"""``@task.kubernetes``: the pod's program (pure, then run by a real Python), the
decorator's parameters against the provider's, and its registration with Airflow."""

from __future__ import annotations

import base64
import datetime
import inspect
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from asyncpod.airflow.provider import get_provider_info, task_decorators
from asyncpod.airflow.pyscript import (
    BOOTSTRAP,
    INPUT_ENV,
    SCRIPT_ENV,
    PodProgram,
    function_source,
    generated_command,
    pod_program,
    render_script,
    with_program_env,
)

DECORATED = """
    @task.kubernetes(
        image="python:3.11-slim",
        env_vars={"PAREN": ")", "AT": "@task.kubernetes("},
    )
    @functools.wraps(print)  # not a task decorator: kept, as the provider keeps it
    def compute(values, *, scale=1):
        # a comment the provider would drop; harmless here
        def inner(v):
            return v * scale

        return [inner(v) for v in values]
"""


def test_task_decorators_are_removed_and_others_kept() -> None:
    source = function_source(DECORATED, "compute")
    assert source.startswith("@functools.wraps(print)\ndef compute(values, *, scale=1):\n")
    assert "@task" not in source
    assert "        return v * scale\n" in source  # dedented once, nesting kept
    for decorator in ("@setup", "@teardown", "@task", "@task.asyncpod_kubernetes()"):
        text = f"{decorator}\ndef f():\n    return 1\n"
        assert function_source(text, "f") == "def f():\n    return 1\n"


def test_a_source_without_the_function_is_refused() -> None:
    with pytest.raises(ValueError, match="no function 'g'"):
        function_source("def f():\n    pass\n", "g")


def run_program(
    program: PodProgram, tmp_path: Path, *, site: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the pod's command with this interpreter as a bare image's ``python``: without
    site-packages (no Airflow there) unless ``site``."""
    env = {**os.environ, **program.env}
    command = [sys.executable, *([] if site else ["-S"]), *program.cmds[1:]]
    assert program.cmds[0] == "python"
    return subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )


def script_program(
    source: str, name: str, tmp_path: Path, *args: Any, xcom: bool = True, **kwargs: Any
) -> PodProgram:
    """A program whose XCom goes to ``tmp_path / 'return.json'`` (not /airflow/xcom)."""
    script = render_script(
        function_source(source, name),
        name,
        has_arguments=bool(args or kwargs),
        xcom=xcom,
        output=str(tmp_path / "xcom" / "return.json"),
    )
    pickled = pickle.dumps({"args": list(args), "kwargs": kwargs})
    return PodProgram(
        cmds=["python", "-c", BOOTSTRAP],
        env={
            SCRIPT_ENV: base64.b64encode(script.encode()).decode(),
            INPUT_ENV: base64.b64encode(pickled).decode(),
        },
    )


def test_arguments_go_in_and_the_return_value_comes_out_as_json(tmp_path: Path) -> None:
    source = textwrap.dedent(
        """
        def summarize(values, label, *, scale=1):
            print("in the pod")
            return {"label": label, "total": sum(values) * scale, "module": __name__}
        """
    )
    program = script_program(source, "summarize", tmp_path, [1, 2, 3], "sum", scale=10)
    result = run_program(program, tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "in the pod\n", "")
    value = json.loads((tmp_path / "xcom" / "return.json").read_text())
    assert value == {"label": "sum", "total": 60, "module": "__main__"}


def test_none_writes_an_empty_file_and_no_xcom_writes_nothing(tmp_path: Path) -> None:
    source = "def nothing():\n    return None\n"
    assert run_program(script_program(source, "nothing", tmp_path), tmp_path).returncode == 0
    assert (tmp_path / "xcom" / "return.json").read_text() == ""  # the reference: None
    other = tmp_path / "other"
    other.mkdir()
    source = "def value():\n    return {1, 2}  # not JSON: unread without do_xcom_push\n"
    program = script_program(source, "value", other, xcom=False)
    assert run_program(program, other).returncode == 0
    assert not (other / "xcom").exists()


def test_an_exception_prints_the_functions_traceback_and_exits_1(tmp_path: Path) -> None:
    source = textwrap.dedent(
        """
        def explode(items):
            def check(n):
                raise ValueError(f"cannot handle {n} items")

            check(items)
        """
    )
    result = run_program(script_program(source, "explode", tmp_path, 7), tmp_path)
    assert result.returncode == 1
    # Without the lines of ~ and ^ under the code that Python 3.13 adds.
    assert [line for line in result.stderr.splitlines() if line.strip(" ~^")] == [
        "Traceback (most recent call last):",
        '  File "<@task.kubernetes explode>", line 5, in explode',
        "    check(items)",
        '  File "<@task.kubernetes explode>", line 3, in check',
        '    raise ValueError(f"cannot handle {n} items")',
        "ValueError: cannot handle 7 items",
    ]
    assert not (tmp_path / "xcom" / "return.json").exists()


def test_sys_exit_keeps_its_code_for_skip_on_exit_code(tmp_path: Path) -> None:
    source = "def leave():\n    import sys\n    sys.exit(3)\n"
    result = run_program(script_program(source, "leave", tmp_path), tmp_path)
    assert (result.returncode, result.stderr) == (3, "")


def test_annotations_are_not_evaluated_in_the_pod(tmp_path: Path) -> None:
    # As under the provider's script: `from __future__ import annotations`, so a type
    # the image cannot import does not break the function.
    source = "def typed(x: pandas.DataFrame) -> numpy.ndarray:\n    return x\n"
    result = run_program(script_program(source, "typed", tmp_path, 5), tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "xcom" / "return.json").read_text() == "5"


def test_dill_carries_what_pickle_cannot(tmp_path: Path) -> None:
    dill = pytest.importorskip("dill")
    source = "def apply(f, x):\n    return f(x)\n"
    script = render_script(
        source, "apply", pickling_library="dill", has_arguments=True, xcom=True,
        output=str(tmp_path / "return.json"),
    )  # fmt: skip
    pickled = dill.dumps({"args": [lambda v: v + 1, 41], "kwargs": {}})
    program = PodProgram(
        cmds=["python", "-c", BOOTSTRAP],
        env={
            SCRIPT_ENV: base64.b64encode(script.encode()).decode(),
            INPUT_ENV: base64.b64encode(pickled).decode(),
        },
    )
    assert run_program(program, tmp_path, site=True).returncode == 0
    assert (tmp_path / "return.json").read_text() == "42"


def test_the_pod_program_and_its_environment() -> None:
    program = pod_program(
        DECORATED, "compute", pickled_input=b"\x80\x04N.", has_arguments=True, xcom=True
    )
    assert program.cmds == ["python", "-c", BOOTSTRAP]
    script = base64.b64decode(program.env[SCRIPT_ENV]).decode()
    assert "'/airflow/xcom/return.json'" in script
    assert base64.b64decode(program.env[INPUT_ENV]) == b"\x80\x04N."

    class Model:  # a kubernetes V1EnvVar, duck-typed
        def __init__(self, name: str) -> None:
            self.name = name

    given = [Model("A"), {"name": SCRIPT_ENV, "value": "stale"}]
    merged = with_program_env(given, program)
    assert merged[0] is given[0]
    assert [e["name"] for e in merged[1:]] == [SCRIPT_ENV, INPUT_ENV]
    assert with_program_env({"B": 2}, program)[0] == {"name": "B", "value": "2"}
    assert len(with_program_env(None, program)) == 2
    with pytest.raises(ValueError, match="pickle or dill"):
        render_script(
            "def f(): pass", "f", pickling_library="json", has_arguments=False, xcom=False
        )


# ---------------------------------------------------------------- the decorator


def test_the_provider_info_registers_by_whether_the_provider_is_installed() -> None:
    task_path = "asyncpod.airflow.decorators.kubernetes_task"
    cmd_path = "asyncpod.airflow.decorators.kubernetes_cmd_task"
    ours = [
        {"name": "asyncpod_kubernetes", "class-name": task_path},
        {"name": "asyncpod_kubernetes_cmd", "class-name": cmd_path},
    ]
    assert task_decorators(reference_installed=False) == [
        {"name": "kubernetes", "class-name": task_path},
        {"name": "kubernetes_cmd", "class-name": cmd_path},
        *ours,
    ]
    assert task_decorators(reference_installed=True) == ours
    info = get_provider_info()
    assert info["task-decorators"] == ours  # the dev extra installs the provider


def test_with_the_provider_installed_kubernetes_stays_its_own_without_a_warning() -> None:
    code = (
        "import logging; logging.basicConfig(level=logging.WARNING); "
        "from airflow.sdk import task; "
        "print(task.kubernetes.__module__, task.kubernetes_cmd.__module__); "
        "print(task.asyncpod_kubernetes.__module__, task.asyncpod_kubernetes_cmd.__module__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    # The last two lines: Airflow 3.0 and 3.2 log their plugins' setup to stdout first.
    assert " ".join(result.stdout.splitlines()[-2:]).split() == [
        "airflow.providers.cncf.kubernetes.decorators.kubernetes",
        "airflow.providers.cncf.kubernetes.decorators.kubernetes_cmd",
        "asyncpod.airflow.decorators",
        "asyncpod.airflow.decorators",
    ]
    assert "already registered" not in result.stderr


def _dag_tasks() -> dict[str, Any]:
    from airflow.sdk import DAG, task

    with DAG("decorated", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:

        @task.asyncpod_kubernetes(image="python:3.11-slim")
        def plain(x: int) -> int:
            return x

        @task.asyncpod_kubernetes(
            image="python:3.11-slim", name="given", do_xcom_push=True, multiple_outputs=True,
            deferrable=True, use_dill=True, namespace="ns", env_vars={"A": "1"},
        )  # fmt: skip
        def options() -> dict[str, int]:
            return {"a": 1}

        plain(1)
        options()
    return {t.task_id: t for t in dag.tasks}


def test_the_decorators_defaults_are_the_providers() -> None:
    tasks = _dag_tasks()
    plain, options = tasks["plain"], tasks["options"]
    assert type(plain).__name__ == "KubernetesDecoratedOperator"
    assert plain.name == "k8s-airflow-pod-plain"
    assert plain.random_name_suffix is True
    assert plain.do_xcom_push is False
    assert plain.deferrable is False  # [operators] default_deferrable, as the provider
    assert plain.start_from_trigger is False
    assert plain.op_args == (1,) or list(plain.op_args) == [1]
    assert (options.name, options.do_xcom_push, options.multiple_outputs) == ("given", True, True)
    assert (options.deferrable, options.start_from_trigger) == (True, False)
    assert (options.use_dill, options.namespace, options.env_vars) == (True, "ns", {"A": "1"})


def test_template_fields_and_parameters_are_the_providers() -> None:
    reference = pytest.importorskip("airflow.providers.cncf.kubernetes.decorators.kubernetes")
    from asyncpod.airflow.decorators import KubernetesDecoratedOperator

    theirs = reference._KubernetesDecoratedOperator
    assert sorted(KubernetesDecoratedOperator.template_fields) == sorted(theirs.template_fields)
    ours = inspect.signature(KubernetesDecoratedOperator.__init__).parameters
    assert [p for p in inspect.signature(theirs.__init__).parameters if p not in ours] == []


# ---------------------------------------------------------------- @task.kubernetes_cmd


def test_a_generated_command_is_checked_as_the_provider_checks_it() -> None:
    assert generated_command(["echo", "hi"], "f") == ["echo", "hi"]
    with pytest.raises(TypeError, match="return a list of strings, but got <class 'tuple'>"):
        generated_command(("echo",), "f")
    with pytest.raises(TypeError, match=r"Expected f to return a list of strings, but got \[1\]"):
        generated_command([1], "f")
    with pytest.raises(ValueError, match="The f returned an empty list of commands"):
        generated_command([], "f")


def test_the_cmd_decorators_defaults_and_fields_are_the_providers() -> None:
    reference = pytest.importorskip("airflow.providers.cncf.kubernetes.decorators.kubernetes_cmd")
    from airflow.sdk import DAG, task

    from asyncpod.airflow.decorators import KubernetesCmdDecoratedOperator

    with DAG("cmd", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:

        @task.asyncpod_kubernetes_cmd(image="busybox:1.36", args_only=True)
        def command(who: str) -> list[str]:
            return ["echo", who]

        command("me")

        @task.asyncpod_kubernetes_cmd(image="busybox:1.36", cmds=["sh"], arguments=["-c"])
        def other() -> list[str]:
            return ["true"]

        with pytest.warns(UserWarning, match="`cmds` and `arguments` are unused"):
            other()
    tasks: dict[str, Any] = {t.task_id: t for t in dag.tasks}
    op = tasks["command"]
    assert isinstance(op, KubernetesCmdDecoratedOperator)
    assert (op.name, op.random_name_suffix, op.args_only) == ("k8s-airflow-pod-command", True, True)
    assert (op.deferrable, op.start_from_trigger, op.do_xcom_push) == (False, False, False)
    assert (tasks["other"].cmds, tasks["other"].arguments) == ([], [])
    theirs = reference._KubernetesCmdDecoratedOperator
    assert sorted(KubernetesCmdDecoratedOperator.template_fields) == sorted(theirs.template_fields)
    ours = inspect.signature(KubernetesCmdDecoratedOperator.__init__).parameters
    assert [p for p in inspect.signature(theirs.__init__).parameters if p not in ours] == []
