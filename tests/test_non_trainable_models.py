import numpy as np
import pytest

from video_prediction.models import get_model_class

HP = dict(context_frames=2, sequence_length=5)


def video(batch=2, length=5):
    rng = np.random.default_rng(0)
    return rng.random((batch, length, 8, 8, 1)).astype("float32")


def test_repeat_copies_last_context_frame_along_time():
    images = video()
    model = get_model_class("repeat")(hparams=HP)
    gen = model({"images": images})["gen_images"].numpy()
    assert gen.shape == (2, 4, 8, 8, 1)
    np.testing.assert_array_equal(gen[:, 0], images[:, 0])  # context: predicts t+1 by copying t
    for t in range(1, 4):
        np.testing.assert_array_equal(gen[:, t], images[:, 1])
    samples = model.generate({"images": images[:, :2]}, num_samples=3, horizon=7).numpy()
    assert samples.shape == (2, 3, 7, 8, 8, 1)
    np.testing.assert_array_equal(samples, np.broadcast_to(images[:, None, None, 1], samples.shape))


def test_ground_truth_returns_future_frames():
    images = video()
    model = get_model_class("ground_truth")(hparams=HP)
    np.testing.assert_array_equal(model({"images": images})["gen_images"].numpy(), images[:, 1:])
    samples = model.generate({"images": images}, num_samples=2).numpy()
    np.testing.assert_array_equal(samples[:, 1], images[:, 2:])
    with pytest.raises(ValueError, match="ground_truth needs 9 frames"):
        model.generate({"images": images}, horizon=7)


def test_context_must_be_set():
    with pytest.raises(ValueError, match="context_frames and sequence_length must be set"):
        get_model_class("repeat")()
