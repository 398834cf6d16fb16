"""The ``asyncpod`` command line: ``run``, ``batch`` and ``cluster``."""
