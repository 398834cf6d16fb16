"""The trigger module Airflow's triggerer imports on its event loop stays light.

Airflow 3.3's triggerer imports a trigger's class (``import_string``) on its loop when
the first trigger of that class arrives; importing aiohttp, the session and the rest
there stopped the loop for ~0.2 s (issue 19). So ``asyncpod.airflow.triggers`` imports
none of it, and a trigger imports it in a worker thread before its first use
(``load_machinery``). Checked in fresh interpreters, structurally: which modules were
imported and on which thread, never how long it took.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from asyncpod.airflow import connection, triggers, xcom

HEAVY = ("aiohttp", "kubernetes_asyncio", "asyncpod.kube.client", "asyncpod.core.cluster",
         "asyncpod.airflow.sessions", "yarl", "multidict")  # fmt: skip


def fresh(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    found: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def test_importing_the_trigger_module_imports_no_http_client_and_no_session() -> None:
    found = fresh(
        f"""
        import json, sys
        import airflow.triggers.base  # the triggerer has it already
        before = set(sys.modules)
        import asyncpod.airflow.triggers
        new = set(sys.modules) - before
        print(json.dumps({{"heavy": sorted(m for m in {HEAVY!r} if m in new)}}))
        """
    )
    assert found == {"heavy": []}


def test_the_machinery_is_imported_off_the_event_loop_thread() -> None:
    found = fresh(
        f"""
        import asyncio, builtins, json, sys, threading
        import airflow.triggers.base
        from asyncpod.airflow import triggers

        on_loop = []
        real_import = builtins.__import__

        def spy(name, *args, **kwargs):
            if name in {HEAVY!r} and name not in sys.modules:
                on_loop.append((name, threading.current_thread() is threading.main_thread()))
            return real_import(name, *args, **kwargs)

        builtins.__import__ = spy

        async def main():
            await triggers.load_machinery()
            loaded = all(m in sys.modules for m in triggers.MACHINERY)
            first_imports = list(on_loop)
            on_loop.clear()
            await triggers.load_machinery()  # again: nothing left to import
            return loaded, first_imports, list(on_loop)

        loaded, first, second = asyncio.run(main())
        print(json.dumps({{
            "loaded": loaded,
            "on_main_thread": sorted({{n for n, main in first if main}}),
            "seen": bool(first),
            "second": second,
        }}))
        """
    )
    assert found == {"loaded": True, "on_main_thread": [], "seen": True, "second": []}


def test_the_trigger_modules_copies_of_names_match_their_sources() -> None:
    assert triggers.DEFAULT_CONN_ID == connection.DEFAULT_CONN_ID
    assert triggers.START_OPTION_DEFAULTS["kubernetes_conn_id"] == connection.DEFAULT_CONN_ID
    assert "asyncpod.airflow.xcom" in triggers.MACHINERY
    assert xcom.SIDECAR_NAME  # read from xcom at run time, after load_machinery
