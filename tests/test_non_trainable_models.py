import os

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


# -- blank: the mean training frame (or zeros) -----------------------------------------------------


@pytest.fixture(scope="module")
def tiny_moving_mnist(tmp_path_factory):
    from video_prediction.datasets.moving_mnist import write_moving_mnist

    root = str(tmp_path_factory.mktemp("blank") / "mm")
    write_moving_mnist(root, {"train": 6, "val": 2, "test": 3}, sequence_length=4, canvas_size=32, progress=False)
    return root


def _generated_frames(split, count):
    """The split's frames straight from the generator (independent of the TFRecord pipeline), in [0, 1]."""
    from video_prediction.datasets.moving_mnist import SPLIT_SEEDS, generate_videos, load_digit_pools

    pools, _ = load_digit_pools()
    videos = generate_videos(pools[split], count, 4, 2, 32, SPLIT_SEEDS[split])
    return np.stack([frames for frames, _ in videos]).astype("float64") / 255.0


def test_blank_predicts_the_mean_training_frame(tiny_moving_mnist):
    from video_prediction.inference import evaluation
    from video_prediction.training import building as training

    dataset = training.build_dataset("moving_mnist", tiny_moving_mnist, "test", hparams="context_frames=2,sequence_length=4")
    model = training.build_model("blank", dataset, hparams="mean_videos=0")
    expected = _generated_frames("train", 6).mean(axis=(0, 1))  # [32, 32, 1]
    test_frames = _generated_frames("test", 3)
    # The check means something: the mean frame has structure and is not the test split's mean.
    assert expected.max() > 0.1 and expected.std() > 0.02
    assert np.abs(expected - test_frames.mean(axis=(0, 1))).max() > 0.1
    np.testing.assert_allclose(model.fill_frame.numpy(), expected, atol=1e-6)
    samples = model.generate({"images": test_frames[:, :2].astype("float32")}, num_samples=2, horizon=5).numpy()
    assert samples.shape == (3, 2, 5, 32, 32, 1)
    np.testing.assert_allclose(samples, np.broadcast_to(expected, samples.shape), atol=1e-6)
    # evaluate() gives the PSNR of that constant frame against the test futures.
    results = evaluation.evaluate(model, dataset, ["psnr"], num_stochastic_samples=1, batch_size=3).results()
    mse = ((test_frames[:, 2:] - expected) ** 2).mean(axis=(2, 3, 4))  # [videos, 2 future frames]
    np.testing.assert_allclose(results["psnr"]["avg"]["mean"], (10 * np.log10(1 / mse)).mean(axis=0), rtol=1e-4)


def test_blank_zeros_and_bad_fill(tiny_moving_mnist):
    images = video()
    model = get_model_class("blank")(hparams=dict(HP, fill="zeros"))
    gen = model({"images": images})["gen_images"].numpy()
    assert gen.shape == (2, 4, 8, 8, 1) and not gen.any()
    with pytest.raises(ValueError, match="unknown fill 'grey' for blank; valid: train_mean, zeros"):
        get_model_class("blank")(hparams=dict(HP, fill="grey"))
    with pytest.raises(ValueError, match="blank with fill=train_mean has no mean frame"):
        get_model_class("blank")(hparams=HP)({"images": images})


def test_blank_without_train_split_names_the_fix(tiny_moving_mnist, tmp_path):
    import shutil

    from video_prediction.training import building as training

    only_test = tmp_path / "only_test"
    shutil.copytree(os.path.join(tiny_moving_mnist, "test"), only_test / "test")
    dataset = training.build_dataset("moving_mnist", str(only_test), "test", hparams="context_frames=2,sequence_length=4")
    with pytest.raises(ValueError, match="blank: cannot read the train split of .*; use --model_hparams fill=zeros"):
        training.build_model("blank", dataset)
