"""Convert an original EPVA / EPVA-GAN / E2E TF1 checkpoint into a run directory for generate.py / evaluate.py.

    python pretrained_models/convert_epva_checkpoint.py --checkpoint pretrained_models/human36m/epva/tf1 \
        --model_hparams model_mode=epva --output_dir pretrained_models/human36m/epva

The settings a checkpoint cannot tell (model_mode, enc_pred_use_l2norm, pred_noise_std) come from
--model_hparams or, with --published (epva, epva_gan, e2e), from the authors' notebook presets.
"""

import sys

from absl import flags

from video_prediction.cli import run_main
from video_prediction.conversion.epva import convert_checkpoint, published_model_hparams
from video_prediction.hparams import parse_hparams_string

flags.DEFINE_string("checkpoint", None, "original TF1 checkpoint (directory or prefix)", required=True)
flags.DEFINE_string("output_dir", None, "run directory to write", required=True)
flags.DEFINE_string("published", None, "epva, epva_gan or e2e: the settings of that published human36m model")
flags.DEFINE_string("model_hparams", "", "k=v,... overrides (e.g. model_mode=epva_gan,pred_noise_std=1.0)")
flags.DEFINE_string("dataset_hparams", "", "k=v,... clip lengths (default context_frames=5,sequence_length=32)")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    hparams = dict(published_model_hparams("human36m", FLAGS.published)[1]) if FLAGS.published else {}
    hparams.update(parse_hparams_string(FLAGS.model_hparams))
    model = convert_checkpoint(FLAGS.checkpoint, FLAGS.output_dir, model_hparams=hparams,
                               dataset_hparams=parse_hparams_string(FLAGS.dataset_hparams))
    print(f"wrote {FLAGS.output_dir} ({model.count_params():,} parameters)")


if __name__ == "__main__":
    run_main(main, sys.argv)
