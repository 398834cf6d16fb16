"""Kubernetes resource quantities ("500m", "1Gi", "1e3") parsed to exact decimals.

Why this module exists: a request above its limit, a negative amount or half a GPU is
rejected by the API server pod by pod; comparing quantities needs their exact value,
so :class:`~asyncpod.spec.Resources` parses them with the server's grammar
(``k8s.io/apimachinery/pkg/api/resource``).

What it deliberately does not do: it never rewrites a quantity (the manifest carries the
user's text), and it raises ``ValueError``, not ``SpecError``: it is an internal parser
whose callers name the field.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

__all__ = ["is_extended_resource", "parse_quantity"]

# A signed decimal number, then a binary-SI suffix, a decimal-SI suffix or a decimal
# exponent. The exponent is tried first so that "1E3" is 1000 and a bare "1E" is one exa.
_QUANTITY_RE = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?"
)
_BINARY_SUFFIXES: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIXES: Final = {
    "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
}  # fmt: skip


def parse_quantity(text: str) -> Decimal:
    """Parse a Kubernetes quantity ("100m", "1Gi", "1e3", ".5") into its exact value.

    Raises ``ValueError`` when ``text`` does not follow the quantity grammar.
    """
    match = _QUANTITY_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    try:
        number = Decimal(match.group("number"))
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"{text!r} is not a Kubernetes quantity") from None
    if match.group("sign") == "-":
        number = -number
    suffix = match.group("suffix") or ""
    if suffix in _BINARY_SUFFIXES:
        return number * (1 << _BINARY_SUFFIXES[suffix])
    if suffix in _DECIMAL_SUFFIXES:
        return number.scaleb(_DECIMAL_SUFFIXES[suffix])
    return number.scaleb(int(suffix[1:]))


def is_extended_resource(name: str) -> bool:
    """GPUs and other device-plugin resources: integers only, no overcommit."""
    domain, slash, _ = name.partition("/")
    if not slash:
        return False
    return not (
        domain == "kubernetes.io"
        or domain.endswith(".kubernetes.io")
        or domain.startswith(("requests.", "limits."))
    )
