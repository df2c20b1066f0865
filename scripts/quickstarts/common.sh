# Shared pieces of the quickstarts (sourced by scripts/quickstart.sh; not run on its own).
# A family's quickstart, scripts/quickstarts/<family>.sh, builds its records, trains, writes GIFs,
# evaluates the model and, with evaluate_baselines, the baselines a model cannot fake (repeat: the
# last context frame; blank: the mean training frame, and black frames), then prints one table with
# print_quickstart_table. Each phase's wall and CPU time is recorded with `phase NAME`.

# Wall and CPU (user+sys of the commands, from bash's `times`) per phase.
_qs_timing=$(mktemp)
trap 'rm -f "$_qs_timing"' EXIT
# `times` must run in this shell (not in a $(...) subshell) to see the commands it has waited for.
_qs_read_cpu() {
  times > "$_qs_timing"
  _qs_cpu=$(awk 'NR == 2 { split($1, u, "m"); split($2, s, "m"); printf "%.0f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$_qs_timing")
}
_qs_phases=()
_qs_start=$(date +%s)
_qs_last_wall=$_qs_start
_qs_last_cpu=0
phase() {
  local wall
  wall=$(date +%s)
  _qs_read_cpu
  _qs_phases+=("$(printf '%-10s %8d %12d' "$1" $((wall - _qs_last_wall)) $((_qs_cpu - _qs_last_cpu)))")
  echo "[quickstart] $1 done: $((wall - _qs_last_wall)) s wall, $((_qs_cpu - _qs_last_cpu)) s CPU"
  _qs_last_wall=$wall
  _qs_last_cpu=$_qs_cpu
}

# Comma-separated key=value pairs of a JSON hparams file (for --dataset_hparams).
hparams_as_flags() {
  python -c "import json,sys;print(','.join(f'{k}={v}' for k,v in json.load(open(sys.argv[1])).items()))" "$1"
}

# The one-digit Moving MNIST records (64x64, 3000 training videos of 20 frames) that the SAVP, MSPred, EPVA
# and two-stage quickstarts share; each resizes them with its own scale_size. Written once (the writer keeps
# existing records), so every quickstart must write them with these arguments: hence one function.
QUICKSTART_MOVING_MNIST=data/moving_mnist_quickstart
write_quickstart_moving_mnist() {
  bash data/download_and_preprocess_dataset.sh moving_mnist --output_dir "$QUICKSTART_MOVING_MNIST" \
    --num_train 3000 --num_val 64 --num_test 64 --sequence_length 20 --num_digits 1
}

# One evaluate.py run; prints only its last line (where the summary table says it wrote its results).
evaluate() { python scripts/evaluate.py --num_samples 64 --batch_size 16 "$@" | tail -n 1; }

# evaluate_baselines RESULTS_DIR --dataset NAME --input_dir DIR --dataset_hparams K=V,...
# writes RESULTS_DIR/{repeat,blank_mean_frame,blank_zeros}.
evaluate_baselines() {
  local results=$1
  shift
  evaluate --model repeat "$@" --output_dir "$results/repeat"
  evaluate --model blank "$@" --output_dir "$results/blank_mean_frame"
  evaluate --model blank --model_hparams fill=zeros "$@" --output_dir "$results/blank_zeros"
}

# print_quickstart_table SUBJECT_DIR DESCRIPTION: the phase times and one table of the subject beside
# the baselines that evaluate_baselines wrote next to it.
print_quickstart_table() {
  local subject=$1 description=$2 results
  results=$(dirname "$subject")
  echo
  echo "Quickstart finished in $(( $(date +%s) - _qs_start )) s."
  printf '%-10s %8s %12s\n' phase "wall s" "CPU s"
  printf '%s\n' "${_qs_phases[@]}"
  echo
  echo "$description"
  python scripts/summarize_results.py --compact --subject "$(basename "$subject")" \
    "$subject" "$results/repeat" "$results/blank_mean_frame" "$results/blank_zeros"
}
