"""Train a video prediction model (flags as in the original SAVP scripts/train.py).

    python scripts/train.py --input_dir data/moving_mnist --dataset moving_mnist --model savp \
        --model_hparams_dict hparams/moving_mnist/ours_savp/model_hparams.json --output_dir logs/moving_mnist/ours_savp

Running the same command again resumes from the latest checkpoint in --output_dir (also after kill -9):
step, weights, optimizers, schedules, random streams and the input position (README, "Reliability").
"""

import sys

from absl import app, flags

from video_prediction.cli import run_main

FLAGS = flags.FLAGS
flags.DEFINE_string("input_dir", None, "directory with train/val/test TFRecords (or the records themselves)")
flags.DEFINE_string("val_input_dir", None, "directory with validation records (default: --input_dir)")
flags.DEFINE_string("dataset", None, "dataset name, e.g. moving_mnist")
flags.DEFINE_string("dataset_hparams", None, "dataset hparam overrides, 'k=v,k2=v2'")
flags.DEFINE_string("dataset_hparams_dict", None, "JSON file of dataset hparams")
flags.DEFINE_string("model", None, "model name, e.g. savp")
flags.DEFINE_string("model_hparams", None, "model hparam overrides, 'k=v,k2=v2'")
flags.DEFINE_string("model_hparams_dict", None, "JSON file of model hparams, e.g. hparams/<dataset>/<variant>/model_hparams.json")
flags.DEFINE_string("output_dir", None, "run directory for checkpoints, summaries and the resolved hparams")
flags.DEFINE_string("checkpoint", None, "run directory or checkpoint prefix to initialise from (when --output_dir has none)")
flags.DEFINE_integer("max_steps", None, "total training steps (default: the model's max_steps hparam)")
flags.DEFINE_integer("summary_freq", 1000, "steps between scalar summaries (and Keras progress epochs)")
flags.DEFINE_integer("image_summary_freq", 5000, "steps between image/GIF summaries (0 disables)")
flags.DEFINE_integer("save_freq", 5000, "steps between checkpoints (0: only at the end)")
flags.DEFINE_integer("keep_checkpoints", 2, "how many checkpoints to keep (older ones are deleted)")
flags.DEFINE_integer("seed", None, "seed for TF, numpy and Python (default: drawn once and recorded in options.json)")
flags.DEFINE_enum("strategy", "mirrored", ["mirrored", "one_device", "multi_worker"],
                  "tf.distribute strategy; multi_worker reads the cluster from TF_CONFIG")
flags.DEFINE_bool("deterministic", False,
                  "TF op determinism: a resumed run ends bitwise equal to an uninterrupted one (slower)")
flags.DEFINE_bool("skip_nonfinite_steps", False,
                  "undo and count updates whose loss is NaN/Inf instead of stopping the run")
flags.DEFINE_bool("skip_corrupt_records", False,
                  "skip and count unreadable TFRecords instead of stopping with the file and record named")
flags.DEFINE_bool("recover_from_older_checkpoint", False,
                  "when the newest checkpoint in --output_dir is damaged, resume from the newest intact one (the "
                  "damaged files are moved to <output_dir>/damaged/); without it a damaged checkpoint stops the run")
flags.DEFINE_bool("jit_compile", False, "compile the train step with XLA")
flags.DEFINE_enum("verbose", "auto", ["auto", "0", "1", "2"], "Keras progress output")


def main(argv):
    from video_prediction.training.loop import train
    from video_prediction.training.run_directory import RunError

    if not FLAGS.output_dir:
        raise RunError("--output_dir is required")
    train(
        input_dir=FLAGS.input_dir,
        dataset_name=FLAGS.dataset,
        model_name=FLAGS.model,
        output_dir=FLAGS.output_dir,
        dataset_hparams_dict=FLAGS.dataset_hparams_dict,
        dataset_hparams=FLAGS.dataset_hparams,
        model_hparams_dict=FLAGS.model_hparams_dict,
        model_hparams=FLAGS.model_hparams,
        checkpoint=FLAGS.checkpoint,
        val_input_dir=FLAGS.val_input_dir,
        max_steps=FLAGS.max_steps,
        summary_freq=FLAGS.summary_freq,
        image_summary_freq=FLAGS.image_summary_freq,
        save_freq=FLAGS.save_freq,
        keep_checkpoints=FLAGS.keep_checkpoints,
        seed=FLAGS.seed,
        strategy_name=FLAGS.strategy,
        jit_compile=FLAGS.jit_compile,
        verbose=FLAGS.verbose if FLAGS.verbose == "auto" else int(FLAGS.verbose),
        deterministic=FLAGS.deterministic,
        skip_nonfinite_steps=FLAGS.skip_nonfinite_steps,
        skip_corrupt_records=FLAGS.skip_corrupt_records,
        recover_from_older_checkpoint=FLAGS.recover_from_older_checkpoint,
    )


if __name__ == "__main__":
    run_main(main, sys.argv)
