"""Checks on user input, run before any kernel sees it.

Every error names the argument, what was expected and what was given.  Inputs are converted,
never modified: integer and boolean X become float32 by value (no rescaling), non-contiguous
or read-only arrays are copied into fresh C-contiguous float32 arrays, and scipy.sparse
matrices become ``SparseRows`` (``kernels/rows.py``).
"""

import math
import numbers
import sys

import numpy as np

# fit compacts a dense X with at most this share of nonzero entries: the compacted rows then
# take at most 1.5 × 22% = 33% of X's bytes (int16 positions + float32 values)
COMPACT_DENSITY = 0.22
DENSITY_SAMPLE_ROWS = 256
# the compaction splits X into spans of at least this many rows: a thread's start (0.1 ms)
# is then small against its span (about 2 ms on MNIST)
MIN_SPAN_ROWS = 4096


def check_features(X, n_inputs, name="X", finite=True):
    """X as a C-contiguous float32 array of shape (n, n_inputs), non-empty and (with
    ``finite``) finite; a scipy.sparse matrix as ``SparseRows`` (``kernels/rows.py``), and
    ``SparseRows`` as they are."""
    from ..kernels.rows import SparseRows, n_rows

    if isinstance(X, SparseRows):
        _check_shape((n_rows(X), X.n_inputs), 2, n_inputs, name)
        if finite:
            check_finite(X, name)
        return X
    if _is_sparse(X):
        return _check_sparse(X, n_inputs, name, finite)
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
    _check_shape(array.shape, array.ndim, n_inputs, name)
    with np.errstate(over="ignore"):  # too large for float32 becomes inf, refused just below
        array = _writable_float32(array)
    if finite:
        check_finite(array, name)
    return array


def _check_shape(shape, ndim, n_inputs, name):
    if ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, {n_inputs}); got shape {shape}")
    if shape[0] == 0:
        raise ValueError(f"{name} is empty: got shape {shape}, expected at least one sample")
    if shape[1] != n_inputs:
        raise ValueError(f"{name} has {shape[1]} features per sample but the network "
                         f"expects {n_inputs}; got shape {shape}")


def _check_sparse(X, n_inputs, name, finite):
    """A scipy.sparse matrix as ``SparseRows``, its stored values checked finite."""
    from ..kernels.rows import from_scipy

    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers (float, int or bool); got dtype {X.dtype}")
    _check_shape(X.shape, len(X.shape), n_inputs, name)
    with np.errstate(over="ignore"):
        rows = from_scipy(X, n_inputs)
    if finite:
        check_finite(rows, name)
    return rows


def check_finite(X, name="X"):
    """Refuse NaN and inf in X (dense float32 or ``SparseRows``): one compiled pass, no
    temporary array the size of X (``np.isfinite(X).all()`` makes one)."""
    from ..kernels.cpu._inputs import all_finite
    from ..kernels.rows import SparseRows

    values = X.data if isinstance(X, SparseRows) else X
    if not all_finite(values):
        raise ValueError(f"{name} contains NaN or inf (or values too large for float32)")


def training_features(X, n_inputs, compact, name="X", finite_in_epoch=False):
    """``check_features`` for ``fit``: X checked once, and, with ``compact``, a dense X that
    is mostly zeros (at most COMPACT_DENSITY of its entries nonzero, measured on evenly
    spaced rows) turned into ``SparseRows`` in the same pass that checks its finiteness, so
    that every epoch reads only the nonzero inputs (about 30% of MNIST's bytes).

    With ``finite_in_epoch`` a dense X that stays dense is not checked here: the epoch
    itself finds a NaN or inf input, for every one makes the parameters non-finite (the
    first layer's update adds x·δ, NaN or ±inf for any δ), and ``fit`` then checks X and
    raises ValueError naming it, with the weights restored to where they were.  That saves
    a pass over X (6 ms of a 70 ms W1 epoch on MNIST).

    ``fit`` compacts only when it reads X more than once: the compaction costs about a third
    of a W1 epoch, plus the first touch of its new memory (which on the 2-core VM of the
    benchmarks costs up to 100 ms for MNIST's 45 MB, against 25 ms for memory the process
    had used before), and saves about a third of every epoch."""
    from ..kernels.rows import SparseRows

    X = check_features(X, n_inputs, name, finite=False)
    if isinstance(X, SparseRows):
        check_finite(X, name)
        return X
    sample = X[::-(-X.shape[0] // DENSITY_SAMPLE_ROWS)]
    if not compact or np.count_nonzero(sample) > COMPACT_DENSITY * sample.size:
        if not finite_in_epoch:
            check_finite(X, name)
        return X
    return _compacted(X, name)


def rows_as_given(given, X):
    """The rows ``fit``'s own metrics (the training accuracy) read: the caller's dense array
    ``given`` itself where ``X`` is its compacted copy (``training_features``), else ``X``.

    Inference gives the same bits on both kinds of rows, and on the dense ones it compiles
    once for ``fit``, ``predict``, ``evaluate`` and a dense validation set together: on the
    compacted rows it compiled a second time (9-10 s of a multi-epoch ``fit``'s cold start,
    issue 14).  Kept only when it is the caller's own float32 array (a view, no memory): a
    converted copy is not kept beside the compacted one.
    """
    from ..kernels.rows import SparseRows

    own = (isinstance(given, np.ndarray) and given.ndim == 2 and given.dtype == np.float32
           and given.flags.c_contiguous and given.flags.writeable)
    return given if own and isinstance(X, SparseRows) else X


def _compacted(X, name):
    """X's nonzero entries as ``SparseRows``, or ValueError if X is not finite.

    Two passes over X (count each row's nonzeros and check finiteness, then copy them),
    each split into spans of rows on Python threads (``kernels/cpu/spans.py``); the spans
    write disjoint parts of the arrays, so the result is the same whatever the split.  On
    MNIST it takes 18 ms instead of 24-35 ms on the 2-core machine (issue 15: a sweep
    compacts once for all its networks)."""
    from ..kernels.cpu._inputs import compact_rows, count_nonzero_rows
    from ..kernels.cpu.spans import in_threads, spans
    from ..kernels.rows import SparseRows, index_dtype

    row_spans = spans(X.shape[0], MIN_SPAN_ROWS)
    indptr = np.zeros(X.shape[0] + 1, np.int64)
    finite = in_threads(lambda a, b: count_nonzero_rows(indptr[a + 1:b + 1], X[a:b]),
                        row_spans)
    if not all(finite):
        raise ValueError(f"{name} contains NaN or inf (or values too large for float32)")
    np.cumsum(indptr, out=indptr)
    # allocated here, by NumPy, so that tracemalloc sees them
    indices = np.empty(indptr[-1], index_dtype(X.shape[1]))
    data = np.empty(indptr[-1], np.float32)
    in_threads(lambda a, b: compact_rows(indices, data, indptr[a:b], X[a:b]), row_spans)
    return SparseRows(indptr, indices, data, X.shape[1])


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
