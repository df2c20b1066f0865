"""RoboNet HDF5 trajectories -> records as the VQ-VAE original prepares them (download_and_preprocess_dataset.sh robonet).

  bash data/download_and_preprocess_dataset.sh robonet --hdf5_dir DIR [--num_trajectories N] [--split_by trajectory]
  bash data/download_and_preprocess_dataset.sh robonet --download sample   # or full (~36 GB)
"""

import argparse
import os
import sys
import time

from video_prediction.cli import call_reporting_bad_input
from video_prediction.datasets.robonet import (NUM_TEST, NUM_VAL, ROBONET_ARCHIVES, ROBONET_SPLIT_SEED,
                                               download_robonet, write_robonet_records)
from video_prediction.download import DownloadError


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hdf5_dir", default=None, help="directory of RoboNet's *.hdf5 trajectory files")
    parser.add_argument("--download", default=None, choices=sorted(ROBONET_ARCHIVES),
                        help="download RoboNet's archive (full ~36 GB, or the authors' ~100 MB sample) first")
    parser.add_argument("--base_url", default=None, help="serve the archive from here instead of Google Drive")
    parser.add_argument("--output_dir", default="data/robonet")
    parser.add_argument("--dim", type=int, default=64, help="frames are resized to dim x dim (original: 64)")
    parser.add_argument("--num_trajectories", type=int, default=None, help="a random subset of N trajectories")
    parser.add_argument("--n_val", type=int, default=NUM_VAL)
    parser.add_argument("--n_test", type=int, default=NUM_TEST)
    parser.add_argument("--seed", type=int, default=ROBONET_SPLIT_SEED)
    parser.add_argument("--split_by", default="camera", choices=("camera", "trajectory"),
                        help="camera: the original's split of camera views (leaks views of one trajectory across "
                             "splits); trajectory: keeps each trajectory's views in one split")
    parser.add_argument("--num_workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    if (args.hdf5_dir is None) == (args.download is None):
        print("error: pass either --hdf5_dir DIR or --download {full,sample}", file=sys.stderr)
        return 1

    def run():
        hdf5_dir = args.hdf5_dir or download_robonet(args.output_dir, args.download, args.base_url,
                                                     progress=not args.no_progress)
        start = time.time()
        info = write_robonet_records(hdf5_dir, args.output_dir, args.dim, args.num_trajectories, args.n_val,
                                     args.n_test, args.seed, args.split_by, args.num_workers,
                                     progress=not args.no_progress)
        return info, time.time() - start

    result = call_reporting_bad_input(run, DownloadError)
    if result is None:
        return 1
    info, seconds = result
    stats = info["normalization"]
    print(f"robonet in {args.output_dir}: {info['num_examples']} camera views per split; train mean "
          f"{[round(m, 4) for m in stats['mean']]} std {[round(s, 4) for s in stats['std']]} (original "
          f"{[round(m, 4) for m in stats['original_mean']]} / {[round(s, 4) for s in stats['original_std']]}); "
          f"{seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
