"""Airflow integration (deferrable operator and trigger); not built yet."""
