"""Convert an original MSPred checkpoint into a run directory for generate.py / evaluate.py.

    python pretrained_models/convert_mspred_checkpoint.py --checkpoint checkpoint_epoch_final.pth \
        --experiment_params experiment_params.json --output_dir pretrained_models/mspred_mmnist

Reads the ``.pth`` without torch (restricted unpickler: tensors and plain containers only).
"""

import sys

from absl import flags

from video_prediction.cli import run_main  # first: quiet TensorFlow start-up
from video_prediction.conversion.mspred import convert_checkpoint

flags.DEFINE_string("checkpoint", None, "original checkpoint (.pth, torch zip format)", required=True)
flags.DEFINE_string("experiment_params", None, "the experiment_params.json of that experiment", required=True)
flags.DEFINE_string("output_dir", None, "run directory to write", required=True)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    model = convert_checkpoint(FLAGS.checkpoint, FLAGS.experiment_params, FLAGS.output_dir)
    print(f"wrote {FLAGS.output_dir} ({model.count_params()} parameters)")


if __name__ == "__main__":
    run_main(main, sys.argv)
