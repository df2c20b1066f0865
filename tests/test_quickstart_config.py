"""The quickstart's hparams files build the model the README describes, and its script evaluates the baselines."""

import json
import os

import numpy as np

from video_prediction.hparams import resolve_hparams
from video_prediction.models import get_model_class

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QS = os.path.join(ROOT, "hparams", "moving_mnist", "quickstart")


def test_quickstart_hparams_build_a_deterministic_dna_savp():
    dataset_hparams = json.load(open(os.path.join(QS, "dataset_hparams.json")))
    assert dataset_hparams == {"context_frames": 5, "sequence_length": 10, "scale_size": 32}
    model_class = get_model_class("savp")
    hparams = resolve_hparams(model_class.default_hparams(), os.path.join(QS, "model_hparams.json"),
                              {"context_frames": 5, "sequence_length": 10}).values()
    assert hparams["transformation"] == "dna" and hparams["nz"] == 0 and hparams["kl_weight"] == 0.0
    model = model_class(hparams=hparams)
    images = np.random.default_rng(0).random((1, 10, 32, 32, 1)).astype("float32")
    assert model({"images": images})["gen_images"].shape == (1, 9, 32, 32, 1)


def test_every_quickstart_script_compares_with_repeat_and_both_blanks():
    common = open(os.path.join(ROOT, "scripts", "quickstarts", "common.sh")).read()
    for needed in ("--model repeat", "--model blank ", "--model blank --model_hparams fill=zeros",
                   "summarize_results.py --compact --subject"):
        assert needed in common, needed
    families = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "scripts", "quickstarts"))
                      if f.endswith(".sh") and f != "common.sh")
    assert "savp" in families
    for family in families:
        script = open(os.path.join(ROOT, "scripts", "quickstarts", family + ".sh")).read()
        for needed in ("evaluate_baselines ", "print_quickstart_table "):
            assert needed in script, (family, needed)
    assert "--num_digits 1" in common and "write_quickstart_moving_mnist" in open(
        os.path.join(ROOT, "scripts", "quickstarts", "savp.sh")).read()


def test_quickstart_sh_names_the_known_families_for_an_unknown_one():
    import subprocess
    result = subprocess.run(["bash", os.path.join(ROOT, "scripts", "quickstart.sh"), "no_such_family"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "no quickstart named 'no_such_family'" in result.stderr and "savp" in result.stderr


def test_pose_quickstart_hparams_are_the_documented_ones():
    """hierarchical_pose quickstart: one digit at 32x32; the generator on its pixel loss with the clip output."""
    pose = os.path.join(ROOT, "hparams", "moving_mnist")
    lstm_data = json.load(open(os.path.join(pose, "pose_lstm_quickstart", "dataset_hparams.json")))
    image_data = json.load(open(os.path.join(pose, "pose_analogy_quickstart", "dataset_hparams.json")))
    assert lstm_data == {"context_frames": 10, "sequence_length": 20, "scale_size": 32}
    assert image_data == dict(lstm_data, heatmaps=True)
    model_class = get_model_class("pose_analogy")
    hparams = resolve_hparams(model_class.default_hparams(),
                              os.path.join(pose, "pose_analogy_quickstart", "model_hparams.json")).values()
    assert hparams["output_activation"] == "clip" and hparams["gamma"] == 0.0 and hparams["steps"] == 11
    assert hparams["alpha"] == 0.0 and hparams["beta"] == 0.0 and hparams["max_steps"] == 2000
    model_class(hparams=dict(hparams, context_frames=10, sequence_length=20))  # valid hparams
    script = open(os.path.join(ROOT, "scripts", "quickstarts", "hierarchical_pose.sh")).read()
    assert "--num_digits 1" in script and "--seed 7" in script and "--model hierarchical_pose" in script


def test_mspred_quickstart_hparams_predict_every_scored_frame_at_32px():
    """MSPred's quickstart: one-digit 32x32 records shared with the main quickstart, level 0 supervised
    (L1) on every frame evaluate.py scores, and a forward pass at that size."""
    qs = os.path.join(ROOT, "hparams", "moving_mnist", "mspred_quickstart")
    dataset_hparams = json.load(open(os.path.join(qs, "dataset_hparams.json")))
    assert dataset_hparams == {"context_frames": 5, "sequence_length": 10, "scale_size": 32, "num_channels": 1}
    script = open(os.path.join(ROOT, "scripts", "quickstarts", "mspred.sh")).read()
    assert "\nwrite_quickstart_moving_mnist\n" in script  # the same records as the main quickstart
    assert "--num_stochastic_samples 3" in script
    model_class = get_model_class("mspred")
    hparams = resolve_hparams(model_class.default_hparams(), os.path.join(qs, "model_hparams.json"),
                              {"context_frames": 5, "sequence_length": 10}).values()
    assert hparams["reconst_losses"][0] == "mae" and hparams["max_steps"] == 1200
    model = model_class(hparams=hparams)
    # level 0 is trained on all 5 predicted frames, the ones evaluate.py scores
    assert model.level_target_frames(10)[0] == [5, 6, 7, 8, 9]
    images = np.random.default_rng(0).random((2, 10, 32, 32, 1)).astype("float32")
    outputs = model({"images": images})
    assert outputs["gen_images"].shape == (2, 9, 32, 32, 1)
    assert outputs["gen_level0"].shape == (2, 5, 32, 32, 1)


def test_quickstarts_sharing_the_savp_records_write_them_in_one_place():
    """data/moving_mnist_quickstart is written once and kept: a quickstart writing it with other arguments
    would silently get the first run's records. Only common.sh's function writes it."""
    quickstarts = os.path.join(ROOT, "scripts", "quickstarts")
    common = open(os.path.join(quickstarts, "common.sh")).read()
    assert 'QUICKSTART_MOVING_MNIST=data/moving_mnist_quickstart' in common
    users = []
    for script in sorted(os.listdir(quickstarts)):
        if not script.endswith(".sh") or script == "common.sh":
            continue
        text = open(os.path.join(quickstarts, script)).read()
        assert "moving_mnist_quickstart" not in text, script  # through $QUICKSTART_MOVING_MNIST only
        if "$QUICKSTART_MOVING_MNIST" in text:
            assert "\nwrite_quickstart_moving_mnist\n" in text, script
            assert "download_and_preprocess_dataset.sh moving_mnist " not in text, script
            users.append(script)
    assert {"savp.sh", "mspred.sh", "epva.sh", "vqvae_transformer.sh"} <= set(users)


def test_epva_quickstart_hparams_build_the_epva_model_at_32x32():
    from video_prediction.models.epva import EPVAVideoPredictionModel

    root = os.path.join(ROOT, "hparams", "moving_mnist", "epva_quickstart")
    dataset_hparams = json.load(open(os.path.join(root, "dataset_hparams.json")))
    assert dataset_hparams == {"context_frames": 3, "sequence_length": 8, "scale_size": 32}
    model = EPVAVideoPredictionModel(os.path.join(root, "model_hparams.json"),
                                     hparams={k: dataset_hparams[k] for k in ("context_frames", "sequence_length")})
    # epva mode; encoder + VAN frozen from epva_freeze_step on, the predictor trained alone until max_steps
    assert model.hparams.model_mode == "epva" and model.optimizers_needed() == ("all", "pred")
    assert 0 < model.hparams.epva_freeze_step < model.hparams.max_steps
    assert model.hparams.imgnet_pretrain and model.hparams.imgnet_pretrain_source == "torchvision"
    assert "epva_quickstart" in open(os.path.join(ROOT, "scripts", "quickstarts", "epva.sh")).read()


def test_vqvae_quickstart_stages_fit_together():
    """Stage 1's frame size is the records' scale_size, stage 2 reads the run the script trains as stage 1,
    and both stages see the same clips."""
    stage1 = os.path.join(ROOT, "hparams", "moving_mnist", "vqvae_quickstart")
    stage2 = os.path.join(ROOT, "hparams", "moving_mnist", "vqvae_transformer_quickstart")
    data1 = json.load(open(os.path.join(stage1, "dataset_hparams.json")))
    data2 = json.load(open(os.path.join(stage2, "dataset_hparams.json")))
    assert data1 == data2 and json.load(open(os.path.join(stage1, "model_hparams.json")))["resolution"] == data1["scale_size"]
    script = open(os.path.join(ROOT, "scripts", "quickstarts", "vqvae_transformer.sh")).read()
    first_stage = json.load(open(os.path.join(stage2, "model_hparams.json")))["first_stage_checkpoint"]
    assert f"RUN1={first_stage}\n" in script and '"first_stage_checkpoint=$RUN1"' in script
    assert "\nwrite_quickstart_moving_mnist\n" in script  # the SAVP quickstart's records
