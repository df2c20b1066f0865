"""Fixtures shared by the hierarchical-pose tests and the reference script (tests/data/hierarchical_lstm/).

Everything here is deterministic (numpy ``default_rng``, whose streams are stable), so the
reference script that ran the original TF1 graphs and the tests build the same weights and inputs
without storing them.  Variable names and shapes are those of the original graphs (written out here
independently; the reference script asserted that the original graphs have exactly these).
"""

import os

import numpy as np

from video_prediction.layers.perceptual import ALEXNET_SHAPES, NUM_HOURGLASS_FILES, hourglass_param_shapes

LSTM_CELL = "GEN/G_LSTM/rnn/multi_rnn_cell/cell_0/basic_lstm_cell"


def lstm_variable_shapes(num_landmarks=13, units=1024, enc=32):
    """TF1 names -> shapes of the trainable variables of ``DET_LSTM`` (spec §3.1)."""
    return {
        "lm_enc/Matrix": (2 * num_landmarks, enc),
        "lm_enc/bias": (enc,),
        f"{LSTM_CELL}/kernel": (enc + units, 4 * units),
        f"{LSTM_CELL}/bias": (4 * units,),
        "GEN/G_LSTM/dec_fc2/Matrix": (units, 2 * num_landmarks),
        "GEN/G_LSTM/dec_fc2/bias": (2 * num_landmarks,),
    }


ENCODER_WIDTHS = (("1_1", 1), ("1_2", 1), ("2_1", 2), ("2_2", 2), ("3_1", 4), ("3_2", 4), ("3_3", 4))
DECODER_WIDTHS = (("3_3", 4, 4), ("3_2", 4, 4), ("3_1", 2, 4), ("2_2", 2, 2), ("2_1", 1, 2), ("1_2", 1, 1))


def imggen_variable_shapes(n_joints=48, image_size=128, c_dim=3, gf=64, df=64):
    """TF1 names -> shapes of the ``GEN`` and ``DIS`` variables of ``IMGGEN`` (spec §3.2, §3.3)."""
    shapes = {}
    for prefix, channels in (("enc_iconv", c_dim), ("enc_pconv", n_joints)):
        previous = channels
        for key, mult in ENCODER_WIDTHS:
            shapes[f"GEN/{prefix}{key}/w"] = (3, 3, previous, gf * mult)
            shapes[f"GEN/{prefix}{key}/biases"] = (gf * mult,)
            previous = gf * mult
    for key, out_mult, in_mult in DECODER_WIDTHS:  # deconv kernels are [3, 3, out, in]
        shapes[f"GEN/dec_deconv{key}/w"] = (3, 3, gf * out_mult, gf * in_mult)
        shapes[f"GEN/dec_deconv{key}/biases"] = (gf * out_mult,)
    shapes["GEN/dec_deconv1_1/w"] = (3, 3, c_dim, gf)
    shapes["GEN/dec_deconv1_1/biases"] = (c_dim,)
    previous = c_dim + n_joints
    for i, mult in enumerate((1, 2, 4, 8)):
        shapes[f"DIS/dis_h{i}_conv/w"] = (5, 5, previous, df * mult)
        shapes[f"DIS/dis_h{i}_conv/biases"] = (df * mult,)
        if i:
            for name in ("beta", "gamma", "moving_mean", "moving_variance"):
                shapes[f"DIS/bn{i}/{name}"] = (df * mult,)
        previous = df * mult
    size = image_size // 16
    shapes["DIS/dis_h3_lin/Matrix"] = (size * size * df * 8, 1)
    shapes["DIS/dis_h3_lin/bias"] = (1,)
    return shapes


def seeded_values(shapes, seed):
    """Random values for ``{name: shape}`` in sorted-name order: kernels N(0, 1/fan_in), 1-D N(0, 0.1);
    BN ``gamma`` / ``moving_variance`` 1 + |N(0, 0.1)|."""
    rng = np.random.default_rng(seed)
    values = {}
    for name in sorted(shapes):
        shape = tuple(shapes[name])
        if len(shape) >= 2:
            value = rng.normal(0.0, 1.0 / np.sqrt(np.prod(shape[:-1])), shape)
        else:
            value = rng.normal(0.0, 0.1, shape)
            if name.endswith(("gamma", "moving_variance")):
                value = 1.0 + np.abs(value)
        values[name] = value.astype(np.float32)
    return values


def write_alexnet_file(path, seed=7):
    """A ``bvlc_alexnet.npy`` in the original's layout: a pickled dict {layer: [W (HWIO), b]} via np.save."""
    rng = np.random.default_rng(seed)
    data = {}
    for layer in sorted(ALEXNET_SHAPES):
        kernel_shape, bias_shape = ALEXNET_SHAPES[layer]
        kernel = rng.normal(0.0, 1.0 / np.sqrt(np.prod(kernel_shape[:-1])), kernel_shape).astype(np.float32)
        data[layer] = [kernel, rng.normal(0.0, 0.1, bias_shape).astype(np.float32)]
    data["fc6"] = [np.zeros((4, 2), np.float32), np.zeros(2, np.float32)]  # present in the real file, unused
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, np.array(data, dtype=object), allow_pickle=True)
    return path


def write_hourglass_dir(directory, seed=8):
    """``hourglass_weights_{1..800}.npy`` as the original reads them: 4-D kernels in Torch [O, I, H, W]."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    shapes = hourglass_param_shapes()
    for i in range(1, NUM_HOURGLASS_FILES + 1):
        if i <= len(shapes):
            shape = shapes[i - 1]
            if len(shape) == 4:
                h, w, cin, cout = shape
                value = rng.normal(0.0, 1.0 / np.sqrt(h * w * cin), (cout, cin, h, w))
            else:
                value = rng.normal(0.0, 0.1, shape)
        else:  # the second stack, never read by the original
            value = rng.normal(0.0, 0.1, (2,))
        np.save(os.path.join(directory, f"hourglass_weights_{i}.npy"), value.astype(np.float32))
    return directory


def lstm_inputs(seed, batch=2, length=42, num_landmarks=13):
    """(seq [B, T, 2L] in [-1, 1], mask [B, T, L] of 0/1) as the original's placeholders take them."""
    rng = np.random.default_rng(seed)
    seq = rng.uniform(-1.0, 1.0, (batch, length, 2 * num_landmarks)).astype(np.float32)
    mask = (rng.uniform(size=(batch, length, num_landmarks)) > 0.25).astype(np.float32)
    return seq, mask


def imggen_inputs(seed, batch=2, image_size=64, n_joints=48):
    """(xt, xtpn in [-1, 1] BGR; pt, ptpn heatmaps in [0, 1]), each [B, S, S, .]."""
    rng = np.random.default_rng(seed)
    xt = rng.uniform(-1.0, 1.0, (batch, image_size, image_size, 3)).astype(np.float32)
    xtpn = np.clip(xt + rng.normal(0.0, 0.3, xt.shape), -1, 1).astype(np.float32)
    pt = rng.uniform(0.0, 1.0, (batch, image_size, image_size, n_joints)).astype(np.float32) ** 4
    ptpn = rng.uniform(0.0, 1.0, (batch, image_size, image_size, n_joints)).astype(np.float32) ** 4
    return xt, xtpn, pt, ptpn
