"""Original checkpoints into run directories of ours, and the download of published models.

* ``formats/``: readers of the originals' file formats, independent of any model: TF1 name-based
  checkpoints (``tf1.py``), PyTorch ``.pth`` without torch (``torch_pth.py``), Torch7 ``.t7``
  (``t7.py``) and the restricted unpickler they and the weight fetchers use (``safe_unpickle.py``);
* ``bookkeeping.py``: :func:`~video_prediction.conversion.bookkeeping.assign_by_name` (every value to
  its variable, every variable given a value, shapes checked) and writing a run directory;
* ``published.py``: URL tables, download and conversion of published pretrained models;
* one module per model family with its name map: ``savp.py``, ``conv_lstm_cdna.py`` (sv2p, sna),
  ``mspred.py``.  A new family adds ``<family>.py`` here and a thin
  ``pretrained_models/convert_<family>_checkpoint.py``.
"""
