import numpy as np
import pytest

from video_prediction.training.schedules import SAVPLearningRate, ground_truth_sampling_probability, kl_weight_schedule


def test_default_lr_is_constant_then_linear_to_zero():
    schedule = SAVPLearningRate(0.001, 0.0, (200000, 300000), (0,))
    values = [float(schedule(s)) for s in (0, 199999, 200000, 250000, 300000, 400000)]
    np.testing.assert_allclose(values, [1e-3, 1e-3, 1e-3, 5e-4, 0.0, 0.0], atol=1e-9)


def test_lr_boundaries_piecewise():
    schedule = SAVPLearningRate(1.0, lr_boundaries=(10, 20))
    np.testing.assert_allclose([float(schedule(s)) for s in (0, 10, 25)], [1.0, 0.1, 0.01], rtol=1e-6)


def test_kl_linear_annealing():
    values = [float(kl_weight_schedule(s, 0.5, "linear", -1.0, (100, 200))) for s in (0, 100, 150, 200, 300)]
    np.testing.assert_allclose(values, [0.0, 0.0, 0.25, 0.5, 0.5], atol=1e-7)
    assert float(kl_weight_schedule(5, 0.5, "none")) == 0.5
    with pytest.raises(ValueError, match="unknown kl_anneal"):
        kl_weight_schedule(5, 0.5, "cosine")


def test_inverse_sigmoid_schedule_sampling_k900():
    p = lambda s: float(ground_truth_sampling_probability(s, "inverse_sigmoid", 900.0, (0, 100000)))
    assert p(0) == pytest.approx(900 / 901)
    assert p(6122) == pytest.approx(0.5, abs=0.01)  # spec: p ~ 0.5 at ~6.1k steps
    assert p(12400) == 0.0  # forced to 0 once under 1e-3 (~12.3k steps)
