"""Best / average / worst metrics over many stochastic samples (flags as in the original scripts/evaluate.py).

    python scripts/evaluate.py --checkpoint logs/moving_mnist/ours_savp --results_dir results/moving_mnist
    python scripts/evaluate.py --model repeat --dataset moving_mnist --input_dir data/moving_mnist --results_dir results/moving_mnist
"""

import sys

from absl import flags

from video_prediction.cli import run_main

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "run directory or checkpoint prefix (not needed for ground_truth/repeat)")
flags.DEFINE_string("input_dir", None, "directory with the dataset's TFRecords (default: the one used in training)")
flags.DEFINE_string("results_dir", "results", "results go to <results_dir>/<checkpoint or model name>")
flags.DEFINE_string("output_dir", None, "exact output directory (overrides --results_dir)")
flags.DEFINE_enum("mode", "test", ["train", "val", "test"], "dataset split")
flags.DEFINE_string("dataset", None, "dataset name (default: from the checkpoint)")
flags.DEFINE_string("dataset_hparams", None, "dataset hparam overrides, e.g. sequence_length=30")
flags.DEFINE_string("model", None, "model name (default: from the checkpoint)")
flags.DEFINE_string("model_hparams", None, "model hparam overrides")
flags.DEFINE_integer("batch_size", 8, "videos per batch")
flags.DEFINE_integer("num_samples", None, "number of videos (default: all)")
flags.DEFINE_integer("num_stochastic_samples", 100, "samples per video (1 for deterministic models)")
flags.DEFINE_integer("samples_per_pass", None, "samples generated at once (memory bound)")
flags.DEFINE_string("metrics", "psnr,ssim", "comma-separated metrics: " + "mse, psnr, ssim, lpips")
flags.DEFINE_integer("seed", 7, "seed for sampling")


def main(argv):
    import keras

    from video_prediction import evaluation, training

    keras.utils.set_random_seed(FLAGS.seed)
    metric_names = evaluation.parse_metric_names(FLAGS.metrics)
    model, dataset, output_dir = training.model_and_dataset_from_flags(FLAGS, seed=FLAGS.seed)
    accumulator = evaluation.evaluate(
        model, dataset, metric_names, num_stochastic_samples=FLAGS.num_stochastic_samples,
        batch_size=FLAGS.batch_size, num_videos=FLAGS.num_samples, samples_per_pass=FLAGS.samples_per_pass,
    )
    num_samples = FLAGS.num_stochastic_samples if model.stochastic else 1
    results = evaluation.write_results(
        accumulator, output_dir, model.context_frames, training_length=model.sequence_length,
        extra=dict(model=FLAGS.model or model.name, checkpoint=FLAGS.checkpoint, mode=FLAGS.mode,
                   num_stochastic_samples=num_samples),
    )
    print(evaluation.format_table({FLAGS.model or output_dir: results}))
    print(f"wrote metrics.json, metrics.csv and plots to {output_dir}")
    if hasattr(model, "level_target_frames"):  # multi-level models (MSPred): metrics per level too
        import os

        from video_prediction.metrics import mspred_metrics

        level_results = mspred_metrics.evaluate_levels(
            model, dataset, getattr(dataset, "level_structure", "blobs"),
            num_stochastic_samples=FLAGS.num_stochastic_samples, batch_size=FLAGS.batch_size,
            num_videos=FLAGS.num_samples)
        mspred_metrics.write_level_results(level_results, os.path.join(output_dir, "levels"),
                                           model.level_target_frames(dataset.sequence_length))
        print(f"wrote per-level metrics to {os.path.join(output_dir, 'levels')}")


if __name__ == "__main__":
    run_main(main, sys.argv)
