"""The family hook of generation and evaluation: a family adds outputs without touching either module."""

import ast
import os
import re

import numpy as np

from video_prediction.datasets.moving_mnist import MovingMNISTVideoDataset, write_moving_mnist
from video_prediction.inference import evaluation, generation
from video_prediction.inference.extras import InferenceExtras, InferenceSettings, extras_for
from video_prediction.models.non_trainable import RepeatVideoPredictionModel

CALLS = []


class RecordingExtras(InferenceExtras):
    """Writes one file per hook and records what it was given."""

    subdirectory = "recorded"

    def write_dataset_outputs(self, dataset, results_dir, settings):
        return self._record("dataset", dataset, results_dir, settings)

    def write_video_outputs(self, video, results_dir, settings):
        return self._record("video", video, results_dir, settings)

    def evaluate(self, dataset, output_dir, settings):
        return self._record("evaluate", dataset, output_dir, settings)

    def _record(self, hook, data, directory, settings):
        os.makedirs(os.path.join(directory, self.subdirectory), exist_ok=True)
        with open(os.path.join(directory, self.subdirectory, hook + ".txt"), "w") as f:
            f.write(type(self.model).__name__)
        CALLS.append((hook, data, settings))
        return f"{hook} extras written"


class FamilyWithExtras(RepeatVideoPredictionModel):
    inference_extras = f"{__name__}:RecordingExtras"


def test_generation_and_evaluation_call_the_family_hook(tmp_path):
    CALLS.clear()
    write_moving_mnist(str(tmp_path / "data"), {"test": 2}, sequence_length=5, canvas_size=32, progress=False)
    dataset = MovingMNISTVideoDataset(str(tmp_path / "data"), mode="test", num_epochs=1,
                                      hparams="context_frames=2,sequence_length=5")
    model = FamilyWithExtras(hparams="context_frames=2,sequence_length=5")
    assert isinstance(extras_for(model), RecordingExtras) and extras_for(RepeatVideoPredictionModel(
        hparams="context_frames=2,sequence_length=5")) is None
    messages = []
    count = generation.generate_from_dataset(model, dataset, str(tmp_path / "gen"), num_videos=2,
                                             num_stochastic_samples=3, batch_size=2, fps=5, log=messages.append)
    assert count == 2 and os.path.exists(tmp_path / "gen" / "gen_image_00001_00.gif")
    assert open(tmp_path / "gen" / "recorded" / "dataset.txt").read() == "FamilyWithExtras"
    hook, data, settings = CALLS[-1]
    assert (hook, data) == ("dataset", dataset) and messages == ["dataset extras written"]
    assert settings == InferenceSettings(num_videos=2, num_stochastic_samples=3, batch_size=2, fps=5)

    video = np.random.default_rng(0).random((4, 32, 32, 1)).astype(np.float32)
    generation.generate_from_video(model, video, str(tmp_path / "clip"), horizon=6, log=messages.append)
    hook, data, settings = CALLS[-1]
    assert hook == "video" and data is video and settings.horizon == 6
    assert os.path.exists(tmp_path / "clip" / "recorded" / "video.txt")

    settings = InferenceSettings(num_videos=2, lpips_normalize_inputs=False)
    assert evaluation.evaluate_family_extras(model, dataset, str(tmp_path / "eval"), settings) == \
        "evaluate extras written"
    assert CALLS[-1] == ("evaluate", dataset, settings)
    assert evaluation.evaluate_family_extras(RepeatVideoPredictionModel(hparams="context_frames=2,sequence_length=5"),
                                             dataset, str(tmp_path / "eval"), settings) is None


def code_words(path):
    """Identifiers, imported module names and non-docstring string constants of a module (not its prose)."""
    tree = ast.parse(open(path).read())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    words = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            words += [getattr(node, "module", None) or ""] + [alias.name for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.append(node.value)
    return " ".join(words).lower()


def test_generation_and_evaluation_name_no_model_family():
    """Adding a family must not touch generation.py / evaluation.py: their code names none of the families."""
    from video_prediction.models import available_models

    families = [name for name in available_models() if name not in ("repeat", "ground_truth")]
    assert "mspred" in code_words(os.path.join(os.path.dirname(evaluation.__file__), "extras", "mspred.py"))
    for module in (generation, evaluation):
        words = code_words(module.__file__)
        named = [name for name in families if re.search(rf"\b{name}\b", words)]
        assert not named, f"{module.__name__} names the families {named}"
