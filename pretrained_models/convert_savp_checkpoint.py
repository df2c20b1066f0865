"""Convert an original TF1 checkpoint of the SAVP repository (savp, sv2p or sna) into a run directory.

    python pretrained_models/convert_savp_checkpoint.py --checkpoint pretrained_models/bair_action_free/ours_savp/tf1 \
        --output_dir pretrained_models/bair_action_free/ours_savp

The checkpoint's own model_hparams.json / dataset_hparams.json / options.json are applied; options.json's
model (savp, sv2p or sna) picks the converter.  The result serves generate.py / evaluate.py --checkpoint.
"""

import sys

from absl import flags

from video_prediction.cli import run_main

flags.DEFINE_string("checkpoint", None, "original checkpoint directory or prefix (model-<step>)", required=True)
flags.DEFINE_string("output_dir", None, "run directory to write", required=True)
flags.DEFINE_list("image_shape", None, "H,W,C of the training frames (default: from the dataset and its hparams)")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from video_prediction.conversion.published import convert_original_checkpoint

    image_shape = [int(d) for d in FLAGS.image_shape] if FLAGS.image_shape else None
    model = convert_original_checkpoint(FLAGS.checkpoint, FLAGS.output_dir, image_shape=image_shape)
    print(f"wrote {FLAGS.output_dir} ({model.count_params()} parameters, step {int(model.global_step.numpy())})")


if __name__ == "__main__":
    run_main(main, sys.argv)
