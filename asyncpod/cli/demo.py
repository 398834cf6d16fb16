"""``asyncpod demo``: the README's first command; a 200-pod batch, on a fresh machine.

Why: a new user should see the launcher do its job (bounded concurrency, progress,
failures explained, a summary) in one command, without a cloud account or Docker.
With no cluster given (no ``--kubeconfig``, no ``KUBECONFIG``), it starts the local
control plane of ``asyncpod cluster up`` (building its binaries from the Go module
proxy on first use, which takes minutes once and says so) and runs the bundled batch
``asyncpod/cli/demo.yaml`` against it. Its nodes are SIMULATED by kwok, and every line
the demo prints says so: pods are scheduled and "run", no container executes, and the
outcomes (durations, exit codes, an OOMKill, an image that never pulls) are played
from pod annotations.

Given a cluster, it says which one and runs the same file there, where the busybox
commands reproduce the outcomes for real (the annotations are inert); at a terminal it
asks first (``--yes`` skips the question). It never picks ``~/.kube/config`` by
itself: a demo must not surprise anyone's real cluster. The local control plane needs
the ``testing`` extra; without it the demo says so and exits 2 (a cluster you give
needs nothing more).

The demo exits 0 when every pod finished, whatever its outcome: the failures are part
of the show. What it deliberately does not do: stop the local control plane afterwards
(it is left running for more experiments; ``asyncpod cluster down`` stops it).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import sys
from importlib import resources
from pathlib import Path

from asyncpod.cli._common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from asyncpod.cli.batch import BatchConfig, execute, print_problems
from asyncpod.cli.batchfile import BatchFileError, parse_batch
from asyncpod.cli.cluster import default_state_dir, ensure_local_cluster, missing_testing_extra
from asyncpod.core.runner import Cleanup, RunOptions
from asyncpod.testing.binaries import BuildError, cache_dir

__all__ = ["DEMO_FILE", "add_parser", "demo_text"]

DEMO_FILE = "demo.yaml"
SIMULATED_TITLE = "asyncpod demo [simulated nodes]"


def _binaries_cached() -> bool:
    root = cache_dir()
    return root.is_dir() and any(root.glob("kube-*"))


def _confirm() -> bool:
    """Ask before 200 pods land on a real cluster; only a person at a terminal is asked."""
    if not sys.stdin.isatty():
        return True
    sys.stderr.write("create 200 demo pods there? [y/N] ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        return False
    return answer.strip().lower() in ("y", "yes")


def demo_text() -> str:
    return resources.files("asyncpod.cli").joinpath(DEMO_FILE).read_text(encoding="utf-8")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a 200-pod demo batch (on a local control plane with simulated nodes "
        "unless a cluster is given)",
        description=(
            "Run the bundled 200-pod demo batch with progress and a summary. With no "
            "--kubeconfig and no KUBECONFIG, it starts a local control plane whose nodes "
            "are simulated by kwok (no container executes) and leaves it running."
        ),
    )
    target = parser.add_argument_group("cluster")
    target.add_argument(
        "--kubeconfig", default=None, metavar="PATH",
        help="run on this cluster instead (default: $KUBECONFIG, else the local control plane)",
    )  # fmt: skip
    target.add_argument("--context", default=None, help="kubeconfig context to use")
    target.add_argument("-n", "--namespace", default=None, help="namespace of the demo pods")
    target.add_argument(
        "--local", action="store_true",
        help="use the local control plane even when KUBECONFIG is set",
    )  # fmt: skip
    target.add_argument(
        "--state-dir", type=Path, default=None,
        help=f"where the local control plane lives (default {default_state_dir()})",
    )  # fmt: skip
    target.add_argument("--nodes", type=int, default=3, help="kwok nodes of a new local plane")
    run = parser.add_argument_group("run")
    run.add_argument(
        "--max-in-flight", type=int, default=50, metavar="N", help="pods alive at once (50)"
    )
    run.add_argument(
        "--progress", choices=("auto", "bar", "lines", "none"), default="auto",
        help="a live bar (auto: when stderr is a terminal), periodic lines, or nothing",
    )  # fmt: skip
    run.add_argument(
        "--progress-interval", type=float, default=3.0, metavar="SECONDS",
        help="seconds between progress lines when not a bar (default 3)",
    )  # fmt: skip
    run.add_argument(
        "-y", "--yes", action="store_true",
        help="do not ask before creating pods on a cluster you gave (asked only on a terminal)",
    )  # fmt: skip
    run.add_argument(
        "--print", dest="print_file", action="store_true",
        help="print the demo's input file (a starting point for your own) and exit",
    )  # fmt: skip
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    text = demo_text()
    if args.print_file:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        batch = parse_batch(text, format="yaml", source=f"<asyncpod demo>/{DEMO_FILE}")
    except BatchFileError as error:  # a packaging bug; say so plainly
        print_problems(error, command="asyncpod demo")
        return EXIT_USAGE
    given = args.kubeconfig or (None if args.local else os.environ.get("KUBECONFIG"))
    state_dir: Path = args.state_dir or default_state_dir()
    run_id = f"demo-{secrets.token_hex(4)}"
    if given:
        source = "--kubeconfig" if args.kubeconfig else "KUBECONFIG"
        context = f" (context {args.context})" if args.context else ""
        banner: tuple[str, ...] = (
            f"asyncpod demo: running on the cluster of {source}={given}{context}",
            (
                "  on real nodes the 200 busybox pods really run (sleep, exit N, a 16Mi "
                "memory hog, a missing image, an impossible node selector);"
            ),
            (
                "  the exit codes and failures are simulated (sim.asyncpod.dev/* annotations) "
                "only on kwok nodes, as with asyncpod demo --local."
            ),
        )
        title = "asyncpod demo"
        kubeconfig = args.kubeconfig  # None: connect() reads (and merges) $KUBECONFIG
        # A real cluster pulls busybox and may scale up nodes: give pods time.
        options = RunOptions(schedule_timeout=120, image_pull_timeout=30, cleanup=Cleanup.DELETE)
        sys.stderr.write("".join(line + "\n" for line in banner))
        if not args.yes and not _confirm():
            sys.stderr.write("asyncpod demo: nothing was created\n")
            return EXIT_USAGE
        banner = ()
    else:
        missing = missing_testing_extra("asyncpod demo")
        if missing is not None:
            sys.stderr.write(missing + "\n")
            return EXIT_USAGE
        from asyncpod.testing.controlplane import ControlPlaneError

        sys.stderr.write(
            "asyncpod demo: no cluster given (--kubeconfig, KUBECONFIG), so the demo runs on "
            f"a local control plane in {state_dir}\n"
            "  whose nodes are SIMULATED by kwok: pods are scheduled and run, "
            "no container executes.\n"
        )
        if not _binaries_cached():
            sys.stderr.write(
                "  first use: building etcd, kube-apiserver, kube-scheduler, "
                "kube-controller-manager and kwok with `go` (several minutes, once).\n"
            )
        sys.stderr.flush()
        try:
            local: str | None = str(ensure_local_cluster(state_dir, nodes=args.nodes))
        except (BuildError, ControlPlaneError, OSError) as error:
            sys.stderr.write(f"asyncpod demo: could not start the local control plane: {error}\n")
            return EXIT_FAILED
        banner = (
            (
                f"{SIMULATED_TITLE}: 200 pods on kwok's simulated nodes; their durations, "
                "exit codes, OOMKills and image-pull failures are played from annotations."
            ),
        )
        title = SIMULATED_TITLE
        kubeconfig = local
        options = RunOptions(schedule_timeout=10, image_pull_timeout=5, cleanup=Cleanup.DELETE)
    config = BatchConfig(
        batch=batch,
        run_id=run_id,
        results_path=state_dir.parent / "demo" / f"{run_id}.results.jsonl",
        options=options,
        kubeconfig=kubeconfig,
        context=args.context,
        namespace=args.namespace,
        max_in_flight=args.max_in_flight,
        progress=args.progress,
        progress_interval=args.progress_interval,
        title=title,
        banner=banner,
        all_finished_is_success=True,
        note_simulated=bool(given),  # on its own control plane, every line says so already
    )
    code = execute(config)
    if not given and code in (EXIT_OK, EXIT_FAILED):
        cluster = "asyncpod cluster"
        if args.state_dir is not None:
            cluster += f" --state-dir {shlex.quote(str(args.state_dir))}"
        sys.stderr.write(
            "the local control plane keeps running (simulated nodes): "
            f'use it with eval "$({cluster} env)", stop it with {cluster} down\n'
            "your own batch: asyncpod demo --print > jobs.yaml; edit; asyncpod batch jobs.yaml\n"
        )
    return code
