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

    from video_prediction.inference import generation
    from video_prediction.training.building import load_model, model_and_dataset_from_flags
    from video_prediction.training.run_directory import RunError

    keras.utils.set_random_seed(FLAGS.seed)
    if FLAGS.video:
        if not FLAGS.checkpoint:
            raise RunError("--video needs --checkpoint")
        model, options, _ = load_model(FLAGS.checkpoint, FLAGS.model, FLAGS.model_hparams)
        apply_latent_mode(model, FLAGS.latent_mode)
        video = generation.fit_video_to_shape(generation.load_video(FLAGS.video), options["image_shape"])
        output_dir = os.path.join(FLAGS.results_dir, os.path.basename(os.path.normpath(FLAGS.checkpoint)))
        generation.generate_from_video(model, video, output_dir, FLAGS.num_stochastic_samples, FLAGS.horizon,
                                       FLAGS.fps, FLAGS.save_arrays)
        print(f"wrote predictions of {FLAGS.video} to {output_dir}")
        return
    model, dataset, output_dir = model_and_dataset_from_flags(FLAGS, seed=FLAGS.seed)
    apply_latent_mode(model, FLAGS.latent_mode)
    count = generation.generate_from_dataset(
        model, dataset, output_dir, num_videos=FLAGS.num_samples, num_stochastic_samples=FLAGS.num_stochastic_samples,
        batch_size=FLAGS.batch_size, gif_length=FLAGS.gif_length, fps=FLAGS.fps, save_arrays=FLAGS.save_arrays,
    )
    print(f"wrote {count} videos to {output_dir}")


if __name__ == "__main__":
    run_main(main, sys.argv)
