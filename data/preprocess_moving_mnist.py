"""Write the Moving MNIST TFRecords (called by download_and_preprocess_dataset.sh moving_mnist)."""

import argparse
import sys
import time

import video_prediction.cli  # noqa: F401  (first: quiet TensorFlow start-up)
from video_prediction.datasets.moving_mnist import write_moving_mnist


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output_dir", default="data/moving_mnist")
    parser.add_argument("--num_train", type=int, default=10000)
    parser.add_argument("--num_val", type=int, default=1000)
    parser.add_argument("--num_test", type=int, default=1000)
    parser.add_argument("--sequence_length", type=int, default=60, help="stored frames per video (MSPred needs 57)")
    parser.add_argument("--num_digits", type=int, default=2)
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--mnist_npz", default=None, help="a standard mnist.npz to draw digits from instead")
    args = parser.parse_args(argv)
    start = time.time()
    try:
        info = write_moving_mnist(
            args.output_dir, {"train": args.num_train, "val": args.num_val, "test": args.num_test},
            args.sequence_length, args.num_digits, args.image_size, args.mnist_npz,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"moving_mnist in {args.output_dir}: {info['num_examples']} videos of {info['sequence_length']} frames "
          f"({time.time() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
