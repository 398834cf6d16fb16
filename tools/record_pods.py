"""Record real pod objects from the local control plane for the lifecycle unit tests.

Why: ``tests/unit/test_lifecycle.py`` runs the pure functions of
:mod:`asyncpod.core.lifecycle` over hand-built pods; hand-built input only proves that
we agree with ourselves. This script starts a :class:`~asyncpod.testing.LocalControlPlane`
(real etcd, kube-apiserver, kube-scheduler and kube-controller-manager; kwok simulates
the kubelets), creates one pod per scenario and writes down **every version of it seen
on a watch**, so ``tests/unit/test_lifecycle_recorded.py`` can replay what Kubernetes
actually sent, without a cluster.

Run it by hand from the repository root (about a minute; the binaries come from the
cache that ``asyncpod.testing.ensure_binaries`` fills)::

    .venv/bin/python tools/record_pods.py                 # every scenario
    .venv/bin/python tools/record_pods.py oomkilled ...   # only these
    .venv/bin/python tools/record_pods.py --out /tmp/rec  # somewhere else

Output, in ``tests/unit/pods/recorded/`` by default:

- ``<scenario>.json``: a JSON list of watch events ``{"type": ..., "object": ...}``
  for the pod, from its creation (ADDED) to the version the scenario waits for (the
  DELETED event for a deleted pod). Only ``metadata.managedFields`` is stripped; uids,
  resourceVersions and timestamps are kept as recorded.
- ``<scenario>.events.json``: for scenarios where the pod does not succeed, the
  ``EventList`` body of ``/api/v1/namespaces/default/events?fieldSelector=
  involvedObject.uid=<uid>`` (managedFields stripped from each Event), fetched once the
  final version has been seen and the event stream has settled.
- ``README.md``: where the files came from (versions, date, command).

Scenarios (outcomes driven by kwok stages via ``asyncpod.testing.outcome``):

==========================  =============================================================
success                     main exits 0 after 2 s
exit-3-message              main exits 3 with a termination message
oomkilled                   main is OOMKilled with exit code 137
init-second-fails           init ``setup`` exits 0, init ``migrate`` exits 4; main never runs
image-pull-failure          ErrImagePull, then ImagePullBackOff (both versions recorded)
unschedulable               nodeSelector no node matches: PodScheduled=False Unschedulable
deleted-while-running       DELETE while Running; ends with the watch's DELETED event
sidecar-0-main-2            two ordinary containers: ``sidecar`` exits 0, ``main`` exits 2
==========================  =============================================================

With ``--real-node`` (root; ``make real-node`` first) the same kinds of scenarios run as
real containers on a real kubelet + containerd node instead, and go to
``tests/unit/pods/recorded/real/`` (``tests/unit/test_lifecycle_recorded_real.py``)::

    .venv/bin/python tools/record_pods.py --real-node

==========================  =============================================================
success                     ``sleep 1; echo ok``
exit-3-message              writes /dev/termination-log, exits 3
oomkilled                   a 64 MiB shell variable under a 16 MiB memory limit
init-second-fails           init ``setup`` exits 0, init ``migrate`` writes a message, exits 4
image-pull-failure          a tag that was never imported: ErrImagePull, ImagePullBackOff
deleted-while-running       DELETE while Running (the shell obeys SIGTERM)
sidecar-0-main-2            two ordinary containers: ``sidecar`` exits 0, ``main`` exits 2
native-sidecar              init ``setup``, native sidecar ``helper``, ``main`` exits 0
==========================  =============================================================

Re-recording changes uids, timestamps, node names and resourceVersions; the tests assert
what does not change (states, reasons, exit codes, ordering). Review the diff of the
tests' expectations after re-recording with a new Kubernetes or kwok version.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncpod.testing import (
    REAL_NODE_SELECTOR,
    REAL_NODE_TOLERATIONS,
    AdminClient,
    Binaries,
    LocalControlPlane,
    ensure_binaries,
    outcome,
)

NAMESPACE = "default"
IMAGE = "busybox:1.36"
OUT = Path(__file__).resolve().parent.parent / "tests" / "unit" / "pods" / "recorded"
WATCH_TIMEOUT = 60  # seconds; every scenario ends well within this
EVENTS_SETTLE = 1.5  # seconds without a new Event before the list is taken as complete

Event = dict[str, Any]
Stop = Callable[[str, dict[str, Any]], bool]


# --------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------


def manifest(
    name: str,
    *,
    annotations: dict[str, str],
    containers: Sequence[str] = ("main",),
    init_containers: Sequence[str] = (),
    node_selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A pod shaped like the ones asyncpod creates (labels, default-container)."""
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [{"name": c, "image": IMAGE} for c in containers],
    }
    if init_containers:
        spec["initContainers"] = [{"name": c, "image": IMAGE} for c in init_containers]
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "asyncpod", "asyncpod.dev/run-id": name},
            "annotations": {
                "kubectl.kubernetes.io/default-container": "main",
                "asyncpod.dev/task-key": f"recorded/{name}",
                **annotations,
            },
        },
        "spec": spec,
    }


def _phase(pod: dict[str, Any]) -> str | None:
    phase = (pod.get("status") or {}).get("phase")
    return phase if isinstance(phase, str) else None


def finished(event_type: str, pod: dict[str, Any]) -> bool:
    return _phase(pod) in ("Succeeded", "Failed")


def waiting_for(reason: str) -> Stop:
    def stop(event_type: str, pod: dict[str, Any]) -> bool:
        for item in (pod.get("status") or {}).get("containerStatuses") or ():
            if (item.get("state") or {}).get("waiting", {}).get("reason") == reason:
                return True
        return False

    return stop


def unschedulable(event_type: str, pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "PodScheduled"
        and c.get("status") == "False"
        and c.get("reason") == "Unschedulable"
        for c in (pod.get("status") or {}).get("conditions") or ()
    )


def deleted(event_type: str, pod: dict[str, Any]) -> bool:
    return event_type == "DELETED"


@dataclass
class Scenario:
    name: str
    manifest: dict[str, Any]
    stop: Stop
    events: bool
    #: Called with each event as it arrives (the deletion scenario deletes on Running).
    on_event: Callable[[AdminClient, str, dict[str, Any]], None] | None = None


_DELETED: set[str] = set()


def delete_when_running(admin: AdminClient, event_type: str, pod: dict[str, Any]) -> None:
    """DELETE the pod (default grace period) the first time it is seen Running."""
    uid = pod["metadata"]["uid"]
    if _phase(pod) == "Running" and uid not in _DELETED:
        _DELETED.add(uid)
        name = pod["metadata"]["name"]
        admin.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")


def scenarios() -> list[Scenario]:
    return [
        Scenario(
            "success",
            manifest("success", annotations=outcome(duration="2s")),
            finished,
            events=False,
        ),
        Scenario(
            "exit-3-message",
            manifest(
                "exit-3-message",
                annotations=outcome(
                    duration="2s", exit_code=3, message="bad input: row 17 has 3 columns"
                ),
            ),
            finished,
            events=True,
        ),
        Scenario(
            "oomkilled",
            manifest(
                "oomkilled", annotations=outcome(duration="2s", exit_code=137, reason="OOMKilled")
            ),
            finished,
            events=True,
        ),
        Scenario(
            "init-second-fails",
            manifest(
                "init-second-fails",
                annotations=outcome(
                    init_duration="1s",
                    containers={
                        "migrate": {"exit_code": 4, "message": "migration 0042 failed"},
                    },
                ),
                init_containers=("setup", "migrate"),
            ),
            finished,
            events=True,
        ),
        Scenario(
            "image-pull-failure",
            manifest(
                "image-pull-failure",
                annotations=outcome(image_pull_fails=True, image_pull_backoff_after="2s"),
            ),
            waiting_for("ImagePullBackOff"),
            events=True,
        ),
        Scenario(
            "unschedulable",
            manifest(
                "unschedulable",
                annotations={},
                node_selector={"asyncpod.dev/no-such-node": "true"},
            ),
            unschedulable,
            events=True,
        ),
        Scenario(
            "deleted-while-running",
            manifest("deleted-while-running", annotations=outcome(duration="1h")),
            deleted,
            events=True,
            on_event=delete_when_running,
        ),
        Scenario(
            "sidecar-0-main-2",
            manifest(
                "sidecar-0-main-2",
                annotations=outcome(
                    duration="2s", exit_code=2, containers={"sidecar": {"exit_code": 0}}
                ),
                containers=("main", "sidecar"),
            ),
            finished,
            events=True,
        ),
    ]


TRAP = "trap 'exit 0' TERM"  # PID 1 ignores SIGTERM unless it has a handler


# A fully qualified local name: for a short one the kubelet would write the default
# registry's host name into every status, and none goes into this repository.
REAL_IMAGE = "localhost/busybox:1.36"


def real_manifest(
    name: str,
    containers: dict[str, str],
    *,
    init_containers: dict[str, str] | None = None,
    native_sidecars: dict[str, str] | None = None,
    image: str = REAL_IMAGE,
    memory_limit: str | None = None,
) -> dict[str, Any]:
    """A pod for the real node: each container runs ``sh -c SCRIPT``."""

    def container(cname: str, script: str, **extra: Any) -> dict[str, Any]:
        out = {"name": cname, "image": image, "command": ["sh", "-c", script], **extra}
        if memory_limit and cname == "main":
            out["resources"] = {"limits": {"memory": memory_limit}}
        return out

    pod = manifest(name, annotations={}, containers=list(containers))
    spec = pod["spec"]
    spec["containers"] = [container(c, script) for c, script in containers.items()]
    inits = [container(c, script) for c, script in (init_containers or {}).items()]
    inits += [
        container(c, script, restartPolicy="Always")
        for c, script in (native_sidecars or {}).items()
    ]
    if inits:
        spec["initContainers"] = inits
    spec["nodeSelector"] = dict(REAL_NODE_SELECTOR)
    spec["tolerations"] = [dict(t) for t in REAL_NODE_TOLERATIONS]
    return pod


def real_scenarios() -> list[Scenario]:
    loop = f"{TRAP}; while true; do sleep 1; done"
    return [
        Scenario(
            "success",
            real_manifest("success", {"main": "sleep 1; echo ok"}),
            finished,
            events=False,
        ),
        Scenario(
            "exit-3-message",
            real_manifest(
                "exit-3-message",
                {"main": "printf 'bad input: row 17 has 3 columns' > /dev/termination-log; exit 3"},
            ),
            finished,
            events=True,
        ),
        Scenario(
            "oomkilled",
            real_manifest(
                "oomkilled",
                {"main": "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#x}"},
                memory_limit="16Mi",
            ),
            finished,
            events=True,
        ),
        Scenario(
            "init-second-fails",
            real_manifest(
                "init-second-fails",
                {"main": "echo never"},
                init_containers={
                    "setup": "echo setup",
                    "migrate": "printf 'migration 0042 failed' > /dev/termination-log; exit 4",
                },
            ),
            finished,
            events=True,
        ),
        Scenario(
            "image-pull-failure",
            real_manifest(
                "image-pull-failure", {"main": "true"}, image="localhost/busybox:0.0-no-such-tag"
            ),
            waiting_for("ImagePullBackOff"),
            events=True,
        ),
        Scenario(
            "deleted-while-running",
            real_manifest("deleted-while-running", {"main": loop}),
            deleted,
            events=True,
            on_event=delete_when_running,
        ),
        Scenario(
            "sidecar-0-main-2",
            real_manifest(
                "sidecar-0-main-2", {"main": "sleep 2; exit 2", "sidecar": "sleep 1; exit 0"}
            ),
            finished,
            events=True,
        ),
        Scenario(
            "native-sidecar",
            real_manifest(
                "native-sidecar",
                {"main": "sleep 1; echo main done"},
                init_containers={"setup": "echo setup"},
                native_sidecars={"helper": loop},
            ),
            finished,
            events=False,
        ),
    ]


# --------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------


def strip(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without ``metadata.managedFields`` (nothing else is touched)."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        obj = {**obj, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}
    return obj


def stream(admin: AdminClient, path: str) -> Generator[tuple[str, dict[str, Any]], None, None]:
    """A raw watch: one ``(type, object)`` per JSON line, as the API server sends them."""
    request = urllib.request.Request(admin.server + path)  # noqa: S310 - the local cluster
    timeout = WATCH_TIMEOUT + 10
    with urllib.request.urlopen(  # noqa: S310
        request, context=admin.ssl_context, timeout=timeout
    ) as response:
        for line in response:
            if line.strip():
                event = json.loads(line)
                yield event["type"], event["object"]


def record(admin: AdminClient, scenario: Scenario) -> tuple[list[Event], dict[str, Any] | None]:
    """Create the scenario's pod and return its watch events (and its EventList)."""
    base = f"/api/v1/namespaces/{NAMESPACE}/pods"
    name = scenario.manifest["metadata"]["name"]
    selector = f"metadata.name={name}"
    # Watch from a version before the create, so the ADDED event cannot be missed.
    listed = admin.request("GET", f"{base}?{urllib.parse.urlencode({'fieldSelector': selector})}")
    if listed["items"]:
        raise SystemExit(f"pod {NAMESPACE}/{name} already exists; use a fresh control plane")
    query = urllib.parse.urlencode(
        {
            "watch": "1",
            "fieldSelector": selector,
            "resourceVersion": listed["metadata"]["resourceVersion"],
            "timeoutSeconds": WATCH_TIMEOUT,
        }
    )
    admin.request("POST", base, scenario.manifest)
    events: list[Event] = []
    with contextlib.closing(stream(admin, f"{base}?{query}")) as watch:
        for event_type, obj in watch:
            if event_type == "ERROR":
                raise SystemExit(f"{scenario.name}: watch error: {obj}")
            events.append({"type": event_type, "object": strip(obj)})
            if scenario.on_event is not None:
                scenario.on_event(admin, event_type, obj)
            if scenario.stop(event_type, obj):
                break
        else:
            raise SystemExit(
                f"{scenario.name}: the watch ended before the awaited version;"
                f" last seen: {json.dumps(events[-1:])[:2000]}"
            )
    if not scenario.events:
        return events, None
    uid = events[0]["object"]["metadata"]["uid"]
    return events, settled_events(admin, uid)


def settled_events(admin: AdminClient, uid: str) -> dict[str, Any]:
    """The pod's EventList once no new Event (or count bump) arrived for a while."""
    query = urllib.parse.urlencode({"fieldSelector": f"involvedObject.uid={uid}"})
    path = f"/api/v1/namespaces/{NAMESPACE}/events?{query}"
    last: list[tuple[str, Any]] = []
    quiet_since = time.monotonic()
    deadline = quiet_since + 30
    while True:
        body: dict[str, Any] = admin.request("GET", path)
        shape = [(e["metadata"]["uid"], e.get("count")) for e in body["items"]]
        if shape != last:
            last, quiet_since = shape, time.monotonic()
        elif time.monotonic() - quiet_since >= EVENTS_SETTLE or time.monotonic() > deadline:
            body["items"] = [strip(item) for item in body["items"]]
            return body
        time.sleep(0.25)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def write_real_readme(out: Path, plane: LocalControlPlane, names: Sequence[str]) -> None:
    version = plane.admin.request("GET", "/version")
    node = plane.admin.request("GET", f"/api/v1/nodes/{plane.real_node_names[0]}")
    info = node["status"]["nodeInfo"]
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    lines = [
        "# Recorded pod objects: a real kubelet",
        "",
        "Produced by `.venv/bin/python tools/record_pods.py --real-node` (see its docstring)",
        "against `asyncpod.testing.LocalControlPlane(real_nodes=1)`: kube-apiserver,",
        f"kube-scheduler and kube-controller-manager {version.get('gitVersion')}, and a real",
        f"node: kubelet {info['kubeletVersion']}, {info['containerRuntimeVersion']} (Debian),",
        f"runc, cgroup v1, kernel {info['kernelVersion']}; busybox-static images imported",
        "locally (no registry).",
        f"Recorded on {today}. Do not edit by hand; re-record instead.",
        "",
        "`<scenario>.json` is every watch event of one pod, `{type, object}`, in the order",
        "the API server sent them (only `metadata.managedFields` stripped).",
        "`<scenario>.events.json` is the pod's `EventList` (failed scenarios only).",
        "",
        "Scenarios: " + ", ".join(f"`{n}`" for n in names) + ".",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")


def write_readme(
    out: Path, plane: LocalControlPlane, binaries: Binaries, names: Sequence[str]
) -> None:
    version = plane.admin.request("GET", "/version")
    # The cache directory is named after the version it was built from: kwok-v0.7.0-<hash>.
    kwok = binaries.kwok.parent.name
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    lines = [
        "# Recorded pod objects",
        "",
        "Produced by `.venv/bin/python tools/record_pods.py` (see its docstring) against",
        "`asyncpod.testing.LocalControlPlane`: kube-apiserver, kube-scheduler and",
        f"kube-controller-manager {version.get('gitVersion')}, with kubelets simulated by",
        kwok.rsplit("-", 1)[0].replace("-", " ")
        + " (stages in asyncpod/testing/data/stages.yaml).",
        f"Recorded on {today}. Do not edit by hand; re-record instead.",
        "",
        "`<scenario>.json` is every watch event of one pod, `{type, object}`, in the order",
        "the API server sent them (only `metadata.managedFields` stripped).",
        "`<scenario>.events.json` is the pod's `EventList` (failed scenarios only).",
        "",
        "Scenarios: " + ", ".join(f"`{n}`" for n in names) + ".",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")


def say(text: str) -> None:
    """Progress on stdout (a script run by hand; no logging setup needed)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("only", nargs="*", help="scenario names to record (default: all)")
    parser.add_argument("--out", type=Path, default=None, help=f"output directory ({OUT})")
    parser.add_argument(
        "--real-node",
        action="store_true",
        help=f"real containers on a real kubelet (root); default output {OUT / 'real'}",
    )
    args = parser.parse_args(argv)
    chosen = real_scenarios() if args.real_node else scenarios()
    unknown = set(args.only) - {s.name for s in chosen}
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {[s.name for s in chosen]}")
    if args.only:
        chosen = [s for s in chosen if s.name in args.only]
    out: Path = args.out or (OUT / "real" if args.real_node else OUT)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    binaries = ensure_binaries()
    with LocalControlPlane(binaries=binaries, real_nodes=int(args.real_node)) as plane:
        say(f"control plane up in {plane.startup_seconds:.1f}s at {plane.server}")
        for scenario in chosen:
            events, event_list = record(plane.admin, scenario)
            write_json(out / f"{scenario.name}.json", events)
            note = ""
            if event_list is not None:
                write_json(out / f"{scenario.name}.events.json", event_list)
                note = f", {len(event_list['items'])} Events"
            kinds = " ".join(e["type"][0] for e in events)
            say(f"{scenario.name}: {len(events)} versions ({kinds}){note}")
        if not args.only and args.real_node:
            write_real_readme(out, plane, [s.name for s in chosen])
        elif not args.only:
            write_readme(out, plane, binaries, [s.name for s in chosen])
    say(f"done in {time.monotonic() - started:.1f}s; files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
