"""Speed and memory of models, the input pipeline and evaluation (``scripts/benchmark.py``).

Every configuration (model variant x ``jit_compile``) runs in its own child
process, so that thread settings apply from TF's start, peak memory belongs to
that configuration only, and one configuration's caches do not help another.
A child builds the model and its optimizers as ``training.train`` does, then
answers commands from the parent (``train``, ``generate``, ``pipeline``,
``profile``, ``memory``) until it is closed.  The train step is Keras' own
``train_function`` (the ``tf.function`` that ``fit`` calls, with the model's
``jit_compile``) on a fixed batch from the real TFRecords, so model time and
input-pipeline time are measured apart and can be compared.

Timings are wall-clock seconds after warm-up (the first call, which traces and
compiles, is reported separately).  Steps run until ``steps`` are timed or
``max_seconds`` have passed, whichever is first, but at least ``min_steps``.

An external reference (e.g. the original PyTorch implementation in a
throwaway environment) is compared *interleaved*: both processes are built and
warmed up, then they take turns running the same number of steps, and the load
average is recorded with every turn.  The reference speaks a line protocol on
stdin/stdout: it prints one JSON line ``{"ready": true, ...}`` when warmed up,
then for every line ``N`` it reads it runs N train steps and prints one JSON
line ``{"times": [seconds per step, ...]}``; it exits at end of input.  Other
output lines are passed through to stderr.
"""

import contextlib
import dataclasses
import importlib.metadata
import json
import multiprocessing
import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time
import traceback

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_HPARAMS_DIR = os.path.join(REPO_DIR, "hparams", "moving_mnist")
#: Dataset each model family trains on in the benchmark (default: ``moving_mnist``).
MODEL_DATASETS = {"mspred": "mspred_moving_mnist"}
#: Published variants of a family whose hparams directories are not named after it
#: (the original SAVP repository calls them ``ours_*``).
VARIANT_PREFIXES = {"savp": ("ours_",)}


class BenchmarkError(RuntimeError):
    """A configuration failed in its child process (the message holds the child's traceback)."""


# -- what to measure ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model configuration: registry name, hparams files and the dataset it trains on."""

    label: str
    model: str
    dataset: str
    model_hparams_dict: str = None
    dataset_hparams_dict: str = None


def default_models():
    """Every registered model family except ``ground_truth`` (it only copies the targets)."""
    from video_prediction.models import available_models

    return [name for name in available_models() if name != "ground_truth"]


def find_variants(names, hparams_dir=DEFAULT_HPARAMS_DIR):
    """The variants that ``names`` (e.g. ``["savp", "mspred:mspred", "repeat"]``) stand for.

    ``family`` means every published hparams set of that family in
    ``hparams_dir`` (``ours_*`` for SAVP; ``<family>`` and ``<family>_*`` for
    others, quickstart sets excluded) or the class defaults when there is
    none; ``family:directory`` picks one set.  Unknown models or directories
    raise ``ValueError`` naming them.
    """
    from video_prediction.models import get_model_class

    variants = []
    for name in names:
        family, _, chosen = name.partition(":")
        model_class = get_model_class(family)  # ValueError listing the valid names
        dataset = MODEL_DATASETS.get(family, "moving_mnist")
        if chosen:
            directories = [chosen]
            if not os.path.isdir(os.path.join(hparams_dir, chosen)):
                raise ValueError(f"no hparams directory {chosen!r} in {hparams_dir!r} (from {name!r})")
        elif not model_class.trainable_model:
            directories = []
        else:
            prefixes = VARIANT_PREFIXES.get(family, (family + "_",))
            directories = sorted(
                d for d in os.listdir(hparams_dir) if os.path.isdir(os.path.join(hparams_dir, d))
                and (d == family or d.startswith(prefixes)) and "quickstart" not in d)
        if not directories:
            variants.append(Variant(label=family, model=family, dataset=dataset))
        for directory in directories:
            path = os.path.join(hparams_dir, directory)
            model_file = os.path.join(path, "model_hparams.json")
            dataset_file = os.path.join(path, "dataset_hparams.json")
            variants.append(Variant(
                label=family if directory == family else f"{family}:{directory}", model=family, dataset=dataset,
                model_hparams_dict=model_file if os.path.exists(model_file) else None,
                dataset_hparams_dict=dataset_file if os.path.exists(dataset_file) else None))
    return variants


@dataclasses.dataclass(frozen=True)
class Settings:
    """How a configuration is built and measured (the same for every variant of a run)."""

    input_dir: str
    batch_size: int = 8
    image_size: int = 64
    context_frames: int = None  # None: the variant's / dataset's own
    sequence_length: int = None
    jit_compile: bool = False
    strategy: str = "mirrored"
    intra_op_threads: int = 2
    inter_op_threads: int = 0  # 0: TensorFlow's default
    seed: int = 7
    warmup_steps: int = 2

    def dataset_overrides(self):
        """The ``k=v`` dataset hparams string of the length overrides (None without any)."""
        pairs = [f"{key}={value}" for key, value in (("context_frames", self.context_frames),
                                                     ("sequence_length", self.sequence_length)) if value is not None]
        return ",".join(pairs) or None


def summarize(times):
    """``{median, min, max, mean, n}`` of a list of seconds (None for an empty list)."""
    if not times:
        return None
    return dict(median=statistics.median(times), min=min(times), max=max(times), mean=statistics.fmean(times),
                n=len(times))


# -- memory -----------------------------------------------------------------------------------------


class PeakRSS:
    """Samples this process' resident set size (psutil) in a thread and keeps the maximum."""

    def __init__(self, interval=0.02):
        import psutil

        self.process = psutil.Process()
        self.interval = interval
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def reset(self):
        """Start a new phase: the peak restarts at the current RSS."""
        self.peak = self.process.memory_info().rss

    def read(self):
        self.peak = max(self.peak, self.process.memory_info().rss)
        return self.peak

    def stop(self):
        self._stop.set()


def kernel_peak_rss():
    """The kernel's peak RSS of this process in bytes (``ru_maxrss``; catches spikes between samples)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# -- the child side -------------------------------------------------------------------------------


def configure_threads(intra_op_threads, inter_op_threads):
    """Set TF's thread pools; must run before TF executes anything in this process."""
    import tensorflow as tf

    threading_config = tf.config.threading
    # Setting a value equal to the current one is skipped: TF refuses any set after start-up.
    if threading_config.get_intra_op_parallelism_threads() != int(intra_op_threads):
        threading_config.set_intra_op_parallelism_threads(int(intra_op_threads))
    if threading_config.get_inter_op_parallelism_threads() != int(inter_op_threads):
        threading_config.set_inter_op_parallelism_threads(int(inter_op_threads))
    return dict(intra_op=threading_config.get_intra_op_parallelism_threads(),
                inter_op=threading_config.get_inter_op_parallelism_threads())


def check_image_size(dataset, image_size):
    """ValueError naming both sizes when the dataset's frames are not ``image_size`` square."""
    height, width = dataset.image_shape[:2]
    if (height, width) != (image_size, image_size):
        raise ValueError(f"--image_size {image_size} but the records in {dataset.input_dir!r} hold "
                         f"{height}x{width} frames")


def _timed_calls(fn, steps, max_seconds, min_steps=3):
    times, start = [], time.perf_counter()
    while len(times) < steps and (len(times) < min_steps or time.perf_counter() - start < max_seconds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


class ModelBench:
    """One configuration inside a child process: the model, its train function and a fixed batch."""

    def __init__(self, variant, settings):
        self.variant, self.settings = variant, settings
        self.threads = configure_threads(settings.intra_op_threads, settings.inter_op_threads)
        self.memory = PeakRSS()
        import keras
        import tensorflow as tf

        from video_prediction import training

        keras.utils.set_random_seed(settings.seed)
        self.dataset = training.build_dataset(variant.dataset, settings.input_dir, "train",
                                              variant.dataset_hparams_dict, settings.dataset_overrides(),
                                              seed=settings.seed)
        check_image_size(self.dataset, settings.image_size)
        self.strategy = training.make_strategy(settings.strategy)
        with self.strategy.scope():
            self.model = training.build_model(variant.model, self.dataset, variant.model_hparams_dict,
                                              f"batch_size={settings.batch_size}")
        self.batch = training.first_batch(self.dataset, settings.batch_size)
        self.info = dict(
            threads=self.threads, batch_size=settings.batch_size,
            context_frames=self.model.context_frames, sequence_length=self.model.sequence_length,
            image_shape=list(self.dataset.image_shape), trainable=bool(self.model.trainable_model),
            jit_compile=settings.jit_compile, params=0)
        if self.model.trainable_model:
            with self.strategy.scope():
                self.model.build_from_batch(self.batch)
                self.model.make_optimizers(jit_compile=settings.jit_compile)
                self.model.build_optimizers()
            self.model.make_train_function()
            fixed = tf.data.Dataset.from_tensors(self.batch).repeat()
            self._iterator = iter(self.strategy.experimental_distribute_dataset(fixed))
            self.info["params"] = int(sum(int(tf.size(v)) for v in self.model.trainable_variables))
            self.memory.reset()
            t0 = time.perf_counter()
            self._train_step()
            self.info["first_step_seconds"] = time.perf_counter() - t0  # tracing (+ XLA compile) + one step
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
        times = _timed_calls(self._train_step, steps, max_seconds, min_steps)
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
        times = _timed_calls(call, calls, max_seconds, min_steps)
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


def _serve(bench_class, args, conn):
    """Child process main: build ``bench_class(*args)``, then answer ``(method, kwargs)`` until ``close``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        bench = bench_class(*args)
        conn.send(("ok", bench.get_info()))
        while True:
            method, kwargs = conn.recv()
            if method == "close":
                break
            conn.send(("ok", getattr(bench, method)(**kwargs)))
    except BaseException:  # noqa: B902 - reported to the parent, which raises
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class Worker:
    """A child process holding one bench object; ``call(method, **kwargs)`` runs a method there."""

    def __init__(self, bench_class, *args, label="worker"):
        context = multiprocessing.get_context("spawn")
        self.label = label
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(bench_class, args, child), daemon=True)
        self.process.start()
        child.close()
        self.info = self._receive()

    def _receive(self):
        try:
            status, value = self.conn.recv()
        except EOFError:
            self.process.join(5)
            raise BenchmarkError(f"{self.label}: the child process died (exit code {self.process.exitcode}); "
                                 "out of memory?") from None
        if status == "error":
            self.process.join(5)
            raise BenchmarkError(f"{self.label} failed in its child process:\n{value}")
        return value

    def call(self, method, **kwargs):
        self.conn.send((method, kwargs))
        return self._receive()

    def close(self):
        if self.process.is_alive():
            try:
                self.conn.send(("close", {}))
            except (BrokenPipeError, OSError):
                pass
            self.process.join(3)  # a TF process can take long to exit; everything was already reported
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ReferenceProcess:
    """An external train-step timer speaking the line protocol of the module docstring."""

    def __init__(self, command, label="reference"):
        self.label = label
        self.command = command
        self.process = subprocess.Popen(shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, bufsize=1)
        self.info = self._read_json("ready")

    def _read_json(self, key):
        for line in self.process.stdout:
            text = line.strip()
            if text.startswith("{"):
                message = json.loads(text)
                if key in message:
                    return message
            print(f"[{self.label}] {text}", file=sys.stderr)
        code = self.process.wait()
        raise BenchmarkError(f"{self.label} command exited (code {code}) before answering: {self.command}")

    def train(self, steps):
        self.process.stdin.write(f"{int(steps)}\n")
        self.process.stdin.flush()
        return self._read_json("times")["times"]

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                self.process.wait(5)


# -- measurements (parent side) --------------------------------------------------------------------


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


def compare_with_reference(variant, settings, reference_command, rounds=3, steps_per_round=3, profile_steps=0,
                           worker=None, log=print):
    """Interleaved train-step times of ours and an external reference under the same conditions.

    Both are built and warmed up first (one after the other), then each round
    runs ``steps_per_round`` steps of one and then of the other, alternating
    who goes first.  Returns per-turn times with the load average before each
    turn, both medians and ``ratio`` = ours / reference (below 1: ours is faster);
    then our input-pipeline rate, memory and (``profile_steps``) top ops.  ``worker``:
    an already built :class:`Worker` for ``variant`` (left open), else one is made.
    """
    label = f"{variant.label} (jit_compile={settings.jit_compile})"
    log(f"reference comparison: building {label} ...")
    with contextlib.nullcontext(worker) if worker else Worker(ModelBench, variant, settings, label=label) as ours:
        log(f"reference comparison: starting {reference_command}")
        reference = ReferenceProcess(reference_command)
        try:
            turns = interleave([("ours", _steps_of(ours)), ("reference", reference.train)], rounds,
                               steps_per_round, log)
        finally:
            reference.close()
        extra = dict(pipeline_examples_per_second=ours.call("pipeline", batches=50),
                     memory=ours.call("memory_figures"))
        if profile_steps:
            extra["profile"] = ours.call("profile", steps=profile_steps)
        info = ours.call("get_info")
    ours_times = [t for turn in turns if turn["who"] == "ours" for t in turn["times"]]
    reference_times = [t for turn in turns if turn["who"] == "reference" for t in turn["times"]]
    ours_summary, reference_summary = summarize(ours_times), summarize(reference_times)
    return dict(variant=dataclasses.asdict(variant), command=reference_command, ours_info=info,
                reference_info=reference.info, turns=turns, ours=ours_summary, reference=reference_summary, **extra,
                ratio=ours_summary["median"] / reference_summary["median"])


def _steps_of(worker):
    return lambda n: worker.call("train", steps=n, max_seconds=1e9, min_steps=n)


def interleave(runners, rounds, steps_per_round, log=print):
    """Take turns: each round runs ``steps_per_round`` steps of every ``(name, run)``, alternating who starts.

    Returns one dict per turn with the step times and the load average before and after it.
    """
    turns = []
    for round_index in range(rounds):
        order = runners if round_index % 2 == 0 else runners[::-1]
        for name, run in order:
            load = os.getloadavg()
            times = run(steps_per_round)
            turns.append(dict(round=round_index, who=name, times=times, loadavg=load, loadavg_after=os.getloadavg()))
            log(f"  round {round_index} {name}: median {statistics.median(times):.3f} s/step (load {load[0]:.2f})")
    return turns


def compare_jit(variant, settings, rounds=3, steps_per_round=2, log=print):
    """Train-step times with and without ``jit_compile``, interleaved like :func:`compare_with_reference`.

    Returns the turns, per-setting summaries, each setting's first step (tracing /
    XLA compilation) and ``speedup`` = median without jit / median with jit.
    """
    builds = {}
    with contextlib.ExitStack() as stack:
        for jit in (False, True):
            label = f"{variant.label} (jit_compile={jit})"
            log(f"jit comparison: building {label} ...")
            builds[jit] = stack.enter_context(Worker(ModelBench, variant, dataclasses.replace(settings, jit_compile=jit),
                                                     label=label))
        turns = interleave([("no_jit", _steps_of(builds[False])), ("jit", _steps_of(builds[True]))], rounds,
                           steps_per_round, log)
        infos = {jit: worker.call("get_info") for jit, worker in builds.items()}
    summaries = {name: summarize([t for turn in turns if turn["who"] == name for t in turn["times"]])
                 for name in ("no_jit", "jit")}
    return dict(variant=dataclasses.asdict(variant), turns=turns, **summaries,
                first_step_seconds={"no_jit": infos[False]["first_step_seconds"],
                                    "jit": infos[True]["first_step_seconds"]},
                losses_after_warmup={"no_jit": infos[False]["loss_after_warmup"],
                                     "jit": infos[True]["loss_after_warmup"]},
                speedup=summaries["no_jit"]["median"] / summaries["jit"]["median"])


class EvaluationBench:
    """Evaluation throughput inside a child process: per-frame metrics, ``evaluate()`` and FVD."""

    def __init__(self, settings, dataset_name="moving_mnist"):
        self.threads = configure_threads(settings.intra_op_threads, settings.inter_op_threads)
        import keras

        from video_prediction import training

        keras.utils.set_random_seed(settings.seed)
        self.settings = settings
        self.dataset = training.build_dataset(dataset_name, settings.input_dir, "test",
                                              hparams=settings.dataset_overrides(), seed=settings.seed, num_epochs=1)
        self.model = training.build_model("repeat", self.dataset)

    def get_info(self):
        return dict(threads=self.threads, sequence_length=self.dataset.sequence_length,
                    context_frames=self.dataset.context_frames, image_shape=list(self.dataset.image_shape))

    def metric_rates(self, names, batch_size=8, calls=5, max_seconds=20.0):
        """Frames per second of each per-frame metric on ``[B, T-C, H, W, C]`` videos (eager, as evaluate runs it)."""
        import tensorflow as tf

        from video_prediction import training
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
            times = _timed_calls(lambda: metric(targets, predictions).numpy(), calls, max_seconds)
            rates[name] = dict(frames_per_second=frames / statistics.median(times), **summarize(times))
        return rates

    def evaluate_rate(self, metric_names=("psnr", "ssim"), batch_size=8, num_videos=64):
        """Videos per second of ``evaluation.evaluate`` with the ``repeat`` baseline (pipeline + metrics)."""
        from video_prediction import evaluation

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

        from video_prediction import training
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


# -- data, machine, report ---------------------------------------------------------------------------


def ensure_moving_mnist(output_dir, image_size=64, num_train=256, num_test=64, sequence_length=60):
    """A small Moving MNIST record set for the benchmark (written once; reused when its settings match)."""
    from video_prediction.datasets.moving_mnist import write_moving_mnist

    write_moving_mnist(output_dir, {"train": num_train, "val": 8, "test": num_test},
                       sequence_length=sequence_length, canvas_size=image_size, progress=False)
    return output_dir


def git_commit(directory=REPO_DIR):
    """``{commit, dirty}`` of the checkout holding the code (dirty: tracked files differ from HEAD)."""
    def run(*args):
        return subprocess.run(["git", "-C", directory, *args], capture_output=True, text=True, check=False)

    head = run("rev-parse", "HEAD")
    if head.returncode != 0:
        return dict(commit=None, dirty=None)
    dirty = run("diff", "--quiet", "HEAD", "--", "video_prediction", "scripts", "hparams").returncode != 0
    return dict(commit=head.stdout.strip(), dirty=dirty)


def machine_info():
    """Machine, software versions and the git commit (TensorFlow is not imported here)."""
    import psutil

    cpu_model = None
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    versions = {}
    for package in ("tensorflow", "keras", "numpy", "psutil"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return dict(
        platform=platform.platform(), machine=platform.machine(), cpu_model=cpu_model,
        logical_cpus=os.cpu_count(), usable_cpus=len(os.sched_getaffinity(0)),
        memory_bytes=psutil.virtual_memory().total, python=platform.python_version(), versions=versions,
        loadavg=os.getloadavg(), time_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        env={k: os.environ[k] for k in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                                        "TF_ENABLE_ONEDNN_OPTS") if k in os.environ},
        **git_commit())


def _ms(summary):
    if not summary:
        return "-"
    return f"{summary['median'] * 1e3:.0f} ({summary['min'] * 1e3:.0f}-{summary['max'] * 1e3:.0f})"


def format_table(results):
    """A plain-text table: one row per variant, no-jit and jit train steps side by side."""
    by_label = {}
    for result in results:
        by_label.setdefault(result["variant"]["label"], {})[bool(result["jit_compile"])] = result
    header = (f"{'variant':<30} {'params':>9} {'B x T':>7} {'step ms, no jit':>18} {'step ms, jit':>18} "
              f"{'train fr/s':>10} {'gen fr/s':>9} {'peak RSS MB':>11} {'input ex/s':>10} {'used ex/s':>9}")
    lines = [header, "-" * len(header)]
    for label, runs in by_label.items():
        base = runs.get(False) or runs.get(True)
        jit = runs.get(True)
        steps = [r for r in runs.values() if r.get("train_step")]
        fastest = min(steps, key=lambda r: r["train_step"]["median"]) if steps else None
        peak = max(r["memory"]["peak_rss_kernel"] for r in runs.values()) / 2**20
        used = fastest["train_examples_per_second"] if fastest else None
        lines.append(
            f"{label:<30} {base['params']:>9,} {base['batch_size']:>2} x {base['sequence_length']:<2} "
            f"{_ms(runs.get(False, {}).get('train_step')):>18} {_ms(jit.get('train_step') if jit else None):>18} "
            f"{(fastest['train_frames_per_second'] if fastest else 0):>10.1f} "
            f"{(base['generate_frames_per_second'] or 0):>9.1f} {peak:>11.0f} "
            f"{base['pipeline_examples_per_second']:>10.1f} {(used or 0):>9.2f}")
    return "\n".join(lines)


def format_evaluation(evaluation):
    lines = []
    for name, rate in evaluation.get("per_frame_metrics", {}).items():
        text = rate.get("skipped") or f"{rate['frames_per_second']:.0f} frames/s"
        lines.append(f"{name:<6} {text}")
    e2e = evaluation.get("evaluate_psnr_ssim")
    if e2e:
        lines.append(f"evaluate() repeat baseline, psnr+ssim: {e2e['videos_per_second']:.1f} videos/s")
    fvd = evaluation.get("fvd")
    if fvd:
        lines.append("fvd    " + (fvd.get("skipped") or f"{fvd['videos_per_second']:.2f} videos/s (I3D embedding)"))
    return "\n".join(lines)


def run_benchmark(variants, settings, jit_values=(False, True), steps=10, max_seconds=120.0, generate_calls=5,
                  profile_steps=0, evaluation=True, reference_command=None, reference_rounds=3, reference_steps=3,
                  measure=True, jit_rounds=0, output=None, command=None, log=print):
    """Measure every variant for every ``jit_values`` entry (plus evaluation and the reference comparison).

    Returns the report dict; with ``output`` it is also written (and rewritten
    after every configuration, so a long run leaves partial results).
    """
    payload = dict(machine=machine_info(), command=command, settings=dataclasses.asdict(settings), results=[])
    for variant in variants if measure else ():
        for jit in jit_values:
            try:
                payload["results"].append(measure_variant(
                    variant, dataclasses.replace(settings, jit_compile=jit), steps=steps, max_seconds=max_seconds,
                    generate_calls=generate_calls, profile_steps=0 if jit else profile_steps, log=log))
            except BenchmarkError as e:  # one broken configuration must not lose the others' figures
                log(str(e))
                payload.setdefault("failures", []).append(dict(variant=dataclasses.asdict(variant), jit_compile=jit,
                                                               error=str(e)))
            if output:
                write_report(output, payload)
    if jit_rounds:
        payload["jit_comparison"] = compare_jit(variants[0], settings, rounds=jit_rounds,
                                                steps_per_round=reference_steps, log=log)
        if output:
            write_report(output, payload)
    if evaluation:
        payload["evaluation"] = measure_evaluation(settings, log=log)
    if reference_command:
        payload["reference"] = compare_with_reference(
            variants[0], dataclasses.replace(settings, jit_compile=jit_values[0]), reference_command,
            rounds=reference_rounds, steps_per_round=reference_steps, profile_steps=profile_steps, log=log)
    payload["machine"]["loadavg_end"] = os.getloadavg()
    if output:
        write_report(output, payload)
    return payload


def format_report(payload):
    """The printed summary of a report: the table, evaluation rates and the reference ratio."""
    parts = [format_table(payload["results"])] if payload["results"] else []
    for failure in payload.get("failures", []):
        last_line = failure["error"].strip().splitlines()[-1]
        parts.append(f"FAILED {failure['variant']['label']} (jit_compile={failure['jit_compile']}): {last_line}")
    if "evaluation" in payload:
        parts.append(format_evaluation(payload["evaluation"]))
    if "jit_comparison" in payload:
        jit = payload["jit_comparison"]
        parts.append(f"jit_compile (interleaved): {jit['no_jit']['median']:.3f} s/step without, "
                     f"{jit['jit']['median']:.3f} s/step with, speedup {jit['speedup']:.2f}x "
                     f"(first step {jit['first_step_seconds']['no_jit']:.0f} s / {jit['first_step_seconds']['jit']:.0f} s)")
    if "reference" in payload:
        ref = payload["reference"]
        parts.append(f"reference: ours {ref['ours']['median']:.3f} s/step, reference "
                     f"{ref['reference']['median']:.3f} s/step, ratio ours/reference {ref['ratio']:.2f}")
    return "\n".join(parts)


def write_report(path, payload):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, default=float)
    os.replace(tmp, path)
