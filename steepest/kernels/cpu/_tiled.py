"""The tiled passes of a batch: the fused path's arithmetic, reordered for wide layers and
spread over Numba's threads.

The fused path (``_fused.py``) takes one sample at a time through the whole network.  When
the first layer's Wᵀ outgrows the core's cache (784 × 512 floats is 1.6 MB), every sample
streams all of it from memory again, and one core does all the work.  For a batch, the
same sums can be taken in another order:

1. **inputs**: each sample's nonzero positions are listed once (dense rows read sparsely),
   the samples shared among the threads;
2. **first layer, tile by tile**: a tile of Wᵀ's columns (``Tiles.forward`` ≤ 128 floats:
   784 rows × 512 B stay in a core's L2) goes through every sample of a block of the
   batch before the next tile is read; the jobs (tile, block of samples) are shared among
   the threads;
3. **the rest of each sample** (later layers, loss, every δ), one sample per job;
4. **the update**: Wᵀ⁰ tile by tile (``Tiles.update`` columns per job, every sample's
   rank-1 term in batch order), then the later layers' weights row by row (two loops, so
   that each shares out jobs of one size); the biases on one thread (a few hundred floats).

No job writes what another writes or reads, and every sum runs in one order: the weights
are **the same bits** whatever the threads or the tiles (tested).  The forward tiles start
at multiples of 32 so that ``first_layer_forward`` makes the fused path's 32-lane passes;
the update is one FMA per weight and sample, so its tiles need only whole 16-lane vectors
(``paths.tiles_for`` gives whole 128-byte pairs, for speed).  The batch's loss is added up
in sample order afterwards (``sum_in_order``).  Against the fused path the results agree to
float32 rounding, not bit for bit: the same functions, optimised by LLVM inside other
callers.

Five parallel regions per batch cost about 2 µs each here (the OpenMP layer, measured on
the 2-core machine): ``paths.training_path`` takes this path only for batches whose work
pays for them.  How it fits with the rest: ``kernels/DESIGN.md``.
"""

from collections import namedtuple

import numpy as np
from numba import prange

from ._fused import (
    backward_sample,
    first_layer_forward,
    forward_later_layers,
    output_loss,
    stored_inputs,
    update_biases,
    update_first_layer_row,
    update_weight_row,
)
from ._inputs import sample_inputs
from ._jit import jit_in_order, jit_inline, jit_no_refcount, jit_parallel

# forward: columns of Wᵀ⁰ per job (a multiple of 32); update: the same for the update (a
# multiple of 16); block: samples per forward job
Tiles = namedtuple("Tiles", "forward update block")


@jit_parallel
def _list_inputs(scratch, X, order, start, n_rows):
    """Each sample's listed inputs into its slot of the scratch (dense rows read sparsely)."""
    for s in prange(n_rows):
        _list_sample_inputs(scratch, X, order, start, s)


@jit_parallel
def _first_layer_tiles(scratch, w, bias, X, order, start, n_rows, net, tiles):
    """z¹ of every sample, by jobs of (tile of columns, block of samples)."""
    n_tiles = (net.pads[1] + tiles.forward - 1) // tiles.forward
    n_blocks = (n_rows + tiles.block - 1) // tiles.block
    for job in prange(n_tiles * n_blocks):
        tile, block = divmod(np.int64(job), n_blocks)  # prange's index may be unsigned
        _first_layer_job(scratch, w, bias, X, order, start, n_rows, net, tiles, tile, block)


@jit_parallel
def _rest_of_samples(scratch, w, bias, Y, order, start, n_rows, net, loss, inv_b):
    """From z¹ on, one sample per job (``_rest_of_sample``)."""
    for s in prange(n_rows):
        _rest_of_sample(scratch, w, bias, Y, order, start, np.int64(s), net, loss, inv_b)


# The jobs: each a function without reference counting (``_jit.jit_no_refcount``) that the
# parallel loops above call with arrays and tuples only, so the per-sample functions of
# ``_fused.py`` run in the same setting as on the fused path.  (``sample_inputs`` and
# ``stored_inputs``, which return views of X, are inlined into every caller: numba compiles
# a callee once, with its first caller's reference counting, and views made without it and
# released with it freed X; tests/test_cache_determinism.py runs the tiled path first.)

@jit_no_refcount
def _list_sample_inputs(scratch, X, order, start, s):
    at = s * scratch.stride
    scratch.n_nonzero[s] = sample_inputs(X, order[start + s], scratch.idx[at:],
                                         scratch.sparse)[2]


@jit_no_refcount
def _first_layer_job(scratch, w, bias, X, order, start, n_rows, net, tiles, tile, block):
    """z¹[tile's columns] of the block's samples."""
    width = net.pads[1]
    c0 = tile * tiles.forward
    c1 = min(width, c0 + tiles.forward)
    first = block * tiles.block
    for s in range(first, min(n_rows, first + tiles.block)):
        values, idx, n = stored_inputs(X, order[start + s], scratch, s)
        first_layer_forward(scratch.acts, s * net.row_width + net.a_off[1], w, bias, values,
                            idx, n, net.w0_stride, net.b_off[0], c0, c1)


@jit_no_refcount
def _rest_of_sample(scratch, w, bias, Y, order, start, s, net, loss, inv_b):
    """From z¹ on for sample s: the later layers, the loss (its two parts, as
    ``_fused.forward_backward_rows`` adds them) into scratch.losses, every δ."""
    acts, deltas = scratch.acts, scratch.deltas
    row = order[start + s]
    arow = s * net.row_width
    first = acts[arow + net.a_off[1]]
    forward_later_layers(acts, arow, w, bias, net)
    scratch.losses[2 * s] = output_loss(acts, arow, first, Y, row, net, loss)
    scratch.losses[2 * s + 1] = backward_sample(deltas, acts, arow, w, Y, row, net, loss,
                                                inv_b)


@jit_no_refcount
def _update_first_layer_job(w, scratch, X, order, start, n_rows, net, neg, c0, c1):
    """Wᵀ⁰[:, c0:c1] += neg · Σ_batch x δ¹ᵀ, every sample's term in batch order."""
    for s in range(n_rows):
        values, idx, count = stored_inputs(X, order[start + s], scratch, s)
        update_first_layer_row(w, scratch.deltas, s * net.row_width + net.a_off[1], values,
                               idx, count, net.w0_stride, c0, c1, neg)


@jit_no_refcount
def _update_later_row_job(w, scratch, n_rows, net, neg, job):
    """The job-th row of the later layers' weights (layer 1's first)."""
    layer = 1
    while job >= net.sizes[layer + 1]:
        job -= net.sizes[layer + 1]
        layer += 1
    update_weight_row(w, scratch.acts, scratch.deltas, n_rows, net, layer, job, neg)


@jit_in_order
def sum_in_order(total, values, n):
    """total + values[0] + values[1] + … in that order (no reassociation: the fused path's
    sum, bit for bit)."""
    for i in range(n):
        total += values[i]
    return total


@jit_inline
def tiled_rows(tiles, total, scratch, w, bias, X, Y, order, start, n_rows, net, loss, inv_b):
    """``_fused.batch_rows`` on the tiled passes (phases 1–3 of the module docstring)."""
    if scratch.stored:
        _list_inputs(scratch, X, order, start, n_rows)
    _first_layer_tiles(scratch, w, bias, X, order, start, n_rows, net, tiles)
    _rest_of_samples(scratch, w, bias, Y, order, start, n_rows, net, loss, inv_b)
    return sum_in_order(total, scratch.losses, 2 * n_rows)


@jit_parallel
def _update_first_layer_tiles(w, scratch, X, order, start, n_rows, net, neg, tiles):
    """Wᵀ⁰ by tiles of columns, one job each."""
    width = net.pads[1]
    for job in prange((width + tiles.update - 1) // tiles.update):
        c0 = np.int64(job) * tiles.update  # prange's index may be unsigned
        _update_first_layer_job(w, scratch, X, order, start, n_rows, net, neg, c0,
                                min(width, c0 + tiles.update))


@jit_parallel
def _update_later_rows(w, scratch, n_rows, net, neg):
    """The later layers' weights, one row of one layer per job."""
    n_later = 0
    for layer in range(1, net.sizes.shape[0] - 1):
        n_later += net.sizes[layer + 1]
    for job in prange(n_later):
        _update_later_row_job(w, scratch, n_rows, net, neg, np.int64(job))


@jit_inline
def tiled_update(tiles, w, bias, scratch, X, order, start, n_rows, net, learning_rate):
    """``_fused.batch_update`` on the tiled passes (phase 4)."""
    neg = np.float32(-learning_rate)
    _update_first_layer_tiles(w, scratch, X, order, start, n_rows, net, neg, tiles)
    if net.sizes.shape[0] > 2:
        _update_later_rows(w, scratch, n_rows, net, neg)
    update_biases(bias, scratch.deltas, n_rows, net, neg)
