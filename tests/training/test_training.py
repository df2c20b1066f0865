"""Library pieces of training.py that the script tests do not reach directly."""


import keras
import pytest
import tensorflow as tf

from video_prediction.training.run_directory import check_checkpoint_covers, read_run_config, require_checkpoint, write_run_config
from video_prediction.training.strategy import make_strategy
from video_prediction.models.base import VideoPredictionModel


class ListHoldingModel(VideoPredictionModel):
    """Keeps a layer only in a dict: tf.train.Checkpoint would silently skip its weights."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.layers_by_name = {"conv": keras.layers.Conv2D(1, 3, padding="same")}

    def call(self, batch, training=False):
        x = batch["images"][:, :-1]
        y = self.layers_by_name["conv"](tf.reshape(x, [-1, 8, 8, 1]))
        return {"gen_images": tf.reshape(y, tf.shape(x))}


def test_checkpoint_coverage_guard_names_untracked_weights():
    model = ListHoldingModel(hparams=dict(context_frames=1, sequence_length=3))
    model.build_from_batch({"images": tf.zeros([1, 3, 8, 8, 1])})
    with pytest.raises(RuntimeError, match=r"2 weights .* not tracked .*kernel"):
        check_checkpoint_covers(tf.train.Checkpoint(model=model), model)


def test_run_config_round_trip_and_errors(tmp_path):
    write_run_config(str(tmp_path), {"model": "savp"}, {"context_frames": 2}, {"ngf": 4})
    options, dataset_hparams, model_hparams = read_run_config(str(tmp_path))
    assert options == {"model": "savp"} and dataset_hparams["context_frames"] == 2 and model_hparams["ngf"] == 4
    (tmp_path / "model_hparams.json").write_text("{")
    with pytest.raises(ValueError, match="model_hparams.json is not valid JSON"):
        read_run_config(str(tmp_path))
    with pytest.raises(ValueError, match="options.json is missing"):
        read_run_config(str(tmp_path / "nothing"))


def test_require_checkpoint_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        require_checkpoint(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no checkpoint found"):
        require_checkpoint(str(tmp_path))


def test_unknown_strategy():
    with pytest.raises(ValueError, match="unknown strategy 'tpu'"):
        make_strategy("tpu")
