"""The scripts print no TensorFlow start-up lines by default; VIDEO_PREDICTION_TF_LOGS=1 brings them back."""

import os
import subprocess
import sys

from video_prediction.cli import is_tf_startup_noise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Lines TF 2.21 printed on this CPU-only machine before the fix (the cuInit one at TF_CPP_MIN_LOG_LEVEL <= 2).
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796512730.358730    6119 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.",
    "I0000 00:00:1796512730.359031    6119 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.",
    "E0000 00:00:1796512731.114016    6119 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "W1205 23:18:36.123456   42 cpu_feature_guard.cc:210] This TensorFlow binary is optimized to use available "
    "CPU instructions",
]


def run_script(script, *args, tf_logs=False):
    """Run a script as a user's shell would: no TF_CPP_MIN_LOG_LEVEL set (tests' conftest sets one)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "VIDEO_PREDICTION_TF_LOGS")}
    env["PYTHONPATH"] = ROOT
    if tf_logs:
        env["VIDEO_PREDICTION_TF_LOGS"] = "1"
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_noise_pattern_matches_tf_lines_only():
    assert all(is_tf_startup_noise(line) for line in NOISE)
    for ours in ("error: unknown dataset 'nope'; valid datasets: bair", "savp: 533,910 parameters",
                 "F0000 00:00:1796512731.114016    6119 some.cc:1] Check failed: fatal stays visible",
                 "/x/keras/src/foo.py:12: UserWarning: a Python warning stays visible",
                 "Traceback (most recent call last):"):
        assert not is_tf_startup_noise(ours), ours


def test_help_prints_no_tf_lines():
    result = run_script("scripts/train.py", "--help")
    assert "--max_steps" in result.stdout
    assert result.stderr == ""


def test_bad_input_prints_only_our_line_and_env_var_brings_tf_logs_back(tmp_path):
    args = ("--dataset", "nope", "--model", "savp", "--input_dir", str(tmp_path), "--output_dir", str(tmp_path / "r"))
    quiet = run_script("scripts/train.py", *args)
    assert quiet.returncode == 1
    assert quiet.stderr.splitlines() == [quiet.stderr.splitlines()[0]]
    assert quiet.stderr.startswith("error: unknown dataset 'nope'; valid datasets: ")
    # The control: the same command does load TensorFlow, which prints its start-up lines when asked.
    loud = run_script("scripts/train.py", *args, tf_logs=True)
    assert loud.returncode == 1 and "error: unknown dataset 'nope'" in loud.stderr
    assert any(is_tf_startup_noise(line) for line in loud.stderr.splitlines()), loud.stderr


def test_data_script_prints_no_tf_lines(tmp_path):
    result = run_script("data/preprocess_moving_mnist.py", "--output_dir", str(tmp_path / "mm"), "--num_train", "2",
                        "--num_val", "1", "--num_test", "1", "--sequence_length", "3", "--image_size", "32")
    assert result.returncode == 0, result.stderr
    assert not any(is_tf_startup_noise(line) for line in result.stderr.splitlines()), result.stderr
