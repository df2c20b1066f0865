"""Download KTH and write SAVP's records into data/kth or data/kth_<S> (download_and_preprocess_dataset.sh kth [S])."""

import argparse
import sys

from video_prediction.cli import call_reporting_bad_input
from video_prediction.datasets.kth import KTH_SPLIT_SEED, download_and_preprocess_kth
from video_prediction.download import DownloadError


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("image_size", nargs="?", type=int, default=64, help="frame size S (default 64)")
    parser.add_argument("--output_dir", default=None, help="default data/kth (64) or data/kth_<S>")
    parser.add_argument("--base_url", default=None,
                        help="serve the <action>.zip files and kth_meta.tar.gz from here instead of the original hosts")
    parser.add_argument("--seed", type=int, default=KTH_SPLIT_SEED, help="train/val shuffle seed")
    parser.add_argument("--keep_raw", action="store_true", help="keep raw/ (videos) and processed/ (frames)")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    if args.image_size < 1:
        parser.error(f"image_size must be positive, got {args.image_size}")
    info = call_reporting_bad_input(
        lambda: download_and_preprocess_kth(args.image_size, args.output_dir, args.base_url, args.keep_raw,
                                            args.seed, progress=not args.no_progress), DownloadError)
    if info is None:
        return 1
    print(f"kth ({args.image_size}x{args.image_size}): {info['num_examples']} sequences per split")
    return 0


if __name__ == "__main__":
    sys.exit(main())
