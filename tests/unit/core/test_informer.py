"""Unit tests of the pure parts of asyncpod.core.informer: subscriptions and relist diffs.

What is tested here is logic that needs no server: how a :class:`PodSubscription`
buffers, coalesces ("latest state wins", order kept), pins to a uid, closes and fails;
and how :meth:`PodInformer._relist` diffs a fresh LIST against its cache into
synthetic ADDED / MODIFIED / DELETED changes, and what ``statistics()`` and ``repr()``
then say. The informer's network loop (watch, 410, stalls, reconnects) is covered by
the integration tests against the real API server.

The relist tests replace ``asyncpod.kube.pods.Pods.list`` (the network
primitive from :mod:`asyncpod.kube.watch`) with a fake that returns prepared pages:
mocking the I/O boundary is acceptable for a pure-logic test, and nothing of the
informer's own code is mocked. The pods are versions recorded from kube-apiserver
v1.34.4 with kwok (``tests/unit/pods/recorded/``, see ``tools/record_pods.py``), edited
only where a test needs a second incarnation of a pod (a new uid).
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any, cast

import pytest

from asyncpod.core.informer import PodChange, PodInformer, PodSubscription, WaitInterruptedError
from asyncpod.core.lifecycle import project
from asyncpod.errors import AsyncpodError, ClosedError, ForbiddenError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.pods import PodList, Pods, pod_path

RECORDED = Path(__file__).parent.parent / "pods" / "recorded"
NAMESPACE = "default"
SELECTOR = "app.kubernetes.io/managed-by=asyncpod"

#: Stands in for the KubeClient: the fake list only checks it is passed through.
CLIENT = cast(KubeClient, object())


def versions(scenario: str) -> list[dict[str, Any]]:
    """Every recorded version of a scenario's pod (fresh dicts, safe to edit)."""
    events = json.loads((RECORDED / f"{scenario}.json").read_text())
    return [e["object"] for e in events]


def pod(name: str, uid: str, rv: int, phase: str = "Pending") -> dict[str, Any]:
    """A minimal pod for subscription tests, where only identity and version matter."""
    return {
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": uid, "resourceVersion": str(rv)},
        "status": {"phase": phase},
    }


def reincarnated(original: dict[str, Any], uid: str, rv: int) -> dict[str, Any]:
    """The same pod name, created again: a new uid and a later resourceVersion."""
    again = copy.deepcopy(original)
    again["metadata"]["uid"] = uid
    again["metadata"]["resourceVersion"] = str(rv)
    return again


def rv(change: PodChange) -> str:
    return str(change.pod["metadata"]["resourceVersion"])


def drain(subscription: PodSubscription) -> list[PodChange]:
    """Everything queued right now, without waiting."""
    out: list[PodChange] = []
    while subscription._queue:
        out.append(subscription._queue.pop(0))
    return out


async def take(subscription: PodSubscription, count: int) -> list[PodChange]:
    return [await asyncio.wait_for(subscription.next(), 1.0) for _ in range(count)]


class FakeList:
    """Replaces ``Pods.list``: returns the prepared ``(items, resourceVersion)`` in turn."""

    def __init__(self) -> None:
        self.pages: list[tuple[list[dict[str, Any]], str]] = []
        self.calls: list[tuple[object, str, str | None, int]] = []

    async def __call__(
        self,
        pods: Pods,
        namespace: str,
        *,
        label_selector: str | None = None,
        page_size: int = 500,
        rate_limited: bool = True,
        managed_fields: bool = True,
    ) -> PodList:
        # The informer's LIST must never queue behind the client's rate limiter, and
        # asks for no managedFields (project() would drop them).
        assert rate_limited is False
        assert managed_fields is False
        self.calls.append((pods.client, pod_path(namespace), label_selector, page_size))
        items, version = self.pages.pop(0)
        return PodList([copy.deepcopy(item) for item in items], version)


@pytest.fixture
def lists(monkeypatch: pytest.MonkeyPatch) -> FakeList:
    fake = FakeList()

    async def listing(pods: Pods, namespace: str, **kwargs: Any) -> PodList:
        return await fake(pods, namespace, **kwargs)

    monkeypatch.setattr(Pods, "list", listing)
    return fake


def make_informer(*, buffer: int = 32) -> PodInformer:
    return PodInformer(CLIENT, NAMESPACE, label_selector=SELECTOR, buffer=buffer, page_size=50)


# --------------------------------------------------------------------------------------
# PodSubscription: buffering and coalescing
# --------------------------------------------------------------------------------------


async def test_changes_are_buffered_and_delivered_in_order() -> None:
    informer = make_informer()
    subscription = informer.subscribe("p")
    for version in (1, 2, 3):
        subscription._push(PodChange("MODIFIED", pod("p", "u1", version)))
    assert repr(subscription) == "<PodSubscription p uid=None queued=3>"
    got = await take(subscription, 3)
    assert [rv(c) for c in got] == ["1", "2", "3"]
    assert subscription.coalesced == 0
    assert subscription.latest is not None
    assert subscription.latest["metadata"]["resourceVersion"] == "3"


async def test_a_full_buffer_replaces_its_newest_entry_and_keeps_order() -> None:
    informer = make_informer(buffer=3)
    subscription = informer.subscribe("p")
    for version in range(1, 7):  # 6 changes into room for 3
        subscription._push(PodChange("MODIFIED", pod("p", "u1", version)))
    # The first two stay where they were; the third slot always holds the newest.
    assert [rv(c) for c in drain(subscription)] == ["1", "2", "6"]
    assert subscription.coalesced == 3
    assert informer.statistics().coalesced == 3


async def test_coalescing_never_loses_the_final_state_of_a_recorded_run() -> None:
    """A consumer that reads nothing until the end still gets the Succeeded version."""
    informer = make_informer(buffer=2)
    subscription = informer.subscribe("success")
    recorded = versions("success")
    subscription._push(PodChange("ADDED", recorded[0]))
    for version in recorded[1:]:
        subscription._push(PodChange("MODIFIED", version))
    first, last = await take(subscription, 2)
    assert (first.type, first.pod) == ("ADDED", recorded[0])
    assert last.pod is recorded[-1]
    assert last.pod["status"]["phase"] == "Succeeded"
    assert subscription.coalesced == len(recorded) - 2


async def test_room_frees_up_as_the_consumer_reads() -> None:
    informer = make_informer(buffer=2)
    subscription = informer.subscribe("p")
    for version in (1, 2, 3):
        subscription._push(PodChange("MODIFIED", pod("p", "u1", version)))
    assert [rv(c) for c in await take(subscription, 2)] == ["1", "3"]
    for version in (4, 5):
        subscription._push(PodChange("MODIFIED", pod("p", "u1", version)))
    assert [rv(c) for c in drain(subscription)] == ["4", "5"]  # nothing coalesced this time
    assert subscription.coalesced == 1


async def test_buffer_is_at_least_one() -> None:
    informer = make_informer(buffer=0)
    subscription = informer.subscribe("p")
    subscription._push(PodChange("MODIFIED", pod("p", "u1", 1)))
    subscription._push(PodChange("MODIFIED", pod("p", "u1", 2)))
    assert [rv(c) for c in drain(subscription)] == ["2"]
    assert subscription.coalesced == 1


async def test_latest_is_the_last_live_version_even_after_deleted() -> None:
    informer = make_informer()
    subscription = informer.subscribe("p")
    live = pod("p", "u1", 5, "Running")
    gone = pod("p", "u1", 6, "Running")
    subscription._push(PodChange("MODIFIED", live))
    subscription._push(PodChange("DELETED", gone))
    assert subscription.latest is live
    # A DELETED seen first (nothing else known) is the best there is.
    other = informer.subscribe("q")
    only = pod("q", "u9", 7)
    other._push(PodChange("DELETED", only))
    assert other.latest is only


# --------------------------------------------------------------------------------------
# PodSubscription: uid pinning
# --------------------------------------------------------------------------------------


async def test_a_pinned_subscription_drops_an_earlier_pod_of_the_same_name() -> None:
    informer = make_informer()
    subscription = informer.subscribe("p", uid="new")
    subscription._push(PodChange("MODIFIED", pod("p", "old", 10, "Running")))
    subscription._push(PodChange("DELETED", pod("p", "old", 11, "Running")))
    subscription._push(PodChange("ADDED", pod("p", "new", 12)))
    subscription._push(PodChange("MODIFIED", pod("p", "new", 13)))
    got = drain(subscription)
    assert [(c.type, c.pod["metadata"]["uid"], rv(c)) for c in got] == [
        ("ADDED", "new", "12"),
        ("MODIFIED", "new", "13"),
    ]
    assert subscription.latest is not None
    assert subscription.latest["metadata"]["uid"] == "new"


async def test_pin_filters_what_is_queued_and_what_comes_later() -> None:
    """The runner subscribes by name before its POST and pins the uid the POST returns."""
    informer = make_informer()
    subscription = informer.subscribe("p")
    subscription._push(PodChange("MODIFIED", pod("p", "old", 10, "Succeeded")))
    subscription._push(PodChange("ADDED", pod("p", "new", 12)))
    subscription._push(PodChange("DELETED", pod("p", "old", 13, "Succeeded")))
    subscription.pin("new")
    assert subscription.uid == "new"
    subscription._push(PodChange("MODIFIED", pod("p", "old", 14)))
    subscription._push(PodChange("MODIFIED", pod("p", "new", 15, "Running")))
    assert [(c.pod["metadata"]["uid"], rv(c)) for c in drain(subscription)] == [
        ("new", "12"),
        ("new", "15"),
    ]


async def test_subscribe_delivers_the_cached_pod_first_unless_its_uid_differs(
    lists: FakeList,
) -> None:
    running = versions("success")[3]
    lists.pages.append(([running], "500"))
    informer = make_informer()
    await informer._relist()
    anyone = informer.subscribe("success")
    same = informer.subscribe("success", uid=running["metadata"]["uid"])
    other = informer.subscribe("success", uid="a-later-pod")
    for subscription in (anyone, same):
        (change,) = drain(subscription)
        assert (change.type, change.synthetic) == ("MODIFIED", False)
        assert change.pod == project(running)
    assert drain(other) == []
    assert other.latest is None


# --------------------------------------------------------------------------------------
# PodSubscription: close and failure
# --------------------------------------------------------------------------------------


async def test_close_ends_a_waiting_iteration() -> None:
    informer = make_informer()
    subscription = informer.subscribe("p")
    seen: list[str] = []

    async def consume() -> None:
        async for change in subscription:
            seen.append(rv(change))

    consumer = asyncio.create_task(consume())
    subscription._push(PodChange("ADDED", pod("p", "u1", 1)))
    await asyncio.sleep(0.01)  # the consumer takes it and waits for more
    assert seen == ["1"]
    assert informer.statistics().subscribers == 1
    subscription.close()
    await asyncio.wait_for(consumer, 1.0)  # the loop ended; no exception
    assert seen == ["1"]
    assert informer.statistics().subscribers == 0
    subscription.close()  # idempotent


async def test_close_drains_what_was_queued_then_ignores_new_changes() -> None:
    informer = make_informer()
    subscription = informer.subscribe("p")
    subscription._push(PodChange("MODIFIED", pod("p", "u1", 1)))
    subscription.close()
    subscription._push(PodChange("MODIFIED", pod("p", "u1", 2)))
    assert [rv(c) async for c in subscription] == ["1"]
    with pytest.raises(ClosedError, match="subscription to pod p is closed"):
        await subscription.next()


async def test_fail_delivers_what_was_queued_then_raises() -> None:
    informer = make_informer()
    subscription = informer.subscribe("p")
    subscription._push(PodChange("MODIFIED", pod("p", "u1", 1)))
    error = ForbiddenError("pods is forbidden", status=403, reason="Forbidden")
    subscription._fail(error)
    assert rv(await subscription.next()) == "1"
    with pytest.raises(ForbiddenError) as raised:
        await subscription.next()
    assert raised.value is error
    with pytest.raises(ForbiddenError):  # and keeps raising
        await subscription.next()


async def test_fail_wakes_a_waiting_consumer_and_ends_iteration_with_the_error() -> None:
    informer = make_informer()
    subscription = informer.subscribe("p")

    async def consume() -> list[PodChange]:
        return [change async for change in subscription]

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    subscription._fail(AsyncpodError("the watch cannot continue"))
    with pytest.raises(AsyncpodError, match="the watch cannot continue"):
        await asyncio.wait_for(consumer, 1.0)


# --------------------------------------------------------------------------------------
# PodSubscription without a waiting task: listen() and take_nowait()
# --------------------------------------------------------------------------------------


async def test_a_listener_hears_each_push_and_takes_the_changes_in_order() -> None:
    subscription = make_informer().subscribe("p")
    taken: list[str] = []

    def listener() -> None:
        while (change := subscription.take_nowait()) is not None:
            taken.append(rv(change))

    subscription.listen(listener)
    for version in (1, 2, 3):
        subscription._push(PodChange("MODIFIED", pod("p", "u1", version)))
    assert taken == ["1", "2", "3"]
    subscription.listen(None)  # heard no more; the queue keeps what comes
    subscription._push(PodChange("MODIFIED", pod("p", "u1", 4)))
    assert taken == ["1", "2", "3"]
    assert rv(subscription.take_nowait() or PodChange("X", {})) == "4"
    assert subscription.take_nowait() is None


@pytest.mark.parametrize("ending", ["fail", "interrupt", "close"])
async def test_a_listener_hears_the_end_and_take_nowait_says_it(ending: str) -> None:
    subscription = make_informer().subscribe("p")
    subscription._push(PodChange("MODIFIED", pod("p", "u1", 1)))
    heard: list[int] = []
    subscription.listen(lambda: heard.append(1))
    expected: type[Exception]
    if ending == "fail":
        subscription._fail(ForbiddenError("pods is forbidden", status=403, reason="Forbidden"))
        expected = ForbiddenError
    elif ending == "interrupt":
        subscription.interrupt()
        expected = WaitInterruptedError
    else:
        subscription.close()
        expected = ClosedError
    assert heard == [1]
    if ending != "interrupt":  # what was queued first, as next() would
        assert rv(subscription.take_nowait() or PodChange("X", {})) == "1"
    with pytest.raises(expected):
        subscription.take_nowait()


# --------------------------------------------------------------------------------------
# PodInformer._relist: the diff after a (re)list
# --------------------------------------------------------------------------------------


async def test_first_list_fills_the_cache_and_syncs(lists: FakeList) -> None:
    running = versions("success")[3]
    pending = versions("image-pull-failure")[1]
    lists.pages.append(([running, pending], "400"))
    informer = make_informer()
    early = informer.subscribe("success")  # before the pod is known
    assert informer.statistics().synced is False
    await informer._relist()
    await asyncio.wait_for(informer.wait_synced(), 1.0)
    assert lists.calls == [(CLIENT, f"/api/v1/namespaces/{NAMESPACE}/pods", SELECTOR, 50)]
    assert informer.get("success") == project(running)
    assert informer.get("image-pull-failure") == project(pending)
    assert sorted(p["metadata"]["name"] for p in informer.pods()) == [
        "image-pull-failure",
        "success",
    ]
    # What the first list finds is real, not inferred: ADDED, not synthetic.
    (change,) = drain(early)
    assert (change.type, change.synthetic, change.pod) == ("ADDED", False, project(running))


async def test_relist_diff_deleted_modified_added_and_unchanged(lists: FakeList) -> None:
    success = versions("success")
    oom = versions("oomkilled")
    gone = versions("exit-3-message")[3]  # Running when last seen
    unchanged = versions("init-second-fails")[-1]
    fresh = versions("sidecar-0-main-2")[1]
    lists.pages.append(([success[3], gone, unchanged], "400"))
    lists.pages.append(([success[4], unchanged, fresh, oom[0]], "450"))
    informer = make_informer()
    # Followed before the first list: a finished pod is cached only while followed.
    subscriptions = {"init-second-fails": informer.subscribe("init-second-fails")}
    await informer._relist()
    subscriptions |= {
        name: informer.subscribe(name) for name in ("success", "exit-3-message", "sidecar-0-main-2")
    }
    for subscription in subscriptions.values():
        drain(subscription)  # the cached versions delivered on subscribe

    await informer._relist()

    # Missing from the list: deleted in the gap; the last version we knew is delivered.
    (deleted,) = drain(subscriptions["exit-3-message"])
    assert (deleted.type, deleted.synthetic) == ("DELETED", True)
    assert deleted.pod == project(gone)
    assert informer.get("exit-3-message") is None
    # Changed (a newer resourceVersion): the new version, as MODIFIED.
    (modified,) = drain(subscriptions["success"])
    assert (modified.type, modified.synthetic) == ("MODIFIED", True)
    assert modified.pod == project(success[4])
    assert modified.pod["status"]["phase"] == "Succeeded"
    # New: ADDED, synthetic since it was not seen on a stream.
    (added,) = drain(subscriptions["sidecar-0-main-2"])
    assert (added.type, added.synthetic, added.pod) == ("ADDED", True, project(fresh))
    # Same uid, same resourceVersion: nothing to say.
    assert drain(subscriptions["init-second-fails"]) == []
    assert {p["metadata"]["name"] for p in informer.pods()} == {
        "success",
        "init-second-fails",
        "sidecar-0-main-2",
        "oomkilled",
    }
    assert informer.get("success") == project(success[4])


async def test_relist_same_name_new_uid_is_deleted_then_added(lists: FakeList) -> None:
    first = versions("deleted-while-running")[3]  # Running
    second = reincarnated(versions("deleted-while-running")[0], "second-uid", 900)
    old_uid = first["metadata"]["uid"]
    lists.pages.append(([first], "400"))
    lists.pages.append(([second], "900"))
    informer = make_informer()
    await informer._relist()
    anyone = informer.subscribe("deleted-while-running")
    pinned_old = informer.subscribe("deleted-while-running", uid=old_uid)
    pinned_new = informer.subscribe("deleted-while-running", uid="second-uid")
    drain(anyone)
    drain(pinned_old)

    await informer._relist()

    got = [(c.type, c.synthetic, c.pod["metadata"]["uid"]) for c in drain(anyone)]
    assert got == [("DELETED", True, old_uid), ("ADDED", True, "second-uid")]
    assert [(c.type, c.pod["metadata"]["uid"]) for c in drain(pinned_old)] == [("DELETED", old_uid)]
    assert [(c.type, c.pod["metadata"]["uid"]) for c in drain(pinned_new)] == [
        ("ADDED", "second-uid")
    ]
    cached = informer.get("deleted-while-running")
    assert cached is not None
    assert cached["metadata"]["uid"] == "second-uid"


async def test_relist_with_nothing_changed_delivers_nothing(lists: FakeList) -> None:
    success = versions("success")
    lists.pages.append(([success[2]], "400"))
    lists.pages.append(([success[2]], "420"))  # the list's version moves on regardless
    informer = make_informer()
    await informer._relist()
    subscription = informer.subscribe("success")
    drain(subscription)
    await informer._relist()
    assert drain(subscription) == []
    assert informer.statistics().resource_version == "420"


# --------------------------------------------------------------------------------------
# statistics() and repr()
# --------------------------------------------------------------------------------------


async def test_statistics_and_repr_before_the_first_list() -> None:
    informer = make_informer()
    stats = informer.statistics()
    assert (stats.synced, stats.cached_pods, stats.subscribers, stats.lists) == (False, 0, 0, 0)
    assert stats.resource_version == ""
    assert repr(informer) == (
        f"<PodInformer ns={NAMESPACE} selector={SELECTOR!r} synced=False pods=0 "
        "subscribers=0 watches=0 events=0 gone=0 rv=>"
    )


async def test_statistics_and_repr_count_lists_pods_subscribers_and_coalescing(
    lists: FakeList,
) -> None:
    success = versions("success")
    oom = versions("oomkilled")
    lists.pages.append(([success[1], oom[1]], "300"))
    lists.pages.append(([success[4], oom[4], versions("unschedulable")[1]], "345"))
    informer = make_informer(buffer=1)
    await informer._relist()
    slow = informer.subscribe("success")  # holds the cached version: its buffer is full
    informer.subscribe("oomkilled")
    informer.subscribe("oomkilled", uid=oom[0]["metadata"]["uid"])
    await informer._relist()

    stats = informer.statistics()
    assert stats.namespace == NAMESPACE
    assert stats.label_selector == SELECTOR
    assert stats.synced is True
    assert stats.lists == 2
    assert stats.cached_pods == 3
    assert stats.subscribers == 3
    # success: cached version, then the relist's MODIFIED replaced it (buffer 1).
    # oomkilled x2: the same, each.
    assert stats.coalesced == 3
    assert slow.coalesced == 1
    assert stats.resource_version == "345"
    # Relists are not watch events: the stream counters stay at zero.
    assert (stats.watches_opened, stats.events, stats.bookmarks, stats.gone) == (0, 0, 0, 0)
    assert (stats.stalls, stats.reconnects) == (0, 0)
    assert repr(informer) == (
        f"<PodInformer ns={NAMESPACE} selector={SELECTOR!r} synced=True pods=3 "
        "subscribers=3 watches=0 events=0 gone=0 rv=345>"
    )
    slow.close()
    assert informer.statistics().subscribers == 2


async def test_cache_keeps_followed_and_live_pods_and_drops_finished_ones_nobody_follows(
    lists: FakeList,
) -> None:
    running = versions("exit-3-message")[3]
    finished = versions("success")[-1]
    assert finished["status"]["phase"] == "Succeeded"
    lists.pages.append(([running, finished], "500"))
    informer = make_informer()
    await informer._relist()
    # A live pod is kept (attaching to it needs no GET); a finished one nobody waits
    # for is not (memory follows what runs, not the namespace's history).
    assert informer.get("exit-3-message") == project(running)
    assert informer.get("success") is None

    # A followed pod stays cached once finished, until its last follower leaves.
    followed = informer.subscribe("exit-3-message")
    done = versions("exit-3-message")[-1]
    assert done["status"]["phase"] == "Failed"
    informer._keep("exit-3-message", done)
    assert informer.get("exit-3-message") == done
    followed.close()
    assert informer.get("exit-3-message") is None
    assert informer.statistics().cached_pods == 0


# --------------------------------------------------------------------------------------
# PodSubscription: waiting with a deadline (the run's follower, while a limit is pending)
# --------------------------------------------------------------------------------------


async def test_next_within_gives_a_queued_change_at_once() -> None:
    subscription = make_informer().subscribe("p")
    subscription._push(PodChange("ADDED", pod("p", "u1", 1)))
    change = await subscription.next_within(0.0)  # even with no time left
    assert change is not None
    assert rv(change) == "1"


async def test_next_within_is_none_when_nothing_came_in_time() -> None:
    subscription = make_informer().subscribe("p")
    assert await subscription.next_within(0.0) is None
    assert await subscription.next_within(0.02) is None
    assert subscription._wakeup._waiters in (None, [])  # no waiter left behind


async def test_next_within_wakes_for_a_change_pushed_while_it_waits() -> None:
    subscription = make_informer().subscribe("p")
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, subscription._push, PodChange("MODIFIED", pod("p", "u1", 2)))
    change = await subscription.next_within(30.0)  # long before the 30 s
    assert change is not None
    assert rv(change) == "2"


async def test_next_within_raises_the_informers_error_and_ends_on_close() -> None:
    subscription = make_informer().subscribe("p")
    loop = asyncio.get_running_loop()
    error = ForbiddenError("pods is forbidden", status=403, reason="Forbidden")
    loop.call_later(0.01, subscription._fail, error)
    with pytest.raises(ForbiddenError):
        await subscription.next_within(30.0)
    closed = make_informer().subscribe("q")
    loop.call_later(0.01, closed.close)
    with pytest.raises(ClosedError):
        await closed.next_within(30.0)


async def test_next_within_a_cancelled_wait_leaves_no_waiter() -> None:
    subscription = make_informer().subscribe("p")
    waiting = asyncio.ensure_future(subscription.next_within(30.0))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert subscription._wakeup._waiters in (None, [])


# --------------------------------------------------------------------------------------
# PodSubscription: interrupted (a run cancelled while it follows its pod)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("wait", ["next", "next_within", "wait_seen"])
async def test_interrupt_wakes_a_waiter_and_every_later_wait_raises(wait: str) -> None:
    subscription = make_informer().subscribe("p")

    async def waiting() -> object:
        if wait == "next_within":
            return await subscription.next_within(30.0)
        return await getattr(subscription, wait)()

    loop = asyncio.get_running_loop()
    loop.call_later(0.01, subscription.interrupt)
    with pytest.raises(WaitInterruptedError):
        await waiting()
    subscription._push(PodChange("MODIFIED", pod("p", "u1", 2)))
    with pytest.raises(WaitInterruptedError, match="wait on pod p interrupted"):
        await subscription.next()  # what is queued is not handed out any more
    with pytest.raises(ClosedError):  # an interrupted wait ends like a closed one
        await subscription.next_within(30.0)
    assert subscription._wakeup._waiters in (None, [])


# --------------------------------------------------------------------------------------
# wait_version: an advance wakes only the waiters it reached
# --------------------------------------------------------------------------------------


async def test_wait_version_wakes_each_waiter_once_its_version_is_reached() -> None:
    informer = make_informer()
    informer._advance("100")
    assert await informer.wait_version("90")  # reached already: at once
    assert not await informer.wait_version("opaque")  # not comparable: False at once
    woken: list[str] = []

    async def wait(version: str) -> None:
        assert await informer.wait_version(version)
        woken.append(version)

    waiting = [asyncio.ensure_future(wait(v)) for v in ("130", "110", "120", "110")]
    await asyncio.sleep(0)
    informer._advance("105")
    await asyncio.sleep(0)
    assert woken == []
    informer._advance("115")
    await asyncio.sleep(0)
    assert sorted(woken) == ["110", "110"]
    assert [entry[0] for entry in informer._version_waiters] == [120, 130]
    informer._advance("200")
    await asyncio.gather(*waiting)
    assert sorted(woken) == ["110", "110", "120", "130"]
    assert informer._version_waiters == []


async def test_wait_version_a_cancelled_waiter_is_passed_over_and_failure_wakes_all() -> None:
    informer = make_informer()
    informer._advance("100")
    cancelled = asyncio.ensure_future(informer.wait_version("110"))
    failing = asyncio.ensure_future(informer.wait_version("500"))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    informer._advance("120")  # the cancelled one's entry goes without a word
    assert [entry[0] for entry in informer._version_waiters] == [500]
    error = ForbiddenError("pods is forbidden", status=403, reason="Forbidden")
    informer._fail_all(error)
    with pytest.raises(ForbiddenError):
        await failing
    assert informer._version_waiters == []
