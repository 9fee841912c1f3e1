"""The tiled passes of a batch: the fused path's arithmetic, reordered for wide layers and
spread over Numba's threads.

The fused path (``_fused.py``) takes one sample at a time through the whole network.  When
the first layer's Wᵀ outgrows the core's cache (784 × 512 floats is 1.6 MB), every sample
streams all of it from memory again, and one core does all the work.  For a batch, the
same sums can be taken in another order:

1. **inputs**: each sample's nonzero positions are listed once (dense rows read sparsely),
   and the batch's lists are sorted by position into **column lists** (for each input i,
   the samples that list it, in batch order: a counting sort by blocks of samples);
2. **first layer, tile by tile**: a tile of Wᵀ's columns (``Tiles.forward`` ≤ 128 floats:
   784 rows × 512 B stay in a core's L2) goes through every sample of a block of the
   batch before the next tile is read; the jobs (tile, block of samples) are shared among
   the threads;
3. **the rest of each sample** (later layers, loss, every δ), four samples per job, each
   later layer's W loaded once for the four and their sums interleaved;
4. **the update**: Wᵀ⁰ tile by tile (``Tiles.update`` columns per job) from the column
   lists: 32 columns of a row of Wᵀ⁰ stay in registers while every sample that lists its
   input adds its term (with the batch's δ¹ of those columns copied side by side, in L1),
   so each weight is loaded and stored once a batch, where the fused path's sample-by-sample
   update loads and stores it once per sample that lists it; then the later layers'
   weights, four rows per job (each activation vector loaded once for the four); the biases
   on one thread (a few hundred floats).

No job writes what another writes or reads, and every sum runs in one order: the weights
are **the same bits** whatever the threads or the tiles (tested).  The forward tiles start
at multiples of 32 so that ``first_layer_forward`` makes the fused path's 32-lane passes;
the update is one FMA per weight and sample, in batch order, as on the fused path, so its
tiles need only whole 16-lane vectors (``paths.tiles_for`` gives whole 128-byte pairs, for
speed).  The batch's loss is added up
in sample order afterwards (``sum_in_order``).  Against the fused path the results agree to
float32 rounding, not bit for bit: the same functions, optimised by LLVM inside other
callers.

Six parallel regions per batch cost about 2 µs each here (the OpenMP layer, measured on
the 2-core machine): ``paths.training_path`` takes this path only for batches whose work
pays for them.  How it fits with the rest: ``kernels/DESIGN.md``.
"""

from collections import namedtuple

import numpy as np
from numba import prange

from ._fused import (
    backward_samples_four,
    first_layer_forward,
    forward_later_layers_four,
    output_loss,
    stored_inputs,
    update_biases,
    update_weight_row,
)
from ._inputs import input_value, sample_inputs
from ._jit import jit_in_order, jit_inline, jit_no_refcount, jit_parallel
from ._simd import LANES, vadd, vfma, vload, vstore, vzero

# forward: columns of Wᵀ⁰ per job (a multiple of 32); update: the same for the update (a
# multiple of 16); block: samples per forward job
Tiles = namedtuple("Tiles", "forward update block")
PASS = 32  # columns of Wᵀ⁰ per pass of the update (two vectors): the δ¹ copied per job
ROWS_PER_JOB = 4  # rows of a later layer's weights per update job (``_update_four_rows``)
SAMPLES_PER_JOB = 4  # samples per job from z¹ on (``_rest_of_four_samples``)


# The phases of a batch (the module docstring's steps; the column lists are counted, placed
# on one thread, then filled): each is one parallel region over its jobs, and all of them
# are one compiled parallel loop, ``_run_jobs``, told the phase by its first argument.  Numba
# compiles every parallel loop as functions of its own, with its callees linked in and
# optimised again; one loop, with a batch's rows and update in one function
# (``_fused.batch_step``), took W3's first ``fit`` with no cache from 45.6-45.7 s to
# 38.8-41.4 s on a slow 2-core machine (issue 14).  A region's start-up is the same.
COUNT, FILL, FIRST_LAYER, REST, UPDATE_FIRST, UPDATE_LATER = range(6)


@jit_parallel
def _run_jobs(phase, n_jobs, scratch, w, bias, X, Y, order, start, n_rows, net, tiles, loss,
              scale):
    """The phase's jobs 0 … n_jobs − 1, shared among the threads.  ``scale``: 1/B for the
    rows' δ (REST), −η for the updates; ``w`` the weights read, or updated by the updates.
    Callers pass the phase as ``np.int64`` (a literal would compile the loop again)."""
    for j in prange(n_jobs):
        job = np.int64(j)  # prange's index may be unsigned
        if phase == COUNT:
            _count_block_columns(scratch, X, order, start, n_rows, net, tiles, job)
        elif phase == FILL:
            _fill_block_columns(scratch, X, order, start, n_rows, net, tiles, job)
        elif phase == FIRST_LAYER:
            tile, block = divmod(job, _n_blocks(n_rows, tiles))
            _first_layer_job(scratch, w, bias, X, order, start, n_rows, net, tiles, tile,
                             block)
        elif phase == REST:
            s0 = job * SAMPLES_PER_JOB
            _rest_of_four_samples(scratch, w, bias, Y, order, start, s0,
                                  min(SAMPLES_PER_JOB, n_rows - s0), net, loss, scale)
        elif phase == UPDATE_FIRST:
            c0 = job * tiles.update
            _update_first_layer_job(w, scratch, n_rows, net, scale, c0,
                                    min(net.pads[1], c0 + tiles.update), job)
        else:
            _update_later_rows_job(w, scratch, n_rows, net, scale, job)


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
def _count_block_columns(scratch, X, order, start, n_rows, net, tiles, block):
    """The block's samples' inputs listed (dense rows read sparsely), and counted by
    position into col_cursor[block · IN:]."""
    n_in = net.sizes[0]
    cursor = scratch.col_cursor
    at = block * n_in
    for i in range(n_in):
        cursor[at + i] = 0
    first = block * tiles.block
    for s in range(first, min(n_rows, first + tiles.block)):
        if scratch.stored:
            _list_sample_inputs(scratch, X, order, start, s)
        idx, n = stored_inputs(X, order[start + s], scratch, s)[1:]
        for k in range(n):
            cursor[at + idx[k]] += 1


@jit_no_refcount
def _place_block_columns(scratch, n_in, n_blocks):
    """Counts -> where each input's entries start (col_ptr) and where each block's part of
    them starts (col_cursor): input by input, blocks in order, so samples in batch order."""
    ptr, cursor = scratch.col_ptr, scratch.col_cursor
    running = 0
    for i in range(n_in):
        ptr[i] = running
        for block in range(n_blocks):
            count = cursor[block * n_in + i]
            cursor[block * n_in + i] = running
            running += count
    ptr[n_in] = running


@jit_no_refcount
def _fill_block_columns(scratch, X, order, start, n_rows, net, tiles, block):
    """The block's entries at their places: (slot of the sample, its xᵢ)."""
    n_in = net.sizes[0]
    cursor, slots, values_out = scratch.col_cursor, scratch.col_slots, scratch.col_values
    at = block * n_in
    first = block * tiles.block
    for s in range(first, min(n_rows, first + tiles.block)):
        values, idx, n = stored_inputs(X, order[start + s], scratch, s)
        for k in range(n):
            p = cursor[at + idx[k]]
            slots[p] = s
            values_out[p] = np.float32(input_value(values, idx, k))
            cursor[at + idx[k]] = p + 1


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
def _rest_of_four_samples(scratch, w, bias, Y, order, start, s0, n, net, loss, inv_b):
    """From z¹ on for the n ≤ 4 samples from s0: the later layers, each loss (its two parts,
    as ``_fused.forward_backward_rows`` adds them) into scratch.losses, every δ; the
    four-sample functions of ``_fused.py`` (each sample's own sums: its bits)."""
    acts, deltas, width = scratch.acts, scratch.deltas, net.row_width
    arow = s0 * width
    for s in range(s0, s0 + n):  # z¹₀, before the activation overwrites it
        scratch.losses[2 * s] = acts[s * width + net.a_off[1]]
    forward_later_layers_four(acts, arow, width, n, w, bias, net)
    for s in range(s0, s0 + n):
        scratch.losses[2 * s] = output_loss(acts, s * width, scratch.losses[2 * s], Y,
                                            order[start + s], net, loss)
    backward_samples_four(deltas, acts, arow, width, n, w, Y, order, start, s0, net, loss,
                          inv_b, scratch.losses)


@jit_no_refcount
def _update_first_layer_job(w, scratch, n_rows, net, neg, c_start, c_end, job):
    """Wᵀ⁰[:, c_start:c_end] += neg · Σ_batch x δ¹ᵀ, from the column lists, 32 columns at a
    time: the batch's δ¹ of those columns are copied side by side (``PASS`` floats a sample,
    in L1; in place, a wide layer's rows are pages apart), then two rows of Wᵀ⁰ at a time
    are held in registers while every sample that lists their input adds its term, in batch
    order, and stored once.  Each weight sees the same FMAs in the same order as the fused
    path's sample-by-sample update (``_fused.update_first_layer_row``), so the bits do not
    depend on the tiles; two rows give four independent FMA chains."""
    n_in = net.sizes[0]
    deltas = scratch.col_deltas[job * scratch.n_nonzero.shape[0] * PASS:]  # capacity × PASS
    c = c_start
    while c < c_end:
        n_vectors = 2 if c + 2 * LANES <= c_end else 1  # else the last 16 columns
        for s in range(n_rows):
            at = s * net.row_width + net.a_off[1] + c
            vstore(deltas, s * PASS, vload(scratch.deltas, at))
            if n_vectors == 2:
                vstore(deltas, s * PASS + LANES, vload(scratch.deltas, at + LANES))
        row = c
        i = 0
        if n_vectors == 2:
            while i + 2 <= n_in:
                _update_row_pair(w, deltas, scratch, neg, row, net.w0_stride, i)
                row += 2 * net.w0_stride
                i += 2
        while i < n_in:
            _update_row_columns(w, deltas, scratch, neg, row, i, n_vectors)
            row += net.w0_stride
            i += 1
        c += n_vectors * LANES


@jit_inline
def _update_row_pair(w, deltas, scratch, neg, row0, stride, i):
    """Rows i and i + 1 of Wᵀ⁰ (at row0 and row0 + stride), 32 columns: both rows' entries
    in step while both have some, then each row's rest; ``deltas`` the copied δ¹."""
    ptr, slots, values = scratch.col_ptr, scratch.col_slots, scratch.col_values
    row1 = row0 + stride
    lo0, hi0 = vload(w, row0), vload(w, row0 + LANES)
    lo1, hi1 = vload(w, row1), vload(w, row1 + LANES)
    p0, end0, end1 = ptr[i], ptr[i + 1], ptr[i + 2]
    p1 = end0
    while p0 < end0 and p1 < end1:
        d0 = slots[p0] * PASS
        d1 = slots[p1] * PASS
        scale0 = neg * values[p0]
        scale1 = neg * values[p1]
        lo0 = vfma(lo0, scale0, vload(deltas, d0))
        hi0 = vfma(hi0, scale0, vload(deltas, d0 + LANES))
        lo1 = vfma(lo1, scale1, vload(deltas, d1))
        hi1 = vfma(hi1, scale1, vload(deltas, d1 + LANES))
        p0 += 1
        p1 += 1
    for p in range(p0, end0):
        lo0 = vfma(lo0, neg * values[p], vload(deltas, slots[p] * PASS))
        hi0 = vfma(hi0, neg * values[p], vload(deltas, slots[p] * PASS + LANES))
    for p in range(p1, end1):
        lo1 = vfma(lo1, neg * values[p], vload(deltas, slots[p] * PASS))
        hi1 = vfma(hi1, neg * values[p], vload(deltas, slots[p] * PASS + LANES))
    vstore(w, row0, lo0)
    vstore(w, row0 + LANES, hi0)
    vstore(w, row1, lo1)
    vstore(w, row1 + LANES, hi1)


@jit_inline
def _update_row_columns(w, deltas, scratch, neg, row, i, n_vectors):
    """Row i of Wᵀ⁰ (at ``row``), 16 · n_vectors columns (1 or 2): the pair's loop for one
    row (an odd last row, or the last 16 columns)."""
    ptr, slots, values = scratch.col_ptr, scratch.col_slots, scratch.col_values
    lo = vload(w, row)
    hi = vload(w, row + LANES) if n_vectors == 2 else lo
    for p in range(ptr[i], ptr[i + 1]):
        lo = vfma(lo, neg * values[p], vload(deltas, slots[p] * PASS))
        if n_vectors == 2:
            hi = vfma(hi, neg * values[p], vload(deltas, slots[p] * PASS + LANES))
    vstore(w, row, lo)
    if n_vectors == 2:
        vstore(w, row + LANES, hi)


@jit_inline
def _n_blocks(n_rows, tiles):
    return (n_rows + tiles.block - 1) // tiles.block


@jit_no_refcount
def _update_later_rows_job(w, scratch, n_rows, net, neg, job):
    """The job-th group of ROWS_PER_JOB rows of the later layers' weights (layer 1's first;
    a layer's last group may be shorter)."""
    layer = 1
    while job * ROWS_PER_JOB >= net.sizes[layer + 1]:
        job -= (net.sizes[layer + 1] + ROWS_PER_JOB - 1) // ROWS_PER_JOB
        layer += 1
    o = job * ROWS_PER_JOB
    if o + ROWS_PER_JOB <= net.sizes[layer + 1]:
        _update_four_rows(w, scratch.acts, scratch.deltas, n_rows, net, layer, o, neg)
    else:
        for r in range(o, net.sizes[layer + 1]):
            update_weight_row(w, scratch.acts, scratch.deltas, n_rows, net, layer, r, neg)


@jit_no_refcount
def _update_four_rows(w, acts, deltas, n_rows, net, layer, o, neg):
    """``_fused.update_weight_row`` for rows o to o + 3 at once: each activation vector is
    loaded once for the four rows.  Every row keeps its four chains (sample mod 4) and
    their sum, so its bits are update_weight_row's."""
    rw = net.row_width
    in_padded = net.pads[layer]
    d_at = net.a_off[layer + 1] + o
    a_at = net.a_off[layer]
    for c in range(0, in_padded, LANES):
        a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = vzero()
        a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = vzero()
        s = 0
        while s + 4 <= n_rows:
            r0 = s * rw
            r1 = r0 + rw
            r2 = r1 + rw
            r3 = r2 + rw
            x0 = vload(acts, r0 + a_at + c)
            x1 = vload(acts, r1 + a_at + c)
            x2 = vload(acts, r2 + a_at + c)
            x3 = vload(acts, r3 + a_at + c)
            a00 = vfma(a00, deltas[r0 + d_at], x0)
            a01 = vfma(a01, deltas[r1 + d_at], x1)
            a02 = vfma(a02, deltas[r2 + d_at], x2)
            a03 = vfma(a03, deltas[r3 + d_at], x3)
            a10 = vfma(a10, deltas[r0 + d_at + 1], x0)
            a11 = vfma(a11, deltas[r1 + d_at + 1], x1)
            a12 = vfma(a12, deltas[r2 + d_at + 1], x2)
            a13 = vfma(a13, deltas[r3 + d_at + 1], x3)
            a20 = vfma(a20, deltas[r0 + d_at + 2], x0)
            a21 = vfma(a21, deltas[r1 + d_at + 2], x1)
            a22 = vfma(a22, deltas[r2 + d_at + 2], x2)
            a23 = vfma(a23, deltas[r3 + d_at + 2], x3)
            a30 = vfma(a30, deltas[r0 + d_at + 3], x0)
            a31 = vfma(a31, deltas[r1 + d_at + 3], x1)
            a32 = vfma(a32, deltas[r2 + d_at + 3], x2)
            a33 = vfma(a33, deltas[r3 + d_at + 3], x3)
            s += 4
        while s < n_rows:
            r0 = s * rw
            x0 = vload(acts, r0 + a_at + c)
            a00 = vfma(a00, deltas[r0 + d_at], x0)
            a10 = vfma(a10, deltas[r0 + d_at + 1], x0)
            a20 = vfma(a20, deltas[r0 + d_at + 2], x0)
            a30 = vfma(a30, deltas[r0 + d_at + 3], x0)
            s += 1
        at = net.w_off[layer] + o * in_padded + c
        _add_row_sum(w, at, neg, a00, a01, a02, a03)
        _add_row_sum(w, at + in_padded, neg, a10, a11, a12, a13)
        _add_row_sum(w, at + 2 * in_padded, neg, a20, a21, a22, a23)
        _add_row_sum(w, at + 3 * in_padded, neg, a30, a31, a32, a33)


@jit_inline
def _add_row_sum(w, at, neg, acc0, acc1, acc2, acc3):
    """w[at:at + 16] += neg · ((acc0 + acc1) + (acc2 + acc3)), update_weight_row's sum."""
    vstore(w, at, vfma(vload(w, at), neg, vadd(vadd(acc0, acc1), vadd(acc2, acc3))))


@jit_in_order
def sum_in_order(total, values, n):
    """total + values[0] + values[1] + … in that order (no reassociation: the fused path's
    sum, bit for bit)."""
    for i in range(n):
        total += values[i]
    return total


@jit_inline
def tiled_rows(tiles, total, scratch, w, bias, X, Y, order, start, n_rows, net, loss, inv_b):
    """``_fused.batch_step``'s rows on the tiled passes (phases 1–3 of the module docstring)."""
    n_blocks = _n_blocks(n_rows, tiles)
    n_tiles = (net.pads[1] + tiles.forward - 1) // tiles.forward
    args = (scratch, w, bias, X, Y, order, start, n_rows, net, tiles, np.int64(loss),
            np.float32(inv_b))
    _run_jobs(np.int64(COUNT), n_blocks, *args)
    _place_block_columns(scratch, net.sizes[0], n_blocks)
    _run_jobs(np.int64(FILL), n_blocks, *args)
    _run_jobs(np.int64(FIRST_LAYER), n_tiles * n_blocks, *args)
    _run_jobs(np.int64(REST), (n_rows + SAMPLES_PER_JOB - 1) // SAMPLES_PER_JOB, *args)
    return sum_in_order(total, scratch.losses, 2 * n_rows)


@jit_inline
def tiled_update(tiles, w, bias, scratch, X, Y, order, start, n_rows, net, loss,
                 learning_rate):
    """``_fused.batch_step``'s update on the tiled passes (phase 4): Wᵀ⁰ by tiles of
    columns, the later layers' weights ROWS_PER_JOB rows of one layer per job, then the
    biases."""
    neg = np.float32(-learning_rate)
    args = (scratch, w, bias, X, Y, order, start, n_rows, net, tiles, np.int64(loss), neg)
    _run_jobs(np.int64(UPDATE_FIRST), (net.pads[1] + tiles.update - 1) // tiles.update, *args)
    n_later = 0
    for layer in range(1, net.sizes.shape[0] - 1):
        n_later += (net.sizes[layer + 1] + ROWS_PER_JOB - 1) // ROWS_PER_JOB
    if n_later > 0:
        _run_jobs(np.int64(UPDATE_LATER), n_later, *args)
    update_biases(bias, scratch.deltas, n_rows, net, neg)
