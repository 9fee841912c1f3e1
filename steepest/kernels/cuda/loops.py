"""Whole training loops on CUDA: per-sample SGD is ONE kernel launch per epoch.

Three paths, chosen by batch size and optimiser:

* **One block per epoch** (per-sample SGD, and mini-batches of up to ``ONE_BLOCK_MAX_BATCH``
  rows): a single block of ``ONE_BLOCK_THREADS`` threads runs every step of the epoch, with
  ``syncthreads`` between the phases of a step (forward per layer, output loss and δ, then per
  layer δ propagation and the update), streaming the samples from device memory in the
  epoch's order.  Small steps are latency-bound, so one block on one SM with no launches and
  no host round trips beats spreading a 16-wide layer over a grid.  Long dot products are
  split across threads (each takes every ``parts``-th term, then one thread adds the
  partial sums out of shared memory): into enough parts to give all threads work (784-long
  products of a 16-output layer keep 256 threads busy), and at least COALESCE_PARTS, so
  that consecutive threads read consecutive floats of a W row and of the input row
  (coalesced) instead of one row each.  A product of n terms is cut into at most
  ⌈n / MIN_TERMS_PER_THREAD⌉ parts, so short ones (a 16-wide layer's) are not split at
  all: a reduction and its barrier would cost more than the terms.

  Shared memory: the kernel takes *dynamic* shared memory, capped at 48 KB per block (the
  limit without the driver opt-in, which numba-cuda does not expose).  784-16-16-10 in float32
  is 52 KB, so the whole network does not fit.  The choice: keep the **leading layers'
  weights in global memory** and the rest in shared memory, cutting at the first layer
  boundary from which everything fits; the activations and deltas of the batch (and the
  partial sums) are in shared memory too.  For 784-16-16-10 and 784-30-10 that puts W⁰ (the
  784-wide layer, read once per sample as coalesced rows, so it stays in L1/L2) in global
  memory and every later layer in shared memory.  The opt-in (cuFuncSetAttribute through the
  driver API) was not taken: it cannot be tested without a GPU, and the first layer is the
  one read in long coalesced rows, where shared memory gains least.  When even the
  activations do not fit (large layers or batches), they go to a global scratch buffer and
  the kernel is the same: the *global fallback*, correct for any size, slower.
  Parameters kept in shared memory are copied in at the start of the epoch and back at the end.

* **Tiled steps** (larger mini-batches, and full-batch descent): each step is 3L queued
  launches of the tiled shared-memory matmul kernels of ``network`` (forward fused with bias
  and activation, one fused loss-and-δ kernel, δ propagation fused with f′, gradient fused
  with the update), the samples gathered from the device-resident data set through the
  order, and each row's loss accumulated on the device (no atomics, so the loss is
  deterministic).  The host reads the losses back once per epoch.

* **Any optimiser** (``optimizer_epoch_minibatch``): the tiled steps with the gradient
  written to a device vector instead of applied, then one elementwise optimiser launch
  (3L + 1 launches per step, for every batch size).

Each loop returns the epoch's mean loss over samples (each batch's loss before its update).
"""

import numpy as np

from .. import _cuda
from ..codes import IDENTITY, SOFTMAX
from ._device import (
    FLOAT32_TYPE,
    ONE,
    ZERO,
    activate,
    activate_backward,
    activate_output_row,
    cuda,
    flat,
    row_output_delta,
    softmax_backward_row,
    softmax_row,
)
from .network import Workspace, layer_views
from .optimizers import launch_optimizer, on_device, read_step, write_step

__all__ = ["gd_step_full_batch", "optimizer_epoch_minibatch", "sgd_epoch_minibatch",
           "sgd_epoch_per_sample"]

# The kernel is written for any block size.  The simulator runs every thread as a Python
# thread and pays for each barrier per thread, so it gets a smaller block (still more threads
# than the tests' layers have outputs, so the split dot products are exercised).
ONE_BLOCK_THREADS = 64 if _cuda.simulator_enabled() else 256
ONE_BLOCK_MAX_BATCH = 32       # larger batches take the tiled multi-block steps
MIN_TERMS_PER_THREAD = 32      # dot products of up to this many terms are never split
COALESCE_PARTS = 8             # long dot products are split at least this far (coalescing)
SHARED_MEMORY_BYTES = 48 * 1024  # per block, without the driver opt-in


@cuda.jit(device=True)
def _parts(pairs, n_terms, threads, coalesce_parts):
    """Into how many parts each of ``pairs`` dot products of ``n_terms`` terms is split.

    Enough parts to give every thread work, at least ``coalesce_parts`` (consecutive threads
    then read consecutive addresses of one W row), but never parts of fewer than about
    MIN_TERMS_PER_THREAD terms.  The host mirrors this bound in ``one_block_layout``.
    """
    spread = threads // pairs
    if spread < coalesce_parts:
        spread = coalesce_parts
    most = (n_terms + MIN_TERMS_PER_THREAD - 1) // MIN_TERMS_PER_THREAD
    return max(1, min(spread, most))


@cuda.jit
def _sgd_epoch_one_block_kernel(params, sizes, activations, w_offsets, a_offsets,
                                delta_offsets, loss, X, Y, order, batch_size, learning_rate,
                                shared_from, work_in_shared, scratch, n_partials,
                                coalesce_parts, loss_out):
    """A whole epoch of SGD in one block; see the module docstring for the memory layout.

    Dynamic shared memory: [0, n_partials) partial sums (n_partials ≥ T, and ≥ every layer's
    (row, unit) pairs × parts, see ``one_block_layout``), then params[shared_from:], then (when
    ``work_in_shared``) the work buffer: layer l's activations at a_offsets[l] (batch rows ×
    sizes[l]) and two δ buffers at delta_offsets; otherwise the work buffer is ``scratch``.
    X and Y are flat (N·IN,), (N·OUT,).  loss_out[0] ← the epoch's mean loss.
    """
    smem = cuda.shared.array(0, FLOAT32_TYPE)
    t = cuda.threadIdx.x
    T = cuda.blockDim.x
    n_layers = sizes.shape[0] - 1
    n_shared = params.shape[0] - shared_from
    for k in range(t, n_shared, T):
        smem[n_partials + k] = params[shared_from + k]
    work = scratch
    work_base = 0
    if work_in_shared:
        work = smem
        work_base = n_partials + n_shared
    n = order.shape[0]
    width_out = sizes[n_layers]
    my_loss = ZERO
    cuda.syncthreads()
    for start in range(0, n, batch_size):
        rows = min(batch_size, n - start)
        # ---------------------------------------------------------------- forward
        for layer in range(n_layers):
            n_in = sizes[layer]
            n_out = sizes[layer + 1]
            w_buf = params
            w_base = w_offsets[layer]
            if w_base >= shared_from:
                w_buf = smem
                w_base = n_partials + w_base - shared_from
            b_base = w_base + n_out * n_in
            in_buf = X if layer == 0 else work
            out_base = work_base + a_offsets[layer + 1]
            act = activations[layer]
            if layer == n_layers - 1:
                act = IDENTITY  # z stays: the loss phase applies f and takes exact losses
            pairs = rows * n_out
            parts = _parts(pairs, n_in, T, coalesce_parts)
            for job in range(t, pairs * parts, T):
                pair = job // parts
                part = job - pair * parts
                r = pair // n_out
                o = pair - r * n_out
                if layer == 0:
                    in_row = order[start + r] * n_in
                else:
                    in_row = work_base + a_offsets[layer] + r * n_in
                w_row = w_base + o * n_in
                acc = ZERO
                for i in range(part, n_in, parts):
                    acc += w_buf[w_row + i] * in_buf[in_row + i]
                if parts == 1:
                    work[out_base + pair] = activate(acc + w_buf[b_base + o], act)
                else:
                    smem[job] = acc
            if parts > 1:
                cuda.syncthreads()
                for pair in range(t, pairs, T):
                    acc = ZERO
                    for p in range(parts):
                        acc += smem[pair * parts + p]
                    o = pair % n_out
                    work[out_base + pair] = activate(acc + w_buf[b_base + o], act)
            cuda.syncthreads()
            if act == SOFTMAX:
                for r in range(t, rows, T):
                    softmax_row(work, out_base + r * n_out, work, out_base + r * n_out, n_out)
                cuda.syncthreads()
        # ---------------------------------------------------------- f, loss and δᴸ
        d_cur = work_base + delta_offsets[0]
        d_other = work_base + delta_offsets[1]
        out_base = work_base + a_offsets[n_layers]
        inv_rows = ONE / np.float32(rows)
        for r in range(t, rows, T):
            y_base = order[start + r] * width_out
            a_row = out_base + r * width_out
            my_loss += activate_output_row(work, a_row, Y, y_base, width_out, loss,
                                           activations[n_layers - 1])
            row_output_delta(work, d_cur + r * width_out, work, a_row, Y, y_base, width_out,
                             loss, activations[n_layers - 1], inv_rows)
        cuda.syncthreads()
        # ---------------------------------------------------------------- backward + update
        for layer in range(n_layers - 1, -1, -1):
            n_in = sizes[layer]
            n_out = sizes[layer + 1]
            w_buf = params
            w_base = w_offsets[layer]
            if w_base >= shared_from:
                w_buf = smem
                w_base = n_partials + w_base - shared_from
            b_base = w_base + n_out * n_in
            below = work_base + a_offsets[layer]
            if layer > 0:
                # δ below = f′(a below) ⊙ Wᵀδ, from the weights before this step's update
                act_below = activations[layer - 1]
                pairs = rows * n_in
                parts = _parts(pairs, n_out, T, coalesce_parts)
                for job in range(t, pairs * parts, T):
                    pair = job // parts
                    part = job - pair * parts
                    r = pair // n_in
                    i = pair - r * n_in
                    d_row = d_cur + r * n_out
                    acc = ZERO
                    for o in range(part, n_out, parts):
                        acc += work[d_row + o] * w_buf[w_base + o * n_in + i]
                    if parts == 1:
                        if act_below != SOFTMAX:
                            acc = activate_backward(acc, work[below + pair], act_below)
                        work[d_other + pair] = acc
                    else:
                        smem[job] = acc
                if parts > 1:
                    cuda.syncthreads()
                    for pair in range(t, pairs, T):
                        acc = ZERO
                        for p in range(parts):
                            acc += smem[pair * parts + p]
                        if act_below != SOFTMAX:
                            acc = activate_backward(acc, work[below + pair], act_below)
                        work[d_other + pair] = acc
                cuda.syncthreads()
                if act_below == SOFTMAX:
                    for r in range(t, rows, T):
                        softmax_backward_row(work, d_other + r * n_in, work, d_other + r * n_in,
                                             work, below + r * n_in, n_in)
                    cuda.syncthreads()
            # θ ← θ − η Σ_rows δ aᵀ (δ already carries the 1/B of the batch mean)
            in_buf = X if layer == 0 else work
            # (o, i) of element k, stepped along with k: no 64-bit division per element
            o = t // n_in
            i = t - o * n_in
            for k in range(t, n_out * n_in, T):
                grad = ZERO
                for r in range(rows):
                    in_row = order[start + r] * n_in if layer == 0 else below + r * n_in
                    grad += work[d_cur + r * n_out + o] * in_buf[in_row + i]
                w_buf[w_base + k] -= learning_rate * grad
                i += T
                while i >= n_in:
                    i -= n_in
                    o += 1
            for o in range(t, n_out, T):
                grad = ZERO
                for r in range(rows):
                    grad += work[d_cur + r * n_out + o]
                w_buf[b_base + o] -= learning_rate * grad
            cuda.syncthreads()
            swap = d_cur
            d_cur = d_other
            d_other = swap
    smem[t] = my_loss
    cuda.syncthreads()
    if t == 0:
        total = ZERO
        for k in range(T):
            total += smem[k]
        loss_out[0] = total / np.float32(n)
    for k in range(t, n_shared, T):
        params[shared_from + k] = smem[n_partials + k]


def one_block_layout(sizes, batch_size, threads=ONE_BLOCK_THREADS,
                     shared_bytes=SHARED_MEMORY_BYTES):
    """Where the one-block kernel keeps things, as a dict (see the module docstring).

    Returns w_offsets (L + 1, the last = P), a_offsets (L + 1), delta_offsets (2,),
    work_size, work_in_shared, shared_from (the parameter offset from which parameters are
    in shared memory; P for none), n_partials and coalesce_parts (the partial-sum buffer and
    the split it allows) and shared_bytes (dynamic shared memory to launch with).
    Priority for the 48 KB: partial sums, then the batch's activations and deltas, then the
    parameters from the last layer backwards.
    """
    sizes = [int(s) for s in sizes]
    w_offsets, offset = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w_offsets.append(offset)
        offset += n_out * n_in + n_out
    n_params = offset
    w_offsets.append(n_params)
    a_offsets, offset = [0], 0
    for n in sizes[1:]:
        a_offsets.append(offset)
        offset += batch_size * n
    widest = max(sizes[1:])
    delta_offsets = [offset, offset + batch_size * widest]
    work_size = offset + 2 * batch_size * widest
    # A split makes at most max(threads, coalesce_parts × pairs) partial sums (see _parts),
    # and pairs ≤ batch × widest in every phase.  The coalescing split only gets a quarter
    # of shared memory; past that, dot products split only to fill the block.
    capacity = shared_bytes // 4
    coalesce_parts = COALESCE_PARTS
    n_partials = max(threads, coalesce_parts * batch_size * widest)
    if n_partials > capacity // 4:
        coalesce_parts, n_partials = 1, threads
    budget = capacity - n_partials
    work_in_shared = work_size <= budget
    if work_in_shared:
        budget -= work_size
    shared_from = next(w for w in w_offsets if n_params - w <= budget)
    used = n_partials + (n_params - shared_from) + (work_size if work_in_shared else 0)
    return dict(w_offsets=w_offsets, a_offsets=a_offsets, delta_offsets=delta_offsets,
                work_size=work_size, work_in_shared=work_in_shared, shared_from=shared_from,
                n_partials=n_partials, coalesce_parts=coalesce_parts, shared_bytes=4 * used)


def _one_block_epoch(params, sizes, activations, loss, X, Y, order, batch_size, learning_rate):
    n = int(order.shape[0])
    batch_size = max(1, min(int(batch_size), n))
    layout = one_block_layout(sizes, batch_size, ONE_BLOCK_THREADS, SHARED_MEMORY_BYTES)
    ints = lambda values: cuda.to_device(np.asarray(values, np.int64))  # noqa: E731
    scratch = cuda.device_array(1 if layout["work_in_shared"] else layout["work_size"],
                                np.float32)
    loss_out = cuda.device_array(1, np.float32)
    _sgd_epoch_one_block_kernel[1, ONE_BLOCK_THREADS, 0, layout["shared_bytes"]](
        params, ints(sizes), ints(activations), ints(layout["w_offsets"]),
        ints(layout["a_offsets"]), ints(layout["delta_offsets"]), int(loss), flat(X), flat(Y),
        order, batch_size, np.float32(learning_rate), layout["shared_from"],
        layout["work_in_shared"], scratch, layout["n_partials"], layout["coalesce_parts"],
        loss_out)
    return float(loss_out.copy_to_host()[0])


def _tiled_epoch(params, sizes, activations, loss, X, Y, order, batch_size, learning_rate):
    """Mini-batch SGD as queued tiled launches (``order`` None: rows in place, no gather)."""
    n = int(X.shape[0] if order is None else order.shape[0])
    capacity = max(1, min(int(batch_size), n))
    workspace = Workspace(sizes, activations, capacity)
    views = layer_views(params, workspace.sizes)
    Y_flat = flat(Y)
    workspace.reset_loss()
    for start in range(0, n, capacity):
        n_rows = min(capacity, n - start)
        workspace.forward(views, X, n_rows, order, start, keep_z=True)
        workspace.backward(views, views, X, Y_flat, int(loss), n_rows,
                           -float(learning_rate), False, 1.0 / n, order, start)
    return workspace.read_loss()


def sgd_epoch_minibatch(params, sizes, activations, loss, X, Y, order, batch_size,
                        learning_rate):
    """One epoch of mini-batch SGD over the samples in ``order``; the last batch may be short.

    Batches of up to ONE_BLOCK_MAX_BATCH rows run as one launch (one block), larger ones as
    3L queued tiled launches per step.
    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    if int(batch_size) <= ONE_BLOCK_MAX_BATCH:
        return _one_block_epoch(params, sizes, activations, loss, X, Y, order, batch_size,
                                learning_rate)
    return _tiled_epoch(params, sizes, activations, loss, X, Y, order, batch_size,
                        learning_rate)


def sgd_epoch_per_sample(params, sizes, activations, loss, X, Y, order, learning_rate):
    """One epoch of per-sample SGD: an update after every sample, in ``order``, in ONE launch.

    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    return _one_block_epoch(params, sizes, activations, loss, X, Y, order, 1, learning_rate)


def gd_step_full_batch(params, sizes, activations, loss, X, Y, learning_rate):
    """One step of full-batch gradient descent on all of X; returns the loss before the step.

    params (P,) updated in place; X (N, IN), Y (N, OUT)
    """
    return _tiled_epoch(params, sizes, activations, loss, X, Y, None, X.shape[0],
                        learning_rate)


def optimizer_epoch_minibatch(params, state, step, sizes, activations, loss, optimizer, hyper,
                              X, Y, order, batch_size):
    """One epoch of mini-batch training by any optimiser, over the samples in ``order``.

    batch_size 1 is per-sample training, batch_size ≥ N one full-batch step; the last batch
    may be short.  Returns the epoch's mean loss over samples, each batch's loss taken before
    its update.  params (P,), state (slots, P) and step (1,) int64 are updated in place
    (``step`` is read once and written once per call); hyper (5,) float32;
    X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    n = int(order.shape[0])
    batch = max(1, min(int(batch_size), n))
    workspace = Workspace(sizes, activations, batch)
    views = layer_views(params, workspace.sizes)
    grads = cuda.device_array(params.shape[0], np.float32)
    grad_views = layer_views(grads, workspace.sizes)
    hyper = on_device(hyper, np.float32)
    Y_flat = flat(Y)
    t = read_step(step)
    workspace.reset_loss()
    for start in range(0, n, batch):
        n_rows = min(batch, n - start)
        workspace.forward(views, X, n_rows, order, start, keep_z=True)
        workspace.backward(views, grad_views, X, Y_flat, int(loss), n_rows, 1.0, True, 1.0 / n,
                           order, start)
        t += 1
        launch_optimizer(params, state, grads, optimizer, hyper, t)
    write_step(step, t)
    return workspace.read_loss()
