"""``@task.kubernetes`` (and ``@task.kubernetes_cmd``): Python functions and pods, on
asyncpod's operator.

Why it exists: TaskFlow users run functions in pods with the cncf provider's
``@task.kubernetes``; switching to asyncpod must not break those DAGs. This is the
same decorator - the provider's parameters (every ``KubernetesPodOperator`` one, plus
``use_dill`` and ``multiple_outputs``), its defaults (pod name
``k8s-airflow-pod-<function>`` with a random suffix, ``do_xcom_push=False``), its
template fields (``op_args``, ``op_kwargs`` and the operator's, minus ``cmds`` and
``arguments``) - on :class:`~asyncpod.airflow.operators.KubernetesPodOperator`. The pod
runs the function in the image's ``python`` (:mod:`asyncpod.airflow.pyscript`); its
return value comes back through the XCom sidecar, any size.

Airflow finds it through asyncpod's provider info (:mod:`asyncpod.airflow.provider`):
always as ``@task.asyncpod_kubernetes``, and as ``@task.kubernetes`` when the cncf
provider is not installed. With both installed, ``@task.kubernetes`` stays the
provider's (Airflow keeps the first registration, and the provider's package name sorts
first), so nothing changes under a DAG until its author picks asyncpod's name.

Where it runs: never started in the triggerer - the function's arguments are upstream
XComs resolved on the worker, so the worker builds the pod (renders the script, pickles
the arguments) and creates it. Then, as the provider's decorator: ``deferrable`` defaults
to Airflow's ``[operators] default_deferrable`` (False unless set), and a task that is
not deferrable follows its pod from the worker (asyncpod's trigger run inline, the same
code). ``deferrable=True`` defers to the triggerer like the operator. Not by default,
because a short function's trigger fires within seconds, and Airflow 3.3's scheduler
can then fail the resumed task on the stale "success" of the worker that deferred
(apache/airflow#71580, #72716; seen here with a 2-second function on LocalExecutor).

``@task.kubernetes_cmd`` (:class:`KubernetesCmdDecoratedOperator`) is the provider's other
decorator, registered the same way: the function runs on the worker, with its arguments
and the Airflow context it asks for, and returns the pod's command (``args_only=True``:
the arguments to the image's entry point), checked (a non-empty list of strings) and
then rendered as a template.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from airflow.sdk.bases.decorator import DecoratedOperator, task_decorator_factory

from asyncpod.airflow.operators import KubernetesPodOperator
from asyncpod.airflow.pyscript import generated_command, pod_program, with_program_env

__all__ = [
    "KubernetesCmdDecoratedOperator",
    "KubernetesDecoratedOperator",
    "default_deferrable",
    "kubernetes_cmd_task",
    "kubernetes_task",
]


class KubernetesDecoratedOperator(DecoratedOperator, KubernetesPodOperator):
    """The operator behind ``@task.kubernetes``: the function's call, in a pod."""

    custom_operator_name = "@task.kubernetes"

    # The command and its arguments are the decorator's; the rest is the operator's.
    template_fields: Sequence[str] = (
        "op_args",
        "op_kwargs",
        *(f for f in KubernetesPodOperator.template_fields if f not in ("cmds", "arguments")),
    )
    # The callable is not copied when the task is (it may hold what cannot be).
    shallow_copy_attrs: Sequence[str] = ("python_callable",)

    def __init__(self, namespace: str | None = None, use_dill: bool = False, **kwargs: Any) -> None:
        self.use_dill = use_dill
        function = kwargs["python_callable"]
        kwargs.setdefault("name", f"k8s-airflow-pod-{function.__name__}")
        kwargs.setdefault("random_name_suffix", True)
        kwargs.setdefault("deferrable", default_deferrable())
        kwargs["start_from_trigger"] = False  # the arguments exist only on the worker
        kwargs["cmds"] = ["python"]  # replaced in execute(), as the provider does
        super().__init__(namespace=namespace, **kwargs)

    def execute(self, context: Any) -> Any:
        """Ship the function and its (rendered) arguments, then run the pod."""
        pickling: Any = pickle
        if self.use_dill:
            import dill  # type: ignore[import-untyped]  # the provider's optional dependency; the image needs it too

            pickling = dill
        op_args, op_kwargs = list(self.op_args), dict(self.op_kwargs)
        program = pod_program(
            self.get_python_source_raw(),
            self.python_callable.__name__,
            pickled_input=pickling.dumps({"args": op_args, "kwargs": op_kwargs}),
            pickling_library=pickling.__name__,
            has_arguments=bool(op_args or op_kwargs),
            xcom=bool(self.do_xcom_push),
        )
        self.cmds = program.cmds
        self.arguments = []
        self.env_vars = with_program_env(self.env_vars, program)
        return super().execute(context)

    def get_python_source_raw(self) -> str:
        """The function's source as written (decorators and comments kept)."""
        import inspect

        return inspect.getsource(self.python_callable)


class KubernetesCmdDecoratedOperator(DecoratedOperator, KubernetesPodOperator):
    """The operator behind ``@task.kubernetes_cmd``: the function, on the worker, returns
    the pod's command (or, with ``args_only``, the image entry point's arguments)."""

    custom_operator_name = "@task.kubernetes_cmd"

    # The generated command may hold templates: rendered after the function ran.
    template_fields: Sequence[str] = (
        "op_args",
        "op_kwargs",
        *KubernetesPodOperator.template_fields,
    )
    shallow_copy_attrs: Sequence[str] = ("python_callable",)
    overwrite_rtif_after_execution: bool = True

    def __init__(self, *, python_callable: Callable[..., Any], args_only: bool = False,
                 **kwargs: Any) -> None:  # fmt: skip
        self.args_only = args_only
        given = [kwargs.pop("cmds", None), kwargs.pop("arguments", None)]
        if given != [None, None]:
            warnings.warn(
                f"The `cmds` and `arguments` are unused in {self.custom_operator_name} "
                "decorator. You should return a list of commands or image entrypoint "
                "arguments with args_only=True from the python_callable.",
                UserWarning,
                stacklevel=3,
            )
        kwargs.setdefault("name", f"k8s-airflow-pod-{python_callable.__name__}")
        kwargs.setdefault("random_name_suffix", True)
        kwargs.setdefault("deferrable", default_deferrable())
        kwargs["start_from_trigger"] = False  # the command exists only once the function ran
        super().__init__(python_callable=python_callable, **kwargs)

    def execute(self, context: Any) -> Any:
        """Call the function with its arguments and the context it asks for, then run the pod."""
        try:
            from airflow.sdk.definitions.context import context_merge
        except ImportError:  # Airflow 3.0
            from airflow.utils.context import context_merge  # type: ignore[attr-defined, no-redef]

        self.render_template_fields(context)
        context_merge(context, self.op_kwargs)
        if hasattr(self, "determine_kwargs"):
            kwargs = self.determine_kwargs(context)
        else:  # Airflow 3.0
            from airflow.utils.operator_helpers import (  # type: ignore[attr-defined]
                determine_kwargs,
            )

            kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        command = generated_command(
            self.python_callable(*self.op_args, **kwargs), self.python_callable.__name__
        )
        self.cmds, self.arguments = ([], command) if self.args_only else (command, [])
        self.render_template_fields(context)
        return super().execute(context)


def default_deferrable() -> bool:
    """Airflow's ``[operators] default_deferrable``: the provider's default for the decorator."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # Airflow 3.0: the task SDK has no configuration module yet
        from airflow.configuration import conf

    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


def kubernetes_cmd_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """``@task.kubernetes_cmd``: the function returns the pod's command (``args_only``: its
    arguments to the image's entry point); every operator parameter applies."""
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=KubernetesCmdDecoratedOperator,
        **kwargs,
    )


def kubernetes_task(
    python_callable: Callable[..., Any] | None = None,
    multiple_outputs: bool | None = None,
    **kwargs: Any,
) -> Any:
    """``@task.kubernetes``: run the function in a pod (every operator parameter applies).

    :param python_callable: the function (given when used as ``@task.kubernetes`` bare)
    :param multiple_outputs: unroll a returned dict into one XCom per key
    """
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=KubernetesDecoratedOperator,
        **kwargs,
    )
