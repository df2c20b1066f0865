"""Download the frozen AlexNet / Hourglass of the hierarchical-prediction image generator (spec §3.4).

    python pretrained_models/download_perceptual_models.py --output_dir perceptual_models

Fetches the original's perceptual_models/download.sh archives (resumable), verifies and extracts them and
checks every array; then train pose_analogy with perceptual_models_dir=<output_dir> (the default is
./perceptual_models).
"""

import sys

from absl import flags

from video_prediction.cli import run_main

flags.DEFINE_string("output_dir", "perceptual_models", "directory for alexnet/ and hourglass/")
flags.DEFINE_list("networks", ["alexnet", "hourglass"], "which archives to fetch")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from video_prediction.layers.perceptual import PERCEPTUAL_DOWNLOADS, download_perceptual_models

    unknown = sorted(set(FLAGS.networks) - set(PERCEPTUAL_DOWNLOADS))
    if unknown:
        raise ValueError(f"unknown network {unknown[0]!r}; valid: {', '.join(sorted(PERCEPTUAL_DOWNLOADS))}")
    checked = download_perceptual_models(FLAGS.output_dir, FLAGS.networks)
    print(f"{FLAGS.output_dir}: {', '.join(sorted(checked))} ready")


if __name__ == "__main__":
    run_main(main, sys.argv)
