#!/usr/bin/env python
"""Fuzz a dataset's records: mutate them case by case, read strictly and with --skip_corrupt_records.

Prints a table of outcomes (mutation kind x outcome counts) and exits non-zero on any crash, hang or silently
wrong batch.  The expectation of each mutation kind: video_prediction/datasets/record_fuzzing.py.

    python scripts/fuzz_records.py --dataset moving_mnist --input_dir data/moving_mnist --count 1000 --seed 1
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

flags.DEFINE_string("dataset", None, "registered dataset name")
flags.DEFINE_string("input_dir", None, "records as written by data/download_and_preprocess_dataset.sh; the "
                    "test split is fuzzed (mutated copies are made in a temporary directory)")
flags.DEFINE_integer("count", 100, "number of cases (one mutation of one file each)")
flags.DEFINE_integer("seed", 0, "seed of the mutations")
flags.DEFINE_string("dataset_hparams", "", "dataset hparams, e.g. context_frames=2,sequence_length=4")
flags.DEFINE_float("timeout", 120.0, "seconds per case before it counts as a hang")
flags.mark_flags_as_required(["dataset", "input_dir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from video_prediction.datasets import record_fuzzing

    started = time.time()
    try:
        results = record_fuzzing.fuzz_records(FLAGS.dataset, FLAGS.input_dir, FLAGS.count, FLAGS.seed,
                                              hparams=FLAGS.dataset_hparams, timeout=FLAGS.timeout,
                                              log=lambda line: print(line, flush=True))
    except ValueError as e:
        sys.exit(f"error: {e}")
    print(f"{FLAGS.dataset}: {FLAGS.count} cases, seed {FLAGS.seed}, {time.time() - started:.0f} s")
    print(record_fuzzing.outcome_table(results))
    bad = record_fuzzing.failures(results)
    if bad:
        sys.exit(f"{len(bad)} of {len(results)} cases failed (crash, hang or a wrong batch or error)")


if __name__ == "__main__":
    app.run(main)
