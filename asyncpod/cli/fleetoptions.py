"""``asyncpod batch`` over several clusters: ``--context``/``--kubeconfig`` more than once.

Why a module of its own: which clusters a batch runs on, and with what weight, is
parsed and checked here (a pure function of the arguments, tested without a cluster),
so that a bad choice is a :class:`~asyncpod.UsageError` naming it before any session
is opened or pod created. The batch itself runs through :class:`asyncpod.Fleet`.

The syntax::

    --context east=3 --context west=1        # two contexts of one kubeconfig, 3:1
    --kubeconfig a.yaml --kubeconfig b.yaml  # two kubeconfigs (each its current context), 1:1
    --kubeconfig a.yaml=2 --kubeconfig b.yaml --context prod   # the same context in both

A weight follows the last ``=`` (a whole number, at least 1; default 1). A cluster is
named by its context when several contexts are given, else by the kubeconfig path as
given; the name is what each results line's ``cluster`` says. Several contexts with
several kubeconfigs is ambiguous and refused.

What it deliberately does not do: read kubeconfig files (the batch checks every
context exists before connecting to any) or decide shares (:mod:`asyncpod.core.routing`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asyncpod.errors import UsageError

__all__ = ["ClusterChoice", "add_fleet_cluster_options", "cluster_choices", "parse_weighted"]


@dataclass(frozen=True, slots=True)
class ClusterChoice:
    """One cluster of a batch: its name in results, where it is, and its weight."""

    name: str
    kubeconfig: str | None
    context: str | None
    weight: int = 1


def add_fleet_cluster_options(parser: argparse.ArgumentParser) -> None:
    """``--kubeconfig``/``--context`` (each repeatable, with a weight), ``--namespace``."""
    group = parser.add_argument_group(
        "cluster (several --context or --kubeconfig: one batch over several clusters)"
    )
    group.add_argument(
        "--kubeconfig", metavar="PATH[=WEIGHT]", action="append", default=None,
        help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster); "
        "repeat for several clusters",
    )  # fmt: skip
    group.add_argument(
        "--context", metavar="NAME[=WEIGHT]", action="append", default=None,
        help="kubeconfig context to use; repeat for several clusters, each with its "
        "share of --max-in-flight by WEIGHT (default 1)",
    )  # fmt: skip
    group.add_argument(
        "-n", "--namespace", default=None,
        help="namespace of the pods (default: the context's namespace, else 'default')",
    )  # fmt: skip
    group.add_argument(
        "--cluster-lost-after", type=float, default=None, metavar="SECONDS",
        help="with several clusters: one whose API server has not answered that long is "
        "lost and gets no new pods (default: the create retry window, 60)",
    )  # fmt: skip


def parse_weighted(text: str, *, option: str) -> tuple[str, int]:
    """``"east=3"`` → ``("east", 3)``; ``"east"`` → ``("east", 1)``."""
    name, sep, weight_text = text.rpartition("=")
    if not sep:
        name, weight_text = text, ""
    if not name:
        raise UsageError(f"{option} {text!r}: a name is needed before '='")
    if not sep:
        return name, 1
    try:
        weight = int(weight_text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: the weight {weight_text!r} must be a whole number of at least 1"
        ) from None
    if weight < 1:
        raise UsageError(f"{option} {text!r}: the weight {weight} must be at least 1")
    return name, weight


def cluster_choices(
    kubeconfigs: Sequence[str], contexts: Sequence[str]
) -> tuple[ClusterChoice, ...]:
    """The clusters the arguments name: one or more, in the order given."""
    configs = [parse_weighted(text, option="--kubeconfig") for text in kubeconfigs]
    named = [parse_weighted(text, option="--context") for text in contexts]
    if len(configs) > 1 and len(named) > 1:
        raise UsageError(
            "several --kubeconfig and several --context: give several contexts of one "
            "kubeconfig, or several kubeconfigs (each with its current context, or one "
            "--context for all)"
        )
    if len(named) > 1:
        kubeconfig = configs[0][0] if configs else None
        choices = tuple(ClusterChoice(n, kubeconfig, n, w) for n, w in named)
    elif len(configs) > 1:
        context = named[0][0] if named else None
        choices = tuple(ClusterChoice(p, str(Path(p)), context, w) for p, w in configs)
    else:
        kubeconfig = configs[0][0] if configs else None
        context = named[0][0] if named else None
        name = context or kubeconfig or "default"
        return (ClusterChoice(name, kubeconfig, context, 1),)
    seen: set[str] = set()
    for choice in choices:
        if choice.name in seen:
            option = "--context" if len(named) > 1 else "--kubeconfig"
            raise UsageError(f"{option} {choice.name!r} is given twice")
        seen.add(choice.name)
    return choices
