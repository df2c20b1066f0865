"""Convert an original FEVD VQ-VAE checkpoint (nsoul97/CS229_Project) into a run directory for generate.py / evaluate.py.

    python pretrained_models/convert_vqvae_checkpoint.py --checkpoint checkpoints/baseline/highest_psnr.ckpt \
        --config configs/baseline.yaml --output_dir pretrained_models/vqvae_robonet_baseline

Reads the ``torch.save`` file without torch (restricted unpickler: tensors and plain containers only)
and the OmegaConf YAML with PyYAML (``7e4``-style numbers as floats).  The frozen loss networks
(``loss.*``) are skipped; every other parameter must map, or the error names it.
"""

import sys

from absl import flags

from video_prediction.cli import run_main

flags.DEFINE_string("checkpoint", None, "original checkpoint (.ckpt written by torch.save)", required=True)
flags.DEFINE_string("config", None, "the OmegaConf YAML config it was trained with", required=True)
flags.DEFINE_string("output_dir", None, "run directory to write", required=True)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from video_prediction.conversion.vqvae import convert_checkpoint

    model = convert_checkpoint(FLAGS.checkpoint, FLAGS.config, FLAGS.output_dir)
    print(f"wrote {FLAGS.output_dir} ({model.count_params()} parameters)")


if __name__ == "__main__":
    run_main(main, sys.argv)
