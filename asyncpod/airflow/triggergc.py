"""The trigger runner's garbage-collection policy: what Airflow holds for the process's
life is frozen once, when the first asyncpod trigger runs there.

Why it exists: measured with 1,000 tasks over 10 DAGs in a real triggerer
(benchmarks/README.md, "the 1,000-task block"), the one loop block over 0.2 s was the
trigger runner's only full GC pass: 0.270 s, most of it walking the ~157,000 objects
Airflow imported and keeps (modules, classes, its configuration, the serialized DAGs'
caches), none of which a pass can ever free. CPython (3.10-3.13) stops the event loop
for as long as a pass lasts, every trigger of the process with it. :func:`gc.freeze`
moves every object alive into the permanent generation, which no pass walks; later
passes walk what the triggers allocate since. Airflow freezes the same way itself (its
DAG processor manager, its local executor before forking workers). Measured with it
(benchmarks/README.md, "With the trigger runner's GC freeze"): no full pass and no block
over 0.1 s at 100 tasks, 1,000 in one DAG and 1,000 over 10 DAGs; Airflow warned of none.

Where: only in Airflow's trigger runner, the process whose event loop runs every
trigger (:func:`in_trigger_runner`: Airflow's task runner talks to its supervisor
through the triggerer's comms decoder). Never in ``dag.test()``, a test process or an
application that embeds the trigger: those own their collector. Once per process.

The price: objects that are garbage at that instant (cycles not yet collected) are
frozen with the rest and never freed. There is no collection first, since that
collection would be the very pass this avoids; what is frozen is bounded (one instant,
once), and is logged. ``[asyncpod] triggerer_gc_freeze = False`` in Airflow's
configuration (``AIRFLOW__ASYNCPOD__TRIGGERER_GC_FREEZE=false``) turns it off; a value
that is no boolean is refused by the worker before it creates a pod
(:mod:`asyncpod.airflow.triggersettings`) and, here, logged and taken as off.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Mapping
from typing import Any

from asyncpod.errors import ConfigError

__all__ = ["freeze_in_trigger_runner", "freeze_wanted", "in_trigger_runner"]

_log = logging.getLogger(__name__)
_TRUE = frozenset({"true", "t", "1", "yes", "on"})
_FALSE = frozenset({"false", "f", "0", "no", "off"})
_frozen = False


def freeze_wanted(setting: str | None) -> bool:
    """``[asyncpod] triggerer_gc_freeze`` read as a boolean, on when unset (pure)."""
    text = (setting or "").strip().lower()
    if not text or text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"[asyncpod] triggerer_gc_freeze must be true or false; got {setting!r}")


def in_trigger_runner(modules: Mapping[str, Any]) -> bool:
    """Whether ``modules`` (``sys.modules``) are Airflow's trigger runner's (pure).

    The trigger runner, and only it, points the task SDK's ``SUPERVISOR_COMMS`` at the
    triggerer's comms decoder (Airflow 3.0-3.3); this imports nothing.
    """
    triggerer = modules.get("airflow.jobs.triggerer_job_runner")
    task_runner = modules.get("airflow.sdk.execution_time.task_runner")
    decoder = getattr(triggerer, "TriggerCommsDecoder", None)
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    return isinstance(decoder, type) and isinstance(comms, decoder)


def freeze_in_trigger_runner() -> int:
    """Freeze the process's objects once, in Airflow's trigger runner, unless configured
    off; how many objects this call froze (0 when it did nothing)."""
    global _frozen
    if _frozen or not in_trigger_runner(sys.modules):
        return 0
    from airflow.configuration import conf

    _frozen = True
    try:
        wanted = freeze_wanted(conf.get("asyncpod", "triggerer_gc_freeze", fallback=None))
    except ConfigError as error:  # the worker refuses it; the pods exist already
        _log.warning("%s: no GC freeze", error)
        return 0
    if not wanted:
        return 0
    before = gc.get_freeze_count()
    gc.freeze()
    frozen = gc.get_freeze_count() - before
    _log.info(
        "asyncpod froze %d objects out of the garbage collector's passes, so that no "
        "full pass walks what Airflow holds for the process's life "
        "([asyncpod] triggerer_gc_freeze = false turns this off)",
        frozen,
    )
    return frozen
