"""Pure pod-lifecycle logic and the orchestration built on ``asyncpod.kube``.

Knows nothing of Airflow or the CLI; both import this package, never the reverse.
"""
