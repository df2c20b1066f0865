"""Crash-safe checkpoints of a training run: atomic commits, bounded disk use, per-worker input state.

Layout (compatible with ``tf.train.latest_checkpoint``)::

    <run>/checkpoint                    the state file: which checkpoints exist, newest last
    <run>/ckpt-<step>.index, .data-*    model, optimizers, run counters (tf.train.Checkpoint)
    <run>/ckpt-<step>.input-<w>.*       the input-pipeline iterator of worker <w> (tf.data checkpoint)

A save writes every file of ``ckpt-<step>`` into a private directory
``<run>/.saving-ckpt-<step>-w<w>-<pid>``, fsyncs them, moves them into the run
directory (index files last) and only then rewrites the state file, itself
through a temporary file and an atomic ``os.replace``.  The state file is the
commit point: a process killed at any moment leaves it naming complete
checkpoints only, and a failed save (e.g. a full disk) removes what it wrote
and leaves the previous checkpoints untouched.  Leftovers of a killed save are
removed by :meth:`AtomicCheckpointManager.remove_incomplete` on the next start.
"""

import errno
import glob
import os
import re
import shutil

import tensorflow as tf

STATE_FILE = "checkpoint"
_STATE_LINE = re.compile(r'^(model_checkpoint_path|all_model_checkpoint_paths):\s*"(.*)"\s*$')
_STEP_OF = re.compile(r"^ckpt-(\d+)(?:\.|$)")


class CheckpointSaveError(ValueError):
    """A checkpoint could not be written (full disk, permissions); the previous ones are intact."""


def read_state(directory):
    """Checkpoint prefixes the state file of ``directory`` lists, oldest first ([] when there is none)."""
    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        return []
    latest, listed = None, []
    with open(path) as f:
        for line in f:
            match = _STATE_LINE.match(line.strip())
            if match:
                key, value = match.groups()
                if key == "model_checkpoint_path":
                    latest = value
                else:
                    listed.append(value)
    if latest is not None and latest not in listed:
        listed.append(latest)
    return [p if os.path.isabs(p) else os.path.join(directory, p) for p in listed]


def write_state(directory, prefixes):
    """Atomically rewrite the state file to list ``prefixes`` (oldest first; the last is the latest)."""
    names = [os.path.basename(p) for p in prefixes]
    lines = [f'model_checkpoint_path: "{names[-1]}"'] + [f'all_model_checkpoint_paths: "{n}"' for n in names]
    path = os.path.join(directory, STATE_FILE)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        _remove_quietly(tmp)
        raise
    _fsync_directory(directory)


def latest_complete_checkpoint(directory):
    """The newest checkpoint the state file lists whose index file exists, or None."""
    for prefix in reversed(read_state(directory)):
        if os.path.exists(prefix + ".index"):
            return prefix
    return None


def step_of(prefix):
    """The step number of a ``ckpt-<step>`` prefix."""
    match = _STEP_OF.match(os.path.basename(prefix))
    if not match:
        raise ValueError(f"{prefix!r} is not a ckpt-<step> checkpoint prefix")
    return int(match.group(1))


def input_prefix(prefix, worker):
    """The prefix of worker ``worker``'s input-pipeline state that belongs to checkpoint ``prefix``."""
    return f"{prefix}.input-{worker}"


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_files(directory):
    for name in os.listdir(directory):
        with open(os.path.join(directory, name), "rb") as f:
            os.fsync(f.fileno())


def _files_of(prefix):
    """Every file of checkpoint ``prefix`` (its index and data files and all workers' input states)."""
    directory, name = os.path.split(prefix)
    return [p for p in glob.glob(os.path.join(glob.escape(directory), glob.escape(name) + ".*"))]


def _describe(error):
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return f"the disk is full ({error.strerror or 'No space left on device'})"
    if isinstance(error, tf.errors.OpError):
        return error.message.strip().splitlines()[0]
    return str(error) or type(error).__name__


class AtomicCheckpointManager:
    """Saves and finds checkpoints of one run directory atomically, keeping the newest ``max_to_keep``.

    ``checkpoint`` holds the model, optimizers and counters (every worker of a
    multi-worker run writes it, as ``tf.distribute`` requires, but only the
    chief's copy is kept).  ``input_checkpoint`` (optional) holds this
    worker's input iterator and is kept for every worker.  ``barrier`` is
    called between writing and committing so that a multi-worker commit waits
    for every worker's input state.
    """

    def __init__(self, checkpoint, directory, max_to_keep=2, input_checkpoint=None, worker=0, is_chief=True,
                 barrier=None):
        if max_to_keep is not None and max_to_keep < 1:
            raise ValueError(f"keep_checkpoints must be >= 1, got {max_to_keep}")
        self.checkpoint = checkpoint
        self.directory = directory
        self.max_to_keep = max_to_keep
        self.input_checkpoint = input_checkpoint
        self.worker = worker
        self.is_chief = is_chief
        self.barrier = barrier

    @property
    def latest(self):
        return latest_complete_checkpoint(self.directory)

    def remove_incomplete(self):
        """Delete what a killed save left behind: ``.saving-*`` directories and uncommitted ``ckpt-*`` files."""
        if not self.is_chief or not os.path.isdir(self.directory):
            return []
        removed = []
        for path in glob.glob(os.path.join(glob.escape(self.directory), ".saving-ckpt-*")):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        if not os.path.exists(os.path.join(self.directory, STATE_FILE)):
            return removed  # nothing was ever committed here: leave foreign files alone
        listed = {os.path.basename(p) for p in read_state(self.directory)}
        for path in glob.glob(os.path.join(glob.escape(self.directory), "ckpt-*")):
            name = os.path.basename(path)
            match = _STEP_OF.match(name)
            if match and f"ckpt-{match.group(1)}" not in listed:
                os.remove(path)
                removed.append(path)
        return removed

    def save(self, step):
        """Write checkpoint ``ckpt-<step>`` and commit it; returns its prefix.

        Raises :class:`CheckpointSaveError` (naming the cause and the checkpoint
        that stays the latest) if any file cannot be written.
        """
        name = f"ckpt-{int(step)}"
        final_prefix = os.path.join(self.directory, name)
        staging = os.path.join(self.directory, f".saving-{name}-w{self.worker}-{os.getpid()}")
        moved = []
        try:
            shutil.rmtree(staging, ignore_errors=True)
            os.makedirs(staging)
            # Non-chief workers take part in writing the model (tf.distribute may need every worker for
            # it) but their copy is thrown away.
            self.checkpoint.write(os.path.join(staging, name))
            if self.input_checkpoint is not None:
                self.input_checkpoint.write(input_prefix(os.path.join(staging, name), self.worker))
            _fsync_files(staging)
            keep = [f for f in sorted(os.listdir(staging)) if self.is_chief or ".input-" in f]
            # Data files before index files: a prefix without its index is invisible to every reader.
            for filename in sorted(keep, key=lambda f: (f.endswith(".index"), ".input-" not in f)):
                target = os.path.join(self.directory, filename)
                os.replace(os.path.join(staging, filename), target)
                moved.append(target)
            _fsync_directory(self.directory)
        except (OSError, tf.errors.OpError) as e:
            for path in moved:
                _remove_quietly(path)
            shutil.rmtree(staging, ignore_errors=True)
            latest = self.latest
            kept = f"{latest} is still the latest checkpoint" if latest else "no earlier checkpoint exists"
            raise CheckpointSaveError(
                f"could not write checkpoint {final_prefix}: {_describe(e)}; {kept} (free some space or lower "
                "--keep_checkpoints, then rerun the same command to resume)"
            ) from None
        shutil.rmtree(staging, ignore_errors=True)
        if self.barrier is not None:
            self.barrier()
        if self.is_chief:
            self._commit(final_prefix)
        if self.barrier is not None:
            self.barrier()  # nobody reads the state file before the chief has committed
        return final_prefix

    def _commit(self, prefix):
        listed = [p for p in read_state(self.directory) if os.path.exists(p + ".index") and p != prefix]
        listed = sorted(listed, key=step_of) + [prefix]
        kept = listed[-self.max_to_keep:] if self.max_to_keep else listed
        try:
            write_state(self.directory, kept)
        except OSError as e:
            for path in _files_of(prefix):
                _remove_quietly(path)
            raise CheckpointSaveError(
                f"could not commit checkpoint {prefix}: {_describe(e)}; the state file still names the earlier "
                "checkpoints"
            ) from None
        for old in listed[: len(listed) - len(kept)]:
            for path in _files_of(old):
                _remove_quietly(path)


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass
