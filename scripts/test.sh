#!/usr/bin/env bash
# Run the whole test suite: makes its own venv (.test-venv), installs bemidb with its test extra, runs
# ruff and pytest. Extra arguments go to pytest, e.g. ./scripts/test.sh -k sync -x
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${BEMIDB_TEST_VENV:-.test-venv}"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >/dev/null
# setuptools prints an "Editable installation" banner even with --quiet: keep pip's output, show it on failure
if ! install_log="$("$VENV/bin/pip" install --quiet --disable-pip-version-check -e ".[test]" 2>&1)"; then
  printf '%s\n' "$install_log" >&2
  exit 1
fi

"$VENV/bin/ruff" check .
"$VENV/bin/python" -m pytest "$@"
