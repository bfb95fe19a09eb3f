#!/usr/bin/env bash
# Set the machine up (no browser) and run the workbench demo, which uses the
# embedded DuckDB store by default. Extra arguments go to `eventcore-lab demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/eventcore-lab demo "$@"
