# The main quickstart (README command 1): a small deterministic SAVP-family model whose DNA kernels
# move the previous frame's pixels, on one-digit Moving MNIST at 32x32. Sourced by scripts/quickstart.sh.
QS=hparams/moving_mnist/quickstart
DATA=$QUICKSTART_MOVING_MNIST  # written by write_quickstart_moving_mnist (common.sh)
RUN=logs/quickstart/savp_dna
RESULTS=results/quickstart
STEPS=${QUICKSTART_STEPS:-}  # default: max_steps of $QS/model_hparams.json

DATASET_HPARAMS=$(hparams_as_flags "$QS/dataset_hparams.json")
write_quickstart_moving_mnist
phase data

python scripts/train.py --dataset moving_mnist --input_dir "$DATA" --dataset_hparams "$DATASET_HPARAMS" \
  --model savp --model_hparams_dict "$QS/model_hparams.json" --output_dir "$RUN" \
  ${STEPS:+--max_steps "$STEPS"} --summary_freq 100 --image_summary_freq 500 --save_freq 500 --seed 7
phase training

python scripts/generate.py --checkpoint "$RUN" --results_dir "$RESULTS/gifs" --num_samples 8 --num_stochastic_samples 1
phase generate

evaluate --checkpoint "$RUN" --output_dir "$RESULTS/savp_dna" --num_stochastic_samples 1
evaluate_baselines "$RESULTS" --dataset moving_mnist --input_dir "$DATA" --dataset_hparams "$DATASET_HPARAMS"
phase evaluate

print_quickstart_table "$RESULTS/savp_dna" \
  "Test set, 64 videos, 5 context frames, metrics averaged over the 5 predicted frames:"
echo "GIFs (context | ground truth | prediction): $RESULTS/gifs/savp_dna   TensorBoard: tensorboard --logdir $RUN"
