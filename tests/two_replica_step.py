"""One train step on one device and on two logical CPU devices from the same weights (DESIGN.md's
distribution rule: per-replica losses scaled so that the summed gradients equal one device's).

Runs in a subprocess because the logical devices must be configured before TensorFlow initialises.
Callers give the model class, the batch, hparams and how to swap the model's optimizers (SGD keeps the
update proportional to the gradient, so a wrong gradient scale shows; Adam's first step hides it), then
assert on the returned report.

Both runs are traced with TensorFlow's graph optimizer (Grappler) off: they compare the same graph on one
and on two devices, which Grappler's rewrites do not bear on, and its pass over the large replicated step
graphs was a quarter of these tests' time (EPVA-GAN: 133 s -> 100 s on one core).
"""

import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
tf.config.optimizer.set_experimental_options({{"disable_meta_optimizer": True}})  # see the module docstring
import keras
from {module} import {class_name} as Model

hparams = json.loads(sys.argv[1])
rtol, atol = json.loads(sys.argv[2])
rng = np.random.default_rng(0)
{make_batch}
dataset = tf.data.Dataset.from_tensors(batch).repeat()


def swap_optimizers(model):
{swap_optimizers}


def one_step(devices, initial_weights=None):
    strategy = tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = Model(hparams=hparams)
        model.build_from_batch({{k: v[:1] for k, v in batch.items()}})
        model.make_optimizers()
        swap_optimizers(model)
        model.build_optimizers()
        if initial_weights is not None:
            model.set_weights(initial_weights)
    weights_before = [w.copy() for w in model.get_weights()]
    history = model.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0)
    return model, weights_before, {{k: v[0] for k, v in history.history.items()}}


one, initial, losses_one = one_step(["/cpu:0"])
two, _, losses_two = one_step(["/cpu:0", "/cpu:1"], initial)
step = lambda m: int(m.global_step.numpy()) if hasattr(m, "global_step") else None
report = {{"replicas": two.distribute_strategy.num_replicas_in_sync, "losses_one": losses_one,
          "losses_two": losses_two, "mismatch": [], "changed": 0, "steps": [step(one), step(two)]}}
for w_init, v1, v2 in zip(initial, one.weights, two.weights):
    a, b = np.asarray(v1.numpy()), np.asarray(v2.numpy())
    report["changed"] += int(not np.array_equal(a, w_init))
    if not np.allclose(a, b, rtol=rtol, atol=atol):
        report["mismatch"].append([v1.path, float(np.abs(a - b).max()), float(np.abs(a - w_init).max())])
print("REPORT" + json.dumps(report))
"""


def one_vs_two_devices(model, hparams, make_batch, swap_optimizers="pass", rtol=1e-5, atol=1e-7, timeout=600):
    """Run one step of ``model`` ("module:Class") on one device, then on two replicas from the same weights.

    ``make_batch`` is code that defines ``batch`` (a dict of numpy arrays; ``rng`` is a seeded numpy
    generator); ``swap_optimizers`` is the body of ``swap_optimizers(model)``, run after
    ``make_optimizers()``.  Returns the report: ``replicas``, ``losses_one`` / ``losses_two``,
    ``changed`` (how many weights the step moved), ``mismatch`` ([path, max |one - two|, max |step|] of
    weights outside ``rtol``/``atol``) and ``steps`` (each model's global step, if it has one).
    """
    module, class_name = model.split(":")
    script = SCRIPT.format(module=module, class_name=class_name, make_batch=textwrap.dedent(make_batch).strip(),
                           swap_optimizers=textwrap.indent(textwrap.dedent(swap_optimizers).strip(), "    "))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", script, json.dumps(hparams), json.dumps([rtol, atol])],
                            capture_output=True, text=True, env=env, timeout=timeout)
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT"):])
    assert report["replicas"] == 2
    return report
