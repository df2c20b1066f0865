"""Interleaved comparison with an external reference implementation (the line protocol).

The reference speaks a line protocol on stdin/stdout: it prints one JSON line
``{"ready": true, ...}`` when warmed up, then for every line ``N`` it reads it
runs N train steps and prints one JSON line ``{"times": [seconds per step, ...]}``;
it exits at end of input.  Other output lines are passed through to stderr.
Both processes are built and warmed up, then they take turns running the same
number of steps; the load average and each side's CPU share (its process' CPU seconds over the turn's
wall seconds) are recorded with every turn, and a turn in which a side got fewer cores than it runs
threads is flagged and repeated (:func:`video_prediction.benchmark.processes.interleave`).
"""

import contextlib
import dataclasses
import json
import shlex
import subprocess
import sys

from video_prediction.benchmark.model_steps import ModelBench
from video_prediction.benchmark.processes import Worker, interleave, side_summary, steps_of
from video_prediction.benchmark.variants import BenchmarkError


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


def compare_with_reference(variant, settings, reference_command, rounds=3, steps_per_round=3, profile_steps=0,
                           worker=None, log=print, min_cpu_share=None, max_repeats=3):
    """Interleaved train-step times of ours and an external reference under the same conditions.

    Both are built and warmed up first (one after the other), then each round
    runs ``steps_per_round`` steps of one and then of the other, alternating
    who goes first.  Returns per-turn times with the load average before each
    turn, both medians over clean turns and ``ratio`` = ours / reference (below 1: ours is faster);
    then our input-pipeline rate, memory and (``profile_steps``) top ops.  ``worker``:
    an already built :class:`Worker` for ``variant`` (left open), else one is made.
    ``min_cpu_share``: the CPU share below which a turn is not clean (default 0.9 x the intra-op
    threads: 1.8 cores for 2 threads); such turns are repeated up to ``max_repeats`` times.
    """
    if min_cpu_share is None:
        min_cpu_share = 0.9 * settings.intra_op_threads
    label = f"{variant.label} (jit_compile={settings.jit_compile})"
    log(f"reference comparison: building {label} ...")
    with contextlib.nullcontext(worker) if worker else Worker(ModelBench, variant, settings, label=label) as ours:
        log(f"reference comparison: starting {reference_command}")
        reference = ReferenceProcess(reference_command)
        try:
            turns = interleave([("ours", steps_of(ours), ours.process.pid),
                                ("reference", reference.train, reference.process.pid)], rounds, steps_per_round,
                               log, min_cpu_share=min_cpu_share, max_repeats=max_repeats)
        finally:
            reference.close()
        extra = dict(pipeline_examples_per_second=ours.call("pipeline", batches=50),
                     memory=ours.call("memory_figures"))
        if profile_steps:
            extra["profile"] = ours.call("profile", steps=profile_steps)
        info = ours.call("get_info")
    ours_summary, reference_summary = side_summary(turns, "ours"), side_summary(turns, "reference")
    return dict(variant=dataclasses.asdict(variant), command=reference_command, ours_info=info,
                min_cpu_share=min_cpu_share,
                reference_info=reference.info, turns=turns, ours=ours_summary, reference=reference_summary, **extra,
                ratio=ours_summary["median"] / reference_summary["median"])
