"""scripts/benchmark.py's library: variant discovery, child-process measurements, the reference protocol.

Timings are never asserted on (the machine is shared); only that every figure is
measured, positive and reported.
"""

import dataclasses
import json
import os
import sys

import pytest

from video_prediction import benchmark
from video_prediction.datasets.moving_mnist import write_moving_mnist

HPARAMS_DIR = os.path.join(os.path.dirname(__file__), "..", "hparams", "moving_mnist")
SAVP_VARIANTS = ["ours_deterministic_l1", "ours_deterministic_l2", "ours_gan", "ours_savp", "ours_vae_l1",
                 "ours_vae_l2"]


def test_find_variants_expands_families_and_picks_single_sets():
    variants = benchmark.find_variants(["savp", "mspred", "repeat", "savp:ours_gan"], HPARAMS_DIR)
    labels = [v.label for v in variants]
    assert labels == [f"savp:{name}" for name in SAVP_VARIANTS] + ["mspred", "repeat", "savp:ours_gan"]
    mspred = variants[len(SAVP_VARIANTS)]
    assert mspred.dataset == "mspred_moving_mnist" and mspred.dataset_hparams_dict.endswith(
        os.path.join("mspred", "dataset_hparams.json"))
    assert variants[0].dataset == "moving_mnist" and variants[0].dataset_hparams_dict is None
    repeat = variants[len(SAVP_VARIANTS) + 1]
    assert repeat.model_hparams_dict is None  # weightless: class defaults


def test_default_models_come_from_the_registry():
    names = benchmark.default_models()
    assert {"savp", "mspred", "repeat", "epva", "vqvae"} <= set(names) and "ground_truth" not in names
    assert not set(names) & {"hierarchical_pose", "vqvae_transformer"}  # they need trained runs to build


def test_a_failing_configuration_is_reported_and_the_run_goes_on(monkeypatch, tmp_path):
    def measure(variant, settings, **kwargs):
        if variant.label == "broken":
            raise benchmark.BenchmarkError("broken failed in its child process:\nValueError: bad record")
        return dict(variant=dataclasses.asdict(variant), jit_compile=settings.jit_compile)

    monkeypatch.setattr(benchmark.report, "measure_variant", measure)  # what run_benchmark calls
    variants = [benchmark.Variant("broken", "savp", "moving_mnist"), benchmark.Variant("fine", "repeat", "moving_mnist")]
    payload = benchmark.run_benchmark(variants, benchmark.Settings(input_dir=str(tmp_path)), jit_values=(False,),
                                      evaluation=False, output=str(tmp_path / "report.json"), log=lambda *_: None)
    assert [r["variant"]["label"] for r in payload["results"]] == ["fine"]
    assert payload["failures"][0]["variant"]["label"] == "broken"
    assert json.loads((tmp_path / "report.json").read_text())["machine"]["usable_cpus"] >= 1
    assert "FAILED broken (jit_compile=False): ValueError: bad record" in benchmark.format_report(
        dict(payload, results=[]))


def test_find_variants_bad_names():
    with pytest.raises(ValueError, match="unknown model 'savpp'; valid models: .*savp"):
        benchmark.find_variants(["savpp"], HPARAMS_DIR)
    with pytest.raises(ValueError, match="no hparams directory 'ours_nothing'"):
        benchmark.find_variants(["savp:ours_nothing"], HPARAMS_DIR)


def test_summarize_and_missing_trace(tmp_path):
    assert benchmark.summarize([3.0, 1.0, 2.0]) == dict(median=2.0, min=1.0, max=3.0, mean=2.0, n=3)
    assert benchmark.summarize([]) is None
    with pytest.raises(FileNotFoundError, match="no .*xplane.pb profiler trace"):
        benchmark.top_ops_from_trace(str(tmp_path))


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    """32x32 records, a tiny SAVP (deterministic, GAN off) and one child process holding it."""
    root = tmp_path_factory.mktemp("bench")
    records = str(root / "records")
    write_moving_mnist(records, {"train": 4, "val": 2, "test": 4}, sequence_length=6, canvas_size=32, progress=False)
    with open(os.path.join(HPARAMS_DIR, "ours_deterministic_l1", "model_hparams.json")) as f:
        values = json.load(f)
    values.update(ngf=4, nef=4)
    (root / "hparams.json").write_text(json.dumps(values))
    variant = benchmark.Variant(label="savp:tiny", model="savp", dataset="moving_mnist",
                                model_hparams_dict=str(root / "hparams.json"))
    settings = benchmark.Settings(input_dir=records, batch_size=2, image_size=32, context_frames=2,
                                  sequence_length=4, warmup_steps=1, model_hparams="time_loop=python")
    with benchmark.Worker(benchmark.ModelBench, variant, settings, label="tiny") as worker:
        yield variant, settings, root, worker


def test_measure_in_a_child_process(tiny_setup):
    variant, settings, _, worker = tiny_setup
    result = benchmark.measure_worker(worker, variant, settings, steps=3, max_seconds=30, generate_calls=3,
                                      pipeline_batches=5, profile_steps=1)
    assert result["threads"] == dict(intra_op=2, inter_op=0)
    assert result["params"] > 0 and result["sequence_length"] == 4 and result["batch_size"] == 2
    assert result["train_step"]["n"] == 3 and 0 < result["train_step"]["min"] <= result["train_step"]["median"]
    assert result["train_frames_per_second"] > 0 and result["generate_frames_per_second"] > 0
    assert result["pipeline_examples_per_second"] > 0 and result["first_step_seconds"] > 0
    # time to first step (issue 18): wall and CPU seconds of trace + first step, the load before it
    assert result["first_step_cpu_seconds"] > 0 and len(result["first_step_loadavg"]) == 3
    assert result["build_seconds"] > 0
    assert settings.model_overrides() == "batch_size=2,time_loop=python" and result["time_loop"] == "python"
    assert result["memory"]["peak_rss_kernel"] >= result["memory"]["train_peak_rss"] > 0
    ops = result["profile"]["top_ops"]
    assert ops and all(op["self_seconds"] > 0 for op in ops) and any("Conv" in op["op"] for op in ops)
    assert not any("::" in op["op"] or "EagerLocalExecute" in op["op"] for op in ops)  # op types only
    table = benchmark.format_table([result])
    assert "savp:tiny" in table and "input ex/s" in table and "1st step s" in table
    assert f"{result['first_step_seconds']:.1f}" in table.splitlines()[-1]


def test_a_failing_child_raises_with_its_traceback():
    # int("bad input") fails while being "built", as a bad configuration does (and needs no TF in the child)
    with pytest.raises(benchmark.BenchmarkError, match="(?s)broken failed in its child.*ValueError: invalid literal"):
        benchmark.Worker(int, "bad input", label="broken")


FAKE_REFERENCE = """
import json, sys, time
print("loading the reference ...", flush=True)
print(json.dumps({"ready": True, "params": 1}), flush=True)
for line in sys.stdin:
    times = []
    for _ in range(int(line)):
        t0 = time.perf_counter(); time.sleep(0.05); times.append(time.perf_counter() - t0)
    print(json.dumps({"times": times}), flush=True)
"""


def test_reference_comparison_alternates_turns(tiny_setup):
    variant, settings, root, worker = tiny_setup
    script = root / "fake_reference.py"
    script.write_text(FAKE_REFERENCE)
    result = benchmark.compare_with_reference(variant, settings, f"{sys.executable} {script}", rounds=2,
                                              steps_per_round=2, worker=worker, log=lambda *_: None,
                                              min_cpu_share=0.0)  # the fake reference sleeps: no clean turn
    assert [turn["who"] for turn in result["turns"]] == ["ours", "reference", "reference", "ours"]
    assert all(len(turn["times"]) == 2 and len(turn["loadavg"]) == 3 for turn in result["turns"])
    assert result["reference"]["n"] == 4 and result["reference"]["min"] >= 0.05
    assert result["ratio"] == pytest.approx(result["ours"]["median"] / result["reference"]["median"])
    assert result["reference_info"]["params"] == 1 and result["pipeline_examples_per_second"] > 0
    # each side's CPU share is measured per turn (the fake reference sleeps: ~0 cores)
    assert all("cpu_share" in turn for turn in result["turns"]) and result["reference"]["cpu_share"] < 0.5


def test_settings_comparison_runs_both_sides_interleaved(tiny_setup, tmp_path):
    variant, settings, _, _ = tiny_setup
    payload = benchmark.run_benchmark([variant], settings, measure=False, evaluation=False, reference_steps=1,
                                      compare={"model_hparams": "time_loop=while"}, compare_rounds=1,
                                      min_cpu_share=0.0, output=str(tmp_path / "ab.json"), log=lambda *_: None)
    ab = payload["comparison"]
    assert [turn["who"] for turn in ab["turns"]] == ["a", "b"] and ab["sides"] == ["a", "b"]
    assert ab["settings"]["a"]["model_hparams"] == "time_loop=python"
    assert ab["settings"]["b"]["model_hparams"] == "time_loop=while" and ab["changed"] == {"model_hparams": "time_loop=while"}
    assert ab["ratio"] == pytest.approx(ab["b"]["median"] / ab["a"]["median"])
    assert all(ab["peak_rss"][side] > 0 and ab["first_step_cpu_seconds"][side] > 0 for side in "ab")
    assert "ratio b/a" in benchmark.format_report(payload)
    assert json.loads((tmp_path / "ab.json").read_text())["comparison"]["ratio"] == ab["ratio"]


def test_interleave_alternates_who_starts():
    calls = []
    runners = [(name, lambda n, name=name: calls.append(name) or [0.01] * n) for name in ("a", "b")]
    turns = benchmark.interleave(runners, rounds=3, steps_per_round=2, log=lambda *_: None)
    assert calls == ["a", "b", "b", "a", "a", "b"] and [t["round"] for t in turns] == [0, 0, 1, 1, 2, 2]
    assert all(t["times"] == [0.01, 0.01] and len(t["loadavg_after"]) == 3 for t in turns)


def test_turns_with_too_little_cpu_are_flagged_repeated_and_left_out(monkeypatch):
    from video_prediction.benchmark import processes

    # pid 1 never gets CPU (another job holds the cores), pid 2 gets plenty: a fake CPU clock per pid
    clock = {1: 0.0, 2: 0.0}

    def cpu_seconds(pid):
        clock[pid] += 0.0 if pid == 1 else 10.0
        return clock[pid]

    monkeypatch.setattr(processes, "process_cpu_seconds", cpu_seconds)
    runners = [(name, lambda n: [0.01] * n, pid) for name, pid in (("starved", 1), ("busy", 2))]
    turns = benchmark.interleave(runners, rounds=2, steps_per_round=1, log=lambda *_: None, min_cpu_share=1.8,
                                 max_repeats=2)
    starved = [t for t in turns if t["who"] == "starved"]
    busy = [t for t in turns if t["who"] == "busy"]
    assert len(starved) == 2 * 3 and not any(t["clean"] for t in starved)  # each turn tried 1 + 2 times
    assert [t["attempt"] for t in starved] == [0, 1, 2, 0, 1, 2]
    assert len(busy) == 2 and all(t["clean"] and t["cpu_share"] > 1.8 for t in busy)
    summary = processes.side_summary(turns, "starved")
    assert summary["only_unclean_turns"] and summary["dropped_turns"] == 6 and summary["cpu_share"] == 0.0
    summary = processes.side_summary(turns, "busy")
    assert not summary["only_unclean_turns"] and summary["dropped_turns"] == 0 and summary["n"] == 2
    # without a pid nothing is measured and every turn counts
    turns = benchmark.interleave([("a", lambda n: [0.01] * n)], 1, 1, log=lambda *_: None, min_cpu_share=1.8)
    assert turns[0]["clean"] and "cpu_share" not in turns[0]


def test_reference_that_exits_early_is_reported():
    with pytest.raises(benchmark.BenchmarkError, match="exited .*before answering"):
        benchmark.ReferenceProcess(f"{sys.executable} -c 'print(1)'")


def test_evaluation_rates_and_image_size_check_in_process(tiny_setup):
    _, settings, _, _ = tiny_setup
    import tensorflow as tf  # in this process: keep whatever thread settings it already runs with

    in_process = dataclasses.replace(settings, intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
                                     inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads())
    bench = benchmark.EvaluationBench(in_process)
    rates = bench.metric_rates(["psnr", "ssim"], batch_size=2, calls=3)
    assert rates["psnr"]["frames_per_second"] > 0 and rates["ssim"]["frames_per_second"] > 0
    e2e = bench.evaluate_rate(batch_size=2, num_videos=4)
    assert e2e["videos"] == 4 and e2e["videos_per_second"] > 0
    assert "skipped" in bench.metric_rates(["nothing"], batch_size=2)["nothing"]  # reported, not fatal
    with pytest.raises(ValueError, match="--image_size 64 but the records .* hold 32x32"):
        benchmark.check_image_size(bench.dataset, 64)
