"""Download KTH-Actions and the SVG metadata and extract 64x64 PNG frames, as MSPred's scripts do.

    bash data/download_and_preprocess_dataset.sh kth_mspred --output_dir data/KTH_64
    (or: python data/preprocess_kth_mspred.py --output_dir data/KTH_64 [--skip_download])

Steps (specs/mspred.md §2.3; the original's resources/download_kth.sh + convert_kth.sh):
1. ``<output_dir>/processed``: untar http://www.cs.nyu.edu/~denton/datasets/kth.tar.gz (SVG metadata,
   ``<class>/{train,test}_meta64x64.t7``).
2. ``<output_dir>/raw/<class>``: unzip http://www.nada.kth.se/cvap/actions/<class>.zip for the six classes.
3. each ``raw/<class>/<name>_uncomp.avi`` -> ``processed/<class>/<name>/image-%03d_64x64.png`` (ffmpeg, 25 fps,
   resized to 64x64; the ffmpeg of the imageio-ffmpeg wheel).
The keypoint files ``processed/<class>/{train,test}_keypoints64x64.json`` are not produced by any script:
copy them from the KTH folder linked in the MSPred README
(https://www.dropbox.com/sh/byp2c5s1q9d4uud/AACRJLBZTjc1c3kMS5IKDMa6a?dl=0), which is also the fallback if
the URLs above are down.  Train with ``--input_dir <output_dir>/processed``.
"""

import glob
import os
import subprocess
import sys
import tarfile
import urllib.request
import zipfile

from absl import app, flags

CLASSES = ("walking", "jogging", "running", "handwaving", "handclapping", "boxing")
METADATA_URL = "http://www.cs.nyu.edu/~denton/datasets/kth.tar.gz"
VIDEO_URL = "http://www.nada.kth.se/cvap/actions/{}.zip"

flags.DEFINE_string("output_dir", None, "target directory (the original's <data>/KTH_64)", required=True)
flags.DEFINE_bool("skip_download", False, "only extract frames from raw/<class>/*.avi already in place")
flags.DEFINE_integer("image_size", 64, "frame size")
FLAGS = flags.FLAGS


def download(url, path):
    if os.path.exists(path):
        return path
    print(f"downloading {url}", file=sys.stderr)
    tmp = path + ".part"
    urllib.request.urlretrieve(url, tmp)
    os.replace(tmp, path)
    return path


def download_all(output_dir):
    processed, raw = os.path.join(output_dir, "processed"), os.path.join(output_dir, "raw")
    os.makedirs(processed, exist_ok=True)
    archive = download(METADATA_URL, os.path.join(output_dir, "kth.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(processed, filter="data")
    for cls in CLASSES:
        os.makedirs(os.path.join(raw, cls), exist_ok=True)
        with zipfile.ZipFile(download(VIDEO_URL.format(cls), os.path.join(output_dir, f"{cls}.zip"))) as z:
            z.extractall(os.path.join(raw, cls))


def extract_frames(output_dir, image_size=64, ffmpeg=None):
    """raw/<class>/<name>_uncomp.avi -> processed/<class>/<name>/image-%03d_<S>x<S>.png; returns the count."""
    if ffmpeg is None:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    count = 0
    for cls in CLASSES:
        for video in sorted(glob.glob(os.path.join(output_dir, "raw", cls, "*.avi"))):
            name = os.path.basename(video)[: -len("_uncomp.avi")]  # the original strips 11 characters
            target = os.path.join(output_dir, "processed", cls, name)
            os.makedirs(target, exist_ok=True)
            pattern = os.path.join(target, f"image-%03d_{image_size}x{image_size}.png")
            subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i", video, "-r", "25",
                            "-f", "image2", "-s", f"{image_size}x{image_size}", pattern], check=True)
            count += 1
    return count


def main(argv):
    del argv
    if not FLAGS.skip_download:
        download_all(FLAGS.output_dir)
    count = extract_frames(FLAGS.output_dir, FLAGS.image_size)
    print(f"extracted frames of {count} videos into {os.path.join(FLAGS.output_dir, 'processed')}; "
          "add the keypoint JSON files (see this script's docstring)")


if __name__ == "__main__":
    app.run(main)
