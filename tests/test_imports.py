"""Every module of the package imports on its own, in a fresh interpreter (a guard against import cycles).

An import cycle between two modules shows up only when one of them is the first to be imported, so each
module is imported first in its own process.  The processes are batched (one per module would cost a
TensorFlow start-up each): a child imports its modules one after another after purging
``video_prediction`` from ``sys.modules`` each time, which makes every import a first import.
"""

import os
import pkgutil
import subprocess
import sys

import video_prediction

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "video_prediction" or m.startswith("video_prediction.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + "\n" + traceback.format_exc(limit=-3))
print("\n\n".join(failed))
sys.exit(1 if failed else 0)
"""


def all_modules():
    return sorted(info.name for info in pkgutil.walk_packages(video_prediction.__path__, "video_prediction."))


def test_every_module_imports_first_in_a_fresh_interpreter():
    modules = all_modules()
    assert "video_prediction.conversion.formats.tf1" in modules and "video_prediction.training.loop" in modules
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", CHILD, *modules], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=600)
    assert result.returncode == 0, f"modules that fail to import first:\n{result.stdout[-4000:]}{result.stderr[-2000:]}"


def test_the_guard_catches_a_cycle(tmp_path):
    """The child reports a module that cannot be imported first (a real two-module cycle)."""
    package = tmp_path / "cyclepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclepkg.b import B\nA = 1\n")
    (package / "b.py").write_text("from cyclepkg.a import A\nB = 2\n")
    result = subprocess.run([sys.executable, "-c", CHILD.replace("video_prediction", "cyclepkg"), "cyclepkg.a"],
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(tmp_path)), timeout=60)
    assert result.returncode == 1 and "cyclepkg.a" in result.stdout and "ImportError" in result.stdout
