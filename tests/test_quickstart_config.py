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
    assert "--num_digits 1" in open(os.path.join(ROOT, "scripts", "quickstarts", "savp.sh")).read()


def test_quickstart_sh_names_the_known_families_for_an_unknown_one():
    import subprocess
    result = subprocess.run(["bash", os.path.join(ROOT, "scripts", "quickstart.sh"), "no_such_family"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "no quickstart named 'no_such_family'" in result.stderr and "savp" in result.stderr


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
    # the SAVP quickstart's records: reused only with exactly its writer arguments
    writer = "--num_train 3000 --num_val 64 --num_test 64 --sequence_length 20 --num_digits 1"
    assert writer in script and writer in open(os.path.join(ROOT, "scripts", "quickstarts", "savp.sh")).read()
