"""Human3.6M as the hierarchical-LSTM original prepares it (specs/hierarchical_lstm.md §2.2), as pose records.

Input: the archives a registered user downloads from http://vision.imar.ro/human3.6m/
(subject-specific "Videos" and "Poses D2_Positions" archives of S1, S5, S6, S7,
S8, S9, S11) in one directory; they are extracted into ``<output_dir>/raw`` (a
directory that already holds ``S<n>/Videos`` and ``S<n>/MyPoseFeatures/D2_Positions``
is used as it is).  Archives are recognised by what they contain, not by name.

Per video ``S<n>/Videos/<name>.mp4`` with poses ``S<n>/MyPoseFeatures/D2_Positions/<name>.cdf``:

* poses: the CDF variable ``Pose`` read with ``cdflib`` (the original converted it
  with MATLAB's ``cdfread``): ``[N, 64]`` = 32 joints x (x, y) in image pixels;
* the person tube: the box over all frames and joints, padded by 20, squared
  (:func:`padded_square_box`, float arithmetic as the original), truncated to int;
* frames 0..N-1 decoded by ffmpeg (the imageio-ffmpeg binary), cropped to the
  tube (``img[y1:y2, x1:x2]``) and resized to ``image_size`` (128; 64 optional)
  bilinearly without antialiasing (= the original's ``cv2.resize`` INTER_LINEAR);
  frames are JPEG (quality 95) or PNG (``image_format="png"``, lossless as the
  original's PNG files);
* the record (pose contract, :mod:`video_prediction.datasets.pose`): all 32 raw
  joints in stored-frame pixels (crop pixels x ``image_size / crop size``; the
  original keeps crop pixels truncated to int32: ``x_crop = poses * crop_w / S``),
  visibility all ones, ``crop_box``, ``label`` (the original's 15 classes),
  ``video_id`` ``S<n>/<name>``, and the original's (possibly unclipped) box as
  ``tube_box``;
* with the original's Hourglass test poses (``S9_Hourglass/<name>.npz``,
  ``S11_Hourglass/...``; keys ``all_posex``, ``all_posey`` crop pixels, ``box``)
  they are stored as ``estimated_poses`` in the same pixels.

Splits: train = S1, S5, S6, S7, S8, test = S9, S11 (the original has no val split).
One shard per video (``<split>/<S>_<name>_0_to_0.tfrecord``): a rerun skips
videos already written.  Videos are stored at 50 fps; ``fskip`` (the original's
4) is applied when reading.  The known damaged video ``S11/Directions.54138969``
is reported and skipped.

Differences from the original, all documented in the README: the original's
joints are shifted by the unpadded box corner (not the crop corner) when the
padded box crosses the top/left border (``original_offset`` of
:func:`padded_square_box`); we store joints relative to the real crop.  The
original's Human3.6M *training* loader draws maps on a (W, H) grid for
non-square boxes (transposed); we draw on (H, W) as its test script does.
"""

import glob
import os
import re
import shutil
import subprocess

import numpy as np
import tensorflow as tf

from video_prediction.datasets.base import varlen_example
from video_prediction.datasets.pose import (PoseVideoDataset, clipped_crop, encoder, padded_square_box,
                                            pose_record_features, resize_frames, to_stored_pixels)
from video_prediction.datasets.record_writing import (check_settings, ffmpeg_executable, video_shard_path,
                                                      write_dataset_info, write_video_record)
from video_prediction.download import extract_archive, verify_archive

SUBJECTS = {"train": ("S1", "S5", "S6", "S7", "S8"), "test": ("S9", "S11")}
ALL_SUBJECTS = SUBJECTS["train"] + SUBJECTS["test"]
CAMERAS = ("54138969", "55011271", "58860488", "60457274")
#: The original's class_dict (label ids).
CLASSES = {"walkdog": 0, "purchases": 1, "waiting": 2, "eating": 3, "sitting": 4, "photo": 5, "discussion": 6,
           "greeting": 7, "walking": 8, "phoning": 9, "posing": 10, "walktogether": 11, "directions": 12,
           "smoking": 13, "sittingdown": 14}
#: S1's spellings of two classes.
CLASS_ALIASES = {"walkingdog": "walkdog", "takingphoto": "photo"}
#: Missing from the original's test list (damaged video); reported, not fatal.
DAMAGED_VIDEOS = {("S11", "Directions.54138969")}
TUBE_PAD = 20
FRAME_RATE = 50
FSKIP = 4  # the original's frame skip at 50 fps (12.5 fps)
NUM_JOINTS = 32
#: 3d-pose-baseline's names where known; the rest are duplicate or end-site joints of the raw skeleton.
_KNOWN = {0: "hip", 1: "r_hip", 2: "r_knee", 3: "r_foot", 6: "l_hip", 7: "l_knee", 8: "l_foot", 12: "spine",
          13: "thorax", 14: "neck_nose", 15: "head", 17: "l_shoulder", 18: "l_elbow", 19: "l_wrist",
          25: "r_shoulder", 26: "r_elbow", 27: "r_wrist"}
JOINT_NAMES = tuple(_KNOWN.get(i, f"joint_{i}") for i in range(NUM_JOINTS))
_BONES = ((0, 1), (1, 2), (2, 3), (0, 6), (6, 7), (7, 8), (0, 12), (12, 13), (13, 14), (14, 15), (13, 17),
          (17, 18), (18, 19), (13, 25), (25, 26), (26, 27))
#: For drawing only: the original draws one heatmap per joint and uses no connectivity.
LIMBS = tuple((a, a, b, b) for a, b in _BONES)
HOURGLASS_URLS = {
    "S9": "https://umich.box.com/shared/static/3bloh41dlznc2i6f4tcwon1xq2x5vz77.gz",
    "S11": "https://umich.box.com/shared/static/huvuit4w0c9vz51uvw2wfqg10ngv3owv.gz",
}
ARCHIVE_SUFFIXES = (".tgz", ".tar.gz", ".tar", ".zip", ".gz")


class Human36MVideoDataset(PoseVideoDataset):
    """Human3.6M pose records of :func:`prepare_human36m`: 128x128 (or 64x64) crops at 50 fps, 32 joints.

    ``fskip`` (default 4, the original's) is the stride between the frames of a
    clip: it sets the base ``frame_skip`` to ``fskip - 1``.
    """

    joint_names = JOINT_NAMES
    limbs = LIMBS
    heatmap_scheme = "joints"
    heatmap_rounding = "truncate"  # the original's training joints are int32
    shuffle_buffer_size = 16  # whole videos of thousands of frames

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        # the LSTM's 10 observed + 32 future poses (spec §2.3)
        hparams.update(context_frames=10, sequence_length=42, fskip=FSKIP, frame_skip=FSKIP - 1,
                       clip_start="first")  # "middle": non-random clips start at frame N // 2 (the original's test)
        return hparams

    def _frame_indices(self, length, seed):
        if self.hparams.clip_start == "middle" and not self.random_offsets:
            # the original's test windows start at N // 2; moved back so that the clip fits
            start = tf.maximum(tf.minimum(length // 2, length - self.span), 0)
            step = self.hparams.frame_skip + 1
            return start + tf.range(self.sequence_length, dtype=tf.int64) * step
        return super()._frame_indices(length, seed)

    def _resolve_hparams(self, hparams_dict, hparams):
        resolved = super()._resolve_hparams(hparams_dict, hparams)
        values = resolved.values()
        if values["clip_start"] not in ("first", "middle"):
            raise ValueError(f"clip_start must be 'first' or 'middle', got {values['clip_start']!r}")
        if values["fskip"] < 1:
            raise ValueError(f"fskip must be >= 1, got {values['fskip']}")
        if values["frame_skip"] not in (FSKIP - 1, values["fskip"] - 1):
            raise ValueError(f"human36m takes its frame stride from fskip (frame_skip = fskip - 1); got "
                             f"fskip={values['fskip']} and frame_skip={values['frame_skip']}")
        values["frame_skip"] = values["fskip"] - 1
        from video_prediction.hparams import resolve_hparams

        return resolve_hparams(self.default_hparams(), values)


# -- names ------------------------------------------------------------------------------------------


def class_of(name):
    """Label id of a video name (``'Directions 1.54138969'`` -> 12), or None for other names (``_ALL``)."""
    base = re.split(r"[ .]", name)[0].lower()
    return CLASSES.get(CLASS_ALIASES.get(base, base))


def split_of(subject):
    for split, subjects in SUBJECTS.items():
        if subject in subjects:
            return split
    raise ValueError(f"unknown Human3.6M subject {subject!r}; subjects: {', '.join(ALL_SUBJECTS)}")


def required_archives(subjects=ALL_SUBJECTS):
    """What the user must download, per subject (README: the same list)."""
    return [f"{s}: Videos ({s}/Videos/*.mp4) and Poses D2_Positions ({s}/MyPoseFeatures/D2_Positions/*.cdf)"
            for s in subjects]


# -- finding the sources ----------------------------------------------------------------------------


def extract_archives(archive_dir, raw_dir, progress=True):
    """Extract every archive of ``archive_dir`` into ``raw_dir`` once (a marker per archive); returns their names."""
    names = sorted(n for n in os.listdir(archive_dir)
                   if n.endswith(ARCHIVE_SUFFIXES) and os.path.isfile(os.path.join(archive_dir, n)))
    os.makedirs(raw_dir, exist_ok=True)
    for name in names:
        marker = os.path.join(raw_dir, f".extracted_{name}")
        if os.path.exists(marker):
            continue
        path = os.path.join(archive_dir, name)
        if progress:
            print(f"extracting {path}")
        verify_archive(path)
        extract_archive(path, raw_dir, skip_existing=True)
        open(marker, "w").close()
    return names


def _find_subject_dirs(root, subject, kind):
    """``S<n>/Videos`` or ``S<n>/MyPoseFeatures/D2_Positions`` directories under ``root`` (any depth <= 3)."""
    tail = os.path.join(subject, "Videos") if kind == "videos" else os.path.join(subject, "MyPoseFeatures",
                                                                                   "D2_Positions")
    found = []
    for depth in range(4):
        pattern = os.path.join(root, *(["*"] * depth), tail)
        found += [d for d in glob.glob(pattern) if os.path.isdir(d)]
    return sorted(set(found))


def find_sources(roots, subjects=ALL_SUBJECTS):
    """``{subject: (videos dir, poses dir)}``; ValueError listing every missing archive."""
    sources, missing = {}, []
    for subject in subjects:
        dirs = {}
        for kind in ("videos", "poses"):
            for root in roots:
                found = _find_subject_dirs(root, subject, kind)
                if found:
                    dirs[kind] = found[0]
                    break
        for kind, label in (("videos", "Videos"), ("poses", "Poses D2_Positions")):
            if kind not in dirs:
                missing.append(f"{subject} {label}")
        if len(dirs) == 2:
            sources[subject] = (dirs["videos"], dirs["poses"])
    if missing:
        raise ValueError(f"Human3.6M archives missing (download them from http://vision.imar.ro/human3.6m/ into "
                         f"the archive directory): {', '.join(missing)}")
    return sources


def list_videos(sources):
    """``[(subject, name, video path, cdf path)]`` of the 15 classes x 4 cameras; plus the damaged ones skipped.

    A pose file without its video is an error, unless it is the known damaged video.
    """
    videos, skipped = [], []
    for subject, (video_dir, pose_dir) in sources.items():
        for cdf in sorted(glob.glob(os.path.join(pose_dir, "*.cdf"))):
            name = os.path.basename(cdf)[:-4]
            if class_of(name) is None or name.rsplit(".", 1)[-1] not in CAMERAS:
                continue  # e.g. "_ALL" sequences, which the original's lists do not hold
            video = os.path.join(video_dir, name + ".mp4")
            if (subject, name) in DAMAGED_VIDEOS:
                skipped.append(f"{subject}/{name}")
                continue
            if not os.path.exists(video):
                raise ValueError(f"pose file {cdf} has no video {video} (incomplete Videos archive of {subject}?)")
            videos.append((subject, name, video, cdf))
    return videos, skipped


# -- reading ------------------------------------------------------------------------------------------


def read_d2_poses(cdf_path):
    """float64 ``[N, 32, 2]`` (x, y) image pixels from a D2_Positions CDF file (variable ``Pose``)."""
    import cdflib

    try:
        data = np.asarray(cdflib.CDF(cdf_path).varget("Pose"), np.float64)
    except Exception as e:  # cdflib raises assorted errors on damaged files
        raise ValueError(f"corrupt pose file {cdf_path}: {type(e).__name__}: {e}") from None
    if data.ndim == 3 and data.shape[0] == 1:  # one record of [N, 64], as cdfread's data{1}
        data = data[0]
    if data.ndim != 2 or data.shape[1] != 2 * NUM_JOINTS or data.shape[0] == 0:
        raise ValueError(f"pose file {cdf_path} holds {data.shape}, expected [N, {2 * NUM_JOINTS}]")
    return data.reshape(-1, NUM_JOINTS, 2)


def video_size(path):
    """(width, height) of a video's frames, from ffmpeg."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(path)
    try:
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration) as e:
        raise ValueError(f"ffmpeg cannot read {path}: {str(e).strip().splitlines()[-1] if str(e).strip() else e}"
                         ) from None
    finally:
        reader.close()
    return tuple(int(v) for v in meta["size"])


def decode_cropped(path, crop, num_frames, size, chunk=64):
    """The first ``num_frames`` frames of a video (fewer if it is shorter), cropped to ``crop`` (x1, y1, x2, y2,
    inside the image) and resized: uint8 ``[n, S, S, 3]``.  ValueError (one line) if ffmpeg cannot decode it.
    """
    x1, y1, x2, y2 = crop
    w, h = x2 - x1, y2 - y1
    command = [ffmpeg_executable(), "-loglevel", "error", "-nostdin", "-i", path, "-frames:v", str(num_frames),
               "-vf", f"format=rgb24,crop={w}:{h}:{x1}:{y1}", "-fps_mode", "passthrough",  # every decoded frame once
               "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    frame_bytes = w * h * 3
    out, count = [], 0
    try:
        while True:
            data = process.stdout.read(frame_bytes * chunk)
            if not data:
                break
            n = len(data) // frame_bytes
            if n:
                out.append(resize_frames(np.frombuffer(data[: n * frame_bytes], np.uint8).reshape(n, h, w, 3), size))
                count += n
            if len(data) < frame_bytes * chunk:
                break
        process.stdout.close()
        error = process.stderr.read().decode(errors="replace").strip()
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0 or (count == 0 and error):
        raise ValueError(f"ffmpeg cannot decode {path}: {error.splitlines()[-1] if error else process.returncode}")
    return np.concatenate(out) if out else np.zeros((0, size, size, 3), np.uint8)


def read_hourglass(path, num_frames):
    """Estimated joints ``(x, y)`` in *image* pixels ``[N, 32]`` each from an original Hourglass ``.npz``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            x, y, box = (np.asarray(data[k], np.float64) for k in ("all_posex", "all_posey", "box"))
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"corrupt Hourglass pose file {path}: {e}") from None
    if x.shape != (num_frames, NUM_JOINTS) or y.shape != x.shape:
        raise ValueError(f"Hourglass pose file {path} holds {x.shape}, expected ({num_frames}, {NUM_JOINTS}) "
                         "like its video's ground truth")
    return x + box[0], y + box[1]


def hourglass_path(hourglass_dir, subject, name):
    return os.path.join(hourglass_dir, f"{subject}_Hourglass", f"{name}.npz") if hourglass_dir else None


# -- writing ------------------------------------------------------------------------------------------


def convert_video(subject, name, video, cdf, image_size, encode, hourglass_dir=None):
    """One video -> its ``tf.train.Example`` (pose contract) and its frame count."""
    poses = read_d2_poses(cdf)
    width, height = video_size(video)
    x, y = poses[..., 0], poses[..., 1]
    box = (x.min(), y.min(), x.max(), y.max())
    tube, _ = padded_square_box(box, TUBE_PAD, width, height, integer=False)
    tube = tuple(int(v) for v in tube)  # the original's astype('int32')
    crop = clipped_crop(tube, width, height)
    if crop[2] <= crop[0] or crop[3] <= crop[1]:
        raise ValueError(f"pose file {cdf}: the person box {crop} lies outside the {width}x{height} video")
    frames = decode_cropped(video, crop, len(poses), image_size)
    if len(frames) < len(poses):  # the original reads frame t for every pose frame t
        raise ValueError(f"pose file {cdf} has {len(poses)} frames but its video {video} has {len(frames)}")
    estimated = None
    path = hourglass_path(hourglass_dir, subject, name)
    if path and os.path.exists(path):
        hx, hy = read_hourglass(path, len(poses))
        estimated = (to_stored_pixels(hx, hy, crop, image_size), np.ones(poses.shape[:2]))
    extra = pose_record_features(to_stored_pixels(x, y, crop, image_size), np.ones(poses.shape[:2]), crop,
                                 class_of(name), f"{subject}/{name}", estimated)
    extra["tube_box"] = np.asarray(tube, np.int64)
    return varlen_example(frames, [encode(f) for f in frames], extra=extra), len(frames)


def prepare_human36m(archive_dir, output_dir, image_size=128, subjects=ALL_SUBJECTS, hourglass_dir=None,
                     image_format="jpeg", keep_raw=True, progress=True):
    """Archives in ``archive_dir`` -> pose records in ``output_dir/{train,test}``; returns the dataset info."""
    import time

    from tqdm import tqdm

    if not archive_dir or not os.path.isdir(archive_dir):
        raise ValueError(f"archive directory {archive_dir!r} does not exist; it must hold the Human3.6M archives: "
                         + "; ".join(required_archives(subjects)))
    for subject in subjects:
        split_of(subject)
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}")
    encode = encoder(image_format)
    settings = dict(dataset="human36m", image_size=image_size, image_format=image_format, tube_pad=TUBE_PAD)
    raw_dir = os.path.join(output_dir, "raw")
    extract_archives(archive_dir, raw_dir, progress)
    sources = find_sources([archive_dir, raw_dir], subjects)
    videos, skipped = list_videos(sources)
    for video in skipped:
        print(f"skipping the known damaged video {video} (not in the original's test list)")
    if hourglass_dir:
        extract_archives(hourglass_dir, hourglass_dir, progress)
    check_settings(output_dir, settings)  # the input is complete: records may be written
    counts = {split: 0 for split in ("train", "test") if any(split_of(s) == split for s in subjects)}
    frames_written, seconds = 0, 0.0
    for subject, name, video, cdf in tqdm(videos, desc="human36m", disable=not progress):
        split = split_of(subject)
        split_dir = os.path.join(output_dir, split)
        counts[split] += 1
        if os.path.exists(video_shard_path(split_dir, f"{subject}/{name}")):
            continue  # written by an earlier run
        start = time.time()
        example, num_frames = convert_video(subject, name, video, cdf, image_size, encode, hourglass_dir)
        write_video_record(split_dir, f"{subject}/{name}", example)
        frames_written += num_frames
        seconds += time.time() - start
    info = dict(settings, num_examples=counts, subjects=list(subjects), skipped_videos=skipped,
                frame_rate=FRAME_RATE, fskip=FSKIP, joint_names=list(JOINT_NAMES),
                hourglass=bool(hourglass_dir),
                poses="32 raw D2_Positions joints, (x, y) in stored-frame pixels, [T, 32, 2]")
    write_dataset_info(output_dir, info)
    if not keep_raw:
        shutil.rmtree(raw_dir, ignore_errors=True)
    info["frames_per_second"] = frames_written / seconds if seconds else None
    return info
