"""Kubernetes naming rules: what a name, key, label value or image reference may be.

Why this module exists: a bad name is the most common spec mistake, and the API server
answers it with a 422 per pod. These checks mirror the server's own rules
(``k8s.io/apimachinery/pkg/util/validation``) and the kubelet's image reference grammar
(``github.com/distribution/reference``), so a batch fails on the line that has the
mistake, before anything is created.

Each ``*_problem`` function returns ``None`` or a sentence saying what is wrong with
the value; the caller knows the field and builds the :class:`~asyncpod.errors.SpecError`.

What it deliberately does not do: it knows nothing of specs or field paths, raises
nothing, and never rejects what a recent API server accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CONFIG_KEY_RE",
    "dns_label_problem",
    "dns_subdomain_problem",
    "image_problem",
    "label_value_problem",
    "qualified_name_problem",
    "snake_case_key_problem",
]

_DNS1123_LABEL_RE = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN_RE = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_QUALIFIED_NAME_RE = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
#: A key of a Secret or ConfigMap.
CONFIG_KEY_RE = re.compile(r"[-._a-zA-Z0-9]+")

# Image references (github.com/distribution/reference), which the kubelet applies; a
# reference that fails here ends as the never-recovering InvalidImageName.
_IMG_ALNUM = r"[a-z0-9]+"
_IMG_SEPARATOR = r"(?:[._]|__|-+)"
_IMG_PATH_COMPONENT = rf"{_IMG_ALNUM}(?:{_IMG_SEPARATOR}{_IMG_ALNUM})*"
_IMG_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IMG_DOMAIN = (
    rf"(?:{_IMG_DOMAIN_COMPONENT}(?:\.{_IMG_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_IMG_NAME = rf"(?:{_IMG_DOMAIN}/)?{_IMG_PATH_COMPONENT}(?:/{_IMG_PATH_COMPONENT})*"
_IMG_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_IMG_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_IMAGE_RE = re.compile(rf"(?P<name>{_IMG_NAME})(?::{_IMG_TAG})?(?:@{_IMG_DIGEST})?")


def dns_label_problem(value: object) -> str | None:
    """A DNS-1123 label: container and volume names, namespaces (at most 63 chars)."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > 63:
        return f"{value!r} is {len(value)} characters long; at most 63 are allowed"
    if not _DNS1123_LABEL_RE.fullmatch(value):
        return (
            f"{value!r} is not a valid DNS-1123 label: use lowercase letters, digits and '-',"
            " starting and ending with a letter or digit"
        )
    return None


def dns_subdomain_problem(value: object) -> str | None:
    """A DNS-1123 subdomain: pod, secret, config map, service account names."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > 253:
        return f"{value[:20]!r}... is {len(value)} characters long; at most 253 are allowed"
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        return (
            f"{value!r} is not a valid DNS-1123 subdomain: use lowercase letters, digits,"
            " '-' and '.', starting and ending with a letter or digit"
        )
    return None


def qualified_name_problem(value: object) -> str | None:
    """A label/annotation key: ``[prefix/]name`` with a DNS subdomain prefix."""
    if not isinstance(value, str):
        return f"key must be a string, got {type(value).__name__}"
    prefix, slash, name = value.rpartition("/")
    if slash:
        if not prefix:
            return f"key {value!r} has an empty prefix before '/'"
        problem = dns_subdomain_problem(prefix)
        if problem is not None:
            return f"key prefix {problem}"
    if not name:
        return f"key {value!r} has an empty name part"
    if len(name) > 63:
        return f"key name part {name[:20]!r}... is {len(name)} characters; at most 63 allowed"
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        return (
            f"key {value!r} is not a valid qualified name: the name part may hold letters,"
            " digits, '-', '_' and '.', starting and ending with a letter or digit"
        )
    return None


def label_value_problem(value: object) -> str | None:
    """A label value (also a node selector's or a toleration's value)."""
    if not isinstance(value, str):
        return f"value must be a string, got {type(value).__name__}"
    if len(value) > 63:
        return f"value {value[:20]!r}... is {len(value)} characters long; at most 63 allowed"
    if value and not _QUALIFIED_NAME_RE.fullmatch(value):
        return (
            f"value {value!r} is not a valid label value: letters, digits, '-', '_' and '.',"
            " starting and ending with a letter or digit (or empty)"
        )
    return None


def image_problem(value: object) -> str | None:
    """An image reference as the kubelet parses it."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if value != value.strip() or any(ch.isspace() for ch in value):
        return f"{value!r} contains whitespace"
    match = _IMAGE_RE.fullmatch(value) if len(value) <= 1024 else None
    if match is None:
        return (
            f"{value!r} is not a valid image reference: expected"
            " [registry[:port]/]repository[:tag][@digest], with a lowercase repository"
        )
    if len(match.group("name")) > 255:
        return "the repository name is longer than 255 characters"
    return None


def snake_case_key_problem(value: Mapping[str, Any]) -> tuple[str, str] | None:
    """Kubernetes field names are camelCase; the server silently drops unknown ones.

    A ``run_as_user`` that is dropped leaves the container running as root, so
    snake_case keys in the raw objects we pass through are flagged, with the fix.
    Returns ``(key, problem)`` for the first such key.
    """
    for key in value:
        if not isinstance(key, str):
            return repr(key), "keys must be strings"
        if "_" in key:
            head, *rest = key.split("_")
            camel = head + "".join(part[:1].upper() + part[1:] for part in rest)
            return key, f"unknown field; Kubernetes objects use camelCase: {camel!r}"
    return None
