"""Read a batch input file into validated specs, or report every problem with its line.

Why a module of its own: a batch of 10,000 pods must fail on line 3 of its file before
anything is created, not as a pod that never starts an hour in. Parsing and validating
the whole file is pure (text in, specs or problems out), so it is tested without a
cluster, and ``asyncpod batch --dry-run`` is exactly this module.

Three formats, all in the snake_case vocabulary of :meth:`asyncpod.PodSpec.from_dict`:

**A YAML list** (``.yaml``/``.yml``/``.json``; anchors and ``<<`` merge keys work)::

    - {task_key: shard-1, image: busybox:1.36, args: [sh, -c, "echo 1"]}
    - task_key: shard-2
      image: busybox:1.36
      resources: {limits: {memory: 64Mi}}

**JSONL** (``.jsonl``/``.ndjson``): one JSON object per line; blank lines are skipped.

**A template and parameter rows** (a YAML mapping)::

    template:                  # one spec; {placeholders} in its string values
      task_key: "shard-{shard}"
      image: busybox:1.36
      args: [process, --shard, "{shard}", --input, "{input}"]
      resources: {limits: {memory: "{memory}"}}
    defaults:                  # optional: values a row may leave out
      memory: 256Mi
    parameters:                # one pod per row
      - {shard: 1, input: s3://bucket/a}
      - {shard: 2, input: s3://bucket/b, memory: 1Gi}

Substitution, in the string *values* of the template (never in keys):
``{name}`` is replaced by the row's value (then the defaults'; ``{index}`` is the row's
position unless the row defines it); ``{name:>04}`` applies a Python format spec;
``{{`` and ``}}`` are literal braces. A string that is *exactly* one placeholder takes
the value with its type (a number, a list, a mapping: ``env: "{env}"``); write
``{name!s}`` to insert it as text instead (``task_key`` and label values must be text).
A placeholder no row or default defines is an error on that row's line.

Every entry gets a task key: its ``task_key``, else its position in the file (``0``,
``1``, ...), the same rule as :class:`asyncpod.Launcher`. Keys and explicit pod names
must be unique; they are what makes a resumed run reattach instead of duplicating.

Retries per entry (beside the spec's fields, in every format): ``retries: N`` (retries
after the first attempt; 0: none) and ``retry_on: [RULE, ...]`` (rules in the text of
``--retry-on``, or mappings ``{action: retry, reason: [Evicted], exit_codes: {in: [75]}}``:
:mod:`asyncpod.core.failurepolicy`) replace the command line's for that entry. A rule
that does not parse is a problem on its line, like any field.

Lines: a YAML entry's problems point at the line of the field when it can be found,
else at the entry's first line; a template's at the line of its parameter row. YAML
with duplicate keys in a mapping is rejected (PyYAML would silently keep the last).

What it deliberately does not do: talk to a cluster, apply command-line defaults
(namespace, timeouts; those are the launcher's), or read CSV (a row of a CSV file is
one flow mapping in ``parameters``; convert with one line of Python if you must).
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml

from asyncpod.core.failurepolicy import FailureRule
from asyncpod.errors import SpecError, UsageError
from asyncpod.spec import PodSpec

__all__ = [
    "Batch",
    "BatchFileError",
    "Entry",
    "Format",
    "Problem",
    "detect_format",
    "expand_template",
    "load_batch",
    "new_run_id",
    "parse_batch",
]

Format = Literal["yaml", "jsonl"]

_TEMPLATE_KEYS = ("template", "defaults", "parameters")
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input, where it is and what to fix."""

    line: int | None
    field: str
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{where}: {what}"


class BatchFileError(UsageError):
    """The input file has problems; ``problems`` lists every one, in line order."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(sorted(problems, key=lambda p: (p.line or 0, p.field)))
        count = len(self.problems)
        head = self.problems[0].render(source) if self.problems else source
        more = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(f"{head}{more}")


@dataclass(frozen=True, slots=True)
class Entry:
    """One validated pod of the batch. ``index`` is its 0-based position."""

    index: int
    line: int
    task_key: str
    spec: PodSpec
    retries: int | None = None
    """The entry's ``retries`` (None: the command line's)."""
    retry_on: tuple[FailureRule, ...] | None = None
    """The entry's ``retry_on`` rules (None: the command line's)."""


@dataclass(frozen=True, slots=True)
class Batch:
    source: str
    format: Format
    entries: tuple[Entry, ...]
    template: bool = False

    def __len__(self) -> int:
        return len(self.entries)


def new_run_id(source: str) -> str:
    """A new run id for a batch read from ``source``: ``<file stem slug>-<8 hex>``,
    readable in ``kubectl get pods`` and unique."""
    stem = Path(source).stem if source != "-" else "stdin"
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:20].strip("-") or "batch"
    return f"{slug}-{secrets.token_hex(4)}"


# --------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------


def detect_format(name: str, text: str) -> Format:
    """JSONL by extension, or when several lines each hold one JSON object; else YAML."""
    suffix = Path(name).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".yaml", ".yml", ".json"):
        return "yaml"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and all(line.startswith("{") and line.endswith("}") for line in lines[:2]):
        return "jsonl"
    return "yaml"


def load_batch(path: Path | str, *, format: Format | None = None) -> Batch:
    """Read and validate ``path`` (``-`` reads stdin); raise :class:`BatchFileError`."""
    source = str(path)
    try:
        text = sys.stdin.read() if source == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BatchFileError(source, [Problem(None, "", f"cannot read it: {error}")]) from None
    return parse_batch(text, format=format or detect_format(source, text), source=source)


def parse_batch(text: str, *, format: Format, source: str = "<input>") -> Batch:
    """Parse and validate a whole input; every problem is collected before raising."""
    problems: list[Problem] = []
    raw: list[_Raw]
    is_template = False
    if format == "jsonl":
        raw = _jsonl_entries(text, problems)
    else:
        raw, is_template = _yaml_entries(text, problems)
    entries = _validate(raw, problems)
    if problems:
        raise BatchFileError(source, problems)
    return Batch(source=source, format=format, entries=tuple(entries), template=is_template)


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Raw:
    """An entry's dict form before validation, and how to find lines inside it."""

    line: int
    data: Any
    node: yaml.Node | None = None


def _jsonl_entries(text: str, problems: list[Problem]) -> list[_Raw]:
    out: list[_Raw] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            problems.append(Problem(number, "", f"not valid JSON: {error}"))
            continue
        out.append(_Raw(number, data))
    return out


def _yaml_entries(text: str, problems: list[Problem]) -> tuple[list[_Raw], bool]:
    loader = _YAML_LOADER(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line = mark.line + 1 if mark is not None else None
            problems.append(Problem(line, "", f"not valid YAML: {error.problem or error}"))
            return [], False
        except yaml.YAMLError as error:
            problems.append(Problem(None, "", f"not valid YAML: {error}"))
            return [], False
        if root is None:
            problems.append(Problem(None, "", "is empty; expected a list of specs or a template"))
            return [], False
        _duplicate_keys(root, problems)
        if isinstance(root, yaml.SequenceNode):
            return [
                _Raw(item.start_mark.line + 1, loader.construct_object(item, deep=True), item)
                for item in root.value
            ], False
        if isinstance(root, yaml.MappingNode) and any(
            isinstance(key, yaml.ScalarNode) and key.value == "template" for key, _ in root.value
        ):
            return _template_entries(loader, root, problems), True
        problems.append(
            Problem(
                root.start_mark.line + 1,
                "",
                "expected a list of specs, or a mapping with 'template' and 'parameters'",
            )
        )
        return [], False
    finally:
        loader.dispose()


def _duplicate_keys(node: yaml.Node, problems: list[Problem]) -> None:
    stack = [node]
    seen_nodes: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen_nodes:  # aliases share nodes
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            keys: dict[str, int] = {}
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    line = key.start_mark.line + 1
                    if key.value in keys:
                        problems.append(
                            Problem(
                                line,
                                str(key.value),
                                f"duplicate key (first on line {keys[key.value]})",
                            )
                        )
                    else:
                        keys[key.value] = line
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def _template_entries(
    loader: yaml.SafeLoader, root: yaml.MappingNode, problems: list[Problem]
) -> list[_Raw]:
    nodes: dict[str, yaml.Node] = {}
    for key, value in root.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if name not in _TEMPLATE_KEYS:
            problems.append(
                Problem(
                    key.start_mark.line + 1,
                    str(name),
                    f"unknown key of a template document (expected: {', '.join(_TEMPLATE_KEYS)})",
                )
            )
            continue
        nodes[str(name)] = value
    template = loader.construct_object(nodes["template"], deep=True)
    if not isinstance(template, Mapping):
        line = nodes["template"].start_mark.line + 1
        problems.append(Problem(line, "template", "must be a mapping (one spec)"))
        return []
    defaults: Any = {}
    if "defaults" in nodes:
        defaults = loader.construct_object(nodes["defaults"], deep=True)
        if not isinstance(defaults, Mapping):
            line = nodes["defaults"].start_mark.line + 1
            problems.append(Problem(line, "defaults", "must be a mapping of parameter values"))
            return []
    rows = nodes.get("parameters")
    if not isinstance(rows, yaml.SequenceNode):
        line = (rows or root).start_mark.line + 1
        problems.append(Problem(line, "parameters", "must be a list of mappings (one per pod)"))
        return []
    out: list[_Raw] = []
    for index, row_node in enumerate(rows.value):
        line = row_node.start_mark.line + 1
        row = loader.construct_object(row_node, deep=True)
        if not isinstance(row, Mapping) or not all(isinstance(k, str) for k in row):
            problems.append(
                Problem(line, f"parameters[{index}]", "must be a mapping of name: value")
            )
            continue
        values = {"index": index, **defaults, **row}
        try:
            out.append(_Raw(line, expand_template(template, values)))
        except SpecError as error:
            problems.append(Problem(line, error.field, error.problem))
    return out


# --------------------------------------------------------------------------------------
# templates
# --------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"\{\{|\}\}|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<conv>![s])?(?::(?P<spec>[^{}]*))?\}|[{}]"
)


def expand_template(template: Any, values: Mapping[str, Any], *, path: str = "") -> Any:
    """Substitute ``values`` into every string value of ``template`` (see the module doc).

    Raises :class:`SpecError` naming the template field and the unknown placeholder.
    """
    if isinstance(template, str):
        return _expand_string(template, values, path)
    if isinstance(template, Mapping):
        return {
            key: expand_template(value, values, path=_join(path, key))
            for key, value in template.items()
        }
    if isinstance(template, list):
        return [
            expand_template(item, values, path=f"{path}[{i}]") for i, item in enumerate(template)
        ]
    return template


def _join(path: str, key: object) -> str:
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]" if path else f"[{key!r}]"


def _expand_string(text: str, values: Mapping[str, Any], path: str) -> Any:
    where = path or "template"
    whole = _PLACEHOLDER.fullmatch(text)
    if (
        whole is not None
        and whole.group("name")
        and whole.group("conv") is None
        and whole.group("spec") is None
    ):
        return _lookup(whole.group("name"), values, where)

    def replace(match: re.Match[str]) -> str:
        matched = match.group(0)
        if matched in ("{{", "}}"):
            return matched[0]
        name = match.group("name")
        if name is None:
            raise SpecError(
                where, f"unmatched {matched!r} (write {matched * 2!r} for a literal brace)"
            )
        value = _lookup(name, values, where)
        spec = match.group("spec") or ""
        try:
            return format(value, spec) if spec else _text(value)
        except (TypeError, ValueError) as error:
            raise SpecError(where, f"cannot format {{{name}}} with {spec!r}: {error}") from None

    return _PLACEHOLDER.sub(replace, text)


def _lookup(name: str, values: Mapping[str, Any], where: str) -> Any:
    if name not in values:
        known = ", ".join(sorted(values)) or "none"
        raise SpecError(where, f"unknown parameter {{{name}}} (this row has: {known})")
    return values[name]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------


def _validate(raw: list[_Raw], problems: list[Problem]) -> list[Entry]:
    entries: list[Entry] = []
    keys: dict[str, int] = {}
    names: dict[str, int] = {}
    for index, item in enumerate(raw):
        if not isinstance(item.data, Mapping):
            problems.append(
                Problem(item.line, "", f"an entry must be a mapping, got {_kind(item.data)}")
            )
            continue
        data = dict(item.data)
        retry_fields = _retry_fields(data, item, problems)
        if retry_fields is None:
            continue
        retries, retry_on = retry_fields
        try:
            spec = PodSpec.from_dict(data)
        except SpecError as error:
            problems.append(Problem(_line_of(item, error.field), error.field, error.problem))
            continue
        found = spec.problems()
        problems.extend(Problem(_line_of(item, p.field), p.field, p.problem) for p in found)
        if found:
            continue
        key = spec.task_key if spec.task_key is not None else str(index)
        if key in keys:
            problems.append(
                Problem(
                    _line_of(item, "task_key"),
                    "task_key",
                    f"{key!r} is already the task key of the entry on line {keys[key]}"
                    + (
                        ""
                        if spec.task_key is not None
                        else " (entries without one use their position)"
                    ),
                )
            )
            continue
        keys[key] = item.line
        if spec.name is not None:
            if spec.name in names:
                problems.append(
                    Problem(
                        _line_of(item, "name"),
                        "name",
                        f"pod name {spec.name!r} is already used on line {names[spec.name]}",
                    )
                )
                continue
            names[spec.name] = item.line
        if spec.task_key is None:
            spec = dataclasses.replace(spec, task_key=key)
        entries.append(
            Entry(
                index=index,
                line=item.line,
                task_key=key,
                spec=spec,
                retries=retries,
                retry_on=retry_on,
            )
        )
    return entries


def _retry_fields(
    data: dict[str, Any], item: _Raw, problems: list[Problem]
) -> tuple[int | None, tuple[FailureRule, ...] | None] | None:
    """Take ``retries`` and ``retry_on`` out of ``data``; None (and problems) if bad."""
    retries = data.pop("retries", None)
    raw_rules = data.pop("retry_on", None)
    ok = True
    if retries is not None and (
        isinstance(retries, bool) or not isinstance(retries, int) or retries < 0
    ):
        problems.append(
            Problem(
                _line_of(item, "retries"),
                "retries",
                f"must be a whole number >= 0, got {retries!r}",
            )
        )
        ok = False
    rules: tuple[FailureRule, ...] | None = None
    if raw_rules is not None:
        items = raw_rules if isinstance(raw_rules, list) else [raw_rules]
        found: list[FailureRule] = []
        for number, value in enumerate(items):
            try:
                found.append(FailureRule.from_value(value, where=f"retry_on[{number}]"))
            except UsageError as error:
                problems.append(Problem(_line_of(item, "retry_on"), "retry_on", str(error)))
                ok = False
        rules = tuple(found)
    return (retries, rules) if ok else None


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


_PATH_TOKEN = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]')


def _line_of(item: _Raw, field: str) -> int:
    """The line of ``field`` (a spec error's path) inside a YAML entry, else the entry's."""
    node = item.node
    if node is None or not field:
        return item.line
    line = item.line
    position = 0
    while position < len(field) and node is not None:
        match = _PATH_TOKEN.match(field, position)
        if match is None:
            break
        position = match.end()
        key, number, quoted = match.groups()
        following: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and number is None:
            wanted = key if key is not None else quoted
            # Constructing the entry flattened its ``<<`` merges into it, merged keys
            # first: the last match is the key that took effect.
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == wanted:
                    following = value_node
                    line = key_node.start_mark.line + 1
        elif (
            isinstance(node, yaml.SequenceNode)
            and number is not None
            and int(number) < len(node.value)
        ):
            following = node.value[int(number)]
            line = following.start_mark.line + 1
        node = following
    return line
