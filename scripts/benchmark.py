"""Speed and memory: train-step time (with and without XLA), frames/s, peak RSS, input-pipeline and evaluation rates.

    python scripts/benchmark.py --models savp,mspred,repeat --image_size 64 --batch_size 8 --output benchmark.json

Every model configuration runs in its own child process with the given thread
settings; see video_prediction/benchmark/ for what each figure means.  With
--reference_command the first variant is also timed interleaved with an external
train-step timer (e.g. the original PyTorch code in a throwaway environment); with
--compare_rounds and a --compare_* flag it is timed interleaved against itself with
one setting changed (e.g. --compare_model_hparams mixed_precision=bfloat16).
"""

import sys

from absl import flags

from video_prediction.cli import run_main

FLAGS = flags.FLAGS
flags.DEFINE_list("models", None, "model families (every published variant) or family:hparams_dir, e.g. "
                  "savp:ours_vae_l1 (default: every registered model but ground_truth)")
flags.DEFINE_string("input_dir", None, "Moving MNIST records (default: write a small set to --data_dir)")
flags.DEFINE_string("data_dir", "/tmp/video_prediction_benchmark/moving_mnist", "where the small set is written")
flags.DEFINE_string("hparams_dir", None, "directory of per-variant hparams (default: hparams/moving_mnist)")
flags.DEFINE_integer("image_size", 64, "frame size (the records must have it)")
flags.DEFINE_integer("batch_size", 8, "batch size of every variant (overrides its hparams)")
flags.DEFINE_string("model_hparams", None, "model hparams applied to every variant after its file, e.g. "
                    "time_loop=python (the unrolled time loop of the recurrent families)")
flags.DEFINE_integer("context_frames", None, "override every variant's context frames")
flags.DEFINE_integer("sequence_length", None, "override every variant's sequence length")
flags.DEFINE_list("jit_compile", ["false", "true"], "jit_compile settings to measure")
flags.DEFINE_integer("steps", 10, "timed train steps per configuration (after warm-up)")
flags.DEFINE_integer("warmup_steps", 2, "untimed train steps first (the first one traces/compiles)")
flags.DEFINE_float("max_seconds", 120.0, "stop timing a configuration's steps after this long (min 3 steps)")
flags.DEFINE_integer("generate_calls", 5, "timed generate calls per configuration")
flags.DEFINE_integer("profile_steps", 0, "train steps to run under the TF profiler (top ops in the JSON)")
flags.DEFINE_integer("intra_op_threads", 2, "TF intra-op threads")
flags.DEFINE_integer("inter_op_threads", 0, "TF inter-op threads (0: TF's default)")
flags.DEFINE_enum("strategy", "mirrored", ["mirrored", "one_device"], "tf.distribute strategy, as train.py")
flags.DEFINE_bool("measure", True, "measure every variant (--nomeasure: only evaluation / the reference)")
flags.DEFINE_bool("evaluation", True, "also measure evaluation throughput (PSNR/SSIM, LPIPS/FVD with weights)")
flags.DEFINE_string("reference_command", None, "external train-step timer to compare the first variant with")
flags.DEFINE_integer("reference_rounds", 3, "interleaved rounds of the reference comparison")
flags.DEFINE_integer("reference_steps", 3, "steps per turn in the reference (and jit) comparison")
flags.DEFINE_float("min_cpu_share", None, "interleaved comparisons: a turn in which a side's process got fewer "
                   "cores than this (CPU seconds / wall seconds) is not clean: it is repeated and left out of the "
                   "medians (default 0.9 x --intra_op_threads; 0 keeps every turn)")
flags.DEFINE_integer("max_turn_repeats", 3, "how often a turn that was not clean is run again")
flags.DEFINE_integer("jit_rounds", 0, "interleaved rounds of jit vs no-jit train steps for the first variant")
flags.DEFINE_integer("compare_rounds", 0, "interleaved rounds of the first variant as given (a) vs with the "
                     "--compare_* changes (b)")
flags.DEFINE_string("compare_model_hparams", None, "side b's --model_hparams (e.g. mixed_precision=bfloat16)")
flags.DEFINE_integer("compare_inter_op_threads", None, "side b's --inter_op_threads")
flags.DEFINE_integer("compare_intra_op_threads", None, "side b's --intra_op_threads")
flags.DEFINE_integer("seed", 7, "seed")
flags.DEFINE_string("output", "benchmark.json", "JSON report")


def main(argv):
    from video_prediction import benchmark

    jit_values = []
    for value in FLAGS.jit_compile:
        if value.lower() not in ("true", "false"):
            raise ValueError(f"--jit_compile takes true/false values, got {value!r}")
        jit_values.append(value.lower() == "true")
    compare = {key: value for key, value in (("model_hparams", FLAGS.compare_model_hparams),
                                             ("inter_op_threads", FLAGS.compare_inter_op_threads),
                                             ("intra_op_threads", FLAGS.compare_intra_op_threads)) if value is not None}
    if FLAGS.compare_rounds and not compare:
        raise ValueError("--compare_rounds needs at least one --compare_* flag saying what side b changes")
    variants = benchmark.find_variants(FLAGS.models or benchmark.default_models(),
                                       FLAGS.hparams_dir or benchmark.DEFAULT_HPARAMS_DIR)
    input_dir = FLAGS.input_dir or benchmark.ensure_moving_mnist(FLAGS.data_dir, FLAGS.image_size)
    settings = benchmark.Settings(
        input_dir=input_dir, batch_size=FLAGS.batch_size, image_size=FLAGS.image_size,
        context_frames=FLAGS.context_frames, sequence_length=FLAGS.sequence_length, strategy=FLAGS.strategy,
        intra_op_threads=FLAGS.intra_op_threads, inter_op_threads=FLAGS.inter_op_threads, seed=FLAGS.seed,
        warmup_steps=FLAGS.warmup_steps, model_hparams=FLAGS.model_hparams)
    payload = benchmark.run_benchmark(
        variants, settings, jit_values, steps=FLAGS.steps, max_seconds=FLAGS.max_seconds,
        generate_calls=FLAGS.generate_calls, profile_steps=FLAGS.profile_steps, evaluation=FLAGS.evaluation,
        reference_command=FLAGS.reference_command, reference_rounds=FLAGS.reference_rounds,
        reference_steps=FLAGS.reference_steps, measure=FLAGS.measure, jit_rounds=FLAGS.jit_rounds,
        output=FLAGS.output, command=" ".join(sys.argv), min_cpu_share=FLAGS.min_cpu_share,
        max_turn_repeats=FLAGS.max_turn_repeats, compare=compare, compare_rounds=FLAGS.compare_rounds)
    print(benchmark.format_report(payload))
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    run_main(main, sys.argv)
