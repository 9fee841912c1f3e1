"""Reader for the IDX format of MNIST and its relatives (plain or gzip-compressed).

Layout: two zero bytes, a type code, the number of dimensions d, then d big-endian uint32
sizes, then the data, row-major.  Only the unsigned-byte type (0x08) is used by these data
sets, and only it is accepted here; anything else is refused with an ``IDXError`` that names
the file, never a crash or a silently short array.
"""

import gzip
import math
import os
import zlib

import numpy as np

UBYTE = 0x08


class IDXError(ValueError):
    """An IDX file that is missing, truncated, or not what it claims to be."""


def _read_bytes(path):
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise IDXError(f"IDX file not found: {path}") from None
    except OSError as exc:  # a directory, no permission: still an IDXError naming the path
        what = "is a directory, not an IDX file" if os.path.isdir(path) else exc.strerror
        raise IDXError(f"cannot read IDX file {path}: {what}") from None
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise IDXError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    return raw


def read_idx(path, expected_ndim=None):
    """Read an unsigned-byte IDX file into a NumPy uint8 array.

    Parameters
    ----------
    path : str or os.PathLike
        The file, raw or gzip-compressed (detected from its first bytes).
    expected_ndim : int, optional
        1 for label files, 3 for image files; a different header is an error.

    Returns
    -------
    numpy.ndarray of uint8 with the shape the header declares.

    Raises
    ------
    IDXError
        Missing or unreadable file (a directory, say), bad magic, unsupported type, wrong
        rank, or a data length that does not match the declared dimensions; the message
        names the file.
    """
    path = os.fspath(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise IDXError(f"{path}: too short to hold an IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise IDXError(f"{path}: wrong magic number {raw[:4].hex()} (an IDX file starts with 0000)")
    if raw[2] != UBYTE:
        raise IDXError(f"{path}: IDX data type 0x{raw[2]:02x} is not supported "
                       f"(expected 0x08, unsigned byte)")
    ndim = raw[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise IDXError(f"{path}: holds a {ndim}-dimensional array, expected {expected_ndim} "
                       f"dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{path}: truncated header ({len(raw)} bytes, expected {header})")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    # exact Python integers: an int64 product of hostile dims wraps and could equal the body
    expected = math.prod(shape)
    actual = len(raw) - header
    if actual != expected:
        what = "truncated" if actual < expected else "longer than its header says"
        raise IDXError(f"{path}: {what}: header declares shape {shape} = {expected} bytes "
                       f"of data, found {actual}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
