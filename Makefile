# One entry point for people and CI. `make test` is exactly what .ci/run runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install binaries real-node browser lint docs test matrix unit demo cluster-up cluster-down clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok from the
# Go module proxy the first time (several minutes); returns in well under a second after.
binaries: install
	$(BIN)/python -m asyncpod.testing

# Optional, root only: the real node (kubelet + containerd + runc) that the `real_node`
# tests and `asyncpod cluster up --real-node` use. Installs the Debian packages it needs
# (containerd, runc, containernetworking-plugins, busybox-static, mmdebstrap; only those
# missing), builds the kubelet like the other binaries (minutes, once), and builds the
# images localhost/python:3.X-slim (Debian's python3, mmdebstrap; ~25 s once per Debian
# suite and recipe) and localhost/asyncpod:dev (that + this checkout's wheel; ~10 s when
# the sources changed). A failed image build is one line; its tests then skip, saying so.
real-node: binaries
	$(BIN)/python -m asyncpod.testing --real-node

# Optional, root only: Debian's chromium, in which tests/cli/test_report.py opens
# `asyncpod report`'s page (through Playwright, from the dev extra; Playwright's own
# browser download is never used). Installed only when missing; without it that test
# skips, saying so.
browser:
	@command -v chromium >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

lint: install
	$(BIN)/ruff check asyncpod tests benchmarks
	$(BIN)/ruff format --check asyncpod tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	tools/lint-docker.sh

# The documentation site (docs/, mkdocs.yml) into site/; --strict fails on a broken link.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint docs binaries
	$(BIN)/pytest

# The version matrix (noxfile.py), which .ci/run starts beside `make test` once its Airflow
# deployments are over (.ci/run says why): Python 3.10-3.13,
# each with one of Airflow 3.0.6/3.1.8/3.2.2/3.3.2 (lint, the unit and trigger tests; the
# library's integration tests on 3.10 and 3.13, the e2e DAGs on 3.0.6), and Airflow
# 2.11's refusal.
# Interpreters from pyenv or PATH; venvs by uv under .nox/, kept between runs.
# SESSIONS="matrix-3.10 airflow2" runs only those (.ci/run runs two lanes side by side).
matrix: install binaries
	$(BIN)/nox $(if $(SESSIONS),--sessions $(SESSIONS))

unit: install
	$(BIN)/pytest tests/unit

# The README's main command: 200 pods on a local control plane with kwok-simulated
# nodes (built and started on first use), or on $(KUBECONFIG) if set (it asks first).
demo: install
	$(BIN)/asyncpod demo

cluster-up: binaries
	$(BIN)/asyncpod cluster up

cluster-down: install
	$(BIN)/asyncpod cluster down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
