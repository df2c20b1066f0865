"""Convert an original TF1 checkpoint of rubenvillegas/icml2017hierchvid into a run directory.

    python pretrained_models/convert_hierarchical_pose_checkpoint.py --kind pose_lstm --dataset penn_action \
        --checkpoint models/PENNACTION_DET_LSTM_... --output_dir logs/penn_action/pose_lstm
    python pretrained_models/convert_hierarchical_pose_checkpoint.py --kind pose_analogy --dataset human36m \
        --checkpoint models/HUMAN3.6M_ANALOGY_... --output_dir logs/human36m/pose_analogy

``pose_lstm`` reads ``DET_LSTM.model-<N>``, ``pose_analogy`` ``IMGGEN.model-<N>`` (the newest in the
directory, or the given prefix).  No pretrained models were published (the original's issue #1).
"""

import sys

from absl import flags

from video_prediction.cli import run_main

flags.DEFINE_enum("kind", None, ["pose_lstm", "pose_analogy"], "which network the checkpoint holds", required=True)
flags.DEFINE_enum("dataset", "penn_action", ["penn_action", "human36m"], "the dataset it was trained on")
flags.DEFINE_string("checkpoint", None, "original checkpoint directory or prefix", required=True)
flags.DEFINE_string("output_dir", None, "run directory to write", required=True)
flags.DEFINE_string("model_hparams", None, "hparam overrides, e.g. perceptual_models_dir=DIR")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from video_prediction.hparams import parse_hparams_string
    from video_prediction.conversion import hierarchical_pose as conversion

    hparams = parse_hparams_string(FLAGS.model_hparams) if FLAGS.model_hparams else None
    convert = conversion.convert_lstm_checkpoint if FLAGS.kind == "pose_lstm" else conversion.convert_imggen_checkpoint
    model = convert(FLAGS.checkpoint, FLAGS.output_dir, dataset=FLAGS.dataset, hparams=hparams)
    print(f"wrote {FLAGS.output_dir} ({model.count_params():,} parameters, step {int(model.global_step.numpy())})")


if __name__ == "__main__":
    run_main(main, sys.argv)
