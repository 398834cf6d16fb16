"""How a run comes to have its pod: create it without ever making two, or find it.

Why a module of its own: the start is where a run meets the API server's failures
head on. A create whose answer was lost may have made the pod; a create cut off by a
cancellation may make it a moment later; a name chosen by a task key may be held by an
earlier process's pod of the same task. Each of those is decided by a pure function of
:mod:`asyncpod.core.policy` (``resolve_conflict``, ``may_retry``); this module carries
the decisions out, with the run's one retry loop (:mod:`asyncpod.core.retrying`):

* :meth:`PodStart.create` chooses the name itself (never ``generateName``) and marks
  the create with a random token kept across its retries: 409 + our token is our own
  create, adopted; 409 for a pod of the same run and task is reattached to. The pod a
  409 is about is read from the shared watch, which keeps it (the start subscribed to
  the name before the POST), and with a GET only when the watch has nothing under it.
* :meth:`PodStart.attach` finds the pod to follow by name (and uid), from the watch
  when it knows the pod.
* :meth:`PodStart.find_cut_create` answers, at cleanup, whether a create that was cut
  off made a pod after all (it carries our token), so the run can delete it.

What it deliberately does not do: follow the pod, judge its states or delete it (the
run does: :mod:`asyncpod.core.runner`).
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any, Final

import anyio

from asyncpod.core.informer import PodInformer, PodSubscription
from asyncpod.core.policy import (
    CREATE_ATTEMPT_ANNOTATION,
    ConflictVerdict,
    created_nothing,
    refusal_message,
    resolve_conflict,
)
from asyncpod.core.retrying import backoff, until_answered
from asyncpod.errors import AsyncpodError, ConflictError, NotFoundError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.pods import Pods
from asyncpod.spec import RUN_ID_LABEL, TASK_KEY_ANNOTATION, PodSpec

__all__ = ["PodStart"]

logger = logging.getLogger("asyncpod.runner")

#: How many random names a create draws before giving up on 409s for namesakes.
NAME_DRAWS: Final = 3

#: How long a 409 waits for the namespace's watch to have listed before reading.
SYNC_GRACE: Final = 5.0


class PodStart:
    """One run's way to its pod; holds what cleanup needs to know of it.

    ``name`` is the pod's (drawn by :meth:`create` when None), ``subscription`` the
    run's subscription to it on the shared watch, ``may_have_created`` whether a
    create may have made a pod whose answer was never read, ``reattached`` whether
    the pod is an earlier process's.
    """

    __slots__ = (
        "_client",
        "_errors_at_start",
        "_informer",
        "_token",
        "may_have_created",
        "name",
        "namespace",
        "pods",
        "reattached",
        "subscription",
    )

    def __init__(
        self,
        *,
        client: KubeClient,
        informer: PodInformer,
        namespace: str,
        name: str | None,
        subscription: PodSubscription | None = None,
    ) -> None:
        self._client = client
        self.pods = Pods(client)  # the run's, too: one per run
        self._informer = informer
        self.namespace = namespace
        self.name = name
        # An attach may be handed the subscription its caller opened to look for the
        # pod (Cluster.attach, Cluster.follow): kept open, the informer kept the pod for it.
        self.subscription: PodSubscription | None = subscription
        self.may_have_created = False
        self.reattached = False
        self._token = ""
        # Transport failures the client had seen when the run began: more since then
        # means the API server was unreachable during the run (see restarted()).
        self._errors_at_start = client.statistics().connection_errors

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name or '?'}"

    def restarted(self) -> bool:
        """Whether the API server was unreachable during this run (``policy.may_retry``)."""
        return self._client.statistics().connection_errors > self._errors_at_start

    def close(self) -> None:
        if self.subscription is not None:
            self.subscription.close()

    # ------------------------------------------------------------------ create
    async def create(
        self,
        spec: PodSpec,
        *,
        labels: dict[str, str],
        run_id: str | None,
        window: float,
    ) -> dict[str, Any]:
        """POST ``spec`` (validated), riding out an outage for ``window`` seconds; the
        pod made or adopted. Never two pods; ConflictError for a name we may not take."""
        generated = self.name is None
        deadline = time.monotonic() + window
        for _draw in range(NAME_DRAWS if generated else 1):
            if generated:
                self.name = f"asyncpod-{secrets.token_hex(5)}"
            assert self.name is not None
            self._token = secrets.token_hex(8)
            manifest = spec.to_manifest(namespace=self.namespace, name=self.name, labels=labels)
            manifest["metadata"]["annotations"][CREATE_ATTEMPT_ANNOTATION] = self._token
            self.close()
            self.subscription = self._informer.subscribe(self.name)
            created = await self._post(
                manifest, deadline, generated=generated, run_id=run_id, task_key=spec.task_key
            )
            if created is not None:
                assert self.subscription is not None
                self.subscription.pin(str(created["metadata"]["uid"]))
                return created
        raise ConflictError(
            f"no free pod name after {NAME_DRAWS} tries in {self.namespace}",
            status=409,
            reason="AlreadyExists",
        )

    async def _post(
        self,
        manifest: dict[str, Any],
        deadline: float,
        *,
        generated: bool,
        run_id: str | None,
        task_key: str | None,
    ) -> dict[str, Any] | None:
        """The created (or adopted) pod; None when a random name was taken."""
        failures = 0
        while True:
            try:
                return await until_answered(
                    lambda: self._post_once(manifest),
                    deadline=deadline, restarted=self.restarted, what=f"create of {self.ref}",
                )  # fmt: skip
            except ConflictError as conflict:
                existing = await self._namesake(deadline)
                if existing is None:
                    failures += 1
                    if time.monotonic() >= deadline:
                        raise
                    await anyio.sleep(backoff(failures))
                    continue  # the namesake went away: create again
                verdict = resolve_conflict(
                    existing,
                    token=self._token,
                    generated_name=generated,
                    run_id=run_id,
                    task_key=task_key,
                    run_id_label=RUN_ID_LABEL,
                    task_key_annotation=TASK_KEY_ANNOTATION,
                )
                return self._after_conflict(verdict, existing, conflict)

    async def _post_once(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """One POST of the create. ``may_have_created`` stays true after an attempt
        whose fate is unknown (cut, timed out, a 5xx), not after a refusal
        (:func:`~asyncpod.core.policy.created_nothing`)."""
        before, self.may_have_created = self.may_have_created, True
        try:
            # The run keeps the answer projected (without managedFields).
            return await self.pods.create(self.namespace, manifest, managed_fields=False)
        except AsyncpodError as error:
            if created_nothing(error):
                self.may_have_created = before
            raise

    def _after_conflict(
        self, verdict: ConflictVerdict, existing: dict[str, Any], conflict: ConflictError
    ) -> dict[str, Any] | None:
        if verdict is ConflictVerdict.OURS:
            logger.info("create of %s was answered late: adopting the pod", self.ref)
            return existing
        if verdict is ConflictVerdict.OTHER_NAME:
            return None
        if verdict is ConflictVerdict.REATTACH:
            self.reattached = True
            uid = (existing.get("metadata") or {}).get("uid")
            logger.debug("reattached to existing pod %s (uid %s)", self.ref, uid)  # callers say it
            return existing
        message = refusal_message(verdict, existing, self.ref)
        raise ConflictError(message, status=409, reason="AlreadyExists", pod=self.ref) from (
            conflict
        )

    async def _namesake(self, deadline: float) -> dict[str, Any] | None:
        """The pod a create got 409 for: from the shared watch when it knows the pod
        (it does once synced: the start subscribed to the name before the POST, so the
        watch keeps that pod, finished or not), else read; None if it is gone."""
        with anyio.move_on_after(SYNC_GRACE):
            await self._informer.wait_synced()
        assert self.name is not None
        return self._informer.get(self.name) or await self.get(deadline)

    async def get(self, deadline: float) -> dict[str, Any] | None:
        """GET the pod by name, riding through an outage until ``deadline``; None if 404."""
        assert self.name is not None
        name = self.name
        try:
            return await until_answered(
                lambda: self.pods.get(self.namespace, name),
                deadline=deadline, restarted=self.restarted, what=f"read of {self.ref}",
            )  # fmt: skip
        except NotFoundError:
            return None

    # ------------------------------------------------------------------ attach
    async def attach(self, uid: str | None, *, window: float) -> dict[str, Any]:
        """The existing pod to follow (by name; with ``uid``, only that very pod)."""
        assert self.name is not None
        # Subscribe before reading, so no change between the read and the
        # subscription is missed; the informer may already know the pod.
        if self.subscription is None:
            self.subscription = self._informer.subscribe(self.name, uid=uid)
        pod = self.subscription.latest
        if pod is None:
            pod = await self.get(time.monotonic() + window)
            if pod is None:
                raise NotFoundError(
                    f"pod {self.ref} not found", status=404, reason="NotFound", pod=self.ref
                )
        found = pod["metadata"]["uid"]
        if uid is not None and found != uid:
            raise NotFoundError(
                f"pod {self.ref} now has uid {found}, not {uid}: the pod we ran is gone "
                "and another took its name",
                status=404,
                reason="NotFound",
                pod=self.ref,
            )
        self.subscription.pin(found)
        self.reattached = True
        return pod

    # ------------------------------------------------------------------ cleanup
    async def find_cut_create(self, *, window: float) -> dict[str, Any] | None:
        """A create was cut off or never answered: the pod it made anyway, if any.

        Ours only if it carries this create's token. The API server may be down (we
        keep asking for ``window`` seconds) or finish the create a moment after we gave
        up on it (we look a few times).
        """
        deadline = time.monotonic() + window
        for attempt in range(4):
            try:
                pod = await self.get(deadline)
            except AsyncpodError as error:
                logger.warning("could not check whether %s was created: %s", self.ref, error)
                return None
            if pod is None:
                await anyio.sleep(0.25 * (attempt + 1))
                continue
            annotations = pod.get("metadata", {}).get("annotations") or {}
            return pod if annotations.get(CREATE_ATTEMPT_ANNOTATION) == self._token else None
        return None
