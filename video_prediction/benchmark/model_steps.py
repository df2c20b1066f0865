"""Train-step, generate and input-pipeline figures of one model configuration (and jit vs no jit)."""

import contextlib
import dataclasses
import os
import statistics
import time

from video_prediction.benchmark.processes import (PeakRSS, Worker, configure_threads, interleave, kernel_peak_rss,
                                                  side_summary, steps_of, timed_calls)
from video_prediction.benchmark.variants import summarize


def check_image_size(dataset, image_size):
    """ValueError naming both sizes when the dataset's frames are not ``image_size`` square."""
    height, width = dataset.image_shape[:2]
    if (height, width) != (image_size, image_size):
        raise ValueError(f"--image_size {image_size} but the records in {dataset.input_dir!r} hold "
                         f"{height}x{width} frames")


class ModelBench:
    """One configuration inside a child process: the model, its train function and a fixed batch."""

    def __init__(self, variant, settings):
        self.variant, self.settings = variant, settings
        self.threads = configure_threads(settings.intra_op_threads, settings.inter_op_threads)
        self.memory = PeakRSS()
        import keras
        import tensorflow as tf

        from video_prediction.training import building
        from video_prediction.training.strategy import make_strategy

        keras.utils.set_random_seed(settings.seed)
        build_started = time.perf_counter()
        self.dataset = building.build_dataset(variant.dataset, settings.input_dir, "train",
                                              variant.dataset_hparams_dict, settings.dataset_overrides(),
                                              seed=settings.seed)
        check_image_size(self.dataset, settings.image_size)
        self.strategy = make_strategy(settings.strategy)
        with self.strategy.scope():
            self.model = building.build_model(variant.model, self.dataset, variant.model_hparams_dict,
                                              settings.model_overrides())
        self.batch = building.first_batch(self.dataset, settings.batch_size)
        self.info = dict(
            threads=self.threads, batch_size=settings.batch_size,
            context_frames=self.model.context_frames, sequence_length=self.model.sequence_length,
            image_shape=list(self.dataset.image_shape), trainable=bool(self.model.trainable_model),
            jit_compile=settings.jit_compile, params=0,
            time_loop=self.model.hparams.time_loop if "time_loop" in self.model.hparams else None)
        if self.model.trainable_model:
            with self.strategy.scope():
                self.model.build_from_batch(self.batch)
                self.model.make_optimizers(jit_compile=settings.jit_compile)
                self.model.build_optimizers()
            self.model.make_train_function()
            fixed = tf.data.Dataset.from_tensors(self.batch).repeat()
            self._iterator = iter(self.strategy.experimental_distribute_dataset(fixed))
            self.info["params"] = int(sum(int(tf.size(v)) for v in self.model.trainable_variables))
            self.info["build_seconds"] = time.perf_counter() - build_started  # data, model, weights, optimizers
            self.memory.reset()
            # Time to first step (issue 18): tracing (+ XLA compile) + one step, in wall and in this
            # process' CPU seconds (all its threads), with the load average before it (the machine may be shared).
            self.info["first_step_loadavg"] = os.getloadavg()
            t0, cpu0 = time.perf_counter(), time.process_time()
            self._train_step()
            self.info["first_step_seconds"] = time.perf_counter() - t0
            self.info["first_step_cpu_seconds"] = time.process_time() - cpu0
            for _ in range(max(settings.warmup_steps - 1, 0)):
                self._train_step()
            self.info["loss_after_warmup"] = self._last_loss
        self._generate_warm = False

    def _train_step(self):
        logs = self.model.train_function(self._iterator)
        self._last_loss = float(logs["loss"])  # also waits for the step to finish

    def train(self, steps=10, max_seconds=60.0, min_steps=3):
        """Seconds per train step, one per step."""
        if not self.model.trainable_model:
            return []
        self.memory.reset()
        times = timed_calls(self._train_step, steps, max_seconds, min_steps)
        self.info["train_peak_rss"] = self.memory.read()
        return times

    def generate(self, calls=5, max_seconds=30.0, min_steps=3):
        """``(seconds per generate call, frames per call)``; the first (tracing) call is not timed."""
        import numpy as np

        horizon = self.model.sequence_length - self.model.context_frames
        call = lambda: np.asarray(self.model.generate(self.batch, num_samples=1, horizon=horizon))
        if not self._generate_warm:
            t0 = time.perf_counter()
            call()
            self.info["generate_first_call_seconds"] = time.perf_counter() - t0
            self._generate_warm = True
        self.memory.reset()
        times = timed_calls(call, calls, max_seconds, min_steps)
        self.info["generate_peak_rss"] = self.memory.read()
        return times, self.settings.batch_size * horizon

    def pipeline(self, batches=200, max_seconds=20.0, warmup_batches=5):
        """Examples per second from the TFRecords through parsing, slicing and batching (a fresh pipeline)."""
        iterator = iter(self.dataset.make_dataset(self.settings.batch_size))
        for _ in range(warmup_batches):
            next(iterator)
        count, start = 0, time.perf_counter()
        while count < batches and time.perf_counter() - start < max_seconds:
            next(iterator)
            count += 1
        return count * self.settings.batch_size / (time.perf_counter() - start)

    def profile(self, steps=3, logdir=None, top=15):
        """Run ``steps`` train steps under the TF profiler and return the top ops by self time."""
        import tempfile

        import tensorflow as tf

        logdir = logdir or tempfile.mkdtemp(prefix="vp_profile_")
        tf.profiler.experimental.start(logdir)
        try:
            for _ in range(steps):
                self._train_step()
        finally:
            tf.profiler.experimental.stop()
        return dict(logdir=logdir, steps=steps, top_ops=top_ops_from_trace(logdir, top=top))

    def memory_figures(self):
        return dict(peak_rss_sampled=self.memory.read(), peak_rss_kernel=kernel_peak_rss(),
                    train_peak_rss=self.info.get("train_peak_rss"),
                    generate_peak_rss=self.info.get("generate_peak_rss"))

    def get_info(self):
        return dict(self.info)


def top_ops_from_trace(logdir, top=15):
    """Aggregate the host op events of a TF profiler trace: ``[{op, self_seconds, share, count}]``.

    Op events (``scope/op:Type``, on the TF executor threads) are grouped by op
    type; framework spans (``ExecutorState::Process``, eager function calls) are left out.
    Times are the sum of event durations, so on 2 threads they can add up to
    more than the wall time; ``share`` is relative to the total of all events.
    """
    import glob

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
    if not paths:
        raise FileNotFoundError(f"no *.xplane.pb profiler trace under {logdir!r}")
    space = xplane_pb2.XSpace()
    with open(paths[-1], "rb") as f:
        space.ParseFromString(f.read())
    totals, counts = {}, {}
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" not in name or "::" in name or name.startswith(("EagerLocalExecute", "Iterator", "$")):
                    continue  # keep op events "scope/op:Type"; skip framework spans that contain them
                op_type = name.rsplit(":", 1)[1]
                totals[op_type] = totals.get(op_type, 0.0) + event.duration_ps * 1e-12
                counts[op_type] = counts.get(op_type, 0) + 1
    total = sum(totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:top]
    return [dict(op=op, self_seconds=seconds, share=seconds / total, count=counts[op]) for op, seconds in ranked]


def measure_variant(variant, settings, steps=10, max_seconds=120.0, generate_calls=5, pipeline_batches=200,
                    profile_steps=0, log=print):
    """All figures of one (variant, jit_compile) configuration, measured in a fresh child process."""
    label = f"{variant.label} (jit_compile={settings.jit_compile})"
    log(f"{label}: building and warming up ...")
    started = time.time()
    with Worker(ModelBench, variant, settings, label=label) as worker:
        result = measure_worker(worker, variant, settings, steps, max_seconds, generate_calls, pipeline_batches,
                                profile_steps)
    result["wall_seconds"] = time.time() - started
    log(f"{label}: done in {result['wall_seconds']:.0f} s")
    return result


def measure_worker(worker, variant, settings, steps=10, max_seconds=120.0, generate_calls=5, pipeline_batches=200,
                   profile_steps=0):
    """The figures of :func:`measure_variant` from an already built :class:`Worker` holding a ModelBench."""
    load_before = os.getloadavg()
    train_times = worker.call("train", steps=steps, max_seconds=max_seconds)
    gen_times, frames_per_call = worker.call("generate", calls=generate_calls, max_seconds=max_seconds / 2)
    pipeline_rate = worker.call("pipeline", batches=pipeline_batches)
    profile = worker.call("profile", steps=profile_steps) if profile_steps and train_times else None
    memory = worker.call("memory_figures")
    info = worker.call("get_info")
    load_after = os.getloadavg()
    result = dict(variant=dataclasses.asdict(variant), **info, memory=memory,
                  loadavg_before=load_before, loadavg_after=load_after)
    result["train_step"] = summarize(train_times)
    if train_times:
        result["train_step"]["times"] = train_times
    batch, length = settings.batch_size, info["sequence_length"]
    if train_times:
        median = result["train_step"]["median"]
        result["train_frames_per_second"] = batch * length / median
        result["train_examples_per_second"] = batch / median
    result["generate_call"] = summarize(gen_times)
    result["generate_frames_per_second"] = frames_per_call / statistics.median(gen_times) if gen_times else None
    result["pipeline_examples_per_second"] = pipeline_rate
    if profile:
        result["profile"] = profile
    return result


def compare_settings(variant, settings_a, settings_b, names=("a", "b"), rounds=3, steps_per_round=2, log=print,
                     min_cpu_share=None, max_repeats=3):
    """Train-step times of one variant under two settings, interleaved like :func:`compare_with_reference`.

    Both configurations live in their own child process at once and take turns
    (alternating who starts), so both see the same machine.  Returns the turns,
    per-side summaries over clean turns (``min_cpu_share`` as in
    :func:`~video_prediction.benchmark.reference.compare_with_reference`), each side's time
    to first step, loss after warm-up and peak RSS, and ``ratio`` = median of ``b`` / median of ``a``.
    """
    if min_cpu_share is None:
        min_cpu_share = 0.9 * settings_a.intra_op_threads
    builds = {}
    with contextlib.ExitStack() as stack:
        for name, settings in zip(names, (settings_a, settings_b)):
            label = f"{variant.label} ({name})"
            log(f"comparison: building {label} ...")
            builds[name] = stack.enter_context(Worker(ModelBench, variant, settings, label=label))
        turns = interleave([(name, steps_of(builds[name]), builds[name].process.pid) for name in names], rounds,
                           steps_per_round, log, min_cpu_share=min_cpu_share, max_repeats=max_repeats)
        infos = {name: worker.call("get_info") for name, worker in builds.items()}
        memory = {name: worker.call("memory_figures") for name, worker in builds.items()}
    summaries = {name: side_summary(turns, name) for name in names}
    return dict(variant=dataclasses.asdict(variant), sides=list(names), turns=turns, **summaries,
                settings={name: dataclasses.asdict(s) for name, s in zip(names, (settings_a, settings_b))},
                first_step_seconds={name: infos[name]["first_step_seconds"] for name in names},
                first_step_cpu_seconds={name: infos[name]["first_step_cpu_seconds"] for name in names},
                losses_after_warmup={name: infos[name]["loss_after_warmup"] for name in names},
                peak_rss={name: memory[name]["peak_rss_sampled"] for name in names},
                ratio=summaries[names[1]]["median"] / summaries[names[0]]["median"])


def compare_jit(variant, settings, rounds=3, steps_per_round=2, log=print, min_cpu_share=None, max_repeats=3):
    """:func:`compare_settings` of ``jit_compile`` off (``no_jit``) and on (``jit``), with ``speedup``.

    ``speedup`` = median without jit / median with jit, over clean turns.
    """
    result = compare_settings(variant, dataclasses.replace(settings, jit_compile=False),
                              dataclasses.replace(settings, jit_compile=True), names=("no_jit", "jit"),
                              rounds=rounds, steps_per_round=steps_per_round, log=log, min_cpu_share=min_cpu_share,
                              max_repeats=max_repeats)
    result["speedup"] = 1.0 / result["ratio"]
    return result
