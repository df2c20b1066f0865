"""Train-step timer around the original SAVP TF1 graph, for ``scripts/benchmark.py --reference_command``.

Not part of the package: it builds the original ``SAVPVideoPredictionModel`` (github.com/alexlee-gk/video_prediction;
nothing of it is copied here) with its whole training graph (``build_graph``: generator, discriminators, losses,
the two Adam optimizers, the discriminator step first and the generator step against the updated
discriminator, spectral-norm ``u`` updates) under TF 2.21's ``tf.compat.v1``, through the stand-ins of
``tests/data/savp/original_tf1.py``.  Environment: the project's venv plus tf-slim 1.1.0 in a separate
directory, e.g.::

    pip install --target /tmp/tfslim tf-slim==1.1.0       # not in requirements.txt: only this timer needs it
    git clone https://github.com/alexlee-gk/video_prediction /tmp/savp_orig   # HEAD df43be5 was studied
    python scripts/benchmark.py --models savp:ours_savp --hparams_dir hparams/bair_action_free \\
      --batch_size 4 --context_frames 2 --sequence_length 12 --nomeasure --evaluation=false --jit_compile false \\
      --warmup_steps 1 --reference_rounds 3 --reference_steps 1 \\
      --reference_command "python benchmarks/references/savp_tf1.py --checkout /tmp/savp_orig \\
                           --tf_slim /tmp/tfslim --variant ours_savp --batch_size 4 --sequence_length 12 --channels 1"

One step is what the original's ``scripts/train.py`` runs per batch: ``sess.run({"global_step", "train_op"})``
(summaries and validation are off, as in its timed steps), on a fixed random batch kept in the graph as a
constant (speed does not depend on the values; ours also times a fixed batch).  Speaks the line protocol of
``video_prediction/benchmark/reference.py``: prints ``{"ready": ...}`` (with the graph-building and first-step
and CPU seconds: the original's time to first step, its peak RSS and the load average) after the first step,
then answers each input line ``N`` with ``{"times": [...], "peak_rss": bytes}`` for N steps.  The session uses
``--threads`` intra-op and ``--inter_op_threads`` inter-op threads (0: TensorFlow's default), as
``scripts/benchmark.py``'s own settings.  ``--channels 1`` matches the benchmark's Moving MNIST frames.

Checked: the original's graph has the same trainable parameter count as ours (17,527,479 for ``ours_savp`` at
64x64x1); the ``replace_read_ops`` stand-in rewires every discriminator weight read of the generator's loss
(32 of 32 for ``ours_savp``) to a read made after the discriminator's Adam step, as graph_editor did.
"""

import argparse
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def peak_rss():
    """This process' peak resident set size so far, bytes (the kernel's ru_maxrss)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", required=True, help="a checkout of alexlee-gk/video_prediction")
    parser.add_argument("--tf_slim", default=None, help="directory holding tf_slim 1.1.0 (pip install --target)")
    parser.add_argument("--variant", default="ours_savp", help="hparams directory name (ours_savp, ours_vae_l1, ...)")
    parser.add_argument("--hparams_dir", default=None,
                        help="directory of the variants' model_hparams.json (default: the checkout's "
                             "hparams/bair_action_free)")
    parser.add_argument("--model_hparams", default="{}", help="JSON dict of hparams applied after the file's")
    parser.add_argument("--batch_size", type=int, default=None, help="default: the variant's batch_size")
    parser.add_argument("--context_frames", type=int, default=2)
    parser.add_argument("--sequence_length", type=int, default=12)
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads")
    parser.add_argument("--inter_op_threads", type=int, default=0, help="inter-op threads (0: TF's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start, start_cpu = time.perf_counter(), time.process_time()
    # Our package shares the original's name: make sure it is not the one found.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != REPO]
    sys.path.insert(0, os.path.join(REPO, "tests", "data", "savp"))
    import numpy as np
    import original_tf1

    models = original_tf1.load_original(args.checkout, args.tf_slim)
    tf = original_tf1.v1
    hparams_dir = args.hparams_dir or os.path.join(args.checkout, "hparams", "bair_action_free")
    path = os.path.join(hparams_dir, args.variant, "model_hparams.json")
    if not os.path.isfile(path):
        sys.exit(f"no {path}: --variant names a directory of --hparams_dir")
    with open(path) as f:
        hparams = json.load(f)
    hparams.update(json.loads(args.model_hparams), context_frames=args.context_frames,
                   sequence_length=args.sequence_length)
    batch_size = args.batch_size or hparams.get("batch_size", 16)
    hparams["batch_size"] = batch_size
    tf.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    frames = rng.random((batch_size, args.sequence_length, args.image_size, args.image_size, args.channels),
                        dtype=np.float32)
    model = models.SAVPVideoPredictionModel(mode="train", hparams_dict=hparams)
    model.build_graph({"images": tf.constant(frames)})
    global_step = tf.train.get_or_create_global_step()
    fetches = {"global_step": global_step, "train_op": model.train_op}
    num_params = int(sum(np.prod(v.shape.as_list()) for v in tf.trainable_variables()))
    config = tf.ConfigProto(intra_op_parallelism_threads=args.threads,
                            inter_op_parallelism_threads=args.inter_op_threads)
    sess = tf.Session(config=config)
    sess.run(tf.global_variables_initializer())
    sess.run(tf.local_variables_initializer())
    build_seconds, build_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    first, first_cpu = time.perf_counter(), time.process_time()
    sess.run(fetches)  # warm-up (Grappler, allocations)
    first_step_seconds, first_step_cpu = time.perf_counter() - first, time.process_time() - first_cpu
    print(json.dumps({"ready": True, "params": num_params, "batch_size": batch_size,
                      "length": args.sequence_length, "variant": args.variant, "threads": args.threads,
                      "inter_op_threads": args.inter_op_threads, "build_seconds": round(build_seconds, 2),
                      "first_step_seconds": round(first_step_seconds, 2),
                      "time_to_first_step": round(build_seconds + first_step_seconds, 2),
                      "build_cpu_seconds": round(build_cpu, 2), "first_step_cpu_seconds": round(first_step_cpu, 2),
                      "peak_rss_after_first_step": peak_rss(), "loadavg": os.getloadavg(),
                      "tensorflow": tf.VERSION}), flush=True)
    for line in sys.stdin:
        times = []
        for _ in range(int(line)):
            step_start = time.perf_counter()
            sess.run(fetches)
            times.append(time.perf_counter() - step_start)
        print(json.dumps({"times": times, "peak_rss": peak_rss()}), flush=True)


if __name__ == "__main__":
    main()
