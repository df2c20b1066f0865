"""train.py → generate.py → evaluate.py end to end on a tiny Moving MNIST, resume, and bad input."""

import json
import os
import subprocess
import sys

import pytest

from video_prediction.datasets.moving_mnist import write_moving_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_MODEL = "batch_size=2,ngf=4,nef=8,nz=2"
DATASET_HPARAMS = "context_frames=2,sequence_length=5"


def run(script, *args, expect_ok=True):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script), *args],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    if expect_ok:
        assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    write_moving_mnist(str(root / "mm32"), {"train": 8, "val": 4, "test": 4}, sequence_length=6, canvas_size=32,
                       progress=False)
    write_moving_mnist(str(root / "mm40"), {"train": 4, "val": 4, "test": 4}, sequence_length=6, canvas_size=40,
                       progress=False)
    return root


@pytest.fixture(scope="module")
def trained(data):
    """A 3-step run, then the same command with --max_steps 5 resumes it."""
    out = str(data / "run")
    args = ["--dataset", "moving_mnist", "--input_dir", str(data / "mm32"), "--dataset_hparams", DATASET_HPARAMS,
            "--model", "savp", "--model_hparams_dict",
            os.path.join(ROOT, "hparams/moving_mnist/ours_vae_l1/model_hparams.json"),
            "--model_hparams", TINY_MODEL, "--output_dir", out, "--summary_freq", "2", "--image_summary_freq", "2",
            "--save_freq", "2", "--seed", "1", "--verbose", "2"]
    first = run("train.py", *args, "--max_steps", "3")
    second = run("train.py", *args, "--max_steps", "5")
    return out, first, second


def test_train_writes_run_directory_and_summaries(trained):
    out, first, _ = trained
    for name in ("options.json", "dataset_hparams.json", "model_hparams.json", "checkpoint"):
        assert os.path.exists(os.path.join(out, name)), name
    options = json.load(open(os.path.join(out, "options.json")))
    assert options["image_shape"] == [32, 32, 1] and options["model"] == "savp"
    model_hparams = json.load(open(os.path.join(out, "model_hparams.json")))
    assert model_hparams["ngf"] == 4 and model_hparams["context_frames"] == 2 and model_hparams["kl_weight"] == 0.001
    events = [f for d in ("train", "val") for f in os.listdir(os.path.join(out, d)) if "tfevents" in f]
    assert len(events) >= 2
    assert "parameters" in first.stdout


def test_rerun_resumes_from_latest_checkpoint(trained):
    out, _, second = trained
    assert "resumed from" in second.stdout and "at step 3" in second.stdout
    import tensorflow as tf

    assert tf.train.latest_checkpoint(out).endswith("ckpt-5")
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(out))
    step_keys = [k for k in reader.get_variable_to_shape_map() if "global_step" in k]
    assert step_keys and int(reader.get_tensor(step_keys[0])) == 5


def test_generate_writes_gifs_and_pngs(trained, data):
    out, _, _ = trained
    results = str(data / "gen")
    run("generate.py", "--checkpoint", out, "--results_dir", results, "--num_samples", "2",
        "--num_stochastic_samples", "2", "--batch_size", "2")
    files = os.listdir(os.path.join(results, "run"))
    assert sorted(f for f in files if f.endswith(".gif")) == [
        "gen_image_00000_00.gif", "gen_image_00000_01.gif", "gen_image_00001_00.gif", "gen_image_00001_01.gif"]
    assert len([f for f in files if f.endswith(".png")]) == 4 * 3  # 3 predicted frames per sample


def test_generate_from_single_video(trained, data):
    import numpy as np

    out, _, _ = trained
    video = np.random.default_rng(0).random((4, 48, 48, 3)).astype(np.float32)
    np.save(data / "clip.npy", video)
    results = str(data / "gen_video")
    run("generate.py", "--checkpoint", out, "--video", str(data / "clip.npy"), "--results_dir", results,
        "--num_stochastic_samples", "2", "--horizon", "6", "--save_arrays")
    arrays = np.load(os.path.join(results, "run", "gen_image_00000.npz"))
    assert arrays["predictions"].shape == (2, 6, 32, 32, 1)


def test_evaluate_learned_model_and_repeat(trained, data):
    out, _, _ = trained
    results = str(data / "eval")
    learned = run("evaluate.py", "--checkpoint", out, "--output_dir", os.path.join(results, "savp"),
                  "--num_stochastic_samples", "3", "--batch_size", "2")
    assert "psnr" in learned.stdout and "ssim" in learned.stdout
    payload = json.load(open(os.path.join(results, "savp", "metrics.json")))
    metrics = payload["results"]["metrics"]
    assert set(metrics) == {"psnr", "ssim"} and metrics["psnr"]["num_videos"] == 4
    assert metrics["psnr"]["num_samples"] == 3 and metrics["psnr"]["num_timesteps"] == 3
    assert os.path.exists(os.path.join(results, "savp", "psnr.png"))
    assert os.path.exists(os.path.join(results, "savp", "metrics.csv"))
    run("evaluate.py", "--model", "repeat", "--dataset", "moving_mnist", "--input_dir", str(data / "mm32"),
        "--dataset_hparams", DATASET_HPARAMS, "--output_dir", os.path.join(results, "repeat"), "--batch_size", "2")
    table = run("summarize_results.py", os.path.join(results, "savp"), os.path.join(results, "repeat")).stdout
    assert "savp" in table and "repeat" in table


@pytest.mark.parametrize("script,args,message", [
    ("train.py", ["--dataset", "moving_mnst", "--model", "savp"], "unknown dataset 'moving_mnst'"),
    ("train.py", ["--dataset", "moving_mnist", "--model", "savpp"], "unknown model 'savpp'"),
    ("train.py", ["--dataset", "moving_mnist", "--model", "savp", "--model_hparams", "ngff=3"],
     "unknown hparam 'ngff'"),
    ("train.py", ["--dataset", "moving_mnist", "--model", "savp", "--dataset_hparams", "context_frame=3"],
     "unknown hparam 'context_frame'"),
])
def test_train_bad_names(data, script, args, message):
    if "--dataset_hparams" not in args:
        args = [*args, "--dataset_hparams", DATASET_HPARAMS]
    result = run(script, "--input_dir", str(data / "mm32"), "--output_dir", str(data / "bad_run"), *args,
                 expect_ok=False)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_input_dir_without_records(data, tmp_path):
    result = run("train.py", "--input_dir", str(tmp_path), "--dataset", "moving_mnist", "--model", "savp",
                 "--output_dir", str(tmp_path / "run"), expect_ok=False)
    assert result.returncode == 1 and "no TFRecords" in result.stderr


def test_image_size_mismatch(trained, data):
    out, _, _ = trained
    result = run("evaluate.py", "--checkpoint", out, "--input_dir", str(data / "mm40"), "--output_dir",
                 str(data / "eval_bad"), expect_ok=False)
    assert result.returncode == 1 and "image size mismatch" in result.stderr and "(32, 32, 1)" in result.stderr


def test_checkpoint_dir_without_checkpoint(data, tmp_path):
    result = run("generate.py", "--checkpoint", str(tmp_path), "--results_dir", str(tmp_path / "r"),
                 expect_ok=False)
    assert result.returncode == 1 and "no checkpoint found" in result.stderr


def test_resume_refuses_another_model(trained, data):
    out, _, _ = trained
    result = run("train.py", "--input_dir", str(data / "mm32"), "--dataset", "moving_mnist", "--model", "repeat",
                 "--output_dir", out, expect_ok=False)
    assert result.returncode == 1 and "refusing to resume" in result.stderr
