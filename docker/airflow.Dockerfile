# Airflow with asyncpod installed: every component (scheduler, api-server, dag-processor,
# triggerer, workers) can then run `from asyncpod.airflow import KubernetesPodOperator`.
# Build from the repository root (same context and .dockerignore as the CLI image;
# needs BuildKit):
#
#     docker build -f docker/airflow.Dockerfile -t asyncpod-airflow:dev .
#
# The base is the official Airflow image at the version asyncpod's Airflow integration
# is tested with (3.3.2, Python 3.12), pinned by exact version tag. It is not pinned by
# digest: no published digest for this tag could be found from the development
# machines, which reach no container registry. Add `@sha256:...` from
# `docker buildx imagetools inspect apache/airflow:3.3.2-python3.12` when you build.
FROM apache/airflow:3.3.2-python3.12 AS airflow

# --- build: asyncpod's own wheel only; its dependencies come in with the install --------
FROM airflow AS builder
WORKDIR /tmp/asyncpod-src
COPY --chown=airflow:0 pyproject.toml README.md ./
COPY --chown=airflow:0 tools/controlplane ./tools/controlplane
COPY --chown=airflow:0 asyncpod ./asyncpod
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels .

# --- runtime: the official image plus the wheel ---------------------------------------
FROM airflow AS runtime
LABEL org.opencontainers.image.title="asyncpod-airflow" \
      org.opencontainers.image.description="Apache Airflow with asyncpod's KubernetesPodOperator" \
      org.opencontainers.image.licenses="Apache-2.0"
# apache-airflow is pinned to the base's own version so that pip can never move it while
# resolving asyncpod's dependencies (kubernetes-asyncio, aiohttp, anyio, orjson, ...).
# The last command is a smoke test: the image does not build unless Airflow finds the
# provider and the operator imports.
RUN --mount=type=bind,from=builder,source=/tmp/wheels,target=/tmp/wheels \
    pip install --no-cache-dir "apache-airflow==3.3.2" /tmp/wheels/asyncpod-*.whl \
    && python -c "import asyncpod.airflow.operators, asyncpod.airflow.triggers" \
    && airflow providers get asyncpod > /dev/null
# The official image's user (UID 50000, group 0), numerically for runAsNonRoot.
USER 50000:0
