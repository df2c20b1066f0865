#!/usr/bin/env bash
# README command 1: setup + the main job on Moving MNIST (no download needed).
# Builds the records from real MNIST digits, trains a small SAVP-family model,
# writes GIFs, evaluates it and the `repeat` baseline, and prints both tables.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
. .venv/bin/activate

DATA=data/moving_mnist_quickstart
RUN=logs/quickstart/savp_vae
RESULTS=results/quickstart
HPARAMS=hparams/moving_mnist/quickstart/model_hparams.json
DATASET_HPARAMS=$(python -c "import json;print(','.join(f'{k}={v}' for k,v in json.load(open('hparams/moving_mnist/quickstart/dataset_hparams.json')).items()))")
STEPS=${QUICKSTART_STEPS:-300}
start=$(date +%s)
phase() { echo "[quickstart] $1 done at $(( $(date +%s) - start )) s"; }

bash data/download_and_preprocess_dataset.sh moving_mnist --output_dir "$DATA" \
  --num_train 3000 --num_val 64 --num_test 64 --sequence_length 20
phase data

python scripts/train.py --dataset moving_mnist --input_dir "$DATA" --dataset_hparams "$DATASET_HPARAMS" \
  --model savp --model_hparams_dict "$HPARAMS" --output_dir "$RUN" \
  --max_steps "$STEPS" --summary_freq 50 --image_summary_freq 150 --save_freq 150 --seed 7
phase training

python scripts/generate.py --checkpoint "$RUN" --results_dir "$RESULTS/gifs" --num_samples 8 \
  --num_stochastic_samples 3
phase generate

python scripts/evaluate.py --checkpoint "$RUN" --output_dir "$RESULTS/savp_vae" --num_samples 64 \
  --num_stochastic_samples 10 --batch_size 16
python scripts/evaluate.py --model repeat --dataset moving_mnist --input_dir "$DATA" \
  --dataset_hparams "$DATASET_HPARAMS" --output_dir "$RESULTS/repeat" --num_samples 64 --batch_size 16

echo
echo "Quickstart finished in $(( $(date +%s) - start )) s (after setup). Test-set metrics, 64 videos:"
python scripts/summarize_results.py "$RESULTS/savp_vae" "$RESULTS/repeat"
echo "GIFs: $RESULTS/gifs   TensorBoard: tensorboard --logdir $RUN"
