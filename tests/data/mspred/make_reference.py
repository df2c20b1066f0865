"""Run the official MSPred model (PyTorch) with random weights and save a parity reference.

Not part of the package and not run by the tests: it needs torch and the original
code, outside the repository, e.g.::

    python -m venv /tmp/mspred_ref && /tmp/mspred_ref/bin/pip install torch==2.13.0 numpy
    # the original code: git archive of github.com/AIS-Bonn/MSPred (HEAD d245097) extracted to /tmp/mspred_src
    /tmp/mspred_ref/bin/python tests/data/mspred/make_reference.py --original_src /tmp/mspred_src/src \
        --config mmnist --output_dir /tmp/mspred_parity/mmnist

Writes ``checkpoint.pth`` (torch.save of {epoch, model_state_dict, ...} as the original's
trainer does), ``experiment_params.json`` (the config as the original writes it),
``reference.npz`` (inputs, per-level predictions with latents set to their means,
eval mode) and, with ``--weights_npz``, the state dict as a numpy ``.npz`` (for the
small stored reference of the tests).
"""

import argparse
import json
import os
import sys
import types
import zlib

import numpy as np


def numpy_weight(name, shape, seed):
    """Deterministic parameter: N(1, 0.02) for BatchNorm weights (1-D ``.weight``), N(0, 0.02) otherwise.

    Seeded by (seed, crc32(name)) so it does not depend on the order of the state dict.
    Biases are random too (the original zeroes them) so that their mapping is checked.
    """
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    mean = 1.0 if (name.endswith(".weight") and len(shape) == 1) else 0.0
    return rng.normal(mean, 0.02, size=shape).astype(np.float32)


def build_original_model(original_src, config, overrides=None, seed=0):
    """The official ``SpatioTempHierarch`` model built from its source tree ``original_src`` (its ``src/``)
    and a config name (mmnist | kth | synpick) or JSON path, with ``overrides`` merged into the config
    sections, as its trainer builds it (its own weight init, seeded).  Returns ``(model, params)``;
    ``params["_config_path"]`` is the config file read.  Also used by benchmarks/references/mspred_torch.py."""
    sys.modules.setdefault("git", types.ModuleType("git"))  # lib.logger imports gitpython; unused here
    if original_src not in sys.path:
        sys.path.insert(0, original_src)
    import torch
    import models  # the original's package

    config_path = config if config.endswith(".json") else os.path.join(original_src, "configs", config + ".json")
    with open(config_path) as f:
        params = json.load(f)
    for section, values in (overrides or {}).items():
        for key, value in values.items():
            if isinstance(value, dict):
                params[section].setdefault(key, {}).update(value)
            else:
                params[section][key] = value
    hmap_channels = {"custom_moving_mnist": [1, 1], "kth": [9, 1], "synpick": [23, 1]}
    model_params = params["model"]
    model_params["num_channels"] = params["dataset"]["num_channels"]
    img_size = params["dataset"]["img_size"]
    img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    model_params["img_size"] = img_size
    model_params["HierarchLSTM"]["n_hmap_channels"] = hmap_channels[params["dataset"]["dataset_name"]]

    torch.manual_seed(seed)
    model = models.SpatioTempHierarch(model_params=model_params, linear=False,
                                      stochastic=model_params["HierarchLSTM"]["stochastic"])
    model.apply(models.init_weights)
    params["_config_path"] = config_path
    return model, params


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--original_src", required=True)
    parser.add_argument("--config", required=True, help="mmnist | kth | synpick, or a JSON path")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--overrides", default="{}", help="JSON dict merged into the config sections")
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--numpy_weights", action="store_true",
                        help="weights from numpy_weight(name, shape, seed) instead of torch's init, so that a "
                             "test can rebuild them without torch and only inputs/outputs need storing")
    args = parser.parse_args()

    model, params = build_original_model(args.original_src, args.config, json.loads(args.overrides), args.seed)
    import torch
    import models  # the original's package (on sys.path now)

    config_path = params["_config_path"]
    del params["_config_path"]
    model_params = params["model"]
    img_size = model_params["img_size"]
    if args.numpy_weights:
        with torch.no_grad():
            for name, tensor in model.state_dict().items():
                tensor.copy_(torch.from_numpy(numpy_weight(name, tuple(tensor.shape), args.seed)))
    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # latents = their means: the reparameterisation returns mu
    models.GaussianConvLSTM.reparameterize = lambda self, mu, logvar: mu
    model.eval()

    context, num_preds = params["eval"]["context"], params["eval"]["num_preds"]
    length = context + num_preds * max(model_params["HierarchLSTM"]["periods"])
    rng = np.random.default_rng(args.seed)
    # smooth random videos (blurred noise) so the decoders see structured input
    # random 8-bit frames (compress well when stored), lightly blurred along x
    frames = rng.integers(0, 256, size=(args.batch_size, length, params["dataset"]["num_channels"]) + img_size)
    frames = ((frames + np.roll(frames, 1, axis=-1)) // 2).astype(np.float32) / 255.0
    with torch.no_grad():
        out = model(torch.from_numpy(frames), context=context, num_preds=num_preds)
    os.makedirs(args.output_dir, exist_ok=True)
    arrays = {"images": frames.transpose(0, 1, 3, 4, 2)}
    for h, preds in out["preds"].items():
        arrays[f"level{h}"] = preds.numpy().transpose(0, 1, 3, 4, 2)  # channels-last
        arrays[f"mask{h}"] = out["target_masks"][h].numpy()
    arrays["images"] = np.round(arrays["images"] * 255).astype(np.uint8)  # exact: frames are k/255
    np.savez_compressed(os.path.join(args.output_dir, "reference.npz"), **arrays)
    torch.save({"epoch": 0, "model_state_dict": model.state_dict(), "optimizer_state_dict": {},
                "scheduler_state_dict": ""}, os.path.join(args.output_dir, "checkpoint.pth"))
    params["_general"] = {"config": config_path}
    with open(os.path.join(args.output_dir, "experiment_params.json"), "w") as f:
        json.dump(params, f, indent=2)
    print(json.dumps({"num_params": num_params, "length": length, "context": context,
                      "shapes": {k: list(v.shape) for k, v in arrays.items()}}))


if __name__ == "__main__":
    main()
