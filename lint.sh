#!/usr/bin/env bash
# The linters, as CI and pre-commit run them: ruff (lint + format check) on the tree, mypy on the library.
#   bash lint.sh          check
#   bash lint.sh --fix    apply ruff's fixes and formatting, then check
set -euo pipefail
cd "$(dirname "$0")"
BIN=.venv/bin
if [ "${1:-}" = "--fix" ]; then
  "$BIN/ruff" check --fix .
  "$BIN/ruff" format .
fi
"$BIN/ruff" check .
"$BIN/ruff" format --check .
"$BIN/mypy" gatys
