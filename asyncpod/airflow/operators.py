"""``KubernetesPodOperator``: the reference operator's parameters, asyncpod underneath.

Why it exists: switching is one import line. The parameters keep the names and
meanings of ``airflow.providers.cncf.kubernetes.operators.pod.KubernetesPodOperator``
(the same ``template_fields``, too); what changes is how the pod is followed: the
worker creates it and defers to :class:`~asyncpod.airflow.triggers.AsyncpodPodTrigger`,
which shares one watch per (cluster, namespace) with every other trigger of its
triggerer and never polls.

* Creation is idempotent per try: the pod's name is derived from (dag, task, run, map
  index, try), so a retried create (the worker restarted) gets 409 and reattaches to
  the same pod - by uid from then on - while a new try gets a new pod.
* The worker that creates the pod opens no session: one POST, and on 409 one LIST
  selected to the task instance's pods (:mod:`asyncpod.airflow.creation`); no
  namespace-wide LIST and no WATCH. The trigger gets the pod's name, uid and
  creation resourceVersion.
* ``do_xcom_push`` needs no ``pods/exec``: a native sidecar sharing ``/airflow/xcom``
  prints ``return.json`` to its log once the base container has ended, and the trigger
  reads it there, any size (:mod:`asyncpod.airflow.xcom`).
* ``on_finish_action`` is applied by the worker that resumes a deferred task
  (``execute_complete``, by uid), as the reference's worker does; its trigger keeps the
  pod (:func:`~asyncpod.airflow.triggers.trigger_finish_action`), so the triggerer's
  event loop sends no DELETE.
* A new try deletes the live pods of earlier tries of the same task instance (unless
  ``on_kill_action="keep_pod"``): a clear that reached no running trigger (or an
  Airflow without the triggerer-side ``on_kill``) leaks no pod.
* A parameter asyncpod cannot honour raises :class:`~asyncpod.UsageError` when the DAG
  is parsed, naming it (:data:`UNSUPPORTED`); parameters that only tune polling, and
  two the reference itself ignores or needs only because its trigger reads no logs
  (``progress_callback``, ``logging_interval``), are accepted and have no effect
  (:data:`NO_EFFECT`).
* ``callbacks`` (``KubernetesPodOperatorCallback`` classes) are called as the reference
  calls them, all on workers with ``mode=SYNC`` (:mod:`asyncpod.airflow.callbacks`,
  ``docs/airflow-callbacks.md``): a task with callbacks always starts on a worker
  (``start_from_trigger`` is ignored for it), and the worker that resumes it deletes
  the pod after ``on_pod_teardown``; nothing
  of them runs in the triggerer. Not deferrable, ``on_pod_starting``, each log line's
  ``progress_callback`` and ``log_formatter`` too (deferred, the reference uses
  neither of the last two, nor does asyncpod).

Where it starts: on a worker, which creates the pod and defers, unless the DAG asks
for ``start_from_trigger=True`` (Airflow 3.3+, deferrable, not mapped;
:func:`starts_in_triggerer`). Measured (issue 19): for a task that starts in the
triggerer, Airflow's triggerer rebuilds the task from the whole serialized DAG
(``DagSerialization.from_dict``) and renders its templates on its event loop, for every
such trigger and again after every triggerer restart; that grows with the DAG (the
rebuild alone, bare operators, quiet 2-core machine: 6 ms per trigger at 100 tasks,
64 ms at 1,000, so ~64 s of loop time for a 1,000-task DAG's triggers;
``python -m benchmarks.airflow_deployment loopcost``), while the worker path's trigger
costs the loop the same follow and none of that. So starting in the triggerer always
costs the loop more than the worker path; what it saves is a worker slot while the pod
is created. It is the DAG author's trade to make, per task, not the default. Without
``deferrable`` the worker runs the same trigger inline.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from typing import Any

import anyio
from airflow.sdk import BaseOperator

from asyncpod.airflow.callbacks import (
    CallbackCaller,
    callback_list,
    resume_calls,
)
from asyncpod.airflow.connection import (
    DEFAULT_CONN_ID,
    KubeTarget,
    load_cluster_config,
    load_target,
    open_client,
)
from asyncpod.airflow.creation import CreatedPod, create_try_pod
from asyncpod.airflow.deletion import delete_earlier_tries, delete_pod
from asyncpod.airflow.podbuild import build_manifest, secret_to_json, to_api
from asyncpod.airflow.tries import TryKey, pod_name_for
from asyncpod.airflow.triggers import (
    FINISH_ACTIONS,
    KILL_ACTIONS,
    PER_POD_KWARGS,
    START_CLASSPATH,
    START_TEMPLATE_FIELDS,
    AsyncpodPodTrigger,
    compact_start_kwargs,
    resumed_worker_deletes,
    should_delete,
    trigger_finish_action,
)
from asyncpod.airflow.triggersettings import check_triggerer_settings
from asyncpod.core.runner import RunOptions
from asyncpod.errors import AsyncpodError, NotFoundError, UsageError
from asyncpod.kube.logs import LogLine
from asyncpod.kube.pods import Pods
from asyncpod.results import Outcome
from asyncpod.spec import PodSpec

__all__ = [
    "NO_EFFECT",
    "UNSUPPORTED",
    "KubernetesPodOperator",
    "starts_in_triggerer",
    "supports_start_from_trigger",
]

#: Parameters that cannot be honoured, and why; any value but the default fails at parse time.
UNSUPPORTED: Mapping[str, str] = {
    "trigger_kwargs": "the trigger is asyncpod's own",
    "durable": "not implemented by asyncpod",
}
#: Parameters accepted for compatibility that change nothing: the first four tune
#: polling; ``progress_callback`` the reference stores and never calls (provider 10.25.0);
#: ``logging_interval`` makes the reference's deferred task return to a worker every so
#: many seconds to fetch its logs, while asyncpod's trigger writes them into the task log
#: as they come.
NO_EFFECT = (
    "poll_interval",
    "startup_check_interval_seconds",
    "base_container_status_polling_interval",
    "log_events_on_startup",
    "progress_callback",
    "logging_interval",
)


class KubernetesPodOperator(BaseOperator):
    """Run a pod; a drop-in for the cncf.kubernetes provider's operator (see module docs)."""

    template_fields: Sequence[str] = (
        "image",
        "name",
        "hostname",
        "cmds",
        "annotations",
        "arguments",
        "env_vars",
        "labels",
        "config_file",
        "pod_template_file",
        "pod_template_dict",
        "namespace",
        "container_resources",
        "volumes",
        "volume_mounts",
        "cluster_context",
        "env_from",
        "configmaps",
        "node_selector",
        "kubernetes_conn_id",
        "base_container_name",
        "trigger_kwargs",
    )
    template_fields_renderers = {"env_vars": "py"}  # noqa: RUF012 - Airflow's convention
    ui_color = "#6ea8fe"

    def __init__(
        self,
        *,
        kubernetes_conn_id: str | None = DEFAULT_CONN_ID,
        namespace: str | None = None,
        image: str | None = None,
        name: str | None = None,
        random_name_suffix: bool = True,
        cmds: list[str] | None = None,
        arguments: list[str] | None = None,
        ports: list[Any] | None = None,
        volume_mounts: list[Any] | None = None,
        volumes: list[Any] | None = None,
        env_vars: list[Any] | dict[str, str] | None = None,
        env_from: list[Any] | None = None,
        secrets: list[Any] | None = None,
        in_cluster: bool | None = None,
        cluster_context: str | None = None,
        labels: dict[str, str] | None = None,
        reattach_on_restart: bool | None = None,
        durable: bool | None = None,
        startup_timeout_seconds: int = 120,
        startup_check_interval_seconds: int = 5,
        schedule_timeout_seconds: int | None = None,
        get_logs: bool = True,
        base_container_name: str | None = None,
        base_container_status_polling_interval: float = 1,
        init_container_logs: Iterable[str] | str | bool | None = None,
        container_logs: Iterable[str] | str | bool | None = None,
        image_pull_policy: str | None = None,
        annotations: dict[str, str] | None = None,
        container_resources: Any = None,
        affinity: Any = None,
        config_file: str | None = None,
        runtime_class_name: str | None = None,
        node_selector: dict[str, str] | None = None,
        image_pull_secrets: Any = None,
        service_account_name: str | None = None,
        automount_service_account_token: bool | None = None,
        hostnetwork: bool = False,
        host_aliases: list[Any] | None = None,
        tolerations: list[Any] | None = None,
        security_context: Any = None,
        container_security_context: Any = None,
        xcom_sidecar_container_security_context: Any = None,
        dnspolicy: str | None = None,
        dns_config: Any = None,
        hostname: str | None = None,
        subdomain: str | None = None,
        schedulername: str | None = None,
        full_pod_spec: Any = None,
        init_containers: list[Any] | None = None,
        log_events_on_failure: bool = False,
        log_events_on_startup: bool = True,
        do_xcom_push: bool = False,
        pod_template_file: str | None = None,
        pod_template_dict: dict[str, Any] | None = None,
        priority_class_name: str | None = None,
        pod_runtime_info_envs: list[Any] | None = None,
        termination_grace_period: int | None = None,
        configmaps: list[str] | None = None,
        skip_on_exit_code: int | Container[int] | None = None,
        deferrable: bool = True,
        poll_interval: float = 2,
        log_pod_spec_on_failure: bool = True,
        on_finish_action: str = "delete_pod",
        on_kill_action: str = "delete_pod",
        is_delete_operator_pod: bool | None = None,
        termination_message_policy: str = "File",
        active_deadline_seconds: int | None = None,
        callbacks: Any = None,
        progress_callback: Any = None,
        logging_interval: int | None = None,
        trigger_kwargs: dict[str, Any] | None = None,
        container_name_log_prefix_enabled: bool = True,
        log_formatter: Any = None,
        **kwargs: Any,
    ) -> None:
        given = {
            "trigger_kwargs": trigger_kwargs,
            "durable": durable,
        }
        for param, value in given.items():
            if value is not None:
                raise UsageError(
                    f"asyncpod's KubernetesPodOperator cannot honour {param!r} "
                    f"({UNSUPPORTED[param]}); remove it, or keep the cncf.kubernetes operator"
                )
        if reattach_on_restart is False:
            raise UsageError(
                "asyncpod's KubernetesPodOperator cannot honour 'reattach_on_restart=False': "
                "within one try it always reattaches to the try's pod (by uid)"
            )
        if is_delete_operator_pod is not None:
            on_finish_action = "delete_pod" if is_delete_operator_pod else "keep_pod"
        if on_finish_action not in FINISH_ACTIONS:
            raise UsageError(f"on_finish_action must be one of {', '.join(FINISH_ACTIONS)}")
        if on_kill_action not in KILL_ACTIONS:
            raise UsageError(f"on_kill_action must be one of {', '.join(KILL_ACTIONS)}")
        if pod_template_file and pod_template_dict:
            raise UsageError("give pod_template_file or pod_template_dict, not both")
        if startup_timeout_seconds is not None and startup_timeout_seconds <= 0:
            raise UsageError("startup_timeout_seconds must be positive")
        start_from_trigger = kwargs.pop("start_from_trigger", None)
        super().__init__(**kwargs)
        self.do_xcom_push = do_xcom_push  # BaseOperator's own attribute, same meaning
        self.kubernetes_conn_id = kubernetes_conn_id
        self.namespace = namespace
        self.image = image
        self.name = name
        self.random_name_suffix = random_name_suffix
        self.cmds = cmds or []
        self.arguments = arguments or []
        self.ports = ports or []
        self.volume_mounts = volume_mounts or []
        self.volumes = volumes or []
        self.env_vars = env_vars
        self.env_from = env_from or []
        self.secrets = secrets or []
        self.in_cluster = in_cluster
        self.cluster_context = cluster_context
        self.labels = labels or {}
        self.reattach_on_restart = True if reattach_on_restart is None else reattach_on_restart
        self.durable = durable
        self.startup_timeout_seconds = startup_timeout_seconds
        self.startup_check_interval_seconds = startup_check_interval_seconds
        self.schedule_timeout_seconds = schedule_timeout_seconds
        self.get_logs = get_logs
        self.base_container_name = base_container_name or "base"
        self.base_container_status_polling_interval = base_container_status_polling_interval
        self.init_container_logs = init_container_logs
        self.container_logs = container_logs
        self.image_pull_policy = image_pull_policy
        self.annotations = annotations or {}
        self.container_resources = container_resources
        self.affinity = affinity
        self.config_file = config_file
        self.runtime_class_name = runtime_class_name
        self.node_selector = node_selector or {}
        self.image_pull_secrets = image_pull_secrets
        self.service_account_name = service_account_name
        self.automount_service_account_token = automount_service_account_token
        self.hostnetwork = hostnetwork
        self.host_aliases = host_aliases
        self.tolerations = tolerations or []
        self.security_context = security_context or {}
        self.container_security_context = container_security_context
        self.xcom_sidecar_container_security_context = xcom_sidecar_container_security_context
        self.dnspolicy = dnspolicy
        self.dns_config = dns_config
        self.hostname = hostname
        self.subdomain = subdomain
        self.schedulername = schedulername
        self.full_pod_spec = full_pod_spec
        self.init_containers = init_containers or []
        self.log_events_on_failure = log_events_on_failure
        self.log_events_on_startup = log_events_on_startup
        self.pod_template_file = pod_template_file
        self.pod_template_dict = pod_template_dict
        self.priority_class_name = priority_class_name
        self.pod_runtime_info_envs = pod_runtime_info_envs or []
        self.termination_grace_period = termination_grace_period
        self.configmaps = configmaps or []
        self.skip_on_exit_code = _exit_codes(skip_on_exit_code)
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.log_pod_spec_on_failure = log_pod_spec_on_failure
        self.on_finish_action = on_finish_action
        self.on_kill_action = on_kill_action
        self.is_delete_operator_pod = is_delete_operator_pod
        self.termination_message_policy = termination_message_policy
        self.active_deadline_seconds = active_deadline_seconds
        self.callbacks = callback_list(callbacks)
        self.progress_callback = progress_callback
        self.logging_interval = logging_interval
        self.trigger_kwargs = trigger_kwargs
        self.container_name_log_prefix_enabled = container_name_log_prefix_enabled
        self.log_formatter = log_formatter
        self._pod_ref: tuple[str, str, str] | None = None
        self._caller: CallbackCaller | None = None
        self._started: bool | None = None  # not deferrable: whether on_pod_starting ran
        self._target: KubeTarget | None = None
        self._setup_start_from_trigger(start_from_trigger)

    def _setup_start_from_trigger(self, wanted: bool | None) -> None:
        """Start in the triggerer only when the DAG asks (:func:`starts_in_triggerer`)
        and the task has no ``callbacks`` (they run on the worker that creates the pod).

        A mapped task never gets here at parse time (its operator is built on the
        worker), so the class default - start on a worker - applies to it, as it must:
        expand() values do not reach a trigger started from the scheduler.
        """
        if not starts_in_triggerer(
            wanted,
            deferrable=self.deferrable,
            airflow_can=supports_start_from_trigger,
            callbacks=bool(self.callbacks),
        ):
            return
        from airflow.triggers.base import StartTriggerArgs

        self.start_from_trigger = True
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=START_CLASSPATH,
            next_method="execute_complete",
            trigger_kwargs=self.start_trigger_kwargs(),
            next_kwargs=None,
            timeout=None,
        )

    def start_trigger_kwargs(self) -> dict[str, Any]:
        """What the start trigger is built from: the pod's parameters as JSON, templates
        unrendered (the triggerer renders them), and the follow options; only what
        differs from the defaults (:func:`~asyncpod.airflow.triggers.compact_start_kwargs`:
        Airflow stores this in every task of the serialized DAG)."""
        _, options = self.build_trigger(namespace="", pod_name="", pod_uid="").serialize()
        for reference in PER_POD_KWARGS:
            options.pop(reference)
        static = set(_MANIFEST_PARAMS) - set(START_TEMPLATE_FIELDS)
        static -= {"base_container_name", "do_xcom_push", "secrets"}
        pod_params = {key: to_api(getattr(self, key)) for key in sorted(static)}
        pod_params["secrets"] = [secret_to_json(secret) for secret in self.secrets]
        fields = {name: to_api(getattr(self, name)) for name in START_TEMPLATE_FIELDS}
        return compact_start_kwargs(
            {
                "pod_params": pod_params,
                "random_name_suffix": self.random_name_suffix,
                **fields,
                **options,
            }
        )

    # ------------------------------------------------------------------ building
    def build_manifest(self, *, extra_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The pod this operator runs, as a raw manifest (before asyncpod's own labels)."""
        params = {key: getattr(self, key) for key in _MANIFEST_PARAMS}
        return build_manifest(params, labels=dict(extra_labels or {}))

    def _log_selection(self, value: Any, *, default: list[str] | bool) -> list[str] | bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return [value]
        return list(value)

    def build_trigger(
        self,
        *,
        namespace: str,
        pod_name: str,
        pod_uid: str,
        pod_resource_version: str | None = None,
        deferred_at: float | None = None,
    ) -> AsyncpodPodTrigger:
        """The trigger that follows the pod (also run inline when not deferrable).

        ``deferred_at``: the wall time of the deferral, when it defers
        (asyncpod/airflow/resumehold.py).
        """
        return AsyncpodPodTrigger(
            pod_name=pod_name,
            pod_namespace=namespace,
            pod_uid=pod_uid,
            pod_resource_version=pod_resource_version,
            kubernetes_conn_id=self.kubernetes_conn_id,
            config_file=self.config_file,
            cluster_context=self.cluster_context,
            in_cluster=self.in_cluster,
            base_container_name=self.base_container_name,
            get_logs=self.get_logs,
            container_logs=self._log_selection(self.container_logs, default=False),
            init_container_logs=self._log_selection(self.init_container_logs, default=False),
            container_name_log_prefix_enabled=self.container_name_log_prefix_enabled,
            startup_timeout=self.startup_timeout_seconds,
            schedule_timeout=self.schedule_timeout_seconds,
            on_finish_action=trigger_finish_action(
                self.on_finish_action, worker_resumes=self.deferrable or bool(self.callbacks)
            ),
            on_kill_action=self.on_kill_action,
            termination_grace_period=self.termination_grace_period,
            do_xcom_push=self.do_xcom_push,
            skip_on_exit_code=sorted(self.skip_on_exit_code),
            log_events_on_failure=self.log_events_on_failure,
            deferred_at=deferred_at,
        )

    # ------------------------------------------------------------------ running
    def execute(self, context: Any) -> Any:
        key = TryKey.of(context["ti"])
        pod_name = pod_name_for(
            self.name or self.task_id,
            dag_id=key.dag_id, task_id=key.task_id, run_id=key.run_id,
            map_index=key.map_index, try_number=key.try_number,
            random_suffix=self.random_name_suffix or not self.name,
        )  # fmt: skip
        spec = PodSpec(
            container_name=self.base_container_name,
            task_key=key.task_key(),
            template=self.build_manifest(extra_labels=key.labels()),
        )
        target = self._kube_target()
        namespace = self.namespace or target.namespace or asyncio.run(_context_namespace(target))
        manifest = spec.to_manifest(namespace=namespace, name=pod_name, labels={})
        caller = self._callbacks()
        if caller is not None:
            manifest = caller.manifest_created(manifest, context)
        if self.deferrable:  # a bad setting fails here, before a pod exists to leak
            check_triggerer_settings()
        pod = asyncio.run(self._create(target, namespace, spec, manifest, pod_name, key))
        self._pod_ref = (pod.namespace, pod.name, pod.uid)
        if caller is not None:
            caller.call("on_pod_creation", context, pod=caller.pod(pod.pod))
        self.log.info(
            "%s pod %s/%s (uid %s)",
            "reattached to" if pod.reattached else "created", pod.namespace, pod.name, pod.uid,
        )  # fmt: skip
        trigger = self.build_trigger(
            namespace=pod.namespace,
            pod_name=pod.name,
            pod_uid=pod.uid,
            pod_resource_version=pod.resource_version,
            deferred_at=time.time() if self.deferrable else None,
        )
        if self.deferrable:
            self.defer(trigger=trigger, method_name="execute_complete")
        if caller is None and self.log_formatter is None:
            event = asyncio.run(_first_event(trigger))
        else:
            inline = _InlineTrigger(
                on_line=self._line_hook(caller, pod.pod, context), **trigger.serialize()[1]
            )
            try:
                event = asyncio.run(self._follow_inline(inline, caller, context, target))
            except BaseException as error:
                # A callback or the formatter raised while the pod ran: the reference's
                # sync path cleans up in a finally, and raises the callback's own error.
                if should_delete(self.on_finish_action, Outcome.CANCELLED.value):
                    asyncio.run(self._delete(pod.namespace, pod.name, pod.uid))
                sole = _sole(error)
                if sole is error:
                    raise
                raise sole from None
        return self.execute_complete(context, event)

    def _line_hook(
        self, caller: CallbackCaller | None, created: Mapping[str, Any], context: Any
    ) -> Callable[[LogLine], str | None]:
        """What a non-deferrable task does with each log line, as the reference's sync log
        reading: the callbacks' ``progress_callback``, then ``log_formatter``. A line
        before ``on_pod_starting`` was called means the pod runs: it is called first (the
        pod read with the callbacks' client when there is one), as in the reference."""
        pod = caller.pod(created) if caller is not None else None
        formatter = self.log_formatter

        def on_line(line: LogLine) -> str | None:
            if caller is not None:
                if self._started is False:
                    self._started = True
                    client = caller.client()
                    now = pod
                    if client is not None:
                        meta = created["metadata"]
                        now = client.read_namespaced_pod(meta["name"], meta["namespace"])
                    caller.call("on_pod_starting", context, pod=now)
                caller.progress(
                    line=line.text, container_name=line.container,
                    timestamp=_log_time(line.timestamp), pod=pod,
                )  # fmt: skip
            return None if formatter is None else str(formatter(line.container, line.text))

        return on_line

    async def _follow_inline(
        self,
        trigger: AsyncpodPodTrigger,
        caller: CallbackCaller | None,
        context: Any,
        target: KubeTarget,
    ) -> dict[str, Any]:
        """Not deferrable: the trigger inline, and ``on_pod_starting`` once the pod has
        left Pending (the reference's sync path calls it after the pod started)."""
        if caller is None:
            return await _first_event(trigger)
        self._started = False
        async with anyio.create_task_group() as group:
            group.start_soon(self._announce_start, caller, context, target, trigger)
            event = await _first_event(trigger)
            group.cancel_scope.cancel()
        return event

    async def _announce_start(
        self,
        caller: CallbackCaller,
        context: Any,
        target: KubeTarget,
        trigger: AsyncpodPodTrigger,
    ) -> None:
        async with await open_client(target) as client:
            pods = Pods(client)
            while True:
                await anyio.sleep(1)
                try:
                    pod = await pods.get(trigger.pod_namespace, trigger.pod_name)
                except AsyncpodError:
                    continue  # gone or unreachable: the trigger's event tells
                if pod.get("status", {}).get("phase", "Pending") != "Pending":
                    break
        if self._started:
            return  # a log line came first
        self._started = True
        await anyio.to_thread.run_sync(
            lambda: caller.call("on_pod_starting", context, pod=caller.pod(pod))
        )

    def _kube_target(self) -> KubeTarget:
        """The task's cluster (its connection read once per operator instance)."""
        if self._target is None:
            self._target = asyncio.run(
                load_target(
                    self.kubernetes_conn_id,
                    in_cluster=self.in_cluster,
                    config_file=self.config_file,
                    cluster_context=self.cluster_context,
                )
            )
        return self._target

    def _callbacks(self) -> CallbackCaller | None:
        """The task's callbacks' caller (one per operator instance), None without any."""
        if not self.callbacks:
            return None
        if self._caller is None:
            self._caller = CallbackCaller(self.callbacks, operator=self, target=self._kube_target)
        return self._caller

    async def _create(
        self,
        target: KubeTarget,
        namespace: str,
        spec: PodSpec,
        manifest: dict[str, Any],
        pod_name: str,
        key: TryKey,
    ) -> CreatedPod:
        """Create this try's pod (or find it), then sweep earlier tries: no session."""
        async with await open_client(target) as client:
            pod = await create_try_pod(
                client,
                namespace,
                spec,
                pod_name,
                key,
                retry_window=RunOptions().create_retry_window,
                manifest=manifest,
            )
            if self.on_kill_action == "delete_pod":
                await delete_earlier_tries(
                    client,
                    namespace,
                    key,
                    grace_period=self.termination_grace_period,
                    log=self.log,
                    listed=pod.listed,
                )
            return pod

    def execute_complete(self, context: Any, event: Mapping[str, Any]) -> Any:
        """Turn the trigger's event into the task's result, skip or failure."""
        try:
            from airflow.sdk.exceptions import AirflowException, AirflowSkipException
        except ImportError:  # Airflow 3.0: not in the task SDK yet
            from airflow.exceptions import (  # type: ignore[attr-defined, no-redef]
                AirflowException,
                AirflowSkipException,
            )

        status = event.get("status")
        ref = f"{event.get('pod_namespace')}/{event.get('pod_name')}"
        caller = self._callbacks()
        if caller is not None:
            self._resume_callbacks(caller, context, event)
        else:
            self._finish_pod(event)
        ti = context["ti"]
        ti.xcom_push(key="pod_name", value=event.get("pod_name"))
        ti.xcom_push(key="pod_namespace", value=event.get("pod_namespace"))
        if event.get("pod_deleted"):  # by the trigger, which leaves the line to this
            self.log.info("deleted pod %s", ref)
        if status == "success":
            self.log.info("pod %s succeeded", ref)
            return event.get("xcom") if self.do_xcom_push else None
        if status == "skipped":
            raise AirflowSkipException(
                f"pod {ref} exited with code {event.get('exit_code')}, listed in skip_on_exit_code"
            )
        for line in event.get("events") or ():
            self.log.error("pod event: %s", line)
        if self.log_pod_spec_on_failure:
            self.log.error("pod spec: %s", self.build_manifest())
        raise AirflowException(
            f"pod {ref} {event.get('outcome')}: reason {event.get('reason')}, "
            f"exit code {event.get('exit_code')}, message {event.get('message')}"
        )

    def _finish_pod(self, event: Mapping[str, Any]) -> None:
        """Apply ``on_finish_action`` to the pod the event names, unless its trigger did.

        A deferred task's trigger keeps its pod (:func:`trigger_finish_action`): the
        worker that resumes it deletes it here, by uid, as the reference's worker does
        (:func:`resumed_worker_deletes` decides). A failed delete fails the task, as in
        the reference.
        """
        if resumed_worker_deletes(event, self.on_finish_action):
            namespace, name = str(event["pod_namespace"]), str(event["pod_name"])
            asyncio.run(self._delete(namespace, name, event.get("pod_uid")))

    def _resume_callbacks(
        self, caller: CallbackCaller, context: Any, event: Mapping[str, Any]
    ) -> None:
        """The calls the reference makes when its task resumes, around the deletion the
        trigger left to this worker (:func:`~asyncpod.airflow.callbacks.resume_calls`)."""
        namespace, name = event.get("pod_namespace"), event.get("pod_name")
        if not namespace or not name:
            return
        found = asyncio.run(self._read_pod(self._kube_target(), namespace, name))
        if found is None:
            self.log.warning("pod %s/%s is gone: no pod callbacks", namespace, name)
            return
        pod = caller.pod(found)
        if self._started is False and event.get("exit_code") is not None:
            # Not deferrable, and the pod ran between two looks: announced now.
            self._started = True
            caller.call("on_pod_starting", context, pod=pod)
        before, cleanup = resume_calls(str(event.get("status")), started=self._started)
        try:
            for method in before:
                caller.call(method, context, pod=pod)
        finally:
            if resumed_worker_deletes(event, self.on_finish_action):
                uid = event.get("pod_uid") or found["metadata"].get("uid")
                asyncio.run(self._delete(namespace, name, uid))
        if cleanup:
            caller.call("on_pod_cleanup", context, pod=pod)

    @staticmethod
    async def _read_pod(target: KubeTarget, namespace: str, name: str) -> dict[str, Any] | None:
        async with await open_client(target) as client:
            try:
                return await Pods(client).get(namespace, name)
            except NotFoundError:
                return None

    def on_kill(self) -> None:
        """Worker-side kill (not deferred): delete this try's pod, by uid."""
        if self._pod_ref is None or self.on_kill_action != "delete_pod":
            return
        asyncio.run(self._delete(*self._pod_ref))

    async def _delete(self, namespace: str, name: str, uid: str | None) -> None:
        target = await load_target(
            self.kubernetes_conn_id,
            in_cluster=self.in_cluster,
            config_file=self.config_file,
            cluster_context=self.cluster_context,
        )  # not _kube_target(): on_kill may run while execute() is in asyncio.run
        async with await open_client(target) as client:
            await delete_pod(
                client,
                namespace,
                name,
                uid=uid,
                grace_period=self.termination_grace_period,
                log=self.log,
            )


def starts_in_triggerer(
    wanted: bool | None,
    *,
    deferrable: bool,
    airflow_can: Callable[[], bool],
    callbacks: bool = False,
) -> bool:
    """Whether a task starts in the triggerer (pure but for ``airflow_can``, asked last).

    Only when the DAG says ``start_from_trigger=True`` and the task is deferrable; the
    default (None) and False start on a worker (see the module docs for the
    measurement). A task with ``callbacks`` starts on a worker whatever it asks: the
    reference calls them on the worker that creates the pod, and the triggerer's loop
    must not run user code. Asking for it on an Airflow that cannot (before 3.3, where the
    scheduler ignores it) is a :class:`UsageError` rather than a silent worker start.
    """
    if not wanted or not deferrable or callbacks:
        return False
    if not airflow_can():
        raise UsageError("start_from_trigger=True needs Airflow 3.3 or later")
    return True


def supports_start_from_trigger() -> bool:
    """Airflow 3.3+ starts deferrable tasks in the triggerer (3.1/3.2 ignore it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("apache-airflow-core")
    except PackageNotFoundError:
        text = version("apache-airflow")
    major, minor = (int(part) for part in re.findall(r"\d+", text)[:2])
    return (major, minor) >= (3, 3)


class _InlineTrigger(AsyncpodPodTrigger):
    """The trigger as a non-deferrable task's worker runs it: ``on_line`` sees each log
    line first and may return the text to log instead (``log_formatter``). Never
    serialized, never in a triggerer: a callable runs only on the worker."""

    def __init__(self, *, on_line: Callable[[LogLine], str | None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_line = on_line

    def _emit_line(self, line: LogLine) -> None:
        text = self._on_line(line)
        if text is None:
            super()._emit_line(line)
        else:
            self.log.info("%s", text)


def _sole(error: BaseException) -> BaseException:
    """The one error inside (nested) exception groups of one, else ``error``."""
    while True:
        members = getattr(error, "exceptions", None)  # a (Base)ExceptionGroup
        if not isinstance(members, tuple) or len(members) != 1:
            return error
        error = members[0]


def _log_time(stamp: str) -> Any:
    """A log line's RFC 3339 timestamp as the reference passes it (a pendulum DateTime)."""
    import pendulum

    try:
        return pendulum.parse(stamp)
    except (ValueError, TypeError):
        return None


async def _context_namespace(target: KubeTarget) -> str:
    """The namespace of the target's kubeconfig context (or service account), else default."""
    return (await load_cluster_config(target)).namespace or "default"


async def _first_event(trigger: AsyncpodPodTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        payload: dict[str, Any] = event.payload
        return payload
    raise RuntimeError("the trigger ended without an event")


def _exit_codes(value: int | Container[int] | None) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, int):
        return {value}
    if isinstance(value, Iterable):
        return {int(v) for v in value}
    raise UsageError("skip_on_exit_code must be an int or a collection of ints")


_MANIFEST_PARAMS = (
    "image", "cmds", "arguments", "ports", "volume_mounts", "volumes", "env_vars",
    "env_from", "secrets", "labels", "annotations", "container_resources", "affinity",
    "runtime_class_name", "node_selector", "image_pull_secrets", "service_account_name",
    "automount_service_account_token", "hostnetwork", "host_aliases", "tolerations",
    "security_context", "container_security_context", "dnspolicy", "dns_config", "hostname",
    "subdomain", "schedulername", "full_pod_spec", "init_containers", "do_xcom_push",
    "pod_template_file", "pod_template_dict", "priority_class_name", "pod_runtime_info_envs",
    "termination_grace_period", "configmaps", "image_pull_policy", "termination_message_policy",
    "active_deadline_seconds", "base_container_name", "xcom_sidecar_container_security_context",
)  # fmt: skip
