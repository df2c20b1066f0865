# Two-stage quickstart (bash scripts/quickstart.sh vqvae_transformer): a small FEVD VQ-VAE (stage 1) turns
# 32x32 one-digit Moving MNIST frames into 8x8 tokens, a causal token Transformer (stage 2, ours) predicts
# the tokens of 2 frames after 2 context frames, and the stage-1 decoder maps them back to frames.
# Sourced by scripts/quickstart.sh; the records are the SAVP quickstart's (same writer arguments).
QS1=hparams/moving_mnist/vqvae_quickstart
QS2=hparams/moving_mnist/vqvae_transformer_quickstart
DATA=$QUICKSTART_MOVING_MNIST  # written by write_quickstart_moving_mnist (common.sh)
RUN1=logs/quickstart/vqvae
RUN2=logs/quickstart/vqvae_transformer
RESULTS=results/quickstart_vqvae

write_quickstart_moving_mnist
phase data

python scripts/train.py --dataset moving_mnist --input_dir "$DATA" \
  --dataset_hparams "$(hparams_as_flags "$QS1/dataset_hparams.json")" \
  --model vqvae --model_hparams_dict "$QS1/model_hparams.json" --output_dir "$RUN1" \
  --summary_freq 100 --image_summary_freq 0 --save_freq 0 --seed 7
phase stage1

# Stage 1 on held-out frames: the reconstruction of every frame of the 64 test clips (the original's protocol).
evaluate --checkpoint "$RUN1" --output_dir "$RESULTS/vqvae_reconstruction" --num_stochastic_samples 1
phase stage1_eval

DATASET_HPARAMS=$(hparams_as_flags "$QS2/dataset_hparams.json")
python scripts/train.py --dataset moving_mnist --input_dir "$DATA" --dataset_hparams "$DATASET_HPARAMS" \
  --model vqvae_transformer --model_hparams_dict "$QS2/model_hparams.json" \
  --model_hparams "first_stage_checkpoint=$RUN1" --output_dir "$RUN2" \
  --summary_freq 100 --image_summary_freq 0 --save_freq 0 --seed 7
phase stage2

python scripts/generate.py --checkpoint "$RUN2" --results_dir "$RESULTS/gifs" --num_samples 8 --num_stochastic_samples 1
phase generate

evaluate --checkpoint "$RUN2" --output_dir "$RESULTS/vqvae_transformer" --num_stochastic_samples 1
evaluate_baselines "$RESULTS" --dataset moving_mnist --input_dir "$DATA" --dataset_hparams "$DATASET_HPARAMS"
phase evaluate

print_quickstart_table "$RESULTS/vqvae_transformer" \
  "Test set, 64 videos, 2 context frames, metrics averaged over the 2 predicted frames (greedy tokens):"
echo "GIFs (context | ground truth | prediction): $RESULTS/gifs/vqvae_transformer   stage 1: $RESULTS/vqvae_reconstruction"
