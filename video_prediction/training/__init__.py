"""Training: the loop and what it stands on.

* ``loop.py``: :func:`~video_prediction.training.loop.train`, the step loop with checkpoints and summaries;
* ``strategy.py``: ``tf.distribute`` strategies (mirrored, one device, multi-worker from ``TF_CONFIG``);
* ``run_directory.py``: the JSON files of a run, finding and restoring its checkpoints;
* ``building.py``: models and datasets from names, hparams and run directories (inference uses it too);
* ``monitor.py``: TensorBoard scalars, images and GIFs;
* ``checkpointing.py``: atomic checkpoints that survive ``kill -9`` and a full disk;
* ``fault_tolerance.py``: the distributed train step, non-finite losses, signals, the routed random stream;
* ``schedules.py``: learning-rate, KL-weight and schedule-sampling schedules that models use.

Nothing is imported here, so that models can import ``schedules`` without loading the loop.
"""
