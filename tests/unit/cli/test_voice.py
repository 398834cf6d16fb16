"""The library's warnings and log records reach the user in the command's own voice."""

from __future__ import annotations

import io
import logging
import warnings

from asyncpod.cli._common import RepeatFolder, describe_error, library_voice
from asyncpod.errors import NamespaceNotFoundError, api_error_from_status


def test_a_library_warning_record_is_one_line_in_the_commands_voice() -> None:
    out = io.StringIO()
    log = logging.getLogger("asyncpod.runner")

    with library_voice("asyncpod run", stream=out):
        log.warning("cleanup of %s failed: %s", "ns/p", "boom\nsecond line")
        log.info("reattached to %s", "ns/p")  # not shown without -v

    assert out.getvalue() == "asyncpod run: warning: cleanup of ns/p failed: boom\n"


def test_an_exception_record_shows_no_traceback() -> None:
    out = io.StringIO()
    pod: dict[str, str] = {}
    try:
        pod["metadata"]
    except KeyError:
        with library_voice("asyncpod batch", stream=out):
            logging.getLogger("asyncpod.launcher").exception("run of task %s failed", "t1")

    text = out.getvalue()
    assert text == "asyncpod batch: error: run of task t1 failed: KeyError: 'metadata'\n"
    assert "Traceback" not in text


def test_verbose_shows_info_and_names_the_logger() -> None:
    out = io.StringIO()

    with library_voice("asyncpod run", verbose=1, stream=out):
        logging.getLogger("asyncpod.informer").info("relisting")
        logging.getLogger("asyncpod.kube").debug("retrying")  # only with -vv

    assert out.getvalue() == "asyncpod run: [asyncpod.informer] relisting\n"


def test_very_verbose_shows_debug() -> None:
    out = io.StringIO()

    with library_voice("asyncpod run", verbose=2, stream=out):
        logging.getLogger("asyncpod.kube").debug("retrying in %.2fs", 0.5)

    assert out.getvalue() == "asyncpod run: [asyncpod.kube] retrying in 0.50s\n"


def test_records_do_not_reach_the_root_logger_and_settings_are_restored() -> None:
    logger = logging.getLogger("asyncpod")
    before = (logger.level, logger.propagate, list(logger.handlers))
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    root = logging.getLogger()
    collect = Collect()
    root.addHandler(collect)
    try:
        with library_voice("asyncpod run", stream=io.StringIO()):
            logging.getLogger("asyncpod.runner").warning("inside")
        logging.getLogger("asyncpod.runner").warning("after")
    finally:
        root.removeHandler(collect)

    assert [r.getMessage() for r in seen] == ["after"]
    assert (logger.level, logger.propagate, list(logger.handlers)) == before


def test_python_warnings_are_one_line() -> None:
    out = io.StringIO()

    with warnings.catch_warnings():
        warnings.simplefilter("always")  # pytest's own filter would raise them
        with library_voice("asyncpod run", stream=out):
            warnings.warn("unclosed <KubeClient>\nmore", ResourceWarning, stacklevel=1)
            warnings.warn("plain", UserWarning, stacklevel=1)

    assert out.getvalue() == (
        "asyncpod run: warning (ResourceWarning): unclosed <KubeClient>\n"
        "asyncpod run: warning: plain\n"
    )


def test_a_missing_namespace_is_described_with_what_to_do() -> None:
    body = {
        "kind": "Status",
        "reason": "NotFound",
        "message": 'namespaces "jobs" not found',
        "details": {"name": "jobs", "kind": "namespaces"},
        "code": 404,
    }
    error = api_error_from_status(404, body, method="POST", path="/api/v1/namespaces/jobs/pods")

    assert isinstance(error, NamespaceNotFoundError)
    text = describe_error(error)
    assert "namespace 'jobs' does not exist" in text
    assert "--namespace" in text


def test_repeated_warnings_are_folded_into_one_with_a_count() -> None:
    out = io.StringIO()
    log = logging.getLogger("asyncpod.informer")

    with library_voice("asyncpod run", stream=out):
        for delay in (0.2, 0.4, 0.9, 1.7):  # the same message, numbers aside
            log.warning("watch interrupted (refused); reconnecting in %.1fs", delay)
        log.warning("something else")
        log.warning("watch interrupted (refused); reconnecting in %.1fs", 3.0)
        log.warning("watch interrupted (refused); reconnecting in %.1fs", 6.0)

    assert out.getvalue().splitlines() == [
        "asyncpod run: warning: watch interrupted (refused); reconnecting in 0.2s",
        "asyncpod run: (the line above repeated 3 more times)",
        "asyncpod run: warning: something else",
        "asyncpod run: warning: watch interrupted (refused); reconnecting in 3.0s",
        "asyncpod run: (the line above repeated 1 more time)",  # said when the block ends
    ]


def test_a_long_run_of_repeats_is_reported_at_each_power_of_ten() -> None:
    folder = RepeatFolder()
    reports = [folder.see("same") for _ in range(101)]

    assert reports[0] == (0, True)
    assert [(i, r) for i, (r, _) in enumerate(reports) if r] == [(10, 10), (100, 90)]
    assert not any(show for _, show in reports[1:])
    assert folder.flush() == 0
    assert folder.see("other") == (0, True)


def test_verbose_output_folds_nothing() -> None:
    out = io.StringIO()

    with library_voice("asyncpod run", verbose=1, stream=out):
        for _ in range(3):
            logging.getLogger("asyncpod.kube").warning("retrying")

    assert out.getvalue().count("retrying") == 3
