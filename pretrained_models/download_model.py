"""Download a pretrained model of the original SAVP repository and convert it (see download_model.sh).

    python pretrained_models/download_model.py --dataset bair_action_free --model ours_savp
"""

import os
import sys

from absl import flags

from video_prediction.cli import run_main
from video_prediction.download import DownloadError
from video_prediction.conversion.published import BASE_URL, download_model

flags.DEFINE_string("dataset", None, "bair_action_free, kth or bair", required=True)
flags.DEFINE_string("model", None, "e.g. ours_savp, ours_vae, ours_gan, ours_deterministic", required=True)
flags.DEFINE_string("output_dir", os.path.dirname(os.path.abspath(__file__)),
                    "root of the <dataset>/<model> directories")
flags.DEFINE_string("base_url", BASE_URL, "where the <dataset>_<model>.tar.gz archives are")
flags.DEFINE_bool("convert", True, "convert the TF1 checkpoint (SAVP variants)")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    try:
        download_model(FLAGS.dataset, FLAGS.model, FLAGS.output_dir, FLAGS.base_url, FLAGS.convert)
    except DownloadError as e:  # the server or the network, not the input: still one line
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run_main(main, sys.argv)
