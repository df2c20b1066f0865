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

An external reference (e.g. the original PyTorch implementation in a throwaway
environment) is compared *interleaved* (``reference.py``).

Modules: ``variants.py`` (what to measure), ``processes.py`` (child processes,
memory, turns), ``model_steps.py`` (train / generate / input pipeline of one
configuration, jit vs no jit), ``reference.py`` (the external reference),
``evaluation_throughput.py`` (metrics, ``evaluate()``, FVD), ``report.py`` (a whole
run, the JSON report and the printed table).  The names below are the public API.
"""

from video_prediction.benchmark.evaluation_throughput import EvaluationBench, measure_evaluation
from video_prediction.benchmark.model_steps import (ModelBench, check_image_size, compare_jit, compare_settings,
                                                    measure_variant, measure_worker, top_ops_from_trace)
from video_prediction.benchmark.processes import (PeakRSS, Worker, configure_threads, interleave, kernel_peak_rss,
                                                 process_cpu_seconds, side_summary)
from video_prediction.benchmark.reference import ReferenceProcess, compare_with_reference
from video_prediction.benchmark.report import (ensure_moving_mnist, format_evaluation, format_report, format_table,
                                               git_commit, machine_info, run_benchmark, write_report)
from video_prediction.benchmark.variants import (DEFAULT_HPARAMS_DIR, MODEL_DATASETS, REPO_DIR, VARIANT_PREFIXES,
                                                 BenchmarkError, Settings, Variant, default_models, find_variants,
                                                 summarize)
