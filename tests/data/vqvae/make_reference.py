"""Run the original FEVD VQ-VAE (nsoul97/CS229_Project) on fixed inputs and save its outputs.

Needs torch (2.13.0) and the original's ``fevd_vqvae`` package on ``--original_src``;
see README.md here for the exact commands.  ``numpy_weight`` (no torch) is imported
by the test to rebuild the same weights.
"""

import argparse
import json
import os
import sys
import zlib

import numpy as np

# Small config used for the stored reference (same structure as the configs:
# five levels, four halvings 64 -> 4, attention at 16 px, a channel change for the 1x1 shortcut).
SMALL_DDCONFIG = dict(double_z=False, z_channels=32, resolution=64, in_channels=3, out_ch=3, ch=32,
                      ch_mult=[1, 1, 1, 1, 2], num_res_blocks=1, attn_resolutions=[16], dropout=0.0)
SMALL_EMBED = dict(n_embed=64, embed_dim=16)


def numpy_weight(name, shape, seed):
    """Deterministic parameter at PyTorch-like scales, seeded by (seed, crc32(name)).

    Conv kernels uniform(+-1/sqrt(fan_in)) (torch's default bound), biases N(0, 0.05),
    GroupNorm weights N(1, 0.1) and biases N(0, 0.1) (torch initialises them to 1 and 0;
    random values check their mapping).  The codebook is not made here (see ``make_codebook``).
    """
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if len(shape) >= 4:
        bound = 1.0 / np.sqrt(np.prod(shape[1:]))
        return rng.uniform(-bound, bound, size=shape).astype(np.float32)
    is_norm = ".norm" in name or name.split(".")[-2].startswith("norm")
    if name.endswith(".weight") and is_norm:
        return rng.normal(1.0, 0.1, size=shape).astype(np.float32)
    return rng.normal(0.0, 0.1 if is_norm else 0.05, size=shape).astype(np.float32)


def make_codebook(latents, n_embed, seed):
    """Codes spread like the encoder's latents: random latent vectors plus noise (so indices vary)."""
    rng = np.random.default_rng(seed)
    flat = latents.reshape(-1, latents.shape[-1])
    picks = flat[rng.integers(0, len(flat), n_embed)]
    return (picks + rng.normal(0, flat.std() * 0.5, picks.shape)).astype(np.float32)


def smooth_clips(batch, frames, size=64, seed=0):
    """uint8 clips [B, T, H, W, 3]: moving sinusoidal patterns (natural-ish, deterministic)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    clips = np.zeros((batch, frames, size, size, 3), np.float32)
    for b in range(batch):
        freq = rng.uniform(2, 9, size=(3, 2))
        phase = rng.uniform(0, 6, size=3)
        for t in range(frames):
            for c in range(3):
                clips[b, t, :, :, c] = 0.5 + 0.4 * np.sin(freq[c, 0] * x + freq[c, 1] * y + phase[c] + 0.4 * t)
    return np.round(clips * 255).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--original_src", required=True, help="root of the original repository (has fevd_vqvae/)")
    parser.add_argument("--shim", required=True, help="directory with the torchvision stand-in (README)")
    parser.add_argument("--lpips_weights", required=True, help="our converted lpips_v0.1_vgg.npz")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--full", action="store_true", help="the configs' full-size ddconfig (68M parameters)")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--frames", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, args.shim)
    sys.path.insert(0, args.original_src)
    import types

    import torch

    # Import-time dependencies of the package's __init__ that these modules do not use (TensorBoard
    # logging, pandas metadata): empty stand-ins.
    logger = types.ModuleType("fevd_vqvae.utils.logger")
    logger.Logger = None
    sys.modules["fevd_vqvae.utils.logger"] = logger
    for name in ("pandas",):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)

    from fevd_vqvae.metrics import lpips as lpips_module
    from fevd_vqvae.models import loss as loss_module
    from fevd_vqvae.models.vqgan import VQModel
    from fevd_vqvae.utils.dataset import unnormalize

    # The LPIPS weights come from our converted file (the same torchvision VGG16 + v0.1 heads).
    lpips_npz = np.load(args.lpips_weights)

    def load_lpips(self):
        convs = [m for m in self.net.modules() if isinstance(m, torch.nn.Conv2d)]
        names = [f"conv{s}_{i}" for s, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for i in range(1, n + 1)]
        with torch.no_grad():
            for conv, name in zip(convs, names):
                conv.weight.copy_(torch.from_numpy(lpips_npz[f"{name}/kernel"].transpose(3, 2, 0, 1).copy()))
                conv.bias.copy_(torch.from_numpy(lpips_npz[f"{name}/bias"]))
            for tap in range(5):
                lin = getattr(self, f"lin{tap}").model[-1]
                lin.weight.copy_(torch.from_numpy(lpips_npz[f"lin{tap}/kernel"].transpose(3, 2, 0, 1).copy()))

    lpips_module.LPIPS.load_from_pretrained = load_lpips
    # No TorchScript I3D here (the FVD loss weights are 0 in every config): a placeholder module.
    loss_module.InceptionI3d = torch.nn.Identity

    ddconfig = dict(SMALL_DDCONFIG)
    embed = dict(SMALL_EMBED)
    if args.full:
        ddconfig.update(z_channels=256, ch=128, ch_mult=[1, 1, 2, 2, 4], num_res_blocks=2)
        embed = dict(n_embed=1024, embed_dim=192)
    lossconfig = dict(codebook_weight=1.0, pixelloss_weight=1.0, perceptual_weight_2d=1.0, fvd_mu_weight=0.0,
                      fvd_cov_weight=0.0)
    clips = smooth_clips(args.batch_size, args.frames, seed=args.seed)
    videos = torch.from_numpy(clips.astype(np.float32) / 255.0).permute(0, 1, 4, 2, 3)
    mean = torch.tensor([0.4947905177456989, 0.4394289448514622, 0.3734249455050442]).reshape(1, 1, 3, 1, 1)
    std = torch.tensor([0.2248808632122409, 0.2230480187693433, 0.2166628109431439]).reshape(1, 1, 3, 1, 1)
    x = (videos - mean) / std  # the original's loaders: (x/255 - mean) / std
    out = {"clips": clips}
    os.makedirs(args.output_dir, exist_ok=True)
    torch.manual_seed(args.seed)
    for key in ("2d", "3d"):
        model = VQModel(key=key, ddconfig=ddconfig, lossconfig=lossconfig, **embed).eval()
        state = {k: v for k, v in model.state_dict().items() if not k.startswith("loss.")}
        new_state = {}
        for name, value in state.items():
            if name == "quantize.embedding.weight":
                continue
            # decoder._2d_decoder.* of the 3D model gets the same weights as decoder.* of the 2D one
            source = name.replace("decoder._2d_decoder.", "decoder.")
            new_state[name] = torch.from_numpy(numpy_weight(source, tuple(value.shape), args.seed))
        model.load_state_dict(new_state, strict=False)
        with torch.no_grad():
            frames = x.reshape(-1, *x.shape[2:])
            latents = model.quant_conv(model.encoder(frames)).permute(0, 2, 3, 1).numpy()
            if key == "2d":
                codebook = make_codebook(latents, embed["n_embed"], args.seed)
                out["codebook"] = codebook
            model.quantize.embedding.weight.copy_(torch.from_numpy(codebook))
            inputs = frames if key == "2d" else x  # the 2D configs train on frames, the 3D one on clips
            rec, loss, log = model.step(inputs)
            _, q_loss, (_, _, indices) = model.quantize(model.quant_conv(model.encoder(frames)))
            # our default (corrected) LPIPS input: un-normalised [0, 1] frames
            real01, rec01 = unnormalize(inputs), unnormalize(rec)
            lpips01 = model.loss.perceptual_loss_2d(real01, rec01).mean()
            # distance margin of the chosen code (for exact index agreement)
            z = latents.reshape(-1, latents.shape[-1])
            d = ((z[:, None, :] - codebook[None]) ** 2).sum(-1)
            part = np.sort(d, axis=1)
            margin = float(np.min(part[:, 1] - part[:, 0]))
        rec = rec.reshape(x.shape).permute(0, 1, 3, 4, 2).numpy()
        out[f"reconstructions_{key}"] = rec
        out[f"indices_{key}"] = indices.reshape(x.shape[0], x.shape[1], *latents.shape[1:3]).numpy().astype(np.int32)
        for name, value in log.items():
            out[f"{name}_{key}"] = np.float32(value)
        out[f"perc_2d_loss_unnormalized_{key}"] = np.float32(lpips01)
        out[f"index_margin_{key}"] = np.float32(margin)
        with open(os.path.join(args.output_dir, f"parameters_{key}.json"), "w") as f:
            json.dump({k: list(v.shape) for k, v in model.state_dict().items() if not k.startswith("loss.")}, f,
                      indent=0)
        if args.full:  # 3D state has every name of the 2D one (as decoder._2d_decoder.*)
            torch.save({"step": 0, "model_state_dict": model.state_dict(), "opt_state_dict": {}},
                       os.path.join(args.output_dir, f"model_{key}.ckpt"))
        if key == "3d":
            # The original's metrics (§4) on the clip vs its 3D reconstruction clamped to [0, 1] (the original
            # forgets to clamp; ours need [0, 1] inputs): per-video PSNR and SSIM, per-frame LPIPS-VGG.
            # The clamped clip is not stored: the test rebuilds it from reconstructions_3d.
            from fevd_vqvae.metrics.psnr import PSNR
            from fevd_vqvae.metrics.ssim import SSIM
            fake = torch.clamp(rec01.reshape(videos.shape), 0.0, 1.0)
            with torch.no_grad():
                out["metric_psnr"] = PSNR()(videos, fake).numpy()
                out["metric_ssim"] = SSIM(device="cpu")(videos, fake).numpy()
                # per frame [B, T] (LPIPS_Video's squeeze() fails for one video; it then averages over T)
                out["metric_lpips"] = model.loss.perceptual_loss_2d(videos, fake).reshape(videos.shape[:2]).numpy()
        print(key, {k: float(v) for k, v in log.items()}, "margin", margin)
    np.savez_compressed(os.path.join(args.output_dir, "reference.npz"), **out)


if __name__ == "__main__":
    main()
