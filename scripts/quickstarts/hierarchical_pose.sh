# The hierarchical pose quickstart (Villegas et al. 2017): a pose LSTM predicts the digit's keypoints, the
# visual-analogy generator renders each future frame from the last observed frame, its pose and the predicted
# pose. The two networks train separately (two train.py runs) and are chained only at test time
# (--model hierarchical_pose). One-digit Moving MNIST with keypoints (offline), frames at 32x32.
# Sourced by scripts/quickstart.sh: bash scripts/quickstart.sh hierarchical_pose
QS_LSTM=hparams/moving_mnist/pose_lstm_quickstart
QS_IMG=hparams/moving_mnist/pose_analogy_quickstart
DATA=data/moving_mnist_pose_quickstart
RUNS=logs/quickstart/hierarchical_pose
RESULTS=results/quickstart_hierarchical_pose

LSTM_HPARAMS=$(hparams_as_flags "$QS_LSTM/dataset_hparams.json")
IMG_HPARAMS=$(hparams_as_flags "$QS_IMG/dataset_hparams.json")
# the chained model renders its own heatmaps from the predicted poses: it reads the frames without them
EVAL_HPARAMS=$LSTM_HPARAMS
bash data/download_and_preprocess_dataset.sh moving_mnist_pose --output_dir "$DATA" \
  --num_train 2000 --num_val 64 --num_test 64 --sequence_length 20 --num_digits 1 --no_progress
phase data

python scripts/train.py --dataset moving_mnist_pose --input_dir "$DATA" --dataset_hparams "$LSTM_HPARAMS" \
  --model pose_lstm --model_hparams_dict "$QS_LSTM/model_hparams.json" --output_dir "$RUNS/pose_lstm" \
  --summary_freq 250 --save_freq 500 --seed 7
phase pose_lstm

python scripts/train.py --dataset moving_mnist_pose --input_dir "$DATA" --dataset_hparams "$IMG_HPARAMS" \
  --model pose_analogy --model_hparams_dict "$QS_IMG/model_hparams.json" --output_dir "$RUNS/pose_analogy" \
  --summary_freq 250 --save_freq 500 --seed 7
phase analogy

CHAINED=(--model hierarchical_pose --dataset moving_mnist_pose --input_dir "$DATA"
         --dataset_hparams "$EVAL_HPARAMS"
         --model_hparams "pose_checkpoint=$RUNS/pose_lstm,image_checkpoint=$RUNS/pose_analogy")
python scripts/generate.py "${CHAINED[@]}" --results_dir "$RESULTS/gifs" --num_samples 8
phase generate

evaluate "${CHAINED[@]}" --output_dir "$RESULTS/hierarchical_pose"
evaluate_baselines "$RESULTS" --dataset moving_mnist_pose --input_dir "$DATA" --dataset_hparams "$EVAL_HPARAMS"
phase evaluate

print_quickstart_table "$RESULTS/hierarchical_pose" \
  "Test set, 64 videos, 10 observed frames, metrics averaged over the 10 predicted frames (chained: predicted poses):"
python - "$RESULTS/hierarchical_pose/poses/pose_metrics.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"Pose LSTM over the predicted frames (32x32 pixels): MPJPE {r['model_mpjpe']['mean']:.2f} px, "
      f"PCK@0.2 {r['model_pck']['mean']:.3f}; constant (last observed) pose: MPJPE "
      f"{r['constant_mpjpe']['mean']:.2f} px, PCK@0.2 {r['constant_pck']['mean']:.3f}")
PY
echo "GIFs (observed | ground truth | prediction; skeletons in poses/): $RESULTS/gifs   TensorBoard: tensorboard --logdir $RUNS"
