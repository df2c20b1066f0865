"""Write EPVA-layout records (image_{i} / state_{i} / action_{i} / joint_positions_{i}) from our datasets.

  python data/convert_to_epva_records.py --source human36m --input_dir data/human36m_64 --output_dir data/epva_human36m
  python data/convert_to_epva_records.py --source google_robot --input_dir PUSH_DIR --output_dir data/epva_robot
  (or: bash data/download_and_preprocess_dataset.sh epva --source ... )

human36m: 12.5 fps (fskip 4 of the 50 fps records), 64x64, 64-frame train/val clips and 256-frame test clips.
google_robot: one record per push record (PUSH_DIR/<mode>/...), end effector -> state, commanded pose -> action,
move/{i}/joint/positions -> joint_positions (zeros when absent).  Read with --dataset epva_human36m / epva_robot.
"""

import argparse
import sys

from video_prediction.cli import call_reporting_bad_input
from video_prediction.datasets.epva_conversion import MODES, convert_to_epva_records
from video_prediction.hparams import parse_hparams_string


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="a registered dataset (human36m, google_robot, ...)")
    parser.add_argument("--input_dir", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--modes", default=",".join(MODES), help="splits to convert (missing ones are skipped)")
    parser.add_argument("--source_hparams", default="", help="hparams of the source dataset, e.g. fskip=4")
    parser.add_argument("--frames_per_record", type=int, default=None, help="train/val clip length (0: whole video)")
    parser.add_argument("--test_frames_per_record", type=int, default=None, help="test clip length (0: whole video)")
    parser.add_argument("--image_size", type=int, default=None, help="stored frame size (0: keep the source's)")
    parser.add_argument("--prefix", default=None, help="file name prefix (humans / robot by default)")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    info = call_reporting_bad_input(lambda: convert_to_epva_records(
        args.source, args.input_dir, args.output_dir, modes, parse_hparams_string(args.source_hparams),
        args.frames_per_record, args.test_frames_per_record, args.image_size, args.prefix,
        progress=not args.no_progress))
    if info is None:
        return 1
    print(f"EPVA records in {args.output_dir}: {info['num_examples']} per split")
    return 0


if __name__ == "__main__":
    sys.exit(main())
