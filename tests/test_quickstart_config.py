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


def test_quickstarts_sharing_the_savp_records_write_them_with_the_same_arguments():
    """A family's quickstart that reuses data/moving_mnist_quickstart must not write it differently (the
    first run's records would silently be kept by the other)."""
    def writer_line(script):
        text = open(os.path.join(ROOT, "scripts", "quickstarts", script)).read().replace("\\\n", " ")
        lines = [" ".join(line.split()) for line in text.splitlines() if "download_and_preprocess_dataset.sh" in line]
        assert len(lines) == 1, script
        return lines[0], "DATA=data/moving_mnist_quickstart" in text

    savp, _ = writer_line("savp.sh")
    for script in sorted(os.listdir(os.path.join(ROOT, "scripts", "quickstarts"))):
        if script.endswith(".sh") and script not in ("common.sh", "savp.sh"):
            line, shared = writer_line(script)
            if shared:
                assert line == savp, script


def test_epva_quickstart_hparams_build_the_e2e_model_at_32x32():
    from video_prediction.models.epva import EPVAVideoPredictionModel

    root = os.path.join(ROOT, "hparams", "moving_mnist", "epva_quickstart")
    dataset_hparams = json.load(open(os.path.join(root, "dataset_hparams.json")))
    assert dataset_hparams == {"context_frames": 3, "sequence_length": 8, "scale_size": 32}
    model = EPVAVideoPredictionModel(os.path.join(root, "model_hparams.json"),
                                     hparams={k: dataset_hparams[k] for k in ("context_frames", "sequence_length")})
    assert model.hparams.model_mode == "e2e" and model.optimizers_needed() == ("all",)
    assert model.hparams.imgnet_pretrain and model.hparams.imgnet_pretrain_source == "torchvision"
    assert "epva_quickstart" in open(os.path.join(ROOT, "scripts", "quickstarts", "epva.sh")).read()
