"""A whole benchmark run: every configuration, then the JSON report with the machine and the printed table."""

import dataclasses
import importlib.metadata
import json
import os
import platform
import subprocess
import time

from video_prediction.benchmark.evaluation_throughput import measure_evaluation
from video_prediction.benchmark.model_steps import compare_jit, compare_settings, measure_variant
from video_prediction.benchmark.reference import compare_with_reference
from video_prediction.benchmark.variants import REPO_DIR, BenchmarkError


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


def _first_step(result):
    """Time to first step (trace + first train step) in wall seconds, '-' for a model without training."""
    seconds = result.get("first_step_seconds")
    return "-" if seconds is None else f"{seconds:.1f}"


def format_table(results):
    """A plain-text table: one row per variant, no-jit and jit train steps side by side."""
    by_label = {}
    for result in results:
        by_label.setdefault(result["variant"]["label"], {})[bool(result["jit_compile"])] = result
    header = (f"{'variant':<30} {'params':>9} {'B x T':>7} {'1st step s':>10} {'step ms, no jit':>18} {'step ms, jit':>18} "
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
            f"{_first_step(base):>10} {_ms(runs.get(False, {}).get('train_step')):>18} {_ms(jit.get('train_step') if jit else None):>18} "
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
                  measure=True, jit_rounds=0, output=None, command=None, log=print, min_cpu_share=None,
                  max_turn_repeats=3, compare=None, compare_rounds=0):
    """Measure every variant for every ``jit_values`` entry (plus evaluation and the reference comparison).

    ``compare`` (a dict of :class:`~video_prediction.benchmark.variants.Settings` fields, e.g.
    ``{"model_hparams": "mixed_precision=bfloat16"}``) with ``compare_rounds`` > 0 also times the first
    variant under ``settings`` (side ``a``) and under ``settings`` with those fields replaced (side ``b``),
    interleaved (:func:`~video_prediction.benchmark.model_steps.compare_settings`).

    Returns the report dict; with ``output`` it is also written (and rewritten
    after every configuration, so a long run leaves partial results).  The interleaved comparisons
    (jit, reference) keep clean turns only: ``min_cpu_share`` / ``max_turn_repeats`` as in
    :func:`~video_prediction.benchmark.reference.compare_with_reference`.
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
                                                steps_per_round=reference_steps, log=log, min_cpu_share=min_cpu_share,
                                                max_repeats=max_turn_repeats)
        if output:
            write_report(output, payload)
    if compare and compare_rounds:
        payload["comparison"] = compare_settings(
            variants[0], settings, dataclasses.replace(settings, **compare), rounds=compare_rounds,
            steps_per_round=reference_steps, log=log, min_cpu_share=min_cpu_share, max_repeats=max_turn_repeats)
        payload["comparison"]["changed"] = dict(compare)
        if output:
            write_report(output, payload)
    if evaluation:
        payload["evaluation"] = measure_evaluation(settings, log=log)
    if reference_command:
        payload["reference"] = compare_with_reference(
            variants[0], dataclasses.replace(settings, jit_compile=jit_values[0]), reference_command,
            rounds=reference_rounds, steps_per_round=reference_steps, profile_steps=profile_steps, log=log,
            min_cpu_share=min_cpu_share, max_repeats=max_turn_repeats)
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
                     f"(first step {jit['first_step_seconds']['no_jit']:.0f} s / {jit['first_step_seconds']['jit']:.0f} s)"
                     + _clean_turns_note(jit, ("no_jit", "jit")))
    if "comparison" in payload:
        ab = payload["comparison"]
        changed = ", ".join(f"{key}={value}" for key, value in ab["changed"].items())
        parts.append(f"comparison (interleaved): a {ab['a']['median']:.3f} s/step, b ({changed}) "
                     f"{ab['b']['median']:.3f} s/step, ratio b/a {ab['ratio']:.2f}; first step "
                     f"{ab['first_step_seconds']['a']:.0f} s / {ab['first_step_seconds']['b']:.0f} s; peak RSS "
                     f"{ab['peak_rss']['a'] / 2**30:.2f} / {ab['peak_rss']['b'] / 2**30:.2f} GiB"
                     + _clean_turns_note(ab, ("a", "b")))
    if "reference" in payload:
        ref = payload["reference"]
        parts.append(f"reference: ours {ref['ours']['median']:.3f} s/step, reference "
                     f"{ref['reference']['median']:.3f} s/step, ratio ours/reference {ref['ratio']:.2f}"
                     + _clean_turns_note(ref, ("ours", "reference")))
    return "\n".join(parts)


def _clean_turns_note(comparison, sides):
    """How many turns each side lost for getting too little CPU, and each side's CPU share."""
    notes = []
    for side in sides:
        summary = comparison[side]
        share = f"{summary['cpu_share']:.2f} cores" if summary.get("cpu_share") is not None else "CPU not measured"
        notes.append(f"{side}: {share}, {summary.get('dropped_turns', 0)} turn(s) dropped"
                     + (", NO clean turn: not a clean figure" if summary.get("only_unclean_turns") else ""))
    return " [" + "; ".join(notes) + "]"


def write_report(path, payload):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, default=float)
    os.replace(tmp, path)
