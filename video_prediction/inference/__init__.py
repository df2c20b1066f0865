"""Inference: predictions written as GIFs and evaluated over many stochastic samples.

* ``generation.py``: GIFs and PNG frames from a dataset or a single video file;
* ``evaluation.py``: best / average / worst metrics over samples, tables, CSVs and plots;
* ``video_batches.py``: walking the first N videos of a dataset in batches;
* ``visualization.py``: GIFs, side-by-side strips, metric-vs-time plots, TensorBoard GIF summaries;
* ``extras/``: the hook through which a model family adds outputs of its own (one module per family).
"""
