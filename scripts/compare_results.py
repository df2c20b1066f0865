"""Compare several evaluate.py outputs: per metric one plot of every run's average curve with its best/worst
band, the combined table (results.csv, results.md) and index.html with the runs' GIFs side by side.

    python scripts/compare_results.py results/moving_mnist/ours_savp results/moving_mnist/model.repeat \
        --output_dir results/moving_mnist/comparison
"""

import sys

from absl import flags

from video_prediction.cli import run_main

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", None, "where the plots, tables and index.html go")
flags.mark_flag_as_required("output_dir")


def main(argv):
    from video_prediction.inference.comparison import compare

    table, page = compare(argv[1:], FLAGS.output_dir)
    print(table, end="")
    print(f"wrote plots, results.csv, results.md and {page}")


if __name__ == "__main__":
    run_main(main, sys.argv)
