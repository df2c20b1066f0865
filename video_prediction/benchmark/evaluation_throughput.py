"""Evaluation throughput: per-frame metrics, ``evaluate()`` end to end, and the FVD embedding."""

import statistics
import time

from video_prediction.benchmark.processes import Worker, configure_threads, timed_calls
from video_prediction.benchmark.variants import summarize


class EvaluationBench:
    """Evaluation throughput inside a child process: per-frame metrics, ``evaluate()`` and FVD."""

    def __init__(self, settings, dataset_name="moving_mnist"):
        self.threads = configure_threads(settings.intra_op_threads, settings.inter_op_threads)
        import keras

        from video_prediction.training import building

        keras.utils.set_random_seed(settings.seed)
        self.settings = settings
        self.dataset = building.build_dataset(dataset_name, settings.input_dir, "test",
                                              hparams=settings.dataset_overrides(), seed=settings.seed, num_epochs=1)
        self.model = building.build_model("repeat", self.dataset)

    def get_info(self):
        return dict(threads=self.threads, sequence_length=self.dataset.sequence_length,
                    context_frames=self.dataset.context_frames, image_shape=list(self.dataset.image_shape))

    def metric_rates(self, names, batch_size=8, calls=5, max_seconds=20.0):
        """Frames per second of each per-frame metric on ``[B, T-C, H, W, C]`` videos (eager, as evaluate runs it)."""
        import tensorflow as tf

        from video_prediction.metrics import get_metric

        batch = next(iter(self.dataset.make_dataset(batch_size, drop_remainder=False)))["images"]
        targets = batch[:, self.dataset.context_frames:]
        predictions = tf.roll(targets, shift=1, axis=0)  # other videos: realistic, non-zero errors
        frames = int(targets.shape[0] * targets.shape[1])
        rates = {}
        for name in names:
            try:
                metric = get_metric(name)
                metric(targets, predictions)  # warm-up (tracing, weight loading)
            except Exception as e:  # noqa: BLE001 - e.g. LPIPS weights not fetched: reported, not fatal
                rates[name] = dict(skipped=f"{type(e).__name__}: {e}")
                continue
            times = timed_calls(lambda: metric(targets, predictions).numpy(), calls, max_seconds)
            rates[name] = dict(frames_per_second=frames / statistics.median(times), **summarize(times))
        return rates

    def evaluate_rate(self, metric_names=("psnr", "ssim"), batch_size=8, num_videos=64):
        """Videos per second of ``evaluation.evaluate`` with the ``repeat`` baseline (pipeline + metrics)."""
        from video_prediction.inference import evaluation

        start = time.perf_counter()
        accumulator = evaluation.evaluate(self.model, self.dataset, list(metric_names), num_stochastic_samples=1,
                                          batch_size=batch_size, num_videos=num_videos)
        seconds = time.perf_counter() - start
        videos = min(num_videos, self.dataset.num_examples_per_epoch())
        del accumulator
        return dict(metrics=list(metric_names), videos=videos, seconds=seconds, videos_per_second=videos / seconds)

    def fvd_rate(self, num_videos=16, num_frames=16, batch_size=8):
        """Videos per second of the FVD update (I3D embedding of real and fake videos)."""
        import tensorflow as tf

        from video_prediction.metrics.fvd import FrechetVideoDistance

        try:
            fvd = FrechetVideoDistance(batch_size=batch_size)
            videos = next(iter(self.dataset.make_dataset(num_videos, drop_remainder=False)))["images"][:, :num_frames]
            fvd.update(videos[:2], videos[:2])  # warm-up: weight loading and tracing
        except Exception as e:  # noqa: BLE001
            return dict(skipped=f"{type(e).__name__}: {e}")
        fake = tf.roll(videos, shift=1, axis=0)
        start = time.perf_counter()
        fvd.update(videos, fake)
        seconds = time.perf_counter() - start
        return dict(videos=2 * num_videos, frames=num_frames, seconds=seconds,
                    videos_per_second=2 * num_videos / seconds, fvd=float(fvd.result()))


def measure_evaluation(settings, metric_names=("psnr", "ssim", "lpips"), fvd=True, num_videos=64, log=print):
    """Evaluation throughput figures, measured in a child process."""
    log("evaluation throughput ...")
    with Worker(EvaluationBench, settings, label="evaluation") as worker:
        result = dict(worker.info)
        result["per_frame_metrics"] = worker.call("metric_rates", names=list(metric_names),
                                                  batch_size=settings.batch_size)
        result["evaluate_psnr_ssim"] = worker.call("evaluate_rate", batch_size=settings.batch_size,
                                                   num_videos=num_videos)
        if fvd:
            result["fvd"] = worker.call("fvd_rate")
    return result
