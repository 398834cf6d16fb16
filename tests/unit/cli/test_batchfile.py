"""The batch input parser: formats, line numbers of every problem, template expansion."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from asyncpod.cli.batchfile import (
    BatchFileError,
    Problem,
    detect_format,
    expand_template,
    load_batch,
    parse_batch,
)
from asyncpod.errors import SpecError, UsageError
from asyncpod.spec import deterministic_pod_name


def yaml_text(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def problems_of(text: str, *, format: str = "yaml") -> list[Problem]:
    with pytest.raises(BatchFileError) as caught:
        parse_batch(text, format=format, source="jobs")  # type: ignore[arg-type]
    return list(caught.value.problems)


# --------------------------------------------------------------------------------------
# YAML lists
# --------------------------------------------------------------------------------------


def test_yaml_list_gives_entries_with_lines_and_task_keys() -> None:
    batch = parse_batch(
        yaml_text(
            """
            # a comment first
            - {image: busybox, args: [echo, "0"]}
            - task_key: named
              image: busybox
            - {image: busybox}
            """
        ),
        format="yaml",
    )
    assert [(e.index, e.line, e.task_key) for e in batch.entries] == [
        (0, 2, "0"),
        (1, 3, "named"),
        (2, 5, "2"),
    ]
    # Positional keys are written into the spec, so every pod carries its key.
    assert [e.spec.task_key for e in batch.entries] == ["0", "named", "2"]
    assert batch.entries[0].spec.args == ("echo", "0")
    assert not batch.template


def test_every_bad_entry_is_reported_with_its_own_line() -> None:
    problems = problems_of(
        yaml_text(
            """
            - {image: busybox}
            - {imagee: busybox}
            - {image: busybox}
            - image: "bad image"
            - 42
            """
        )
    )
    assert [(p.line, p.field) for p in problems] == [
        (2, "imagee"),
        (4, "image"),
        (5, ""),
    ]
    assert "did you mean 'image'" in problems[0].message
    assert "whitespace" in problems[1].message
    assert "must be a mapping" in problems[2].message


def test_a_nested_problem_points_at_the_line_of_its_field() -> None:
    problems = problems_of(
        yaml_text(
            """
            - image: busybox
              resources:
                limits:
                  memory: lots
            - image: busybox
              sidecars:
                - name: proxy
                  image: envoy
                - name: log
                  image: "no good"
            """
        )
    )
    assert [(p.line, p.field) for p in problems] == [
        (4, "resources.limits.memory"),
        (10, "sidecars[1].image"),
    ]


def test_merge_keys_work_and_fields_are_found_through_them() -> None:
    text = yaml_text(
        """
        - &base {task_key: a, image: busybox, labels: {team: data}}
        - {<<: *base, task_key: b}
        - <<: *base
          task_key: c
          labels: {"bad key!": x}
        """
    )
    problems = problems_of(text)
    assert [(p.line, p.field) for p in problems] == [(5, 'labels["bad key!"]')]
    fixed = text.replace('{"bad key!": x}', "{team: ml}")
    batch = parse_batch(fixed, format="yaml")
    assert [(e.task_key, dict(e.spec.labels)) for e in batch.entries] == [
        ("a", {"team": "data"}),
        ("b", {"team": "data"}),
        ("c", {"team": "ml"}),
    ]


def test_yaml_syntax_error_names_its_line() -> None:
    problems = problems_of("- {image: busybox}\n- {image: busybox\n- {image: x}\n")
    assert len(problems) == 1
    assert problems[0].line == 3
    assert "not valid YAML" in problems[0].message


def test_duplicate_yaml_keys_are_rejected() -> None:
    problems = problems_of("- image: busybox\n  env: {A: '1'}\n  env: {B: '2'}\n")
    assert [(p.line, p.field) for p in problems] == [(3, "env")]
    assert "first on line 2" in problems[0].message


def test_duplicate_task_keys_and_names_are_rejected() -> None:
    problems = problems_of(
        yaml_text(
            """
            - {task_key: a, image: busybox}
            - {task_key: a, image: busybox}
            - {task_key: "0", image: busybox}
            - {name: pod-x, image: busybox}
            - {name: pod-x, image: busybox}
            """
        )
    )
    assert [(p.line, p.field) for p in problems] == [(2, "task_key"), (5, "name")]
    assert "line 1" in problems[0].message
    assert "line 4" in problems[1].message


def test_an_explicit_key_may_collide_with_a_position() -> None:
    # Entry 1 has no key, so its key is its position "1", which entry 0 also claims.
    problems = problems_of("- {task_key: '1', image: busybox}\n- {image: busybox}\n")
    assert [(p.line, p.field) for p in problems] == [(2, "task_key")]
    assert "position" in problems[0].message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("image: busybox\n", "expected a list of specs"),
        ("just text\n", "expected a list of specs"),
    ],
)
def test_documents_that_are_not_batches(text: str, expected: str) -> None:
    problems = problems_of(text)
    assert len(problems) == 1
    assert expected in problems[0].message


def test_an_empty_list_is_an_empty_batch() -> None:
    assert len(parse_batch("[]\n", format="yaml")) == 0


# --------------------------------------------------------------------------------------
# JSONL
# --------------------------------------------------------------------------------------


def test_jsonl_line_numbers_skip_blank_lines() -> None:
    text = '{"image": "busybox"}\n\n{"image": "busybox", "task_key": "k"}\n'
    batch = parse_batch(text, format="jsonl")
    assert [(e.line, e.task_key) for e in batch.entries] == [(1, "0"), (3, "k")]


def test_jsonl_problems_name_their_lines() -> None:
    text = '{"image": "busybox"}\n{"image": busybox}\n{"image": "busybox", "env": 3}\n[1]\n'
    problems = problems_of(text, format="jsonl")
    assert [(p.line, p.field) for p in problems] == [(2, ""), (3, "env"), (4, "")]
    assert "not valid JSON" in problems[0].message
    assert "must be a mapping" in problems[2].message


def test_error_lists_every_problem_and_renders_file_line() -> None:
    with pytest.raises(BatchFileError) as caught:
        parse_batch('{"imag": "x"}\n{"image": "busybox"}\n{}\n', format="jsonl", source="a.jsonl")
    error = caught.value
    assert isinstance(error, UsageError)
    rendered = [p.render(error.source) for p in error.problems]
    assert len(rendered) == 2
    assert rendered[0] == "a.jsonl:1: imag: unknown key; did you mean 'image'?"
    assert rendered[1].startswith("a.jsonl:3: image: is required")
    assert str(error).startswith("a.jsonl:1: imag:")
    assert "(and 1 more)" in str(error)


# --------------------------------------------------------------------------------------
# templates
# --------------------------------------------------------------------------------------

TEMPLATE = yaml_text(
    """
    template:
      task_key: "shard-{shard:03}"
      image: busybox:1.36
      args: [process, --shard, "{shard}", --input, "{input}", "{{literal}}"]
      env: "{env}"
      resources: {limits: {memory: "{memory}"}}
      annotations: {position: "{index!s}"}
    defaults:
      memory: 256Mi
      env: {}
    parameters:
      - {shard: 1, input: s3://a}
      - {shard: 2, input: s3://b, memory: 1Gi, env: {MODE: fast}}
    """
)


def test_template_rows_expand_into_specs() -> None:
    batch = parse_batch(TEMPLATE, format="yaml")
    assert batch.template
    first, second = batch.entries
    assert (first.line, first.task_key, second.line, second.task_key) == (
        12,
        "shard-001",
        13,
        "shard-002",
    )
    assert first.spec.args == ("process", "--shard", "1", "--input", "s3://a", "{literal}")
    assert first.spec.resources.limits == {"memory": "256Mi"}
    assert second.spec.resources.limits == {"memory": "1Gi"}
    assert [(v.name, v.value) for v in second.spec.env] == [("MODE", "fast")]
    assert first.spec.env == ()
    assert [dict(e.spec.annotations) for e in batch.entries] == [
        {"position": "0"},
        {"position": "1"},
    ]


def test_template_problems_point_at_the_row() -> None:
    text = TEMPLATE.replace("{shard: 2, input: s3://b,", "{shard: 2,")
    text = text.replace("- {shard: 1, input: s3://a}", "- {shard: 1, input: s3://a, memory: lots}")
    problems = problems_of(text)
    assert [(p.line, p.field) for p in problems] == [
        (12, "resources.limits.memory"),
        (13, "args[4]"),
    ]
    assert "unknown parameter {input}" in problems[1].message
    assert "this row has: env, index, memory, shard" in problems[1].message


def test_template_document_shape_errors() -> None:
    problems = problems_of("template: {image: busybox}\nparameter: []\n")
    assert [(p.line, p.field) for p in problems] == [(1, "parameters"), (2, "parameter")]
    problems = problems_of("template: [1]\nparameters: []\n")
    assert [(p.line, p.field) for p in problems] == [(1, "template")]
    problems = problems_of("template: {image: x}\nparameters:\n  - 3\n")
    assert [(p.line, p.field) for p in problems] == [(3, "parameters[0]")]


def test_template_with_a_typed_value_in_a_text_field_says_so() -> None:
    text = "template: {task_key: '{n}', image: busybox}\nparameters: [{n: 7}]\n"
    problems = problems_of(text)
    assert [(p.line, p.field) for p in problems] == [(2, "task_key")]
    assert "must be a string" in problems[0].message
    fixed = parse_batch(text.replace("'{n}'", "'{n!s}'"), format="yaml")
    assert fixed.entries[0].task_key == "7"


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        ("{n}", {"n": 3}, 3),  # a whole placeholder keeps the type
        ("{n}", {"n": [1, 2]}, [1, 2]),
        ("{n!s}", {"n": 3}, "3"),
        ("x{n}", {"n": 3}, "x3"),
        ("{n:>04}", {"n": 7}, "0007"),
        ("{flag}-{none}", {"flag": True, "none": None}, "true-"),
        ("{{n}} {n}", {"n": 1}, "{n} 1"),
        (
            {"k": ["{a}", {"b": "{b}"}], "{a}": 1},
            {"a": "A", "b": "B"},
            {"k": ["A", {"b": "B"}], "{a}": 1},
        ),
        (5, {}, 5),
    ],
)
def test_expand_template(template: Any, values: dict[str, Any], expected: Any) -> None:
    assert expand_template(template, values) == expected


@pytest.mark.parametrize(
    ("template", "field", "message"),
    [
        ({"args": ["{missing}"]}, "args[0]", "unknown parameter {missing}"),
        ({"cmd": "for i in {1..3}"}, "cmd", "unmatched '{'"),
        ({"cmd": "a } b"}, "cmd", "unmatched '}'"),
        ({"x": "{n:d}"}, "x", "cannot format {n}"),
    ],
)
def test_expand_template_errors(template: Any, field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        expand_template(template, {"n": "text"})
    assert caught.value.field == field
    assert message in caught.value.problem


# --------------------------------------------------------------------------------------
# files and formats
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("jobs.jsonl", "- {}", "jsonl"),
        ("jobs.ndjson", "", "jsonl"),
        ("jobs.yaml", '{"a": 1}\n{"b": 2}\n', "yaml"),
        ("jobs.json", '[{"a": 1}]', "yaml"),
        ("-", '{"a": 1}\n{"b": 2}\n', "jsonl"),
        ("-", '{"a": 1}\n', "yaml"),
        ("jobs.txt", "- image: x\n", "yaml"),
    ],
)
def test_detect_format(name: str, text: str, expected: str) -> None:
    assert detect_format(name, text) == expected


def test_load_batch_reads_files_by_extension(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"image": "busybox"}\n{"image": "busybox"}\n')
    batch = load_batch(path)
    assert (batch.format, len(batch), batch.source) == ("jsonl", 2, str(path))


def test_load_batch_of_a_missing_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(BatchFileError, match="cannot read it"):
        load_batch(tmp_path / "nope.yaml")


def test_the_bundled_demo_is_valid_and_varied() -> None:
    from asyncpod.cli.demo import demo_text

    batch = parse_batch(demo_text(), format="yaml")
    assert len(batch) == 200
    keys = [e.task_key for e in batch.entries]
    assert len(set(keys)) == 200
    annotations = [dict(e.spec.annotations) for e in batch.entries]
    assert sum(a.get("sim.asyncpod.dev/reason") == "OOMKilled" for a in annotations) >= 1
    assert sum(a.get("sim.asyncpod.dev/image-pull") == "fail" for a in annotations) >= 1
    codes = {a.get("sim.asyncpod.dev/exit-code", "0") for a in annotations}
    assert {"0", "1", "137"} <= codes
    assert any(e.spec.node_selector for e in batch.entries)
    # Names stay within Kubernetes' limits for any run id the demo makes.
    assert all(len(deterministic_pod_name("demo-0123abcd", k)) <= 63 for k in keys)
