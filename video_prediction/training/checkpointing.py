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


class DamagedCheckpointError(ValueError):
    """A checkpoint's files are missing, truncated or corrupt; the message names the file (``.path``)."""

    def __init__(self, message, path):
        super().__init__(message)
        self.path = path


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


def data_shards(prefix):
    """The ``<prefix>.data-<i>-of-<n>`` files on disk, sorted."""
    return sorted(glob.glob(glob.escape(prefix) + ".data-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]"))


def verify_checkpoint(prefix):
    """Read every tensor of checkpoint ``prefix``; raise :class:`DamagedCheckpointError` naming the bad file.

    Catches a missing, empty or garbled ``.index``, a missing data shard, a
    truncated one and flipped bytes (each tensor is checked against the CRC-32C
    its index records).  Reads the whole checkpoint (one tensor at a time), so it
    costs about what a restore costs.  Works for the input-pipeline states too
    (their iterator state is a variant tensor, which ``CheckpointReader`` cannot
    return but ``RestoreV2`` reads and checks).
    """
    index = prefix + ".index"
    shards = data_shards(prefix)
    if not os.path.exists(index):
        there = f" (its data file {os.path.basename(shards[0])} is there)" if shards else ""
        raise DamagedCheckpointError(f"checkpoint index {index} is missing{there}", index)
    if os.path.getsize(index) == 0:
        raise DamagedCheckpointError(f"checkpoint index {index} is empty", index)
    try:
        reader = tf.train.load_checkpoint(prefix)
        dtypes = reader.get_variable_to_dtype_map()
    except (tf.errors.OpError, ValueError, IndexError) as e:
        raise DamagedCheckpointError(f"checkpoint index {index} is unreadable ({_first_line(e)})", index) from None
    if shards:
        count = int(shards[0].rsplit("-of-", 1)[1])
        for i in range(count):
            expected = f"{prefix}.data-{i:05d}-of-{count:05d}"
            if not os.path.exists(expected):
                raise DamagedCheckpointError(f"checkpoint data file {expected} is missing", expected)
    for key, dtype in sorted(dtypes.items()):
        try:
            tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=[key], shape_and_slices=[""], dtypes=[dtype])
        except (tf.errors.OpError, ValueError, IndexError) as e:
            raise _damaged_data(prefix, shards, key, e) from None


def _first_line(error):
    text = error.message if isinstance(error, tf.errors.OpError) else str(error)
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text.strip())
    return re.sub(r"\s*\[Op:\w+\]$", "", text.splitlines()[0] if text else type(error).__name__)


def _damaged_data(prefix, shards, key, error):
    """The error for a data shard that failed while reading tensor ``key``."""
    detail = _first_line(error)
    if isinstance(error, tf.errors.NotFoundError) or "No such file" in detail:
        named = re.search(r"(\S+\.data-\d{5}-of-\d{5})", detail)
        path = named.group(1).rstrip(";") if named else prefix + ".data-*"
        return DamagedCheckpointError(f"checkpoint data file {path} is missing", path)
    shard = re.search(r"shard (\d+) \(", detail)
    if shard and shards:
        count = int(shards[0].rsplit("-of-", 1)[1])
        path = f"{prefix}.data-{int(shard.group(1)):05d}-of-{count:05d}"
    elif len(shards) == 1:
        path = shards[0]
    else:
        path = " or ".join(shards) or prefix + ".data-*"
    if "Read less bytes" in detail or isinstance(error, (IndexError, tf.errors.OutOfRangeError)):
        what = f"is truncated (tensor {key} runs past its end)"
    elif "Checksum does not match" in detail:
        what = f"is corrupt (tensor {key} fails its CRC-32C check)"
    else:
        what = f"is unreadable at tensor {key} ({detail})"
    return DamagedCheckpointError(f"checkpoint data file {path} {what}", path)


def _input_state_of(prefix, worker):
    """The input-pipeline state this worker resumes from: its own, else another worker's (every worker's
    pipeline is the same global one, so any state is the same position), else None."""
    own = input_prefix(prefix, worker)
    if os.path.exists(own + ".index") or data_shards(own):
        return own
    others = sorted({p.rsplit(".", 1)[0] for p in glob.glob(glob.escape(prefix) + ".input-*.index")})
    return others[0] if others else None


def _steps_on_disk(directory):
    steps = set()
    for path in glob.glob(os.path.join(glob.escape(directory), "ckpt-*")):
        match = _STEP_OF.match(os.path.basename(path))
        if match and ".input-" not in os.path.basename(path):
            steps.add(int(match.group(1)))
    return [os.path.join(directory, f"ckpt-{step}") for step in sorted(steps)]


def find_resume_checkpoint(directory, worker=0):
    """Check the checkpoints of run ``directory`` before a resume; ``(prefix, input_prefix, damaged)``.

    ``prefix`` is the newest intact checkpoint (None when the directory has
    none), ``input_prefix`` the input-pipeline state this worker resumes from
    (None: there is none) and ``damaged`` a list of ``(prefix, error)`` of
    the newer checkpoints that are damaged -- each one :func:`verify_checkpoint`
    (model and input state) refused, or the state file's own problem: it is
    missing or unreadable while ``ckpt-*`` files exist, or it names a checkpoint
    whose files are gone.  Nothing is modified.
    """
    state = os.path.join(directory, STATE_FILE)
    on_disk = _steps_on_disk(directory)
    damaged = []
    if not os.path.exists(state):
        if not on_disk:
            return None, None, []
        candidates = on_disk
        damaged.append((None, DamagedCheckpointError(
            f"checkpoint state file {state} is missing but {directory} holds {os.path.basename(on_disk[-1])}", state)))
    else:
        candidates = read_state(directory)
        if not candidates:
            candidates = on_disk
            damaged.append((None, DamagedCheckpointError(
                f"checkpoint state file {state} names no checkpoint (empty or not a checkpoint state file)", state)))
    for prefix in reversed(candidates):  # newest first
        try:
            if not os.path.exists(prefix + ".index") and not data_shards(prefix):
                raise DamagedCheckpointError(
                    f"checkpoint state file {state} names {os.path.basename(prefix)}, whose files are gone "
                    f"({prefix}.index is missing)", prefix + ".index")
            verify_checkpoint(prefix)
            input_state = _input_state_of(prefix, worker)
            if input_state is not None:
                verify_checkpoint(input_state)
        except DamagedCheckpointError as e:
            damaged.append((prefix, e))
            continue
        return prefix, input_state, damaged
    return None, None, damaged


def set_aside_damaged(directory, prefixes, keep):
    """Move every file of the damaged checkpoints ``prefixes`` into ``<directory>/damaged/`` and rewrite the
    state file to list ``keep`` (oldest first).  Returns the folder they went to."""
    target = os.path.join(directory, "damaged")
    os.makedirs(target, exist_ok=True)
    for prefix in prefixes:
        for path in _files_of(prefix):
            os.replace(path, os.path.join(target, os.path.basename(path)))
    write_state(directory, keep)
    return target


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
        if not listed:
            return removed  # an unreadable state file: it cannot tell leftovers from checkpoints
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
