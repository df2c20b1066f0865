# EPVA's quickstart (`bash scripts/quickstart.sh epva`): the EPVA family on one-digit Moving MNIST at 32x32,
# 3 context + 5 predicted frames, with the settings of hparams/moving_mnist/epva_quickstart/ (its README says
# which model_mode and why). Sourced by scripts/quickstart.sh.
QS=hparams/moving_mnist/epva_quickstart
DATA=$QUICKSTART_MOVING_MNIST  # written by write_quickstart_moving_mnist (common.sh)
RUN=logs/quickstart/epva
RESULTS=results/quickstart_epva
STEPS=${QUICKSTART_STEPS:-}  # default: max_steps of $QS/model_hparams.json

DATASET_HPARAMS=$(hparams_as_flags "$QS/dataset_hparams.json")
write_quickstart_moving_mnist
phase data

python scripts/train.py --dataset moving_mnist --input_dir "$DATA" --dataset_hparams "$DATASET_HPARAMS" \
  --model epva --model_hparams_dict "$QS/model_hparams.json" --output_dir "$RUN" \
  ${STEPS:+--max_steps "$STEPS"} --summary_freq 50 --image_summary_freq 0 --save_freq 0 --seed 7
phase training

python scripts/generate.py --checkpoint "$RUN" --results_dir "$RESULTS/gifs" --num_samples 8 --num_stochastic_samples 1
phase generate

evaluate --checkpoint "$RUN" --output_dir "$RESULTS/epva" --num_stochastic_samples 1
evaluate_baselines "$RESULTS" --dataset moving_mnist --input_dir "$DATA" --dataset_hparams "$DATASET_HPARAMS"
phase evaluate

print_quickstart_table "$RESULTS/epva" \
  "Test set, 64 videos, 3 context frames, metrics averaged over the 5 predicted frames:"
echo "GIFs (context | ground truth | prediction; VAN masks and reconstructions in van/): $RESULTS/gifs/epva" \
  "  TensorBoard: tensorboard --logdir $RUN"
