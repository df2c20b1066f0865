"""Best / average / worst metrics over many stochastic samples (flags as in the original scripts/evaluate.py).

    python scripts/evaluate.py --checkpoint logs/moving_mnist/ours_savp --results_dir results/moving_mnist
    python scripts/evaluate.py --model repeat --dataset moving_mnist --input_dir data/moving_mnist --results_dir results/moving_mnist
"""

import sys

from absl import flags

from video_prediction.cli import apply_latent_mode, define_inference_flags, run_main

FLAGS = flags.FLAGS
define_inference_flags(num_stochastic_samples=100)
flags.DEFINE_string("results_dir", "results", "results go to <results_dir>/<checkpoint or model name>")
flags.DEFINE_string("output_dir", None, "exact output directory (overrides --results_dir)")
flags.DEFINE_integer("samples_per_pass", None, "samples generated at once (memory bound)")
flags.DEFINE_string("metrics", "psnr,ssim", "comma-separated metrics: mse, psnr, ssim, lpips, fvd")
flags.DEFINE_enum("lpips_net", "alex", ["alex", "vgg"], "LPIPS backbone (v0.1 linear heads)")
flags.DEFINE_bool("lpips_normalize_inputs", None,
                  "scale [0,1] frames to [-1,1] before LPIPS as intended (default for the main table); false "
                  "reproduces MSPred's unnormalized inputs (default for MSPred's per-level metrics, §5.2)")
flags.DEFINE_string("fvd_selection_metric", None,
                    "per-frame metric whose best/worst sample per video also gets an FVD "
                    "(default: the first per-frame metric requested)")
flags.DEFINE_integer("fvd_batch_size", 8, "videos per I3D pass")


def main(argv):
    import keras

    from video_prediction.inference import evaluation
    from video_prediction.inference.extras import InferenceSettings
    from video_prediction.training.building import model_and_dataset_from_flags

    keras.utils.set_random_seed(FLAGS.seed)
    metric_names = evaluation.parse_metric_names(FLAGS.metrics)
    fvd = _make_fvd(metric_names)  # before the model: a missing weight file fails fast
    model, dataset, output_dir = model_and_dataset_from_flags(FLAGS, seed=FLAGS.seed)
    apply_latent_mode(model, FLAGS.latent_mode)
    normalize = FLAGS.lpips_normalize_inputs
    lpips_kwargs = dict(net=FLAGS.lpips_net, normalize_inputs=True if normalize is None else normalize)
    accumulator = evaluation.evaluate(
        model, dataset, metric_names, num_stochastic_samples=FLAGS.num_stochastic_samples,
        batch_size=FLAGS.batch_size, num_videos=FLAGS.num_samples, samples_per_pass=FLAGS.samples_per_pass,
        metric_kwargs={"lpips": lpips_kwargs}, fvd=fvd,
    )
    num_samples = FLAGS.num_stochastic_samples if model.stochastic else 1
    set_metrics = {"fvd": fvd.results()} if fvd is not None else None
    label = FLAGS.model or model.name
    results = evaluation.write_results(
        accumulator, output_dir, model.context_frames, training_length=model.sequence_length,
        extra=dict(model=label, checkpoint=FLAGS.checkpoint, mode=FLAGS.mode, num_stochastic_samples=num_samples,
                   lpips_net=FLAGS.lpips_net if "lpips" in metric_names else None),
        set_metrics=set_metrics,
    )
    if results:
        print(evaluation.format_table({label: results}))
    if set_metrics:
        print(evaluation.format_set_table({label: set_metrics}))
    print(f"wrote metrics.json, metrics.csv and plots to {output_dir}")
    message = evaluation.evaluate_family_extras(
        model, dataset, output_dir,
        InferenceSettings(num_videos=FLAGS.num_samples, num_stochastic_samples=FLAGS.num_stochastic_samples,
                          batch_size=FLAGS.batch_size, lpips_normalize_inputs=normalize))
    if message:
        print(message)


def _make_fvd(metric_names):
    if "fvd" not in metric_names:
        return None
    from video_prediction.inference.evaluation import SET_METRICS
    from video_prediction.metrics.fvd import SampleSelectionFVD

    frame_metrics = [name for name in metric_names if name not in SET_METRICS]
    selection = FLAGS.fvd_selection_metric or (frame_metrics[0] if frame_metrics else None)
    return SampleSelectionFVD(selection_metric=selection, batch_size=FLAGS.fvd_batch_size)

if __name__ == "__main__":
    run_main(main, sys.argv)
