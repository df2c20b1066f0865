"""Train-step timer around the official MSPred code, for ``scripts/benchmark.py --reference_command``.

Not part of the package: it runs the original PyTorch model, loss and optimizer step from a checkout of
github.com/AIS-Bonn/MSPred (nothing of it is copied here), in an environment with torch, e.g.::

    python -m venv /tmp/mspred_torch && /tmp/mspred_torch/bin/pip install torch==2.13.0 numpy
    git clone https://github.com/AIS-Bonn/MSPred /tmp/MSPred   # HEAD d245097 was studied
    python scripts/benchmark.py --models mspred --batch_size 4 --nomeasure --evaluation=false \\
      --jit_compile false --warmup_steps 1 --reference_rounds 3 --reference_steps 1 \\
      --reference_command "/tmp/mspred_torch/bin/python benchmarks/references/mspred_torch.py \\
                           --checkout /tmp/MSPred --batch_size 4 --threads 2"

One step is what the original's trainer (``src/02_train.py``, ``train_epoch``) does per batch: the forward
pass with the training context and per-level ``num_preds``, its KL loss and per-level pixel losses on the
masked targets weighted by ``alphas`` (+ ``beta`` x KL), ``zero_grad``, ``backward`` and the Adam step.
Inputs are random frames and random heatmap targets of the shapes the config implies (speed does not depend
on their values).  Speaks the line protocol of ``video_prediction/benchmark/reference.py``: prints
``{"ready": ...}`` after one untimed warm-up step, then answers each input line ``N`` with
``{"times": [...]}`` for N steps.  ``--bf16`` runs forward and loss under
``torch.autocast("cpu", dtype=torch.bfloat16)``.
"""

import argparse
import contextlib
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", required=True, help="a checkout of the original repository (holds src/)")
    parser.add_argument("--config", default="mmnist", help="mmnist | kth | synpick, or a JSON path")
    parser.add_argument("--overrides", default="{}", help="JSON dict merged into the config sections")
    parser.add_argument("--batch_size", type=int, default=None, help="default: the config's training batch size")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--flush_denormal", action="store_true", help="torch.set_flush_denormal(True) (TF's default)")
    parser.add_argument("--bf16", action="store_true", help="forward and loss under CPU autocast to bfloat16")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    src = os.path.join(args.checkout, "src")
    if not os.path.isfile(os.path.join(src, "models", "VideoPred_SpatioTempHierarchLSTM.py")):
        sys.exit(f"--checkout {args.checkout!r} is not a checkout of AIS-Bonn/MSPred (no src/models there)")

    import torch

    torch.set_num_threads(args.threads)
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    # The model builder the parity references use (it reads the original's config as its trainer does).
    sys.path.insert(0, os.path.join(REPO, "tests", "data", "mspred"))
    from make_reference import build_original_model

    model, params = build_original_model(src, args.config, json.loads(args.overrides), args.seed)
    from lib.losses import KLLoss, PixelLoss  # the original's losses

    model.train()
    training, loss_params = params["training"], params["loss"]
    periods = params["model"]["HierarchLSTM"]["periods"]
    context = training["context"]
    # the trainer gives the model num_preds per level and reads clips of context + max(n * period) frames
    num_preds = training["num_preds"]
    num_preds = num_preds if isinstance(num_preds, list) else [num_preds] * len(periods)
    length = context + max(n * p for n, p in zip(num_preds, periods))
    batch_size = args.batch_size or training["batch_size"]
    if training["optimizer"] != "adam":
        sys.exit(f"this timer runs the configs' Adam step; the config asks for {training['optimizer']!r}")
    optimizer = torch.optim.Adam(model.parameters(), lr=training["lr"])
    pixel_losses = [PixelLoss(kind) for kind in loss_params["reconst_losses"]]
    kl_loss = KLLoss()
    generator = torch.Generator().manual_seed(args.seed)
    size = params["model"]["img_size"]
    frames = torch.rand((batch_size, length, params["dataset"]["num_channels"]) + tuple(size), generator=generator)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.bf16 else contextlib.nullcontext
    targets = None

    def step():
        nonlocal targets
        with autocast():
            out = model(x=frames, context=context, num_preds=num_preds, teacher_force=False)
            if targets is None:  # level h's targets: the frames, then heatmaps of its predictions' shape
                targets = [frames] + [torch.rand((batch_size, length) + tuple(out["preds"][h].shape[2:]),
                                                 generator=generator) for h in range(1, len(out["preds"]))]
            loss = loss_params["beta"] * kl_loss(mu1=out["mu_post"], logvar1=out["logvar_post"],
                                                 mu2=out["mu_prior"], logvar2=out["logvar_prior"])
            for h, preds in out["preds"].items():
                loss = loss + loss_params["alphas"][h] * pixel_losses[h](
                    preds, targets[h][:, out["target_masks"][h]].to(preds.dtype))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    step()  # warm-up (allocations)
    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(json.dumps({"ready": True, "params": num_params, "batch_size": batch_size, "length": length,
                      "threads": torch.get_num_threads(), "bf16": args.bf16, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        times = []
        for _ in range(int(line)):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        print(json.dumps({"times": times}), flush=True)


if __name__ == "__main__":
    main()
