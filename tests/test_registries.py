import pytest

from video_prediction.datasets import available_datasets, get_dataset_class
from video_prediction.models import available_models, get_model_class


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown model 'savpp'; valid models: .*repeat.*savp"):
        get_model_class("savpp")


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'; valid datasets: .*moving_mnist"):
        get_dataset_class("mnist")


@pytest.mark.parametrize("name", ["ground_truth", "repeat", "savp"])
def test_registered_models_import(name):
    assert name in available_models()
    assert get_model_class(name).__name__.endswith("Model")


def test_registered_datasets_import():
    for name in available_datasets():
        assert get_dataset_class(name).__name__.endswith("Dataset")
