#!/usr/bin/env bash
# README command 1: setup + the main job on Moving MNIST (no download needed).
#   bash scripts/quickstart.sh            # SAVP (DNA): records -> train -> GIFs -> PSNR/SSIM vs repeat and blank
#   bash scripts/quickstart.sh FAMILY     # another family's quickstart: scripts/quickstarts/FAMILY.sh
# Every quickstart prints its time per phase and one table of the learned model beside the baselines it
# cannot fake (repeat: the last context frame; blank: the mean training frame, and black frames).
set -euo pipefail
cd "$(dirname "$0")/.."

FAMILY=${1:-savp}
if [ ! -f "scripts/quickstarts/$FAMILY.sh" ] || [ "$FAMILY" = common ]; then
  known=$(ls scripts/quickstarts | sed -n 's/\.sh$//p' | grep -vx common | tr '\n' ' ')
  echo "quickstart.sh: no quickstart named '$FAMILY' (known: ${known% })" >&2
  exit 2
fi
. scripts/quickstarts/common.sh

if [ -z "${QUICKSTART_SKIP_SETUP:-}" ]; then  # set it to reuse an environment you manage yourself
  bash scripts/setup_env.sh
fi
. .venv/bin/activate
phase setup

. "scripts/quickstarts/$FAMILY.sh"
