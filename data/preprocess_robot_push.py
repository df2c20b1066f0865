"""EPVA's robot push data: the authors' robot_data.tar.gz -> records for --dataset epva_robot.

  bash data/download_and_preprocess_dataset.sh robot_push [--output_dir DIR --base_url URL --sha256 HEX]
"""

import argparse
import sys

from video_prediction.cli import call_reporting_bad_input
from video_prediction.datasets.epva_conversion import download_and_prepare_robot_push
from video_prediction.download import DownloadError


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="data/robot_push")
    parser.add_argument("--base_url", default=None,
                        help="serve robot_data.tar.gz from here instead of the authors' bucket")
    parser.add_argument("--sha256", default=None, help="expected sha256 of the archive (none was published)")
    parser.add_argument("--keep_archive", action="store_true")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    info = call_reporting_bad_input(
        lambda: download_and_prepare_robot_push(args.output_dir, args.base_url, args.sha256,
                                                keep_archive=args.keep_archive, progress=not args.no_progress),
        DownloadError)
    if info is None:
        return 1
    print(f"robot_push in {args.output_dir}: {info['num_examples']} records per split "
          f"(archive sha256 {info['archive_sha256']}); read with --dataset epva_robot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
