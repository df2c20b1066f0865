"""Child processes that hold one configuration each, their peak memory, and turns taken between them."""

import multiprocessing
import os
import statistics
import threading
import time
import traceback

from video_prediction.benchmark.variants import BenchmarkError, summarize


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


def process_cpu_seconds(pid):
    """User + system CPU seconds used so far by process ``pid`` (all its threads; psutil)."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def interleave(runners, rounds, steps_per_round, log=print, min_cpu_share=0.0, max_repeats=3):
    """Take turns: each round runs ``steps_per_round`` steps of every runner, alternating who starts.

    A runner is ``(name, run)`` or ``(name, run, pid)``; ``run(n)`` returns n step times.  Returns one
    dict per turn with the step times and the load average before and after it; with a ``pid``, also the
    process' CPU seconds over the turn's wall seconds (``cpu_share``: 2.0 = two cores busy all along).
    A turn whose share is below ``min_cpu_share`` got fewer cores than it asked for (another job held
    one): it is kept with ``clean: False`` and run again, up to ``max_repeats`` more times, so that
    comparisons can use clean turns only (:func:`clean_times`).
    """
    turns = []
    for round_index in range(rounds):
        order = runners if round_index % 2 == 0 else runners[::-1]
        for name, run, *pid in order:
            for attempt in range(1 + max(0, int(max_repeats))):
                turn = _timed_turn(round_index, name, run, pid[0] if pid else None, steps_per_round)
                turn["clean"] = turn.get("cpu_share", min_cpu_share) >= min_cpu_share
                turn["attempt"] = attempt
                turns.append(turn)
                share = f", {turn['cpu_share']:.2f} cores" if "cpu_share" in turn else ""
                flag = "" if turn["clean"] else f" -- below {min_cpu_share:.2f} cores: not clean"
                log(f"  round {round_index} {name}: median {statistics.median(turn['times']):.3f} s/step "
                    f"(load {turn['loadavg'][0]:.2f}{share}){flag}")
                if turn["clean"]:
                    break
    return turns


def _timed_turn(round_index, name, run, pid, steps):
    load, cpu_before, start = os.getloadavg(), process_cpu_seconds(pid) if pid else None, time.perf_counter()
    times = run(steps)
    turn = dict(round=round_index, who=name, times=times, loadavg=load, loadavg_after=os.getloadavg(),
                wall_seconds=time.perf_counter() - start)
    if pid:
        turn["cpu_seconds"] = process_cpu_seconds(pid) - cpu_before
        turn["cpu_share"] = turn["cpu_seconds"] / turn["wall_seconds"]
    return turn


def side_summary(turns, who):
    """:func:`summarize` of ``who``'s step times over its clean turns only, with ``dropped_turns`` (not
    clean), ``cpu_share`` (median over its clean turns, when measured) and ``only_unclean_turns`` (no
    clean turn at all: the figures are then from every turn and must not be reported as clean)."""
    mine = [turn for turn in turns if turn["who"] == who]
    clean = [turn for turn in mine if turn.get("clean", True)]
    summary = summarize([t for turn in clean or mine for t in turn["times"]])
    shares = [turn["cpu_share"] for turn in clean or mine if "cpu_share" in turn]
    summary.update(dropped_turns=len(mine) - len(clean), only_unclean_turns=not clean,
                   cpu_share=statistics.median(shares) if shares else None)
    return summary
