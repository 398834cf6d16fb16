"""``do_xcom_push`` of any size, with no ``pods/exec``: a native sidecar hands the file over.

Why it exists: the reference operator adds an ``airflow-xcom-sidecar`` container that
sleeps beside the base container, then reads ``/airflow/xcom/return.json`` with
``pods/exec`` (``cat``) and kills the sidecar. Exec is a powerful permission (a shell in
every pod of the namespace), and the kubelet's termination message, which needs none,
keeps only 4096 bytes. Here the sidecar is a Kubernetes *native* sidecar (an init
container with ``restartPolicy: Always``): it shares the ``xcom`` emptyDir at
``/airflow/xcom`` with the base container, sleeps, and once every regular container
has ended the kubelet sends it SIGTERM; it traps that and prints the file to its own
log, then exits 0. The trigger reads that log (``pods/log``, already in the minimal
Role) once the base container has terminated.

The framing survives what a container log does to long output (the kubelet splits a
line over 16 KiB into partial CRI lines) and tells a complete hand-over from a cut one::

    asyncpod-xcom begin gzip <bytes of the file>
    <the gzipped file in base64, 76 characters a line>
    asyncpod-xcom end <bytes of the file>

or ``asyncpod-xcom none`` when the base container wrote no file. The decoder
(:class:`FrameDecoder`, pure) checks the end marker, the base64, the gzip stream and the
byte count before parsing JSON. An empty or missing file gives ``None``, as the
reference does; a file that is not JSON fails the task naming the file and the parse
error.

Its image is ``busybox:1.36`` (the reference uses alpine; the script needs only ``sh``,
``wc``, ``gzip`` and ``base64``, all busybox applets). What it deliberately does not do:
keep the value anywhere but the sidecar's log (a kubelet rotating that log, at 10 MiB by
default, mid-hand-over would cut it: the count check then fails the task, it never
returns a wrong value).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import gzip
import json
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from asyncpod.errors import AsyncpodError, NotFoundError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.logs import LogFollower

__all__ = [
    "SIDECAR_IMAGE",
    "SIDECAR_NAME",
    "SIDECAR_SCRIPT",
    "XCOM_DIR",
    "XCOM_FILE",
    "XCOM_VOLUME",
    "FrameDecoder",
    "XComRead",
    "add_xcom_sidecar",
    "frame_lines",
    "read_xcom",
    "sidecar_container",
]

SIDECAR_NAME: Final = "airflow-xcom-sidecar"
SIDECAR_IMAGE: Final = "busybox:1.36"
XCOM_DIR: Final = "/airflow/xcom"
XCOM_FILE: Final = f"{XCOM_DIR}/return.json"
XCOM_VOLUME: Final = "xcom"

_MARK: Final = "asyncpod-xcom"
_BEGIN: Final = f"{_MARK} begin gzip "
_END: Final = f"{_MARK} end "
_NONE: Final = f"{_MARK} none"

#: The sidecar's shell: sleep until SIGTERM (sent by the kubelet once the base container
#: has ended, or on deletion), then print the file framed and exit 0. ``wait`` returns
#: at once when a trapped signal arrives.
SIDECAR_SCRIPT: Final = (
    "hand_over() {"
    f" if [ -f {XCOM_FILE} ]; then"
    f" n=$(wc -c < {XCOM_FILE});"
    f' echo "{_BEGIN}$n";'
    f" gzip -c {XCOM_FILE} | base64;"
    f' echo "{_END}$n";'
    f" else echo '{_NONE}'; fi;"
    " kill $s; exit 0; };"
    " trap hand_over TERM;"
    " sleep 2147483647 & s=$!; wait $s"
)


def sidecar_container(*, security_context: Any = None) -> dict[str, Any]:
    """The native sidecar's container (an init container with ``restartPolicy: Always``)."""
    container: dict[str, Any] = {
        "name": SIDECAR_NAME,
        "image": SIDECAR_IMAGE,
        "command": ["sh", "-c", SIDECAR_SCRIPT],
        "restartPolicy": "Always",
        "volumeMounts": [{"name": XCOM_VOLUME, "mountPath": XCOM_DIR}],
        # The reference's requests: the sidecar sleeps, then runs gzip once.
        "resources": {"requests": {"cpu": "1m", "memory": "10Mi"}},
    }
    if security_context:
        container["securityContext"] = copy.deepcopy(security_context)
    return container


def add_xcom_sidecar(
    pod: Mapping[str, Any], *, base_container_name: str, security_context: Any = None
) -> dict[str, Any]:
    """``pod`` with the ``xcom`` emptyDir mounted on the base container and the sidecar
    appended to the init containers (it starts after the DAG's own ones). Pure."""
    out = copy.deepcopy(dict(pod))
    spec = out.setdefault("spec", {})
    volumes = [v for v in spec.get("volumes") or () if v.get("name") != XCOM_VOLUME]
    spec["volumes"] = [{"name": XCOM_VOLUME, "emptyDir": {}}, *volumes]
    mount = {"name": XCOM_VOLUME, "mountPath": XCOM_DIR}
    for container in spec.get("containers") or ():
        if container.get("name") == base_container_name:
            mounts = [m for m in container.get("volumeMounts") or () if m != mount]
            container["volumeMounts"] = [mount, *mounts]
    inits = [c for c in spec.get("initContainers") or () if c.get("name") != SIDECAR_NAME]
    spec["initContainers"] = [*inits, sidecar_container(security_context=security_context)]
    return out


def frame_lines(content: bytes | None) -> list[str]:
    """What the sidecar prints for a file holding ``content`` (None: no file). Pure; for
    tests and simulated pods (the gzip bytes differ from busybox's, the framing not)."""
    if content is None:
        return [_NONE]
    text = base64.b64encode(gzip.compress(content, mtime=0)).decode("ascii")
    body = [text[i : i + 76] for i in range(0, len(text), 76)]
    return [f"{_BEGIN}{len(content)}", *body, f"{_END}{len(content)}"]


@dataclass(frozen=True)
class XComRead:
    """The value read from the sidecar, or why there is none (``error``)."""

    value: Any = None
    error: str | None = None


class FrameDecoder:
    """Feed it the sidecar's log lines; :attr:`done` once a hand-over ended; then
    :meth:`result`. A second ``begin`` (a restarted sidecar printing again) starts over."""

    def __init__(self) -> None:
        self.done = False
        self._size: int | None = None
        self._chunks: list[str] = []
        self._absent = False
        self._end: int | None = None

    def feed(self, line: str) -> None:
        if self.done:
            return
        text = line.strip()
        if text.startswith(_BEGIN):
            self._size = _count(text[len(_BEGIN) :])
            self._chunks = []
        elif text == _NONE:
            self._absent = self.done = True
        elif text.startswith(_END) and self._size is not None:
            self._end = _count(text[len(_END) :])
            self.done = True
        elif self._size is not None:
            self._chunks.append(text)

    def result(self) -> XComRead:
        """The parsed value (None for a missing or empty file), or the error. Pure."""
        if self._absent:
            return XComRead(None)
        if not self.done or self._size is None:
            started = "started" if self._size is not None else "never started"
            return XComRead(
                error=f"the {SIDECAR_NAME} container's log ended before it handed "
                f"{XCOM_FILE} over (the hand-over {started}): the sidecar was killed "
                "or its log was cut"
            )
        if self._end != self._size:
            return XComRead(error=_corrupt(f"begin says {self._size} bytes, end {self._end}"))
        try:
            raw = gzip.decompress(base64.b64decode("".join(self._chunks), validate=True))
        except (binascii.Error, OSError, EOFError, zlib.error) as exc:
            return XComRead(error=_corrupt(f"{type(exc).__name__}: {exc}"))
        if len(raw) != self._size:
            return XComRead(error=_corrupt(f"{len(raw)} bytes decoded, {self._size} announced"))
        return parse_json(raw)


def parse_json(raw: bytes) -> XComRead:
    """``raw`` as the file's JSON value; empty → None (as the reference). Pure."""
    if not raw.strip():
        return XComRead(None)
    try:
        return XComRead(json.loads(raw.decode("utf-8")))
    except UnicodeDecodeError as exc:
        return XComRead(error=f"{XCOM_FILE} is not UTF-8 text: {exc}")
    except ValueError as exc:
        head = raw[:80].decode("utf-8", "replace")
        return XComRead(error=f"{XCOM_FILE} does not hold JSON: {exc} (it begins {head!r})")


def decode_lines(lines: Iterable[str]) -> XComRead:
    """The hand-over in ``lines`` (the sidecar's whole log). Pure."""
    decoder = FrameDecoder()
    for line in lines:
        decoder.feed(line)
    return decoder.result()


def _count(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def _corrupt(detail: str) -> str:
    return f"the {SIDECAR_NAME} container's hand-over of {XCOM_FILE} is corrupted: {detail}"


async def read_xcom(
    client: KubeClient, namespace: str, pod: str, *, limit: float = 60.0
) -> XComRead:
    """Read the hand-over from the sidecar's log, once the base container has ended.

    Follows the log (one ``pods/log`` request, more only if a stream is cut) until the
    end marker; gives up ``limit`` seconds from now (the kubelet has stopped the sidecar
    by then: the pod's termination grace period is its bound). Never raises an
    :class:`~asyncpod.AsyncpodError`: what went wrong is the result's ``error``.
    """
    decoder = FrameDecoder()
    deadline = time.monotonic() + limit

    async def finished() -> bool:
        return decoder.done or time.monotonic() >= deadline

    follower = LogFollower(
        client,
        namespace,
        pod,
        container=SIDECAR_NAME,
        container_finished=finished,
        finish_check_interval=1.0,
    )
    try:
        async with contextlib.aclosing(aiter(follower)) as lines:
            async for line in lines:
                decoder.feed(line.text)
                if decoder.done:
                    break
    except NotFoundError as error:
        gone = f"pod {namespace}/{pod} went away before {XCOM_FILE} was read: {error}"
        return XComRead(error=gone)
    except AsyncpodError as error:
        failed = f"reading {XCOM_FILE} from the {SIDECAR_NAME} container's log failed: {error}"
        return XComRead(error=failed)
    return decoder.result()
