"""without_managed_fields: the bytes cut is exact on the API server's serialization, and
a no-op on anything else.

The recorded event is a real one: a running pod's MODIFIED event as the local
kube-apiserver sent it (a kwok node), bytes unchanged.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from asyncpod.kube._managedfields import loads_without_managed_fields, without_managed_fields

RECORDED = (Path(__file__).parent / "data" / "watch-event-running-pod.json").read_bytes().strip()


def _without(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` decoded whole, then its ``metadata.managedFields`` removed: the expected."""
    expected = copy.deepcopy(obj)
    expected["metadata"].pop("managedFields", None)
    return expected


def test_a_recorded_event_decodes_to_the_same_pod_without_managed_fields() -> None:
    whole = orjson.loads(RECORDED)
    assert whole["object"]["metadata"]["managedFields"]  # the recording has some

    cut = without_managed_fields(RECORDED)

    decoded = orjson.loads(cut)
    assert decoded["type"] == whole["type"]
    assert decoded["object"] == _without(whole["object"])
    assert len(cut) < len(RECORDED) * 0.7


def test_every_pod_of_a_list_body_is_cut() -> None:
    pod = orjson.loads(RECORDED)["object"]
    pods = []
    for n in range(3):
        one = copy.deepcopy(pod)
        one["metadata"]["name"] = f"p{n}"
        pods.append(one)
    # Serialized as the API server would: the bytes of each item as it sent them.
    item = orjson.dumps(pod)
    body = (
        b'{"kind":"PodList","items":['
        + b",".join(item.replace(b'"mf-x"', f'"p{n}"'.encode(), 1) for n in range(3))
        + b"]}"
    )

    decoded = orjson.loads(without_managed_fields(body))

    assert decoded["items"] == [_without(p) for p in pods]


def test_bytes_without_managed_fields_are_returned_as_they_are() -> None:
    pod = _without(orjson.loads(RECORDED)["object"])
    data = orjson.dumps({"type": "MODIFIED", "object": pod})

    assert without_managed_fields(data) is data
    bookmark = b'{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"9"}}}'
    assert without_managed_fields(bookmark) is bookmark


def test_keys_in_another_order_are_left_whole() -> None:
    """A proxy that re-serializes with sorted keys: the entries start with apiVersion,
    so nothing matches and the object decodes whole."""
    data = orjson.dumps(orjson.loads(RECORDED), option=orjson.OPT_SORT_KEYS)

    assert without_managed_fields(data) is data


@pytest.mark.parametrize(
    "where",
    ["annotation value", "annotation key", "manager name", "container command"],
)
def test_the_markers_inside_strings_or_as_other_keys_change_nothing_else(where: str) -> None:
    """The bytes that mark the cut, written where a user controls the text: JSON escapes
    the quotes inside strings, so they cannot match there."""
    whole = orjson.loads(RECORDED)
    pod = whole["object"]
    tricky = ',"managedFields":[{"manager":"x"}]},"spec":{'
    if where == "annotation value":
        pod["metadata"]["annotations"]["note"] = tricky
    elif where == "annotation key":
        pod["metadata"]["annotations"]["managedFields"] = "[not a list]"
    elif where == "manager name":
        pod["metadata"]["managedFields"][0]["manager"] = tricky
    else:
        pod["spec"]["containers"][0]["command"] = ["sh", "-c", tricky]
    data = orjson.dumps(whole)

    decoded = orjson.loads(without_managed_fields(data))

    assert decoded["object"] == _without(pod)


def test_an_unterminated_list_is_left_whole() -> None:
    """No end marker after the start (a truncated or foreign shape): decoded whole."""
    head = RECORDED[: RECORDED.index(b'"spec":{')]

    assert without_managed_fields(head) is head


#: The markers at two depths of a document of another shape (a ``managedFields`` key
#: inside ``status``, the end marker one level out): the cut leaves a brace unclosed.
FORGED = (
    b'{"metadata":{"name":"p"},"status":{"inner":{"q":1,'
    b'"managedFields":[{"manager":"m"}],"w":{}},"x":[1]},"spec":{"z":1}}'
)


def test_cut_bytes_that_do_not_decode_are_decoded_whole() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(without_managed_fields(FORGED))

    assert loads_without_managed_fields(FORGED) == orjson.loads(FORGED)


def test_loads_cuts_what_it_can_and_raises_on_what_never_decodes() -> None:
    assert loads_without_managed_fields(RECORDED) == orjson.loads(without_managed_fields(RECORDED))
    with pytest.raises(orjson.JSONDecodeError):
        loads_without_managed_fields(RECORDED[:-1])
