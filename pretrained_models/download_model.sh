#!/usr/bin/env bash
# Download (and convert) a pretrained SAVP model of the original repository.
#   bash pretrained_models/download_model.sh DATASET MODEL [--output_dir DIR --base_url URL --noconvert]
# e.g. bash pretrained_models/download_model.sh bair_action_free ours_savp
#   -> pretrained_models/bair_action_free/ours_savp (run directory; the original files are in its tf1/)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
if [ -x "$root/.venv/bin/python" ]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
if [ $# -lt 2 ]; then
  echo "usage: $0 DATASET MODEL [--output_dir DIR --base_url URL --noconvert]" >&2
  exit 2
fi
dataset=$1
model=$2
shift 2
exec "$PYTHON" "$here/download_model.py" --dataset "$dataset" --model "$model" "$@"
