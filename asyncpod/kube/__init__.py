"""The only code that speaks HTTP to the Kubernetes API server.

It knows requests, statuses, streams and JSON; it knows nothing of runs, results or
schedulers (those live in ``asyncpod.core``, which imports this package, never the
reverse; import-linter enforces it).
"""
