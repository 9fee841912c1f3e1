"""Where a sample's inputs come from: a dense row of X, or the stored entries of a sparse row.

The first layer of every CPU kernel takes a sample as three things, ``(values, positions,
n)``: z¹ = b + Σ_{k<n} values[k]·Wᵀ[positions[k]].  ``sample_inputs`` gives them for either
kind of X, chosen when numba compiles (``overload`` on X's type), so one kernel source
serves both:

* dense X (N, IN): the row itself with the positions 0..IN-1, or, when under half of the
  inputs are nonzero (``inputs_are_sparse``; 81% of MNIST's pixels are 0), only its nonzero
  entries, found row by row (``compact_nonzero``) and gathered into a short list;
* ``SparseRows`` (``kernels/rows.py``): the row's stored entries, as they are: no search,
  no copy, a third of the bytes of a dense MNIST row.

``compact_rows`` turns a mostly-zero dense X into ``SparseRows`` once (the models do it once
per ``fit``, so every epoch reads the short rows), and checks finiteness on the way;
``all_finite`` is that check alone, in one pass with no temporary array.
"""

import numpy as np
from numba import types
from numba.extending import overload

from ..rows import SparseRows
from ._jit import JIT_OPTIONS, jit, jit_no_refcount
from ._simd import compact8, nonzero_position_table, prefetch

SPARSE_BELOW_HALVES = 1  # skip zero inputs when fewer than 1/2 of the inputs are nonzero
DENSITY_ROWS = 256       # rows sampled to measure that fraction
_POSITIONS = nonzero_position_table()  # a global array: numba bakes it into the compiled code
_EXPONENT = np.uint32(0x7F800000)      # float32 exponent bits: all set for inf and NaN

__all__ = ["SparseRows", "all_finite", "compact_nonzero", "compact_rows", "count_nonzero_rows",
           "gather_rows", "input_value", "inputs_are_sparse", "is_dense", "longest_row",
           "n_samples", "prefetch_sample", "sample_inputs"]


def _is_sparse_rows(X):
    return isinstance(X, types.BaseNamedTuple) and getattr(X, "instance_class", None) \
        is SparseRows


def is_dense(X):
    """Whether X is a dense 2-D array (a constant where numba compiles it)."""
    raise NotImplementedError("compiled only: call from @njit code")


@overload(is_dense, jit_options=JIT_OPTIONS)
def _is_dense_impl(X):
    dense = isinstance(X, types.Array)
    return lambda X: dense


def n_samples(X):
    """The number of rows of X."""
    raise NotImplementedError("compiled only: call from @njit code")


@overload(n_samples, jit_options=JIT_OPTIONS)
def _n_samples_impl(X):
    if _is_sparse_rows(X):
        return lambda X: X.indptr.shape[0] - 1
    return lambda X: X.shape[0]


def longest_row(X):
    """The most inputs any row of X lists for the first layer: IN for dense X, the longest
    stored row for ``SparseRows`` (sizes the tiled passes' column lists)."""
    raise NotImplementedError("compiled only: call from @njit code")


@overload(longest_row, jit_options=JIT_OPTIONS)
def _longest_row_impl(X):
    if _is_sparse_rows(X):
        def stored(X):
            longest = 0
            for row in range(X.indptr.shape[0] - 1):
                longest = max(longest, X.indptr[row + 1] - X.indptr[row])
            return longest
        return stored
    return lambda X: X.shape[1]


def inputs_are_sparse(X, order):
    """Whether the first layer should walk only listed inputs: always for ``SparseRows``;
    for dense X when under half the entries of the first rows of ``order`` are nonzero.

    Measured, not assumed: on dense data the zero test and index list cost more than they
    save, so the first layer then walks every input.  (Integer arithmetic: no float64.)
    """
    raise NotImplementedError("compiled only: call from @njit code")


@overload(inputs_are_sparse, jit_options=JIT_OPTIONS)
def _inputs_are_sparse_impl(X, order):
    if _is_sparse_rows(X):  # np.bool_: a literal True would specialise every kernel given it
        return lambda X, order: np.bool_(True)

    def measured(X, order):
        rows = min(order.shape[0], DENSITY_ROWS)
        nonzero = 0
        for k in range(rows):
            x = X[order[k]]
            for i in range(x.shape[0]):
                nonzero += x[i] != 0
        return 2 * nonzero < SPARSE_BELOW_HALVES * rows * X.shape[1]
    return measured


def prefetch_sample(X, Y, order, k):
    """Ask for the inputs and targets of sample order[k] (if any) before they are needed."""
    raise NotImplementedError("compiled only: call from @njit code")


@overload(prefetch_sample, jit_options=JIT_OPTIONS)
def _prefetch_sample_impl(X, Y, order, k):
    if _is_sparse_rows(X):
        def stored(X, Y, order, k):
            if k < order.shape[0]:
                row = order[k]
                start, stop = X.indptr[row], X.indptr[row + 1]
                for j in range(start, stop, 64 // X.data.itemsize):
                    prefetch(X.data, j)
                for j in range(start, stop, 64 // X.indices.itemsize):
                    prefetch(X.indices, j)
                prefetch(Y[row], 0)
        return stored

    def dense(X, Y, order, k):
        if k < order.shape[0]:
            row = order[k]
            x = X[row]
            for j in range(0, x.shape[0], 64 // x.itemsize):
                prefetch(x, j)
            prefetch(Y[row], 0)
    return dense


def compact_nonzero(idx, x):
    """idx[:n] = positions of the nonzero entries of x, in order; returns n.

    idx needs len(x) + 8 slots.  float32 rows go 8 lanes at a time through a mask and a
    table of bit positions (``_simd.compact8``, ~4x faster than one at a time); other dtypes
    take the scalar loop, which is branch-free: every position is written and the count
    advances only on a nonzero, faster than a branch on MNIST's irregular zero runs.
    NaN counts as nonzero, so it still reaches the loss.
    """
    raise NotImplementedError("compiled only: call from @njit code")


@overload(compact_nonzero, jit_options=JIT_OPTIONS)
def _compact_nonzero_impl(idx, x):
    if isinstance(x, types.Array) and x.dtype == types.float32 and x.layout == "C":
        def vector(idx, x):
            n = 0
            full = x.shape[0] - x.shape[0] % 8
            for start in range(0, full, 8):
                n = compact8(idx, n, x, start, _POSITIONS)
            for i in range(full, x.shape[0]):
                idx[n] = i
                n += x[i] != 0
            return n
        return vector

    def scalar(idx, x):
        n = 0
        for i in range(x.shape[0]):
            idx[n] = i
            n += x[i] != 0
        return n
    return scalar


def sample_inputs(X, row, idx, sparse):
    """(values, positions, n) of row ``row`` of X for the first layer (module docstring).

    Dense X: ``values`` is ``(x,)``, the row itself, which ``input_value`` reads at the
    listed positions: with ``sparse`` its nonzero ones, listed into ``idx`` (len IN + 8);
    without, ``idx``, which must then hold 0..IN-1.  ``SparseRows``: views of the row's
    stored values and positions (``idx`` unused), read in order.
    """
    raise NotImplementedError("compiled only: call from @njit code")


@overload(sample_inputs, jit_options=JIT_OPTIONS, inline="always")
def _sample_inputs_impl(X, row, idx, sparse):
    if _is_sparse_rows(X):
        def stored(X, row, idx, sparse):
            start, stop = X.indptr[row], X.indptr[row + 1]
            return X.data[start:stop], X.indices[start:stop], stop - start
        return stored

    def dense(X, row, idx, sparse):
        x = X[row]
        if sparse:
            return (x,), idx, compact_nonzero(idx, x)
        return (x,), idx, x.shape[0]
    return dense


def input_value(values, idx, k):
    """The k-th listed input of a sample from ``sample_inputs``: x[idx[k]] for a dense row
    (kept as the row: no copy of its nonzero values), values[k] for a sparse one."""
    raise NotImplementedError("compiled only: call from @njit code")


@overload(input_value, jit_options=JIT_OPTIONS)
def _input_value_impl(values, idx, k):
    if isinstance(values, types.BaseTuple):
        return lambda values, idx, k: values[0][idx[k]]
    return lambda values, idx, k: values[k]


@jit_no_refcount
def _bits_finite(bits):
    """Whether no entry of the float32 bit patterns ``bits`` is inf or NaN: the largest
    exponent field, one integer max over the array (vectorised, no temporary)."""
    largest = np.uint32(0)
    for i in range(bits.shape[0]):
        largest = max(largest, bits[i] & _EXPONENT)
    return largest != _EXPONENT


@jit
def all_finite(values):
    """Whether every entry of the float32 array ``values`` (C-contiguous, any shape) is
    finite: one pass at memory speed, with no temporary array (``np.isfinite`` makes one
    the size of X)."""
    return _bits_finite(values.reshape(values.size).view(np.uint32))


@jit
def count_nonzero_rows(counts, X):
    """counts[r] = the number of nonzero entries of row r of the float32 X; returns whether
    every entry is finite (one pass over X for both)."""
    bits = X.view(np.uint32)
    largest = np.uint32(0)
    for r in range(X.shape[0]):
        nonzero = 0
        for i in range(X.shape[1]):
            nonzero += X[r, i] != 0
            largest = max(largest, bits[r, i] & _EXPONENT)
        counts[r] = nonzero
    return largest != _EXPONENT


@jit
def compact_rows(indices, data, indptr, X):
    """Fill ``SparseRows`` arrays with the nonzero entries of X, row by row, in position
    order; ``indptr`` from ``count_nonzero_rows``'s counts."""
    idx = np.empty(X.shape[1] + 8, np.int32)
    for r in range(X.shape[0]):
        x = X[r]
        n = compact_nonzero(idx, x)
        start = indptr[r]
        for k in range(n):
            indices[start + k] = idx[k]
            data[start + k] = x[idx[k]]


@jit
def gather_rows(indices, data, indptr, X, index):
    """Copy the rows ``index`` of the ``SparseRows`` X into the arrays of new ones, whose
    ``indptr`` (from the rows' lengths) is given."""
    for k in range(index.shape[0]):
        start = X.indptr[index[k]]
        at = indptr[k]
        for j in range(indptr[k + 1] - at):
            indices[at + j] = X.indices[start + j]
            data[at + j] = X.data[start + j]
