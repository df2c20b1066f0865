"""Convert extracted UCF101 videos into the original's records (data/<dir>/{train,val,test,test_mathieu})."""

import argparse
import sys

from video_prediction.cli import call_reporting_bad_input
from video_prediction.datasets.ucf101 import UCF101_SPLIT_SEED, write_ucf101_records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("input_dir", help="directory of the class directories holding the .avi files")
    parser.add_argument("train_test_list_dir", help="directory with trainlist*.txt and testlist*.txt")
    parser.add_argument("output_dir")
    parser.add_argument("--seed", type=int, default=UCF101_SPLIT_SEED, help="train/val shuffle seed")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    info = call_reporting_bad_input(
        lambda: write_ucf101_records(args.input_dir, args.train_test_list_dir, args.output_dir, args.seed,
                                     progress=not args.no_progress))
    if info is None:
        return 1
    print(f"ucf101 in {args.output_dir}: {info['num_examples']} videos per split")
    return 0


if __name__ == "__main__":
    sys.exit(main())
