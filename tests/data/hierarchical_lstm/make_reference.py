"""Reference outputs of the original DET_LSTM and IMGGEN graphs (rubenvillegas/icml2017hierchvid @ 9584bd3).

Run (from the repository root, with the original's six model files copied and patched into ORIG_DIR,
see tests/data/hierarchical_lstm/README.md):
    TF_USE_LEGACY_KERAS=1 PYTHONPATH=$PWD:ORIG_DIR:$PWD/tests python make_reference.py ORIG_DIR OUT.npz
"""
import os
import sys
import tempfile

import numpy as np

orig_dir, out_path = sys.argv[1], sys.argv[2]
sys.path.insert(0, orig_dir)
import tf1shim as tf  # noqa: E402

import hierarchical_pose_fixtures as fx  # noqa: E402

tf.disable_eager_execution()
work = tempfile.mkdtemp()
fx.write_alexnet_file(os.path.join(work, "perceptual_models/alexnet/bvlc_alexnet.npy"))
fx.write_hourglass_dir(os.path.join(work, "perceptual_models/hourglass"))
os.chdir(work)  # the originals read ./perceptual_models/...

from det_lstm import DET_LSTM  # noqa: E402
from model_analogy import IMGGEN  # noqa: E402
from alexnet import alexnet  # noqa: E402
from hg_stacked import hg_forward  # noqa: E402

out = {}


def assign(sess, variables, expected_shapes, seed):
    by_name = {v.op.name: v for v in variables}
    got = {name: tuple(v.shape.as_list()) for name, v in by_name.items()}
    assert got == {k: tuple(s) for k, s in expected_shapes.items()}, sorted(set(got) ^ set(expected_shapes))
    for name, value in fx.seeded_values(expected_shapes, seed).items():
        by_name[name].load(value, sess)


# -- pose LSTM: train graph (42 steps), a training step, test graph (10 + 64) -----------------------
seq, mask = fx.lstm_inputs(1)
seq_big = seq.copy()
seq_big[:, 10:] *= 300.0  # far-off targets: the gradient's global norm exceeds 25 -> clipping acts
shapes = fx.lstm_variable_shapes(13)
with tf.Graph().as_default(), tf.Session() as sess:
    model = DET_LSTM(2, 26, [1024], 10, 32, 1.0, os.path.join(work, "logs"), 0.001, mode="train")
    sess.run(tf.global_variables_initializer())
    print(sorted(v.op.name for v in tf.global_variables()))
    assign(sess, tf.trainable_variables(), shapes, 0)
    grads = tf.gradients(model.recons_loss, model.g_vars)
    norm = tf.global_norm(grads)
    out["lstm_output"], out["lstm_loss"] = sess.run([model.output, model.recons_loss],
                                                    {model.seq_: seq, model.mask_: mask})
    out["lstm_big_grad_norm"] = sess.run(norm, {model.seq_: seq_big, model.mask_: mask})
    sess.run(model.optimizer, {model.seq_: seq_big, model.mask_: mask})
    out["lstm_output_after_step"], out["lstm_loss_after_step"] = sess.run(
        [model.output, model.recons_loss], {model.seq_: seq, model.mask_: mask})
with tf.Graph().as_default(), tf.Session() as sess:
    model = DET_LSTM(2, 26, [1024], 10, 64, 1.0, os.path.join(work, "logs2"), 0.001, mode="test")
    sess.run(tf.global_variables_initializer())
    assign(sess, tf.trainable_variables(), shapes, 0)
    out["lstm_test_output"] = sess.run(model.output, {model.seq_: seq[:, :10], model.mask_: mask[:, :10]})

# -- image generator: all terms, the perceptual features, one G step + D step -------------------------
xt, xtpn, pt, ptpn = fx.imggen_inputs(3)
shapes = fx.imggen_variable_shapes(48, 64)
with tf.Graph().as_default(), tf.Session() as sess:
    model = IMGGEN(image_size=64, batch_size=2, c_dim=3, layer=3, alpha=1.0, beta=1.0, n_joints=48)
    lr = 0.001  # --lr (1e-3 here so that one step moves the outputs far more than the tolerance)
    d_optim = tf.train.AdamOptimizer(lr, beta1=0.5).minimize(model.d_loss, var_list=model.dis_vars)
    g_optim = tf.train.AdamOptimizer(lr, beta1=0.5).minimize(model.L + 1.0 * model.g_loss, var_list=model.g_vars)
    true01 = (model.xtpn_ + 1.0) / 2.0
    a_feat = alexnet(true01 * 255.0 - tf.reduce_mean(true01 * 255.0))
    h_layers = hg_forward(true01)
    sess.run(tf.global_variables_initializer())
    assign(sess, [v for v in tf.global_variables() if v.op.name.startswith(("GEN/", "DIS/")) and "/Adam" not in v.op.name], shapes, 2)
    feed = {model.xt_: xt, model.xtpn_: xtpn, model.pt_: pt, model.ptpn_: ptpn}
    names = ["D_logits", "DB_logits", "D_logits_", "feat_loss1", "feat_loss2", "L_feat", "L_img", "L", "g_loss",
             "d_loss_real", "d_loss_fake", "d_loss"]
    values = sess.run([model.G] + [getattr(model, n) for n in names], feed)
    out["imggen_gen"] = values[0][:, ::2, ::2, 0]  # every other pixel (size of the stored file)
    for n, v in zip(names, values[1:]):
        out["imggen_" + n] = v
    alex, hg = sess.run([a_feat, h_layers], feed)
    out["alexnet_conv5"] = alex
    out["hourglass_layer0"] = hg[0][..., :64]
    out["hourglass_layer3"] = hg[3][:, ::8, ::8, :64]
    sess.run(g_optim, feed)
    sess.run(d_optim, feed)
    after = sess.run([model.G, model.d_loss_fake, model.d_loss_real, model.g_loss, model.D_logits], feed)
    out["imggen_gen_after_step"] = after[0][:, ::2, ::2, 0]
    out["imggen_errD_fake_after_step"], out["imggen_errD_real_after_step"], out["imggen_errG_after_step"] = after[1:4]
    out["imggen_D_logits_after_step"] = after[4]

out = {k: np.asarray(v, np.float32) for k, v in out.items()}
for k, v in sorted(out.items()):
    print(k, v.shape, float(np.abs(v).max()))
np.savez_compressed(out_path, **out)
