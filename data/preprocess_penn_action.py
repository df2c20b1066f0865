"""Download Penn Action and write pose records (download_and_preprocess_dataset.sh penn_action).

  bash data/download_and_preprocess_dataset.sh penn_action [--output_dir DIR] [--hourglass] [--source_dir DIR]
"""

import argparse
import sys

from video_prediction.cli import call_reporting_bad_input
from video_prediction.datasets.penn_action import HOURGLASS_URL, PENN_ACTION_URL, prepare_penn_action
from video_prediction.download import DownloadError


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default=None, help="default data/penn_action (128) or data/penn_action_<S>")
    parser.add_argument("--image_size", type=int, default=128, help="stored frame size (the image generator's 128)")
    parser.add_argument("--url", default=PENN_ACTION_URL, help="where Penn_Action.tar.gz is downloaded from")
    parser.add_argument("--source_dir", default=None,
                        help="an extracted Penn_Action directory (frames/, labels/) instead of downloading")
    parser.add_argument("--hourglass", nargs="?", const=HOURGLASS_URL, default=None,
                        help="also store the original's Hourglass poses: a directory of NNNN.npz, or a URL "
                             "(default: the original's download)")
    parser.add_argument("--image_format", default="jpeg", choices=("jpeg", "png"))
    parser.add_argument("--delete_raw", action="store_true", help="delete <output_dir>/raw (the extracted archive)")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    output_dir = args.output_dir or ("data/penn_action" if args.image_size == 128
                                     else f"data/penn_action_{args.image_size}")
    info = call_reporting_bad_input(
        lambda: prepare_penn_action(output_dir, args.image_size, args.source_dir, args.url, args.hourglass,
                                    args.image_format, keep_raw=not args.delete_raw, progress=not args.no_progress),
        DownloadError)
    if info is None:
        return 1
    rate = info.get("frames_per_second")
    print(f"penn_action in {output_dir}: {info['num_examples']} videos per split "
          f"({info['num_subset_examples']} in the 8-class subset)" + (f", {rate:.0f} frames/s" if rate else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
