"""Print one table of time-averaged best/average/worst metrics for several evaluate.py outputs.

    python scripts/summarize_results.py results/quickstart/ours_vae results/quickstart/model.repeat
"""

import os
import sys

from absl import flags

from video_prediction.cli import run_main

FLAGS = flags.FLAGS
flags.DEFINE_bool("compact", False, "one row per result directory: each metric averaged over videos, samples and "
                  "predicted frames, the best of each column starred")
flags.DEFINE_string("subject", None, "with --compact: the directory name of the model that should beat the others "
                    "(a last line says whether it does)")


def main(argv):
    from video_prediction.inference import evaluation

    paths = argv[1:]
    if not paths:
        raise ValueError("give one or more evaluate.py output directories")
    labels = [os.path.basename(os.path.normpath(p)) for p in paths]
    results = {label: evaluation.load_results(p) for label, p in zip(labels, paths)}
    if FLAGS.compact:
        print(evaluation.format_comparison_table(results, subject=FLAGS.subject))
    else:
        print(evaluation.format_table(results))
    set_metrics = {label: evaluation.load_set_metrics(p) for label, p in zip(labels, paths)}
    set_metrics = {label: metrics for label, metrics in set_metrics.items() if metrics}
    if set_metrics:
        print()
        print(evaluation.format_set_table(set_metrics))


if __name__ == "__main__":
    run_main(main, sys.argv)
