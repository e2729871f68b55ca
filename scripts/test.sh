#!/usr/bin/env bash
# Install everything (system packages, .venv with test extras) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
.venv/bin/ruff check mldashfs sdk tests scripts
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
