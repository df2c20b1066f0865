#!/usr/bin/env bash
# README command 1: setup + the main job on Moving MNIST (no download needed).
# Builds the records from real MNIST digits, trains a small deterministic SAVP-family model whose DNA
# kernels move the previous frame's pixels, writes GIFs, evaluates it and three baselines (repeat: the
# last context frame; blank: the mean training frame, and black frames) and prints one table.
set -euo pipefail
cd "$(dirname "$0")/.."

QS=hparams/moving_mnist/quickstart
DATA=data/moving_mnist_quickstart
RUN=logs/quickstart/savp_dna
RESULTS=results/quickstart
STEPS=${QUICKSTART_STEPS:-}  # default: max_steps of $QS/model_hparams.json

# Wall and CPU (user+sys of the commands, from bash's `times`) per phase.
timing=$(mktemp)
trap 'rm -f "$timing"' EXIT
# `times` must run in this shell (not in a $(...) subshell) to see the commands it has waited for.
read_cpu() { times > "$timing"; cpu=$(awk 'NR == 2 { split($1, u, "m"); split($2, s, "m"); printf "%.0f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$timing"); }
phases=()
last_wall=$(date +%s)
last_cpu=0
phase() {
  local wall
  wall=$(date +%s)
  read_cpu
  phases+=("$(printf '%-10s %8d %12d' "$1" $((wall - last_wall)) $((cpu - last_cpu)))")
  echo "[quickstart] $1 done: $((wall - last_wall)) s wall, $((cpu - last_cpu)) s CPU"
  last_wall=$wall
  last_cpu=$cpu
}
start=$last_wall

if [ -z "${QUICKSTART_SKIP_SETUP:-}" ]; then  # set it to reuse an environment you manage yourself
  bash scripts/setup_env.sh
fi
. .venv/bin/activate
phase setup

DATASET_HPARAMS=$(python -c "import json;print(','.join(f'{k}={v}' for k,v in json.load(open('$QS/dataset_hparams.json')).items()))")
bash data/download_and_preprocess_dataset.sh moving_mnist --output_dir "$DATA" \
  --num_train 3000 --num_val 64 --num_test 64 --sequence_length 20 --num_digits 1
phase data

python scripts/train.py --dataset moving_mnist --input_dir "$DATA" --dataset_hparams "$DATASET_HPARAMS" \
  --model savp --model_hparams_dict "$QS/model_hparams.json" --output_dir "$RUN" \
  ${STEPS:+--max_steps "$STEPS"} --summary_freq 100 --image_summary_freq 500 --save_freq 500 --seed 7
phase training

python scripts/generate.py --checkpoint "$RUN" --results_dir "$RESULTS/gifs" --num_samples 8 --num_stochastic_samples 1
phase generate

evaluate() { python scripts/evaluate.py --num_samples 64 --batch_size 16 "$@" | tail -n 1; }
evaluate --checkpoint "$RUN" --output_dir "$RESULTS/savp_dna" --num_stochastic_samples 1
baseline=(--dataset moving_mnist --input_dir "$DATA" --dataset_hparams "$DATASET_HPARAMS")
evaluate --model repeat "${baseline[@]}" --output_dir "$RESULTS/repeat"
evaluate --model blank "${baseline[@]}" --output_dir "$RESULTS/blank_mean_frame"
evaluate --model blank --model_hparams fill=zeros "${baseline[@]}" --output_dir "$RESULTS/blank_zeros"
phase evaluate

echo
echo "Quickstart finished in $(( $(date +%s) - start )) s."
printf '%-10s %8s %12s\n' phase "wall s" "CPU s"
printf '%s\n' "${phases[@]}"
echo
echo "Test set, 64 videos, 5 context frames, metrics averaged over the 5 predicted frames:"
python scripts/summarize_results.py --compact --subject savp_dna \
  "$RESULTS/savp_dna" "$RESULTS/repeat" "$RESULTS/blank_mean_frame" "$RESULTS/blank_zeros"
echo "GIFs (context | ground truth | prediction): $RESULTS/gifs/savp_dna   TensorBoard: tensorboard --logdir $RUN"
