"""Write predicted GIFs and PNG frames (flags as in the original SAVP scripts/generate.py).

    python scripts/generate.py --checkpoint logs/moving_mnist/ours_savp --results_dir results/moving_mnist
    python scripts/generate.py --checkpoint logs/moving_mnist/ours_savp --video clip.gif --results_dir results/clip
"""

import os
import sys

from absl import flags

from video_prediction.cli import apply_latent_mode, define_inference_flags, run_main

FLAGS = flags.FLAGS
define_inference_flags(num_stochastic_samples=5)
flags.DEFINE_string("video", None, "predict from this GIF/MP4/.npy/folder of PNGs instead of a dataset")
flags.DEFINE_string("results_dir", "results", "where GIFs and PNGs go (a sub-directory per checkpoint)")
flags.DEFINE_integer("horizon", None, "frames to predict with --video (default: the training length)")
flags.DEFINE_integer("gif_length", None, "frames per GIF (default: all)")
flags.DEFINE_integer("fps", 4, "GIF frame rate")
flags.DEFINE_bool("save_arrays", False, "also write the predictions as .npz arrays")


def main(argv):
    import keras

    from video_prediction import generation, training

    keras.utils.set_random_seed(FLAGS.seed)
    if FLAGS.video:
        if not FLAGS.checkpoint:
            raise training.RunError("--video needs --checkpoint")
        model, options, _ = training.load_model(FLAGS.checkpoint, FLAGS.model, FLAGS.model_hparams)
        apply_latent_mode(model, FLAGS.latent_mode)
        video = generation.fit_video_to_shape(generation.load_video(FLAGS.video), options["image_shape"])
        output_dir = os.path.join(FLAGS.results_dir, os.path.basename(os.path.normpath(FLAGS.checkpoint)))
        generation.generate_from_video(model, video, output_dir, FLAGS.num_stochastic_samples, FLAGS.horizon,
                                       FLAGS.fps, FLAGS.save_arrays)
        if hasattr(model, "level_target_frames"):  # multi-level models (MSPred): per-level GIFs too
            from video_prediction import mspred_generation

            mspred_generation.write_video_level_outputs(model, video, os.path.join(output_dir, "levels"),
                                                        FLAGS.num_stochastic_samples, FLAGS.horizon, FLAGS.fps,
                                                        FLAGS.save_arrays)
        print(f"wrote predictions of {FLAGS.video} to {output_dir}")
        return
    model, dataset, output_dir = training.model_and_dataset_from_flags(FLAGS, seed=FLAGS.seed)
    apply_latent_mode(model, FLAGS.latent_mode)
    count = generation.generate_from_dataset(
        model, dataset, output_dir, num_videos=FLAGS.num_samples, num_stochastic_samples=FLAGS.num_stochastic_samples,
        batch_size=FLAGS.batch_size, gif_length=FLAGS.gif_length, fps=FLAGS.fps, save_arrays=FLAGS.save_arrays,
    )
    if hasattr(model, "level_target_frames"):  # multi-level models (MSPred): per-level GIFs too
        from video_prediction import mspred_generation

        mspred_generation.write_level_outputs_for_dataset(
            model, dataset, os.path.join(output_dir, "levels"), num_videos=FLAGS.num_samples or 8,
            num_samples=FLAGS.num_stochastic_samples, batch_size=FLAGS.batch_size, fps=FLAGS.fps,
            save_arrays=FLAGS.save_arrays, segmentation_levels=getattr(dataset, "segmentation_levels", ()))
    print(f"wrote {count} videos to {output_dir}")


if __name__ == "__main__":
    run_main(main, sys.argv)
