"""RoboNet camera views as the VQ-VAE two-stage original prepares them (specs/vqvae.md §2): converter and reader.

Input: RoboNet's HDF5 trajectories (one ``*.hdf5`` per trajectory) with
``env/state`` ``[T, sdim]``, ``policy/actions`` ``[T-1, adim]``, ``env``
attributes ``n_cams`` and ``cam_encoding`` (``mp4`` or ``jpg``), and per
camera ``env/cam{i}_video``: for mp4 a ``frames`` dataset holding the encoded
stream (attributes ``shape``, ``T``, ``image_format``), for jpg one
``frame{t}`` dataset of JPEG bytes per frame (``frame0``'s attributes give
``shape`` and ``image_format``).

:func:`write_robonet_records`, as the original's ``preprocess_robonet.py``:

* every camera view of every trajectory is one video; mp4 streams are decoded
  with imageio's ffmpeg reader (RGB), JPEG frames with OpenCV followed by a
  BGR -> RGB flip; afterwards frames whose ``image_format`` is ``BGR`` are
  flipped once more;
* every frame is resized to ``dim`` x ``dim`` with OpenCV, area interpolation
  when the target has fewer pixels, cubic otherwise; no crop (4:3 is squashed);
* ``num_trajectories`` takes a random subset: Python ``random`` seeded 23
  shuffles the (sorted) file list and keeps the first N;
* split: the names ``<trajectory>_<camera>.npy`` of all views, sorted (the
  original shuffled the unsorted ``os.listdir`` order, so its exact split
  cannot be reproduced), are shuffled by the same generator and cut into
  train (the rest), val (``n_val`` = 256) and test (``n_test`` = 256).  The unit
  is the camera view, so views of one trajectory can land in different
  splits (leakage, kept as the original); ``split_by='trajectory'`` keeps
  each trajectory's views together (test and val are filled with whole
  trajectories from the end of the shuffled list until they hold at least
  ``n_test`` / ``n_val`` views);
* the per-channel mean and std over every frame of the train split (values
  in [0, 1], population std; the original's ``calc_robonet_stats.py``) are
  stored in ``dataset_info.json`` next to the original's constants.

Records: the VarLen layout (:class:`VarLenFeatureVideoDataset`) in
``<output_dir>/{train,val,test}/sequence_<first>_to_<last>.tfrecords`` with raw
uint8 ``dim x dim x 3`` frames (the original's ``.npy`` content) plus
``states`` ``[state_T, sdim]`` and ``actions`` ``[action_T, adim]`` (floats,
flattened) and ``state_dim`` / ``action_dim``; ``metadata.csv`` lists the
trajectories used, ``splits.json`` the views of each split.  A rerun skips
every finished shard (each has a hidden ``.summary.json`` sidecar with its
lengths and pixel sums, so the statistics need no second pass).  An mp4 stream that decodes to fewer frames than its ``T``
attribute leaves zero frames at the end, as the original (each one is listed
in ``dataset_info.json``).

Reader (``--dataset robonet``): ``images`` in [0, 1] (the model applies the
normalisation, :meth:`RoboNetVideoDataset.normalization`); defaults
``sequence_length=12`` from frame 0 (the original uses only the first 12
frames of every view: one clip per view), ``use_state=True`` adds ``states``
``[T, sdim]`` and ``actions`` ``[T-1, adim * (frame_skip + 1)]`` when every
record has the same dimensions.
"""

import csv
import hashlib
import io
import json
import os
import random

import numpy as np
import tensorflow as tf

from video_prediction.datasets.base import VarLenFeatureVideoDataset, varlen_example
from video_prediction.datasets.record_writing import write_json_atomically

#: The original's statistics (calc_robonet_stats.py over its train split; RGB order).
ORIGINAL_MEAN = (0.4947905177456989, 0.4394289448514622, 0.3734249455050442)
ORIGINAL_STD = (0.2248808632122409, 0.2230480187693433, 0.2166628109431439)
ROBONET_SPLIT_SEED = 23  # preprocess_robonet.py --random_seed
NUM_VAL = NUM_TEST = 256  # --n_val / --n_test
USE_ONLY_FRAMES = 12  # dataset.py use_only_frames
#: Where RoboNet's authors document the download (RoboNet wiki, "Getting Started").
ROBONET_DOWNLOAD_PAGE = "https://github.com/SudeepDasari/RoboNet/wiki/Getting-Started"
#: The Google Drive files that page links (it uses gdown): the full dataset (robonet_v3.tar.gz, ~36 GB, about
#: 162k trajectories) and the authors' sample (robonet_sampler.tar.gz, ~100 MB).
ROBONET_ARCHIVES = {
    "full": ("1BkqHzfRkfzgzCfc73NbNnPMK_rg3i1n9", "robonet_v3.tar.gz"),
    "sample": ("1YX2TgT8IKSn9V4wGCwdzbRnS53yicV2P", "robonet_sampler.tar.gz"),
}
#: Google Drive's direct endpoint; ``confirm=t`` skips the "cannot scan this large file" page.
DRIVE_URL = "https://drive.usercontent.google.com/download?id={id}&export=download&confirm=t"
CONVERTER_VERSION = 1


class RoboNetVideoDataset(VarLenFeatureVideoDataset):
    """RoboNet camera views written by :func:`write_robonet_records` (module docstring)."""

    @classmethod
    def default_hparams(cls):
        hparams = super().default_hparams()
        hparams.update(
            context_frames=2,
            sequence_length=USE_ONLY_FRAMES,  # RobonetVideoDataset total_frames = use_only_frames = 12
            time_shift=0,  # frames 0..11 of every view (one clip per view), as the original
            use_state=False,
        )
        return hparams


    def _dims(self):
        """(state_dim, action_dim) shared by every record; ValueError if the records disagree."""
        dims = self._info().get("state_action_dims")
        if not dims:
            raise ValueError(f"{self.input_dir}/dataset_info.json does not list the state/action dimensions "
                             "(use_state needs records written by write_robonet_records)")
        if len(dims) != 1:
            raise ValueError(f"use_state needs one state/action size, but the RoboNet records in {self.input_dir} "
                             f"mix (state_dim, action_dim) = {sorted(tuple(d) for d in dims)}; preprocess one robot")
        return tuple(dims[0])

    def _check_lengths(self):
        if self.hparams.use_state:
            self._dims()  # fail at construction, naming the mixed sizes

    def extra_frame_features(self):
        if not self.hparams.use_state:
            return {}
        state_dim, action_dim = self._dims()
        if getattr(self, "_skip_actions", False):  # decode() gathers the per-transition actions itself
            return {"states": (state_dim,)}
        return {"states": (state_dim,), "actions": (action_dim,)}

    def decode(self, example, frame_indices):
        if not self.hparams.use_state:
            return super().decode(example, frame_indices)
        without_actions = {key: value for key, value in example.items() if key != "actions"}
        actions = example["actions"]
        self._skip_actions = True
        try:
            output = super().decode(without_actions, frame_indices)
        finally:
            self._skip_actions = False
        step = self.hparams.frame_skip + 1
        indices = frame_indices[0] + tf.range((self.sequence_length - 1) * step, dtype=tf.int64)
        output["actions"] = tf.reshape(tf.gather(actions, indices), [self.sequence_length - 1, -1])
        return output

    def normalization(self, source="recomputed"):
        """``(mean, std)`` per RGB channel for the model's ``(x - mean) / std``: ``'recomputed'`` (this data's
        train split, from ``dataset_info.json``) or ``'original'`` (the original's constants)."""
        if source == "original":
            return ORIGINAL_MEAN, ORIGINAL_STD
        stats = self._info().get("normalization")
        if not stats:
            raise ValueError(f"{self.input_dir}/dataset_info.json holds no recomputed statistics; "
                             "use normalization('original')")
        return tuple(stats["mean"]), tuple(stats["std"])

    def num_examples_per_epoch(self):
        counts = self._info().get("num_examples", {})
        if self.mode in counts:
            return int(counts[self.mode])
        return super().num_examples_per_epoch()


# -- reading RoboNet's HDF5 ----------------------------------------------------------------------


def _text(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    return value if isinstance(value, str) else str(value)


def _open_hdf5(path):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"corrupt or unreadable RoboNet HDF5 file {path} ({str(e).splitlines()[0]})") from None


def read_metadata(path, with_sha256=True):
    """The original's metadata row of one trajectory file (specs/vqvae.md §2.1) as a dict."""
    try:
        with _open_hdf5(path) as hf:
            meta = {"file_version": _text(hf["file_version"][()]) if "file_version" in hf else None}
            meta["sdim"], meta["state_T"] = int(hf["env/state"].shape[1]), int(hf["env/state"].shape[0])
            meta["adim"], meta["action_T"] = int(hf["policy/actions"].shape[1]), int(hf["policy/actions"].shape[0])
            env = hf["env"]
            meta["ncam"] = int(env.attrs.get("n_cams", 0))
            if not meta["ncam"]:
                raise ValueError(f"RoboNet file {path} has no cameras (env attribute n_cams is 0 or missing)")
            if "cam0_video" not in env:
                raise ValueError(f"RoboNet file {path}: camera 0 of {meta['ncam']} (env/cam0_video) is missing")
            encoding = _text(env.attrs["cam_encoding"])
            cam0 = env["cam0_video"]
            if encoding == "mp4":
                attrs = cam0["frames"].attrs
                meta["img_T"] = int(attrs["T"])
            else:
                if "frame0" not in cam0:
                    raise ValueError(f"RoboNet file {path}: env/cam0_video has no frame0")
                attrs = cam0["frame0"].attrs
                meta["img_T"] = sum(1 for key in cam0 if key.startswith("frame"))
                encoding = "jpg"
            meta["img_encoding"] = encoding
            meta["frame_dim"] = [int(d) for d in attrs["shape"][:2]]
            meta["image_format"] = _text(attrs["image_format"])
            for key in hf["misc"].keys() if "misc" in hf else ():
                meta[key] = hf["misc"][key][()]
            for key in hf["metadata"].attrs.keys() if "metadata" in hf else ():
                meta[key] = hf["metadata"].attrs[key]
            for bound in ("low_bound", "high_bound"):
                if bound not in meta and bound in env:
                    meta[bound] = env[bound][0]
    except KeyError as e:
        raise ValueError(f"RoboNet file {path} lacks {e.args[0] if e.args else 'a required entry'} "
                         "(needs env/state, policy/actions, env attrs n_cams and cam_encoding)") from None
    if with_sha256:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        meta["sha256"] = digest.hexdigest()
    return meta


def _decode_mp4(data, path, camera):
    import imageio.v2 as imageio

    try:
        reader = imageio.get_reader(io.BytesIO(data), format="mp4")  # as the original: its ffmpeg reader, RGB
        frames = [frame for frame in reader]
        reader.close()
    except Exception as e:  # imageio/ffmpeg raise several types for a broken stream
        raise ValueError(f"RoboNet file {path}: camera {camera}'s mp4 stream cannot be decoded ({e})") from None
    return frames


def resize_method(old_dims, target_dims):
    """OpenCV interpolation of the original: area when the target has fewer pixels, else cubic."""
    import cv2

    if target_dims[0] * target_dims[1] < old_dims[0] * old_dims[1]:
        return cv2.INTER_AREA
    return cv2.INTER_CUBIC


def load_camera_frames(path, camera, meta, dim):
    """uint8 ``[img_T, dim, dim, 3]`` RGB frames of one camera view, as the original's ``load_camera_imgs``.

    Returns ``(frames, decoded)``: ``decoded`` < ``img_T`` means the mp4 stream
    was short and the last frames are zeros (as the original).
    """
    import cv2

    length, (old_height, old_width) = meta["img_T"], meta["frame_dim"]
    method = resize_method((old_height, old_width), (dim, dim))
    with _open_hdf5(path) as hf:
        group_name = f"env/cam{camera}_video"
        if group_name not in hf:
            raise ValueError(f"RoboNet file {path}: camera {camera} of {meta['ncam']} ({group_name}) is missing")
        group = hf[group_name]
        if meta["img_encoding"] == "mp4":
            if "frames" not in group:
                raise ValueError(f"RoboNet file {path}: {group_name} has no 'frames' (mp4 stream)")
            buffers = _decode_mp4(group["frames"][:].tobytes(), path, camera)[:length]
        else:
            buffers = []
            for t in range(length):
                key = f"frame{t}"
                if key not in group:
                    raise ValueError(f"RoboNet file {path}: {group_name} has no {key} (img_T = {length})")
                image = cv2.imdecode(np.asarray(group[key][:], np.uint8), cv2.IMREAD_COLOR)
                if image is None:
                    raise ValueError(f"RoboNet file {path}: {group_name}/{key} is not a decodable JPEG")
                buffers.append(image[:, :, ::-1])
    frames = np.zeros((length, dim, dim, 3), np.uint8)
    for t, image in enumerate(buffers):
        if image.shape[:2] == (dim, dim):
            frames[t] = image
        else:
            frames[t] = cv2.resize(np.ascontiguousarray(image), (dim, dim), interpolation=method)
    if meta["image_format"] == "BGR":
        frames = frames[..., ::-1]
    elif meta["image_format"] != "RGB":
        raise ValueError(f"RoboNet file {path}: unknown image_format {meta['image_format']!r} (RGB or BGR)")
    return np.ascontiguousarray(frames), len(buffers)


def read_states_actions(path):
    with _open_hdf5(path) as hf:
        return np.asarray(hf["env/state"][:], np.float32), np.asarray(hf["policy/actions"][:], np.float32)


# -- the conversion ------------------------------------------------------------------------------


def select_trajectories(files, num_trajectories, rng):
    """The original's subset: shuffle the sorted file list with ``rng`` and keep the first N (None: all, no shuffle)."""
    files = sorted(files)
    if num_trajectories is not None and num_trajectories < len(files):
        rng.shuffle(files)
        files = files[:num_trajectories]
    return files


def split_views(views, n_val, n_test, rng, split_by="camera"):
    """``{'train', 'val', 'test'}`` -> lists of ``(trajectory, camera)``.

    ``views`` are ``(trajectory name, camera)`` pairs.  ``camera``: the names
    ``<trajectory>_<camera>.npy``, sorted, shuffled with ``rng`` and cut as the
    original (train first, then val, then test).  ``trajectory``: trajectories
    shuffled and whole ones assigned from the end to test, then val.
    """
    total = len(views)
    if n_val + n_test >= total:
        raise ValueError(f"only {total} camera views: cannot hold out n_val={n_val} and n_test={n_test} and keep "
                         "a train split (lower --n_val / --n_test)")
    if split_by == "camera":
        names = sorted(f"{name}_{camera}.npy" for name, camera in views)
        rng.shuffle(names)
        by_name = {f"{name}_{camera}.npy": (name, camera) for name, camera in views}
        n_train = total - n_val - n_test
        ordered = [by_name[n] for n in names]
        return {"train": ordered[:n_train], "val": ordered[n_train:n_train + n_val],
                "test": ordered[n_train + n_val:]}
    if split_by != "trajectory":
        raise ValueError(f"split_by must be 'camera' (the original) or 'trajectory', got {split_by!r}")
    cameras = {}
    for name, camera in views:
        cameras.setdefault(name, []).append(camera)
    trajectories = sorted(cameras)
    rng.shuffle(trajectories)
    splits = {"train": [], "val": [], "test": []}
    remaining = list(trajectories)
    for split, wanted in (("test", n_test), ("val", n_val)):
        while remaining and len(splits[split]) < wanted:
            name = remaining.pop()
            splits[split].extend((name, c) for c in sorted(cameras[name]))
    splits["train"] = [(name, c) for name in remaining for c in sorted(cameras[name])]
    if not splits["train"]:
        raise ValueError(f"split_by='trajectory' left no train trajectories ({len(trajectories)} trajectories)")
    for split in ("train", "val", "test"):
        splits[split].sort(key=lambda view: (trajectories.index(view[0]), view[1]))
    return splits


def _process_view(args):
    path, camera, meta, dim, with_state = args
    frames, decoded = load_camera_frames(path, camera, meta, dim)
    states, actions = read_states_actions(path) if with_state else (None, None)
    return frames, decoded, states, actions


def _csv_value(value):
    if isinstance(value, np.ndarray):
        return json.dumps(value.tolist())
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode(errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else value


def write_metadata_csv(path, rows):
    keys = sorted({key for row in rows.values() for key in row})
    with open(path + ".tmp", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", *keys])
        for name, row in rows.items():
            writer.writerow([name, *(_csv_value(row.get(key, "")) for key in keys)])
    os.replace(path + ".tmp", path)


def _digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _view_example(frames, states, actions):
    """The VarLen record of one camera view, with its states / actions and their sizes."""
    example = varlen_example(frames, extra={"states": states, "actions": actions})
    feature = example.features.feature
    feature["state_dim"].int64_list.value.append(states.shape[1])
    feature["action_dim"].int64_list.value.append(actions.shape[1])
    return example


def _write_shard(path, views, results):
    """Write one shard from ``results`` (one per view); returns its sidecar summary (lengths, pixel sums, short)."""
    import tensorflow as tf

    lengths, short = [], []
    sums, squares, pixels = np.zeros(3), np.zeros(3), 0
    with tf.io.TFRecordWriter(path + ".tmp") as writer:
        for (name, camera), (frames, decoded, states, actions) in zip(views, results):
            if decoded < len(frames):
                short.append(f"{name}_{camera}: {decoded} of {len(frames)} frames decoded")
            values = frames.reshape(-1, 3).astype(np.float64) / 255.0
            sums += values.sum(0)
            squares += (values ** 2).sum(0)
            pixels += len(values)
            lengths.append(len(frames))
            writer.write(_view_example(frames, states, actions).SerializeToString())
    summary = dict(lengths=lengths, sums=sums.tolist(), squares=squares.tolist(), pixels=pixels, short=short)
    write_json_atomically(_summary_path(path), summary)  # the sidecar first: a shard under its final name is complete
    os.replace(path + ".tmp", path)
    return summary


def _summary_path(shard):
    """The hidden sidecar of a shard (hidden, so the ``*.tfrecord*`` glob of the reader skips it)."""
    return os.path.join(os.path.dirname(shard), f".{os.path.basename(shard)}.summary.json")


def write_robonet_records(hdf5_dir, output_dir, dim=64, num_trajectories=None, n_val=NUM_VAL, n_test=NUM_TEST,
                          seed=ROBONET_SPLIT_SEED, split_by="camera", num_workers=1, sequences_per_file=128,
                          progress=True):
    """Convert RoboNet's HDF5 trajectories into train/val/test records (module docstring); returns the info.

    Resumable shard by shard: ``<split>/sequence_<first>_to_<last>.tfrecords``
    files are written under a temporary name with a ``.json`` sidecar (lengths,
    pixel sums for the statistics), so a rerun after an interruption skips every
    finished shard; ``dataset_info.json`` (written last) marks the whole output
    finished and a rerun with the same settings does nothing.  Other settings
    in the same ``output_dir`` start over.  ``num_workers`` > 1 reads metadata
    and decodes views in that many processes (the original used ``cpu_count - 1``).
    """
    import shutil

    from tqdm import tqdm

    if not os.path.isdir(hdf5_dir):
        raise ValueError(f"RoboNet HDF5 directory {hdf5_dir!r} does not exist")
    files = [f for f in os.listdir(hdf5_dir) if f.endswith(".hdf5")]
    if not files:
        raise ValueError(f"no RoboNet .hdf5 files in {hdf5_dir!r} (download: {ROBONET_DOWNLOAD_PAGE})")
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    rng = random.Random(seed)  # the original: random.seed(23), then every shuffle from that one generator
    files = select_trajectories(files, num_trajectories, rng)
    pool = None
    if num_workers > 1:
        import multiprocessing

        # fork: the workers only run h5py / OpenCV / imageio, never TensorFlow
        pool = multiprocessing.get_context("fork").Pool(num_workers)
    imap = pool.imap if pool is not None else map
    try:
        paths = [os.path.join(hdf5_dir, name) for name in files]
        metadata = dict(zip(files, tqdm(imap(read_metadata, paths), total=len(files), desc="robonet metadata",
                                        disable=not progress)))
        views = [(name, camera) for name in files for camera in range(metadata[name]["ncam"])]
        partition = split_views(views, n_val, n_test, rng, split_by)
        dims = sorted({(metadata[name]["sdim"], metadata[name]["adim"]) for name in files})
        settings = dict(dataset="robonet", converter_version=CONVERTER_VERSION, dim=dim, seed=seed,
                        split_by=split_by, n_val=n_val, n_test=n_test, num_trajectories=num_trajectories,
                        sequences_per_file=sequences_per_file, hdf5_dir=os.path.abspath(hdf5_dir),
                        files_sha256=_digest([(name, metadata[name]["sha256"]) for name in files]),
                        views_sha256=_digest(partition))
        info_path = os.path.join(output_dir, "dataset_info.json")
        if os.path.exists(info_path):
            with open(info_path) as f:
                info = json.load(f)
            if {key: info.get(key) for key in settings} == json.loads(json.dumps(settings)):
                print(f"{output_dir} already holds these RoboNet records; nothing to do")
                return info
        os.makedirs(output_dir, exist_ok=True)
        settings_path = os.path.join(output_dir, ".settings.json")
        if os.path.exists(settings_path):
            with open(settings_path) as f:
                if json.load(f) != json.loads(json.dumps(settings)):
                    print(f"{output_dir} holds RoboNet records made with other settings; starting over")
                    for split in ("train", "val", "test"):
                        shutil.rmtree(os.path.join(output_dir, split), ignore_errors=True)
        if os.path.exists(info_path):
            os.remove(info_path)
        write_json_atomically(settings_path, settings)
        write_json_atomically(os.path.join(output_dir, "splits.json"),
                    {split: [f"{name}_{camera}" for name, camera in views_] for split, views_ in partition.items()})
        write_metadata_csv(os.path.join(output_dir, "metadata.csv"), metadata)
        summaries = {}
        for split in ("train", "val", "test"):
            split_dir = os.path.join(output_dir, split)
            os.makedirs(split_dir, exist_ok=True)
            split_views_ = partition[split]
            summaries[split] = []
            bar = tqdm(total=len(split_views_), desc=f"robonet {split}", disable=not progress)
            for first in range(0, len(split_views_), sequences_per_file):
                chunk = split_views_[first:first + sequences_per_file]
                path = os.path.join(split_dir, f"sequence_{first}_to_{first + len(chunk) - 1}.tfrecords")
                if os.path.exists(path) and os.path.exists(_summary_path(path)):
                    with open(_summary_path(path)) as f:
                        summaries[split].append(json.load(f))  # finished by an earlier run
                else:
                    jobs = [(os.path.join(hdf5_dir, name), camera, metadata[name], dim, True)
                            for name, camera in chunk]
                    summaries[split].append(_write_shard(path, chunk, imap(_process_view, jobs)))
                bar.update(len(chunk))
            bar.close()
            with open(os.path.join(split_dir, "sequence_lengths.txt"), "w") as f:
                f.writelines(f"{n}\n" for summary in summaries[split] for n in summary["lengths"])
    finally:
        if pool is not None:
            pool.terminate()
    train = summaries["train"]
    pixels = sum(s["pixels"] for s in train)
    mean = np.sum([s["sums"] for s in train], 0) / pixels
    std = np.sqrt(np.maximum(np.sum([s["squares"] for s in train], 0) / pixels - mean ** 2, 0.0))
    info = dict(
        settings, num_examples={split: sum(len(s["lengths"]) for s in summaries[split]) for split in summaries},
        normalization=dict(mean=mean.tolist(), std=std.tolist(), num_pixels=pixels, space="RGB in [0, 1]",
                           original_mean=list(ORIGINAL_MEAN), original_std=list(ORIGINAL_STD),
                           mean_minus_original=(mean - ORIGINAL_MEAN).tolist(),
                           std_minus_original=(std - ORIGINAL_STD).tolist()),
        state_action_dims=[list(d) for d in dims],
        short_mp4_streams=[line for split in summaries for s in summaries[split] for line in s["short"]],
        num_trajectories_used=len(files),
        split_unit=("camera view (views of one trajectory can be in different splits: leakage, as the original)"
                    if split_by == "camera" else "trajectory"))
    write_json_atomically(info_path, info, indent=2, sort_keys=True)
    return info


def hdf5_directory(root):
    """The directory under ``root`` holding the most ``*.hdf5`` files (RoboNet's archives nest them)."""
    best, count = None, 0
    for directory, _, names in os.walk(root):
        found = sum(name.endswith(".hdf5") for name in names)
        if found > count:
            best, count = directory, found
    if best is None:
        raise ValueError(f"no RoboNet .hdf5 files under {root}")
    return best


def download_robonet(output_dir, which="full", base_url=None, keep_archive=False, progress=True):
    """Download and extract RoboNet's ``which`` archive (``full`` or ``sample``) into ``<output_dir>/raw``.

    Resumable (:func:`~video_prediction.download.download_file`); the archive
    is read through (:func:`~video_prediction.download.verify_archive`) before
    extraction, which skips files already extracted.  ``base_url`` serves the
    archive by its file name instead of Google Drive.  Returns the directory
    holding the ``.hdf5`` files.
    """
    from video_prediction.download import download_file, extract_archive, verify_archive

    if which not in ROBONET_ARCHIVES:
        raise ValueError(f"unknown RoboNet archive {which!r}; valid: {', '.join(ROBONET_ARCHIVES)}")
    file_id, name = ROBONET_ARCHIVES[which]
    raw = os.path.join(output_dir, "raw")
    done = os.path.join(raw, f".{name}.extracted")
    if not os.path.exists(done):
        url = DRIVE_URL.format(id=file_id) if base_url is None else f"{base_url.rstrip('/')}/{name}"
        archive = os.path.join(output_dir, name)
        download_file(url, archive, progress=progress)
        try:
            verify_archive(archive)
        except ValueError as e:
            raise ValueError(f"{e}; if Google Drive sent a web page instead of the archive, download it as "
                             f"{ROBONET_DOWNLOAD_PAGE} describes (gdown) and pass --hdf5_dir") from None
        extract_archive(archive, raw, skip_existing=True)
        open(done, "w").close()
        if not keep_archive:
            os.remove(archive)
    return hdf5_directory(raw)
