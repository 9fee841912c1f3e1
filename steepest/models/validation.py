"""Checks on user input, run before any kernel sees it.

Every error names the argument, what was expected and what was given.  Inputs are converted,
never modified: integer and boolean X become float32 by value (no rescaling), and
non-contiguous or read-only arrays are copied into fresh C-contiguous float32 arrays.
"""

import math
import numbers
import sys

import numpy as np


def check_features(X, n_inputs, name="X"):
    """X as a C-contiguous float32 array of shape (n, n_inputs), finite and non-empty."""
    if _is_sparse(X):
        raise TypeError(f"{name} is a scipy.sparse matrix ({type(X).__name__}); steepest takes "
                        f"dense arrays so far: pass {name}.toarray()")
    if isinstance(X, np.ndarray) or hasattr(X, "__array__"):
        array = np.asarray(X)
    else:
        try:
            array = np.asarray(X)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name} must be an array of numbers; "
                            f"got {type(X).__name__} ({exc})") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers (float, int or bool); got dtype {array.dtype}")
    if array.ndim == 1 and n_inputs == array.shape[0]:
        raise ValueError(f"{name} must be 2-D (n_samples, {n_inputs}); got shape {array.shape}: "
                         f"use {name}.reshape(1, -1) for a single sample")
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, {n_inputs}); got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: got shape {array.shape}, expected at least one sample")
    if array.shape[1] != n_inputs:
        raise ValueError(f"{name} has {array.shape[1]} features per sample but the network "
                         f"expects {n_inputs}; got shape {array.shape}")
    with np.errstate(over="ignore"):  # too large for float32 becomes inf, refused just below
        array = _writable_float32(array)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf (or values too large for float32)")
    return array


def _is_sparse(X):
    """Whether X is a scipy.sparse matrix or array (without importing scipy: if X is one,
    scipy.sparse is already loaded)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def _writable_float32(array):
    """A C-contiguous, writable float32 array: ``array`` itself when it is one, else a copy.

    Read-only arrays (``np.load(mmap_mode="r")``, ``setflags(write=False)``) are copied too:
    numba types them apart from writable ones and would compile a second set of kernels.
    """
    converted = np.ascontiguousarray(array, dtype=np.float32)
    return converted if converted.flags.writeable else converted.copy()


def check_positive_real(value, name):
    """A finite number > 0 (learning rates and the like)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number; got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return float(value)


def check_fraction(value, name):
    """A real number strictly between 0 and 1, of any real type (NumPy scalars included)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not 0 < float(value) < 1:
        raise ValueError(f"{name} must be a number in (0, 1); got {value!r}")
    return float(value)


def check_count(value, name, minimum):
    """An integer ≥ minimum (epochs, batch sizes, layer widths)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer ≥ {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}; got {value}")
    return int(value)
