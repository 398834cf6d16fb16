"""``asyncpod run`` as a subprocess against the local control plane.

kwok plays each pod's outcome from its annotations (``-a``), and the ``container_logs``
fixture makes the real ``pods/log`` endpoint serve lines for a pod name given with
``--name``. Each test checks what a script would rely on: stdout, the exit code, the
message on stderr, and that no pod is left behind.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from asyncpod.testing import ContainerLog, LocalControlPlane
from asyncpod.testing.pytest_plugin import TestCluster
from tests.cli.helpers import Cli, pods, wait_until

pytestmark = pytest.mark.integration

SIM = "sim.asyncpod.dev/"


def no_pods_left(kube_cluster: TestCluster, namespace: str) -> None:
    wait_until(lambda: not pods(kube_cluster, namespace), timeout=15, what="the pod to go")


@pytest.mark.simulated
def test_run_streams_the_logs_and_exits_0(
    cli: Cli,
    kube_cluster: TestCluster,
    namespace: str,
    container_logs: Callable[..., dict[str, ContainerLog]],
) -> None:
    lines = ["hello from the pod", "  indented, with trailing space ", "ünïcödé ✓", "last line"]
    container_logs("hello-run", ["main"])["main"].write(lines)

    process = cli.run(
        "run", "busybox:1.36", *cli.cluster_args, "--name", "hello-run",
        "-a", f"{SIM}duration=500ms", "--", "sh", "-c", "echo hello",
    )  # fmt: skip

    assert process.popen.returncode == 0, process.stderr
    assert process.stdout == "".join(f"{line}\n" for line in lines)
    # Only the note that kwok played the pod (asyncpod/cli/simulated.py; test_simulated_note).
    [said] = process.stderr.splitlines()
    assert said.startswith(f"asyncpod run: note: pod {namespace}/hello-run ran on kwok node "), said
    no_pods_left(kube_cluster, namespace)


@pytest.mark.simulated
def test_run_exit_code_mirrors_the_container(
    cli: Cli, kube_cluster: TestCluster, namespace: str
) -> None:
    process = cli.run(
        "run", "busybox:1.36", *cli.cluster_args,
        "-a", f"{SIM}duration=300ms", "-a", f"{SIM}exit-code=3", "--", "sh", "-c", "exit 3",
    )  # fmt: skip

    assert process.popen.returncode == 3, process.stderr
    assert "failed (Error, exit code 3)" in process.stderr
    assert process.stdout == ""
    no_pods_left(kube_cluster, namespace)


@pytest.mark.simulated
def test_run_without_an_exit_code_fails_with_1_and_says_why(
    cli: Cli, kube_cluster: TestCluster, namespace: str
) -> None:
    process = cli.run(
        "run", "registry.invalid/nope:1", *cli.cluster_args,
        "-a", f"{SIM}image-pull=fail", "-a", f"{SIM}image-pull-backoff-after=200ms",
        "--image-pull-timeout", "1",
    )  # fmt: skip

    assert process.popen.returncode == 1, process.stderr
    stderr = process.stderr
    assert "failed (ImagePullBackOff)" in stderr or "failed (ErrImagePull)" in stderr
    assert "registry.invalid/nope:1" in stderr
    no_pods_left(kube_cluster, namespace)


def test_run_usage_errors_exit_2_and_create_nothing(
    cli: Cli, kube_cluster: TestCluster, namespace: str
) -> None:
    bad_label = cli.run("run", "busybox", *cli.cluster_args, "-l", "bad key=x")
    bad_env = cli.run("run", "busybox", *cli.cluster_args, "--env", "NO_EQUALS_SIGN")

    assert bad_label.popen.returncode == 2
    assert 'labels["bad key"]' in bad_label.stderr
    assert bad_env.popen.returncode == 2
    assert "--env expects KEY=VALUE, got 'NO_EQUALS_SIGN'" in bad_env.stderr
    assert pods(kube_cluster, namespace) == []


@pytest.mark.simulated
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_run_ctrl_c_or_sigterm_deletes_the_pod_and_exits_128_plus_the_signal(
    cli: Cli, kube_cluster: TestCluster, namespace: str, signum: signal.Signals, code: int
) -> None:
    process = cli.start(
        "run", "busybox:1.36", *cli.cluster_args, "--name", "long-run",
        "-a", f"{SIM}duration=60s", "--", "sleep", "60",
    )  # fmt: skip

    def running() -> bool:
        found = pods(kube_cluster, namespace)
        return bool(found) and found[0]["status"].get("phase") == "Running"

    wait_until(running, timeout=30, what="the pod to run")
    process.popen.send_signal(signum)

    assert process.wait(30) == code
    assert f"interrupted; pod {namespace}/long-run deleted" in process.stderr
    no_pods_left(kube_cluster, namespace)


def test_run_in_a_namespace_that_does_not_exist_exits_2(
    cli: Cli, kube_cluster: TestCluster
) -> None:
    process = cli.run(
        "run", "busybox:1.36", "--kubeconfig", str(kube_cluster.kubeconfig),
        "--namespace", "no-such-namespace", "--", "true",
    )  # fmt: skip

    assert process.popen.returncode == 2, process.stderr
    assert process.stderr.startswith(
        "asyncpod run: namespace 'no-such-namespace' does not exist on this cluster"
    )
    assert all(line.startswith("asyncpod run: ") for line in process.stderr.splitlines())
    assert process.stdout == ""


@pytest.mark.simulated
def test_run_verbose_speaks_only_in_its_own_voice(
    cli: Cli, kube_cluster: TestCluster, namespace: str
) -> None:
    process = cli.run(
        "run", "busybox:1.36", *cli.cluster_args, "-vv", "--no-logs",
        "-a", f"{SIM}duration=300ms", "--", "true",
    )  # fmt: skip

    assert process.popen.returncode == 0, process.stderr
    lines = process.stderr.splitlines()
    assert any(" succeeded" in line for line in lines), lines  # the state changes
    # The library's records (if any) are in the command's voice too; nothing raw.
    assert all(line.startswith("asyncpod run: ") for line in lines), lines
    no_pods_left(kube_cluster, namespace)


@pytest.mark.simulated
def test_a_library_warning_reaches_the_user_in_the_commands_voice(
    cli: Cli, kube_cluster: TestCluster, namespace: str, control_plane: LocalControlPlane
) -> None:
    # Restarting the API server under a running pod cuts the shared watch: the library
    # warns that it is reconnecting. The user sees it as one line of `asyncpod run`.
    process = cli.start(
        "run", "busybox:1.36", *cli.cluster_args, "--name", "outlives-a-restart",
        "--no-logs", "-a", f"{SIM}duration=12s", "--", "true",
    )  # fmt: skip
    wait_until(lambda: bool(pods(kube_cluster, namespace)), timeout=30, what="the pod")
    control_plane.restart_apiserver()

    assert process.wait(90) == 0, process.stderr
    lines = process.stderr.splitlines()
    assert any(
        line.startswith("asyncpod run: warning: ") and "watch interrupted" in line for line in lines
    ), lines
    assert all(line.startswith("asyncpod run: ") for line in lines), lines
    no_pods_left(kube_cluster, namespace)
