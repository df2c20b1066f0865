#!/usr/bin/env bash
# Setup + the test suite (README command 2; .ci/run calls this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
. .venv/bin/activate
export TF_CPP_MIN_LOG_LEVEL=2
python -m pytest -q "$@"
