"""Download BAIR robot pushing into data/bair/{train,val,test} (download_and_preprocess_dataset.sh bair)."""

import argparse
import sys

from video_prediction.cli import call_reporting_bad_input
from video_prediction.datasets.bair import download_and_preprocess_bair
from video_prediction.download import DownloadError


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output_dir", default="data/bair")
    parser.add_argument("--base_url", default=None,
                        help="serve bair_robot_pushing_dataset_v0.tar from here instead of rail.eecs.berkeley.edu")
    parser.add_argument("--keep_archive", action="store_true", help="keep the downloaded .tar")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    info = call_reporting_bad_input(
        lambda: download_and_preprocess_bair(args.output_dir, args.base_url, args.keep_archive,
                                             progress=not args.no_progress), DownloadError)
    if info is None:
        return 1
    print(f"bair in {args.output_dir}: {info['num_examples']} videos per split")
    return 0


if __name__ == "__main__":
    sys.exit(main())
