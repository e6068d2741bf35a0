#!/usr/bin/env bash
# The benchmark's one command: bash bench/run.sh [--smoke] [options]  (see bench/README.md)
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m bench "$@"
