#!/usr/bin/env bash
# Download and preprocess a dataset into TFRecords.
#   bash data/download_and_preprocess_dataset.sh moving_mnist [--output_dir DIR --num_train N ...]
#   bash data/download_and_preprocess_dataset.sh bair [--output_dir DIR --base_url URL]
#   bash data/download_and_preprocess_dataset.sh kth [IMAGE_SIZE] [--output_dir DIR --base_url URL]
#   bash data/download_and_preprocess_dataset.sh moving_mnist_pose [--output_dir DIR --num_train N ...]
#   bash data/download_and_preprocess_dataset.sh human36m --archive_dir DIR [--image_size 64 --hourglass_dir DIR]
#   bash data/download_and_preprocess_dataset.sh penn_action [--output_dir DIR --hourglass]
#   bash data/download_and_preprocess_dataset.sh robot_push [--output_dir DIR --base_url URL --sha256 HEX]
#   bash data/download_and_preprocess_dataset.sh robonet (--hdf5_dir DIR | --download {full,sample}) [--num_trajectories N]
#   bash data/download_and_preprocess_dataset.sh epva --source {human36m,google_robot} --input_dir DIR --output_dir DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
if [ -x "$root/.venv/bin/python" ]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
datasets="moving_mnist kth_mspred bair kth moving_mnist_pose human36m penn_action robot_push robonet epva"
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
  moving_mnist_pose)
    exec "$PYTHON" "$here/preprocess_moving_mnist_pose.py" "$@"
    ;;
  human36m)
    exec "$PYTHON" "$here/preprocess_human36m.py" "$@"
    ;;
  penn_action)
    exec "$PYTHON" "$here/preprocess_penn_action.py" "$@"
    ;;
  robot_push)
    exec "$PYTHON" "$here/preprocess_robot_push.py" "$@"
    ;;
  robonet)
    exec "$PYTHON" "$here/preprocess_robonet.py" "$@"
    ;;
  epva)
    exec "$PYTHON" "$here/convert_to_epva_records.py" "$@"
    ;;
  *)
    echo "error: unknown dataset '$dataset'; valid datasets: $datasets" >&2
    exit 2
    ;;
esac
