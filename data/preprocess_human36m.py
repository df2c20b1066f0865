"""Human3.6M archives (login required: see the README) -> pose records (download_and_preprocess_dataset.sh human36m).

  bash data/download_and_preprocess_dataset.sh human36m --archive_dir DIR [--image_size 64] [--hourglass_dir DIR]
"""

import argparse
import sys

from video_prediction.cli import call_reporting_bad_input
from video_prediction.datasets.human36m import ALL_SUBJECTS, prepare_human36m, required_archives
from video_prediction.download import DownloadError


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive_dir", required=True,
                        help="directory with the downloaded archives (or extracted S<n>/ directories); needs "
                             + "; ".join(required_archives()))
    parser.add_argument("--output_dir", default=None, help="default data/human36m (128) or data/human36m_<S>")
    parser.add_argument("--image_size", type=int, default=128, choices=(64, 128), help="crop size (original: 128)")
    parser.add_argument("--subjects", default=",".join(ALL_SUBJECTS), help="comma-separated subset, e.g. S1,S9")
    parser.add_argument("--hourglass_dir", default=None,
                        help="the original's Hourglass test poses: S9_Hourglass/ and S11_Hourglass/ (or their "
                             ".tar.gz archives) from the URLs in the README")
    parser.add_argument("--image_format", default="jpeg", choices=("jpeg", "png"))
    parser.add_argument("--delete_raw", action="store_true", help="delete <output_dir>/raw (extracted archives)")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    output_dir = args.output_dir or ("data/human36m" if args.image_size == 128 else f"data/human36m_{args.image_size}")
    subjects = tuple(s.strip() for s in args.subjects.split(",") if s.strip())
    info = call_reporting_bad_input(
        lambda: prepare_human36m(args.archive_dir, output_dir, args.image_size, subjects, args.hourglass_dir,
                                 args.image_format, keep_raw=not args.delete_raw, progress=not args.no_progress),
        DownloadError)
    if info is None:
        return 1
    rate = info.get("frames_per_second")
    print(f"human36m in {output_dir}: {info['num_examples']} videos per split"
          + (f", {rate:.0f} frames/s" if rate else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
