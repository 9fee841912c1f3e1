"""Sparse input rows: the compressed-row form the CPU kernels accept beside dense X.

``SparseRows(indptr, indices, data, n_inputs)`` is scipy's CSR without the matrix object: row r's
stored entries are ``data[indptr[r]:indptr[r + 1]]`` at the input positions
``indices[indptr[r]:indptr[r + 1]]``.  The first layer then walks only those entries
(z¹ = b + Σ_k data[k]·Wᵀ[indices[k]]), and every later layer is as for dense rows.

* ``indptr`` int64 (n + 1,): absolute positions into ``indices``/``data``, so a slice of
  rows is ``indptr[a:b + 1]`` with the same two arrays: no copy (``row_slice``).
* ``indices`` int16 when the layer is narrow enough (MNIST: 6 bytes per stored value
  instead of 8), else int32 (a scipy matrix's int32 positions are kept); ``data`` float32.

This module is plain NumPy, so the models can build and slice ``SparseRows`` without
importing numba; compacting dense rows, gathering rows and checking finiteness are compiled
(``kernels/cpu/_inputs.py``).  The CUDA kernels take dense rows only: its backend expands
these (``to_dense``).
"""

from collections import namedtuple

import numpy as np

SparseRows = namedtuple("SparseRows", "indptr indices data n_inputs")


def index_dtype(n_inputs):
    """The narrowest index type that holds every input position 0..n_inputs-1."""
    return np.int16 if n_inputs <= np.iinfo(np.int16).max else np.int32


def n_rows(X):
    """The number of rows of X, dense or ``SparseRows``."""
    return len(X.indptr) - 1 if isinstance(X, SparseRows) else X.shape[0]


def from_scipy(matrix, n_inputs):
    """``SparseRows`` of a scipy.sparse matrix or array of any format (a CSR's values and
    positions are used as they are when they are float32 and int16/int32)."""
    csr = matrix.tocsr()  # the matrix itself when it is CSR: never modified
    # Repeated or unsorted positions in a row need nothing: the first layer adds every
    # stored entry's term, so a repeated position counts with the sum of its values.
    # int32 positions stay as they are (no copy of the largest array; the kernels compile
    # for both widths), wider ones are narrowed
    positions = csr.indices if csr.indices.dtype in (np.int16, np.int32) \
        else csr.indices.astype(index_dtype(n_inputs))
    return SparseRows(np.ascontiguousarray(csr.indptr, dtype=np.int64),
                      np.ascontiguousarray(positions),
                      np.ascontiguousarray(csr.data, dtype=np.float32), int(n_inputs))


def row_slice(X, start, stop):
    """Rows [start, stop) of X: a view of a dense X, or ``SparseRows`` sharing its arrays."""
    if not isinstance(X, SparseRows):
        return X[start:stop]
    start, stop, _ = slice(start, stop).indices(n_rows(X))
    return X._replace(indptr=X.indptr[start:max(start, stop) + 1])


def take_rows(X, index):
    """The rows ``index`` (an integer array) of X, copied: a C-contiguous dense array, or
    new compact ``SparseRows``."""
    index = np.asarray(index, np.int64)
    if not isinstance(X, SparseRows):
        return np.ascontiguousarray(X[index])
    from .cpu._inputs import gather_rows

    indptr = np.zeros(len(index) + 1, np.int64)
    np.cumsum(X.indptr[index + 1] - X.indptr[index], out=indptr[1:])
    indices = np.empty(indptr[-1], X.indices.dtype)
    data = np.empty(indptr[-1], np.float32)
    gather_rows(indices, data, indptr, X, index)
    return SparseRows(indptr, indices, data, X.n_inputs)


def to_dense(X):
    """X as a dense float32 array (n, n_inputs) (a dense X as it is)."""
    if not isinstance(X, SparseRows):
        return X
    rows, n = X, n_rows(X)
    dense = np.zeros((n, rows.n_inputs), np.float32)
    first = rows.indptr[0]
    counts = np.diff(rows.indptr)
    row_of = np.repeat(np.arange(n), counts)
    entries = slice(first, rows.indptr[-1])
    np.add.at(dense, (row_of, rows.indices[entries]), rows.data[entries])  # repeats add up
    return dense
