"""The ``asyncpod`` command line: ``run``, ``batch``, ``demo`` and ``cluster``."""
