"""Download KTH-Actions and the SVG metadata and extract 64x64 PNG frames, as MSPred's scripts do.

    bash data/download_and_preprocess_dataset.sh kth_mspred --output_dir data/KTH_64
    (or: python data/preprocess_kth_mspred.py --output_dir data/KTH_64 [--skip_download])

Steps (specs/mspred.md §2.3; the original's resources/download_kth.sh + convert_kth.sh):
1. ``<output_dir>/processed``: untar http://www.cs.nyu.edu/~denton/datasets/kth.tar.gz (SVG metadata,
   ``<class>/{train,test}_meta64x64.t7``).
2. ``<output_dir>/raw/<class>``: unzip http://www.nada.kth.se/cvap/actions/<class>.zip for the six classes.
3. each ``raw/<class>/<name>_uncomp.avi`` -> ``processed/<class>/<name>/image-%03d_64x64.png`` (ffmpeg, 25 fps,
   resized to 64x64; ffmpeg-python with the ffmpeg of the imageio-ffmpeg wheel, shared with the `kth` dataset).
Downloads resume after an interruption and archives are verified before extraction; a rerun skips finished steps.
The keypoint files ``processed/<class>/{train,test}_keypoints64x64.json`` are not produced by any script:
copy them from the KTH folder linked in the MSPred README
(https://www.dropbox.com/sh/byp2c5s1q9d4uud/AACRJLBZTjc1c3kMS5IKDMa6a?dl=0), which is also the fallback if
the URLs above are down.  Train with ``--input_dir <output_dir>/processed``.
"""

import os

from absl import app, flags

import video_prediction.cli  # noqa: F401  (first: quiet TensorFlow start-up)
from video_prediction.datasets.kth import KTH_ACTIONS, extract_frames
from video_prediction.download import download_file, extract_archive, verify_archive

METADATA_URL = "http://www.cs.nyu.edu/~denton/datasets/kth.tar.gz"
VIDEO_URL = "http://www.nada.kth.se/cvap/actions/{}.zip"

flags.DEFINE_string("output_dir", None, "target directory (the original's <data>/KTH_64)", required=True)
flags.DEFINE_bool("skip_download", False, "only extract frames from raw/<class>/*.avi already in place")
flags.DEFINE_integer("image_size", 64, "frame size")
flags.DEFINE_string("base_url", None, "a mirror serving kth.tar.gz and <class>.zip instead of the original hosts")
FLAGS = flags.FLAGS


def download_all(output_dir, base_url=None, progress=True):
    """Resumable, verified downloads; archives already extracted (a marker file) are skipped."""
    processed, raw = os.path.join(output_dir, "processed"), os.path.join(output_dir, "raw")
    metadata_url, video_url = METADATA_URL, VIDEO_URL
    if base_url:
        metadata_url, video_url = f"{base_url.rstrip('/')}/kth.tar.gz", f"{base_url.rstrip('/')}/{{}}.zip"
    jobs = [(metadata_url, os.path.join(output_dir, "kth.tar.gz"), processed)]
    jobs += [(video_url.format(cls), os.path.join(output_dir, f"{cls}.zip"), os.path.join(raw, cls))
             for cls in KTH_ACTIONS]
    for url, archive, target in jobs:
        marker = os.path.join(target, f".extracted_{os.path.basename(archive)}")
        if os.path.exists(marker):
            continue
        download_file(url, archive, progress=progress)
        verify_archive(archive)
        extract_archive(archive, target)
        open(marker, "w").close()
        os.remove(archive)


def main(argv):
    del argv
    if not FLAGS.skip_download:
        download_all(FLAGS.output_dir, FLAGS.base_url)
    count = extract_frames(FLAGS.output_dir, FLAGS.image_size)
    print(f"extracted frames of {count} videos into {os.path.join(FLAGS.output_dir, 'processed')}; "
          "add the keypoint JSON files (see this script's docstring)")


if __name__ == "__main__":
    app.run(main)
