"""KTH human actions as the original SAVP prepares and reads it (specs/savp.md §2.3).

Download (:func:`download_kth`): ``<dir>/raw/<action>.zip`` from
``http://www.nada.kth.se/cvap/actions/`` unzipped into ``raw/<action>/``, and
the subsequence metadata ``kth_meta.tar.gz`` extracted with one path
component stripped into ``processed/`` (``processed/<action>/{train,test}_meta<S>x<S>.pkl``).

Frames (:func:`extract_frames`): every ``raw/<action>/<vid>_uncomp.avi`` is
decoded by ffmpeg (the binary of the ``imageio-ffmpeg`` wheel, driven by
``ffmpeg-python``) at ``-r 25``, scaled to ``S x S`` (aspect not kept) into
``processed/<action>/<vid>/image-%03d_<S>x<S>.png``.

Records (:func:`write_kth_records`): persons 1-16 form the train pool, 17-25
the test split; the train pool is shuffled with a fixed seed (the original's
shuffle was unseeded) and split 95 % train / 5 % val.  Each meta pickle is a
list of ``{'vid': <video id>, 'files': [[frame file names], ...]}`` (train
meta for train and val, test meta for test); every frame list becomes one
record of grey frames (channel 0 of the PNGs) in the VarLen layout:
``<dir>/<split>/sequence_<first>_to_<last>.tfrecords`` with 128 sequences per
file, ``<dir>/<split>/sequence_lengths.txt`` (frames per sequence, in record
order) and ``<dir>/dataset_info.json`` (seed, videos per split, counts).
"""

import glob
import json
import os
import pickle
import re
import shutil

import numpy as np
from PIL import Image

from video_prediction.datasets.base import VarLenFeatureVideoDataset
from video_prediction.datasets.grey_channels import GreyChannelsMixin
from video_prediction.datasets.record_writing import ffmpeg_executable, write_splits
from video_prediction.download import download_file, extract_archive, verify_archive
from video_prediction.conversion.formats.safe_unpickle import restricted_load

KTH_ACTIONS = ("walking", "jogging", "running", "boxing", "handwaving", "handclapping")
KTH_VIDEO_BASE_URL = "http://www.nada.kth.se/cvap/actions"
KTH_META_BASE_URL = "http://rail.eecs.berkeley.edu/models/savp/data"
KTH_META_ARCHIVE = "kth_meta.tar.gz"
#: Seed of the train/val shuffle (the original's was unseeded); recorded in dataset_info.json.
KTH_SPLIT_SEED = 0
#: Persons 1-16 are the train pool, 17-25 the test split.
KTH_LAST_TRAIN_PERSON = 16
KTH_TRAIN_FRACTION = 0.95
KTH_FRAME_RATE = 25
SEQUENCES_PER_FILE = 128
_PERSON = re.compile(r"person(\d+)_\w+_\w+")


class KTHVideoDataset(GreyChannelsMixin, VarLenFeatureVideoDataset):
    """KTH records of :func:`write_kth_records` (or of the original's converter); grey frames of any size.

    ``num_channels=3`` repeats the grey channel, as the original's pretrained KTH models expect.
    """

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(context_frames=10, sequence_length=20, long_sequence_length=40, force_time_shift=True,
                       shuffle_on_val=True, use_state=False)
        return hparams

    def _resolve_hparams(self, hparams_dict, hparams):
        resolved = super()._resolve_hparams(hparams_dict, hparams)
        if resolved.use_state:
            raise ValueError("kth has no states or actions; use_state must be False")
        return resolved

    def num_examples_per_epoch(self):
        """Sequences of ``sequence_lengths.txt`` long enough for a subclip (else counted from the records)."""
        path = os.path.join(os.path.dirname(self.filenames[0]), "sequence_lengths.txt")
        if not os.path.exists(path):
            return super().num_examples_per_epoch()
        with open(path) as f:
            try:
                lengths = [int(line) for line in f if line.strip()]
            except ValueError:
                raise ValueError(f"{path} must hold one integer per line") from None
        return int(sum(length >= self.span for length in lengths))


# -- download --------------------------------------------------------------------------------------


def download_kth(output_dir, base_url=None, progress=True):
    """Fetch the six action zips into ``raw/`` and the metadata into ``processed/``; skips what is done.

    ``base_url`` serves both the zips and ``kth_meta.tar.gz`` (a mirror or a
    test server) instead of the original hosts.
    """
    raw, processed = os.path.join(output_dir, "raw"), os.path.join(output_dir, "processed")
    for action in KTH_ACTIONS:
        done = os.path.join(raw, action, ".extracted")
        if os.path.exists(done):
            continue
        archive = os.path.join(raw, f"{action}.zip")
        download_file(f"{(base_url or KTH_VIDEO_BASE_URL).rstrip('/')}/{action}.zip", archive, progress=progress)
        verify_archive(archive)
        extract_archive(archive, os.path.join(raw, action))
        open(done, "w").close()
        os.remove(archive)
    done = os.path.join(processed, ".meta_extracted")
    if not os.path.exists(done):
        archive = os.path.join(processed, KTH_META_ARCHIVE)
        download_file(f"{(base_url or KTH_META_BASE_URL).rstrip('/')}/{KTH_META_ARCHIVE}", archive, progress=progress)
        verify_archive(archive)
        extract_archive(archive, processed, strip_components=1)
        open(done, "w").close()
        os.remove(archive)


# -- frames ------------------------------------------------------------------------------------------


def video_id(avi_path):
    """``person01_walking_d1_uncomp.avi`` -> ``person01_walking_d1``."""
    name = os.path.basename(avi_path)
    for suffix in ("_uncomp.avi", ".avi"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return os.path.splitext(name)[0]


def extract_video_frames(avi_path, frame_dir, image_size):
    """Decode one video to ``frame_dir/image-%03d_<S>x<S>.png`` (25 fps, S x S); returns the frame count.

    Frames go to ``<frame_dir>.tmp`` first and are moved into place when
    ffmpeg succeeds; frames of this size already in ``frame_dir`` (an earlier
    run) are kept.  Frames of other sizes may share the directory, as in the
    original.
    """
    import ffmpeg

    suffix = f"_{image_size}x{image_size}.png"
    done = glob.glob(os.path.join(frame_dir, f"image-*{suffix}"))
    if done:
        return len(done)
    tmp = frame_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    stream = ffmpeg.input(avi_path).output(os.path.join(tmp, f"image-%03d{suffix}"), r=KTH_FRAME_RATE, f="image2",
                                           s=f"{image_size}x{image_size}")
    try:
        stream.run(cmd=ffmpeg_executable(), quiet=True, overwrite_output=True)
    except ffmpeg.Error as e:
        shutil.rmtree(tmp, ignore_errors=True)
        message = (e.stderr or b"").decode(errors="replace").strip().splitlines()
        raise ValueError(f"ffmpeg cannot decode {avi_path}: {message[-1] if message else e}") from None
    count = len(os.listdir(tmp))
    if count == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"ffmpeg decoded no frames from {avi_path}")
    if not os.path.exists(frame_dir):
        os.replace(tmp, frame_dir)
    else:  # frames of another size live there
        for name in sorted(os.listdir(tmp)):
            os.replace(os.path.join(tmp, name), os.path.join(frame_dir, name))
        os.rmdir(tmp)
    return count


def extract_frames(output_dir, image_size=64, progress=True):
    """``raw/<action>/*.avi`` -> ``processed/<action>/<vid>/`` PNG frames; returns the number of videos."""
    from tqdm import tqdm

    videos = [(action, path) for action in KTH_ACTIONS
              for path in sorted(glob.glob(os.path.join(output_dir, "raw", action, "*.avi")))]
    if not videos:
        raise FileNotFoundError(f"no KTH videos in {os.path.join(output_dir, 'raw', '<action>')}/*.avi")
    for action, path in tqdm(videos, desc="kth frames", disable=not progress):
        extract_video_frames(path, os.path.join(output_dir, "processed", action, video_id(path)), image_size)
    return len(videos)


# -- records -------------------------------------------------------------------------------------


def person_of(video_dir):
    match = _PERSON.match(os.path.basename(video_dir))
    if not match:
        raise ValueError(f"{video_dir}: KTH video directories are named person<NN>_<action>_<scenario>")
    return int(match.group(1))


def partition_videos(processed_dir, seed=KTH_SPLIT_SEED):
    """``{'train', 'val', 'test'}`` -> video directories: persons <= 16 shuffled 95/5 into train/val, the rest test."""
    video_dirs = sorted(path for path in glob.glob(os.path.join(processed_dir, "*", "*"))
                        if os.path.isdir(path) and not path.endswith(".tmp"))
    if not video_dirs:
        raise FileNotFoundError(f"no video frame directories in {processed_dir}/<action>/")
    pool = [d for d in video_dirs if person_of(d) <= KTH_LAST_TRAIN_PERSON]
    test = [d for d in video_dirs if person_of(d) > KTH_LAST_TRAIN_PERSON]
    pool = [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]
    pivot = int(KTH_TRAIN_FRACTION * len(pool))
    return {"train": pool[:pivot], "val": pool[pivot:], "test": test}


def load_meta(path):
    """A KTH meta pickle (list of ``{'vid', 'files'}`` dicts) read with the restricted unpickler."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"KTH metadata {path} does not exist (it comes from {KTH_META_ARCHIVE})")
    with open(path, "rb") as f:
        try:
            meta = restricted_load(f, encoding="latin1")  # latin1: pickles written by Python 2 load too
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from None
    if not isinstance(meta, list) or not all(isinstance(d, dict) and {"vid", "files"} <= set(d) for d in meta):
        raise ValueError(f"{path} is not a KTH meta pickle (a list of dicts with 'vid' and 'files')")
    return meta


def read_grey_frame(path, image_size):
    """Channel 0 of a frame image as uint8 ``[S, S, 1]``; ValueError naming the file if its size differs."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"KTH frame {path} does not exist")
    frame = np.asarray(Image.open(path))
    frame = frame[..., None] if frame.ndim == 2 else frame[..., :1]
    if frame.shape[:2] != (image_size, image_size):
        raise ValueError(f"{path} is {frame.shape[1]}x{frame.shape[0]}, expected {image_size}x{image_size}")
    return frame.astype(np.uint8)


def _text(value):
    """A name from a meta pickle as ``str`` (pickles written by Python 2 may hold bytes)."""
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def video_sequences(video_dirs, image_size, meta_name):
    """Yield the uint8 ``[T, S, S, 1]`` frames of every subsequence the metadata lists, video by video."""
    metas = {}
    for video_dir in video_dirs:
        meta_path = os.path.join(os.path.dirname(video_dir), f"{meta_name}_meta{image_size}x{image_size}.pkl")
        if meta_path not in metas:
            metas[meta_path] = {}
            for entry in load_meta(meta_path):
                metas[meta_path].setdefault(_text(entry["vid"]), []).append(entry)
        vid = os.path.basename(video_dir)
        entries = metas[meta_path].get(vid, [])
        if len(entries) != 1:
            raise ValueError(f"{meta_path} has {len(entries)} entries for video {vid!r}, expected one")
        for names in entries[0]["files"]:
            yield np.stack([read_grey_frame(os.path.join(video_dir, _text(name)), image_size) for name in names])


def write_kth_records(processed_dir, output_dir, image_size=64, seed=KTH_SPLIT_SEED,
                      sequences_per_file=SEQUENCES_PER_FILE, progress=True):
    """Split the videos of ``processed_dir`` and write the train/val/test records; returns the dataset info.

    A finished output (``dataset_info.json`` with the same settings) is left
    alone; a finished split is not written again.
    """
    from tqdm import tqdm

    partition = partition_videos(processed_dir, seed)
    settings = dict(dataset="kth", image_size=image_size, split_seed=seed, train_fraction=KTH_TRAIN_FRACTION,
                    last_train_person=KTH_LAST_TRAIN_PERSON, sequences_per_file=sequences_per_file,
                    videos={split: [os.path.basename(d) for d in dirs] for split, dirs in partition.items()})

    def sequences_of(split):
        meta_name = "test" if split == "test" else "train"  # val videos are listed in the train meta
        return lambda: video_sequences(tqdm(partition[split], desc=f"kth {split}", disable=not progress),
                                       image_size, meta_name)

    return write_splits(output_dir, {split: sequences_of(split) for split in partition}, settings, sequences_per_file)


def download_and_preprocess_kth(image_size=64, output_dir=None, base_url=None, keep_raw=False, seed=KTH_SPLIT_SEED,
                                progress=True):
    """The original's ``download_and_preprocess_dataset.sh kth [IMAGE_SIZE]``; returns the dataset info.

    ``output_dir`` defaults to ``data/kth`` (64) or ``data/kth_<S>``.  ``raw/`` and
    ``processed/`` are deleted at the end unless ``keep_raw``.
    """
    if output_dir is None:
        output_dir = "data/kth" if image_size == 64 else f"data/kth_{image_size}"
    info_path = os.path.join(output_dir, "dataset_info.json")
    if os.path.exists(info_path):
        with open(info_path) as f:
            info = json.load(f)
        if info.get("image_size") == image_size and info.get("split_seed") == seed:
            print(f"{output_dir} already holds the KTH records; nothing to do")
            return info
    download_kth(output_dir, base_url, progress)
    extract_frames(output_dir, image_size, progress)
    info = write_kth_records(os.path.join(output_dir, "processed"), output_dir, image_size, seed, progress=progress)
    if not keep_raw:
        shutil.rmtree(os.path.join(output_dir, "raw"), ignore_errors=True)
        shutil.rmtree(os.path.join(output_dir, "processed"), ignore_errors=True)
    return info
