# MSPred's quickstart (bash scripts/quickstart.sh mspred): the hierarchical ConvLSTM predictor shrunk to
# train in minutes on 2 CPU cores, on the main quickstart's one-digit Moving MNIST records at 32x32
# (hparams/moving_mnist/mspred_quickstart/README.md). Sourced by scripts/quickstart.sh.
QS=hparams/moving_mnist/mspred_quickstart
DATA=$QUICKSTART_MOVING_MNIST  # written by write_quickstart_moving_mnist (common.sh)
RUN=logs/quickstart/mspred
RESULTS=results/quickstart_mspred
STEPS=${QUICKSTART_STEPS:-}  # default: max_steps of $QS/model_hparams.json

DATASET_HPARAMS=$(hparams_as_flags "$QS/dataset_hparams.json")
write_quickstart_moving_mnist
phase data

python scripts/train.py --dataset mspred_moving_mnist --input_dir "$DATA" --dataset_hparams "$DATASET_HPARAMS" \
  --model mspred --model_hparams_dict "$QS/model_hparams.json" --output_dir "$RUN" \
  ${STEPS:+--max_steps "$STEPS"} --summary_freq 100 --image_summary_freq 500 --save_freq 500 --seed 7
phase training

python scripts/generate.py --checkpoint "$RUN" --results_dir "$RESULTS/gifs" --num_samples 8 --num_stochastic_samples 1
phase generate

# MSPred is stochastic: 3 samples of every test video; the table shows the average over them.
evaluate --checkpoint "$RUN" --output_dir "$RESULTS/mspred" --num_stochastic_samples 3
evaluate_baselines "$RESULTS" --dataset mspred_moving_mnist --input_dir "$DATA" --dataset_hparams "$DATASET_HPARAMS"
phase evaluate

print_quickstart_table "$RESULTS/mspred" \
  "Test set, 64 videos, 5 context frames, metrics averaged over the 5 predicted frames (MSPred: 3 samples each):"
echo "GIFs (context | ground truth | prediction; per-level maps in levels/): $RESULTS/gifs/mspred   TensorBoard: tensorboard --logdir $RUN"
