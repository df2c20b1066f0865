#!/usr/bin/env bash
# Setup + the test suite (README command 2; .ci/run calls this).
# The tests run in VP_TEST_WORKERS processes (pytest-xdist, default 2, one per core here; 1 = in this process),
# a test file per process so that its module fixtures are built once, the longest files first
# (tests/conftest.py: SLOWEST_FILES_FIRST).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
. .venv/bin/activate
export TF_CPP_MIN_LOG_LEVEL=2
workers=${VP_TEST_WORKERS:-2}
if [ "$workers" -gt 1 ]; then
  python -m pytest -q -n "$workers" --dist loadfile --no-loadscope-reorder --durations=25 "$@"
else
  python -m pytest -q --durations=25 "$@"
fi
