#!/usr/bin/env bash
# Download and preprocess a dataset into TFRecords.
#   bash data/download_and_preprocess_dataset.sh moving_mnist [--output_dir DIR --num_train N ...]
#   bash data/download_and_preprocess_dataset.sh bair [--output_dir DIR --base_url URL]
#   bash data/download_and_preprocess_dataset.sh kth [IMAGE_SIZE] [--output_dir DIR --base_url URL]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
if [ -x "$root/.venv/bin/python" ]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
datasets="moving_mnist kth_mspred bair kth"
if [ $# -lt 1 ]; then
  echo "usage: $0 DATASET [options]; datasets: $datasets" >&2
  exit 2
fi
dataset=$1
shift
case "$dataset" in
  moving_mnist)
    exec "$PYTHON" "$here/preprocess_moving_mnist.py" "$@"
    ;;
  kth_mspred)
    exec "$PYTHON" "$here/preprocess_kth_mspred.py" "$@"
    ;;
  bair)
    exec "$PYTHON" "$here/preprocess_bair.py" "$@"
    ;;
  kth)
    exec "$PYTHON" "$here/preprocess_kth.py" "$@"
    ;;
  *)
    echo "error: unknown dataset '$dataset'; valid datasets: $datasets" >&2
    exit 2
    ;;
esac
