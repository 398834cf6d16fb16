"""The XCom sidecar: its container, the pod it joins, and the decoder of its hand-over."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from asyncpod.airflow.podbuild import build_manifest
from asyncpod.airflow.xcom import (
    SIDECAR_IMAGE,
    SIDECAR_NAME,
    SIDECAR_SCRIPT,
    XCOM_FILE,
    FrameDecoder,
    XComRead,
    add_xcom_sidecar,
    decode_lines,
    frame_lines,
    sidecar_container,
)

VALUE = {"rows": [{"id": i, "name": f"file-{i}.csv"} for i in range(300)], "ok": True}
CONTENT = json.dumps(VALUE).encode()


def test_the_sidecar_is_native_shares_the_xcom_dir_and_asks_for_little() -> None:
    container = sidecar_container(security_context={"runAsNonRoot": True})
    assert container["name"] == SIDECAR_NAME == "airflow-xcom-sidecar"
    assert container["image"] == SIDECAR_IMAGE
    assert container["restartPolicy"] == "Always"  # a native sidecar: SIGTERM after base
    assert container["command"] == ["sh", "-c", SIDECAR_SCRIPT]
    assert container["volumeMounts"] == [{"name": "xcom", "mountPath": "/airflow/xcom"}]
    assert container["resources"] == {"requests": {"cpu": "1m", "memory": "10Mi"}}
    assert container["securityContext"] == {"runAsNonRoot": True}
    assert "securityContext" not in sidecar_container()


def test_the_pod_gets_the_volume_the_mount_and_the_sidecar_after_its_own_inits() -> None:
    pod = {
        "spec": {
            "containers": [{"name": "base"}, {"name": "other"}],
            "initContainers": [{"name": "setup"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
        }
    }
    out = add_xcom_sidecar(pod, base_container_name="base")
    spec = out["spec"]
    assert spec["volumes"] == [{"name": "xcom", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "xcom", "mountPath": "/airflow/xcom"}]
    assert "volumeMounts" not in spec["containers"][1]
    assert [c["name"] for c in spec["initContainers"]] == ["setup", SIDECAR_NAME]
    assert pod["spec"]["initContainers"] == [{"name": "setup"}]  # pure
    assert add_xcom_sidecar(out, base_container_name="base") == out  # idempotent


def test_build_manifest_adds_the_sidecar_only_for_do_xcom_push() -> None:
    params = {"base_container_name": "base", "image": "busybox:1.36"}
    plain = build_manifest(params, labels={})
    assert "initContainers" not in plain["spec"]
    assert "volumes" not in plain["spec"]
    pushed = build_manifest(
        {
            **params,
            "do_xcom_push": True,
            "xcom_sidecar_container_security_context": {"runAsUser": 1000},
        },
        labels={},
    )
    (base,) = pushed["spec"]["containers"]
    assert "terminationMessagePath" not in base  # one path: the sidecar
    (sidecar,) = pushed["spec"]["initContainers"]
    assert sidecar["name"] == SIDECAR_NAME
    assert sidecar["securityContext"] == {"runAsUser": 1000}


def test_frames_decode_to_the_value_also_an_empty_or_missing_file() -> None:
    lines = frame_lines(CONTENT)
    assert all(len(line) <= 76 for line in lines[1:-1])  # short lines: no partial CRI lines
    assert decode_lines(["noise before", *lines]) == XComRead(VALUE)
    assert decode_lines(frame_lines(b"")) == XComRead(None)  # as the reference: None
    assert decode_lines(frame_lines(b" \n")) == XComRead(None)
    assert decode_lines(frame_lines(None)) == XComRead(None)
    assert decode_lines(frame_lines(b'"\xc3\xa9"')) == XComRead("é")


def test_a_second_hand_over_replaces_the_first() -> None:
    lines = frame_lines(b"[1]")[:-1] + frame_lines(b"[2]")
    assert decode_lines(lines) == XComRead([2])


def test_the_decoder_is_done_at_the_end_marker() -> None:
    decoder = FrameDecoder()
    lines = frame_lines(CONTENT)
    for line in lines[:-1]:
        decoder.feed(line)
        assert not decoder.done
    decoder.feed(lines[-1])
    assert decoder.done
    decoder.feed("asyncpod-xcom begin gzip 3")  # ignored once done
    assert decoder.result() == XComRead(VALUE)


@pytest.mark.parametrize(
    ("mutate", "wanted"),
    [
        (lambda ls: ls[:-1], "ended before it handed"),  # cut before the end marker
        (lambda ls: ls[:1], "ended before it handed"),
        (lambda ls: [], "never started"),
        (lambda ls: [ls[0], *ls[2:]], "corrupted"),  # a base64 line lost
        (lambda ls: [ls[0], ls[1][:-4] + "!!!!", *ls[2:]], "corrupted"),  # not base64
        (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], "corrupted"),  # lines swapped
        (lambda ls: [*ls[:-1], "asyncpod-xcom end 7"], "corrupted"),  # counts differ
        (lambda ls: ["asyncpod-xcom begin gzip 7", *ls[1:-1], "asyncpod-xcom end 7"], "corrupted"),
    ],
)
def test_a_truncated_or_corrupted_hand_over_is_an_error(mutate: object, wanted: str) -> None:
    lines = frame_lines(CONTENT)
    assert len(lines) > 4
    read = decode_lines(mutate(lines))  # type: ignore[operator]
    assert read.value is None
    assert read.error is not None
    assert wanted in read.error
    assert XCOM_FILE in read.error


def test_bad_json_names_the_file_and_the_parse_error() -> None:
    read = decode_lines(frame_lines(b'{"rows": 3,'))
    assert read.error is not None
    assert read.error.startswith(f"{XCOM_FILE} does not hold JSON: Expecting property name")
    assert "line 1 column 12" in read.error
    assert "'{\"rows\": 3,'" in read.error
    not_utf8 = decode_lines(frame_lines(b'"\xff"'))
    assert not_utf8.error is not None
    assert f"{XCOM_FILE} is not UTF-8" in not_utf8.error


@pytest.mark.skipif(shutil.which("busybox") is None, reason="no busybox on this machine")
def test_the_script_under_busybox_hands_the_file_over_on_sigterm(tmp_path: Path) -> None:
    """The sidecar's script as busybox runs it (path rewritten to a temp dir)."""
    target = tmp_path / "return.json"
    target.write_bytes(CONTENT)
    script = SIDECAR_SCRIPT.replace(XCOM_FILE, str(target))
    process = subprocess.Popen(
        ["busybox", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    # The trap is set before the sleep starts: wait for the sleep, then signal.
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    deadline = time.monotonic() + 30
    while not children.read_text().strip():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.terminate()
    # A TERM that lands between the sleep's fork and `s=$!` (seen on a loaded machine)
    # hands the file over all the same, but leaves the sleep, which holds the output
    # pipes open: in a pod the container ends with its first process; here the group
    # is killed once the shell has exited, then the output (a few KB, less than a
    # pipe holds) is read.
    code = process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    out, err = process.communicate(timeout=30)
    assert code == 0, err
    lines = out.decode().splitlines()
    assert decode_lines(lines) == XComRead(VALUE)
    assert all(len(line) <= 76 for line in lines)
    raw = gzip.decompress(base64.b64decode("".join(lines[1:-1])))
    assert raw == CONTENT
