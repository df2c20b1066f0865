"""Child processes that hold one configuration each, their peak memory, and turns taken between them."""

import multiprocessing
import os
import statistics
import threading
import time
import traceback

from video_prediction.benchmark.variants import BenchmarkError


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


def timed_calls(fn, steps, max_seconds, min_steps=3):
    times, start = [], time.perf_counter()
    while len(times) < steps and (len(times) < min_steps or time.perf_counter() - start < max_seconds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


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


def steps_of(worker):
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
