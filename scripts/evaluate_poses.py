"""MPJPE / PCK@0.2 of predicted landmarks (pose_lstm, hierarchical_pose) vs the constant-pose baseline.

    python scripts/evaluate_poses.py --checkpoint logs/penn_action/pose_lstm --dataset_hparams sequence_length=74
    python scripts/evaluate_poses.py --model hierarchical_pose --dataset moving_mnist_pose --input_dir DIR \
        --model_hparams pose_checkpoint=RUN1,image_checkpoint=RUN2
"""

import sys

from absl import flags

from video_prediction.cli import define_inference_flags, run_main

FLAGS = flags.FLAGS
define_inference_flags(num_stochastic_samples=1)
flags.DEFINE_string("results_dir", "results", "results go to <results_dir>/<checkpoint or model name>")
flags.DEFINE_string("output_dir", None, "exact output directory (overrides --results_dir)")
flags.DEFINE_integer("horizon", None, "predicted steps (default: the clip length minus the context)")


def main(argv):
    del argv
    from video_prediction import pose_evaluation, training

    model, dataset, output_dir = training.model_and_dataset_from_flags(FLAGS, seed=FLAGS.seed)
    results = pose_evaluation.evaluate_poses(model, dataset, FLAGS.batch_size, FLAGS.num_samples, FLAGS.horizon)
    path = pose_evaluation.write_results(output_dir, results)
    for name in ("model_mpjpe", "constant_mpjpe", "model_pck", "constant_pck"):
        print(f"{name}: {results[name]['mean']:.4f}")
    print(f"{results['num_videos']} videos -> {path}")


if __name__ == "__main__":
    run_main(main, sys.argv)
