"""Checkpoint files: a network's architecture, parameters and training state in one .npz.

Written to a temporary file in the target directory and renamed over the target, so a crash
mid-write never leaves a broken file at the path (``replaced_atomically``, which the command
line's JSON writer shares); read with ``allow_pickle=False``, so a file
holding pickled objects is refused rather than executed.  Every field is checked: a format
version, the architecture, dtypes and shapes; any other file gives ``CheckpointError``.
"""

import contextlib
import json
import os
import secrets
import zipfile
import zlib

import numpy as np

# Version 2 added the training configuration (optimiser, learning rate, batch size,
# schedule), the per-epoch history and the seed; version 1 files still load without them.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAGIC = "steepest-checkpoint"


class CheckpointError(ValueError):
    """A file that is not a readable steepest checkpoint of the expected kind."""


def write_checkpoint(path, state):
    """Write ``state`` (str/int/float/array values; dicts become JSON) to ``path`` atomically."""
    fields = {"magic": np.str_(MAGIC), "format_version": np.int64(FORMAT_VERSION)}
    for key, value in state.items():
        if isinstance(value, dict):
            fields[key] = np.str_(json.dumps(value))
        elif isinstance(value, str):
            fields[key] = np.str_(value)
        else:
            fields[key] = np.asarray(value)
    with replaced_atomically(path) as handle:
        np.savez(handle, **fields)


@contextlib.contextmanager
def replaced_atomically(path):
    """A binary file to write; when the block ends without error it replaces ``path`` whole.

    The data goes to a temporary file in the same directory, synced, then renamed over
    ``path``; on any error (Ctrl-C included) the temporary file is removed and ``path`` is
    left as it was.
    """
    path = os.fspath(path)
    fd, tmp = _new_temporary(os.path.dirname(os.path.abspath(path)), path)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _new_temporary(directory, path):
    """An exclusive new file in ``directory``: (descriptor, name).

    Opened with mode 0o666 like any ordinary new file, so the kernel applies the user's umask
    (or the directory's default ACL).  ``tempfile.mkstemp`` would give 0o600, and the rename
    would hand that private mode on to the saved file.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):  # O_EXCL: a name taken meanwhile is retried with another
        tmp = os.path.join(directory, f".steepest-{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except FileNotFoundError:
            raise FileNotFoundError(f"cannot write {path}: no directory {directory}") from None
    raise FileExistsError(f"cannot write {path}: no free temporary name in {directory}")


_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error,
           NotImplementedError, UnicodeDecodeError, RuntimeError)


def read_checkpoint(path):
    """The fields of a checkpoint as a dict of NumPy arrays (JSON fields still as strings).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        Anything else wrong: not an .npz, truncated, pickled objects, another format version,
        missing or malformed fields.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise CheckpointError(f"{path}: a bare .npy array, not a steepest checkpoint")
            fields = {key: data[key] for key in data.files}
    except CheckpointError:
        raise
    except _ERRORS as exc:
        raise CheckpointError(f"{path}: not a readable steepest checkpoint "
                              f"({type(exc).__name__}: {exc})") from None
    if "magic" not in fields or fields["magic"].shape != () or str(fields["magic"]) != MAGIC:
        raise CheckpointError(f"{path}: not a steepest checkpoint (no '{MAGIC}' marker)")
    version = _scalar(fields, "format_version", path, int)
    if version not in READABLE_VERSIONS:
        raise CheckpointError(f"{path}: checkpoint format version {version}; this steepest "
                              f"reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    return fields


def _scalar(fields, key, path, kind):
    value = fields.get(key)
    if value is None or value.shape != ():
        raise CheckpointError(f"{path}: field {key!r} missing or not a scalar")
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: field {key!r} is malformed ({exc})") from None


def field(fields, key, path, kind=None, dtype=None, shape=None):
    """One checked field: a scalar converted by ``kind``, or an array of ``dtype``/``shape``."""
    if kind is not None:
        return _scalar(fields, key, path, kind)
    if key not in fields:
        raise CheckpointError(f"{path}: field {key!r} missing")
    value = fields[key]
    if dtype is not None and value.dtype != dtype:
        raise CheckpointError(f"{path}: field {key!r} has dtype {value.dtype}, expected {dtype}")
    if shape is not None and value.shape != tuple(shape):
        raise CheckpointError(f"{path}: field {key!r} has shape {value.shape}, "
                              f"expected {tuple(shape)}")
    return value


_REQUIRED = object()


def json_field(fields, key, path, default=_REQUIRED):
    """A JSON field decoded; ``default`` when the key is absent (an older format), if one
    is given."""
    if key not in fields and default is not _REQUIRED:
        return default
    text = _scalar(fields, key, path, str)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: field {key!r} is not valid JSON ({exc})") from None
