"""Whole training loops on CUDA: per-sample SGD is ONE kernel launch per epoch.

Three paths, chosen by batch size, layer widths and optimiser (``launch_plan``):

* **One block per epoch** (per-sample SGD, and mini-batches of up to ``ONE_BLOCK_MAX_BATCH``
  rows, when the network is narrow enough that one SM does a step sooner than a grid's launches
  would, see *The launch plan* below): a single block of ``ONE_BLOCK_THREADS`` threads runs
  every step of the epoch, with ``syncthreads`` between the phases of a step (forward per
  layer, output loss and δ, then per layer δ propagation and the update: ``_forward_layer``,
  ``_output_phase``, ``_backward_layer``, ``_update_layer``), streaming the samples from device
  memory in the epoch's order.  Its layout (sizes, codes, offsets) travels in one small int64
  array, the *plan* (slots listed above ``one_block_plan``).  Small steps are latency-bound, so
  one block on one SM with no launches and no host round trips beats spreading a 16-wide layer
  over a grid.  Long dot products are split across threads (each takes every ``parts``-th term,
  then one thread adds the partial sums out of shared memory): into enough parts to give all
  threads work (784-long products of a 16-output layer keep 256 threads busy), and at least
  COALESCE_PARTS, so that consecutive threads read consecutive floats of a W row and of the
  input row (coalesced) instead of one row each.  A product of n terms is cut into at most ⌈n /
  MIN_TERMS_PER_THREAD⌉ parts, so short ones (a 16-wide layer's) are not split at all: a
  reduction and its barrier would cost more than the terms.

  Shared memory: the kernel takes *dynamic* shared memory, 48 KB per block unless the
  kernel's limit is raised through the driver up to the device's opt-in maximum (227 KB on
  Hopper; ``one_block_shared_limit`` and ``_cuda.raise_dynamic_shared_memory``, used when the
  device reports it and the driver accepts; a ``gpu`` test proves it).  Within 48 KB,
  784-16-16-10 in float32 (52 KB) does not fit whole.  The choice: keep the **leading
  layers' weights in global memory** and the rest in shared memory, cutting at the first
  layer boundary from which everything fits; the activations and deltas of the batch (and
  the partial sums) are in shared memory too.  At 48 KB, 784-16-16-10 and 784-30-10 keep W⁰
  (the 784-wide layer, read once per sample as coalesced rows, so it stays in L1/L2) in
  global memory and every later layer in shared memory; at 227 KB the whole network is in
  shared memory.  When even the activations do not fit (large layers or batches), they go to
  a global scratch buffer and the kernel is the same: the *global fallback*, correct for any
  size, slower.  Parameters kept in shared memory are copied in at the start of the epoch
  and back at the end.

* **Tiled steps** (larger mini-batches, and full-batch descent): each step is 3L queued
  launches of the tiled shared-memory matmul kernels of ``network`` (forward fused with bias
  and activation, one fused loss-and-δ kernel, δ propagation fused with f′, gradient fused
  with the update), the samples gathered from the device-resident data set through the
  order, and each row's loss accumulated on the device (no atomics, so the loss is
  deterministic).  The host reads the losses back once per epoch.

* **Any optimiser** (``optimizer_epoch_minibatch``): the tiled steps with the gradient
  written to a device vector instead of applied, then one elementwise optimiser launch
  (3L + 1 launches per step, for every batch size); with scikit-learn's penalty α > 0 one
  more elementwise launch before it adds (α/B)·W to the weights' gradient and each block's
  ‖W‖² to its slot of a per-block sum, read back once per epoch (no atomics: deterministic).

The launch plan (``launch_plan``): the one-block kernel does a step's 3·B·P multiply-adds
(forward, δ, update of P parameters over a batch of B rows) on ONE SM, with no launches; the
tiled steps spread them over the whole GPU but pay 3L launches per step, each a numba-cuda
dispatch from Python.  A step's time on each is estimated from the widths and the batch with
the constants below (estimates for an H100/H200, to be calibrated there:
``benchmarks/gpu_check.py --launch-plans`` times both paths on the shapes that matter and
says whether the plan chose the faster), and the cheaper path runs.  So per-sample and small
batches of the tutorials' networks keep one launch per epoch, while a 784-1024-1024-10 at
batch 10 (56 M multiply-adds per step: about 1 ms on one SM) takes the tiled launches.

Each loop returns the epoch's mean loss over samples (each batch's loss before its update).
"""

import numpy as np

from .. import _cuda
from ..codes import IDENTITY, SOFTMAX
from ._device import (
    FLOAT32_TYPE,
    ONE,
    PRODUCTION_SIZES,
    ZERO,
    activate,
    activate_backward,
    activate_output_row,
    check_code,
    check_codes,
    cuda,
    device_ints,
    flat,
    row_output_delta,
    softmax_backward_row,
    softmax_row,
)
from .network import Workspace, layer_views
from .optimizers import (
    l2_alpha,
    l2_sums,
    launch_l2_penalty,
    launch_optimizer,
    on_device,
    read_step,
    weight_ranges,
    write_step,
)

__all__ = ["gd_step_full_batch", "optimizer_epoch_minibatch", "sgd_epoch_minibatch",
           "sgd_epoch_per_sample"]

# The kernel is written for any block size.  The simulator runs every thread as a Python
# thread and pays for each barrier per thread, so it gets a smaller block (still more threads
# than the tests' layers have outputs, so the split dot products are exercised), unless
# STEEPEST_CUDA_SIM_SIZES=production (see ``_device``).
ONE_BLOCK_THREADS = 256 if PRODUCTION_SIZES else 64
ONE_BLOCK_MAX_BATCH = 32       # larger batches take the tiled multi-block steps
MIN_TERMS_PER_THREAD = 32      # dot products of up to this many terms are never split
COALESCE_PARTS = 8             # long dot products are split at least this far (coalescing)
SHARED_MEMORY_BYTES = 48 * 1024  # per block, without the driver opt-in
SHARED_MEMORY_OPT_IN = True      # raise the one-block kernel's limit where the device allows

# The launch plan's step-time estimates (see the module docstring; calibrate on a GPU):
ONE_SM_MACS_PER_S = 6e10   # one block of 256 threads on one SM: ~¼ of its 128 FMA/clock
GRID_MACS_PER_S = 5e12     # the tiled kernels over the whole GPU (well below its peak)
LAUNCH_S = 2e-5            # one queued numba-cuda launch, its Python dispatch included
BARRIER_S = 1e-6           # one of the one-block kernel's phases (its syncthreads included)

# ---------------------------------------------------------------------------- the plan
# The one-block kernel reads its whole layout from ONE small int64 device array, the plan
# (``one_block_plan`` builds it on the host from ``one_block_layout``'s dict):
#
#   plan[PLAN_N_LAYERS]         L, the number of dense layers
#   plan[PLAN_LOSS]             the loss code
#   plan[PLAN_BATCH_SIZE]       rows per step (the epoch's last batch may be shorter)
#   plan[PLAN_SHARED_FROM]      the parameter offset from which parameters are in shared memory
#   plan[PLAN_WORK_IN_SHARED]   1: the work buffer is in shared memory; 0: it is ``scratch``
#   plan[PLAN_N_PARTIALS]       floats of partial sums at the start of shared memory
#   plan[PLAN_COALESCE_PARTS]   the least split of a long dot product (see ``_parts``)
#   plan[PLAN_DELTA_A], plan[PLAN_DELTA_B]   offsets of the two δ buffers in the work buffer
#
# then, from PLAN_LAYERS, one record of PLAN_RECORD slots per layer boundary l = 0 … L
# (``_layer(plan, l, field)`` reads one):
#
#   LAYER_SIZE        sizes[l]: layer l's input width (record L: the output width)
#   LAYER_ACTIVATION  activations[l]: layer l's activation code (record L: -1, unused)
#   LAYER_W_OFFSET    where Wˡ starts in params, bˡ right after it (record L: P)
#   LAYER_A_OFFSET    where the batch's width-sizes[l] activations start in the work buffer
#                     (record 0: unused, the input rows are read from X)
PLAN_N_LAYERS = 0
PLAN_LOSS = 1
PLAN_BATCH_SIZE = 2
PLAN_SHARED_FROM = 3
PLAN_WORK_IN_SHARED = 4
PLAN_N_PARTIALS = 5
PLAN_COALESCE_PARTS = 6
PLAN_DELTA_A = 7
PLAN_DELTA_B = 8
PLAN_LAYERS = 9
LAYER_SIZE = 0
LAYER_ACTIVATION = 1
LAYER_W_OFFSET = 2
LAYER_A_OFFSET = 3
PLAN_RECORD = 4


def one_block_plan(sizes, activations, loss, batch_size, layout):
    """The one-block kernel's plan (slots above) as a host int64 array.

    ``layout`` is ``one_block_layout(sizes, batch_size, …)``; activations and loss are codes.
    """
    n_layers = len(sizes) - 1
    plan = np.zeros(PLAN_LAYERS + (n_layers + 1) * PLAN_RECORD, np.int64)
    plan[PLAN_N_LAYERS] = n_layers
    plan[PLAN_LOSS] = loss
    plan[PLAN_BATCH_SIZE] = batch_size
    plan[PLAN_SHARED_FROM] = layout["shared_from"]
    plan[PLAN_WORK_IN_SHARED] = layout["work_in_shared"]
    plan[PLAN_N_PARTIALS] = layout["n_partials"]
    plan[PLAN_COALESCE_PARTS] = layout["coalesce_parts"]
    plan[PLAN_DELTA_A], plan[PLAN_DELTA_B] = layout["delta_offsets"]
    records = plan[PLAN_LAYERS:].reshape(n_layers + 1, PLAN_RECORD)
    records[:, LAYER_SIZE] = sizes
    records[:, LAYER_ACTIVATION] = [*activations, -1]
    records[:, LAYER_W_OFFSET] = layout["w_offsets"]
    records[:, LAYER_A_OFFSET] = layout["a_offsets"]
    return plan


# ------------------------------------------------------------------ one-block device parts
@cuda.jit(device=True)
def _layer(plan, layer, field):
    """Slot ``field`` (a LAYER_… constant) of layer boundary ``layer``'s record in the plan."""
    return plan[PLAN_LAYERS + layer * PLAN_RECORD + field]


@cuda.jit(device=True)
def _weights(plan, layer, params, smem):
    """(buffer, offset) of layer ``layer``'s W, with b right after it: ``params`` below
    shared_from, else shared memory past the partial sums."""
    base = _layer(plan, layer, LAYER_W_OFFSET)
    shared_from = plan[PLAN_SHARED_FROM]
    if base >= shared_from:
        return smem, plan[PLAN_N_PARTIALS] + base - shared_from
    return params, base


@cuda.jit(device=True)
def _work_buffer(plan, params, smem, scratch):
    """(buffer, offset) of the work buffer (activations and δ): shared memory past the
    partial sums and the shared parameters, or ``scratch`` (the global fallback)."""
    if plan[PLAN_WORK_IN_SHARED] != 0:
        return smem, plan[PLAN_N_PARTIALS] + params.shape[0] - plan[PLAN_SHARED_FROM]
    return scratch, 0


@cuda.jit(device=True)
def _params_to_shared(plan, params, smem):
    shared_from = plan[PLAN_SHARED_FROM]
    base = plan[PLAN_N_PARTIALS]
    for k in range(cuda.threadIdx.x, params.shape[0] - shared_from, cuda.blockDim.x):
        smem[base + k] = params[shared_from + k]


@cuda.jit(device=True)
def _params_from_shared(plan, params, smem):
    shared_from = plan[PLAN_SHARED_FROM]
    base = plan[PLAN_N_PARTIALS]
    for k in range(cuda.threadIdx.x, params.shape[0] - shared_from, cuda.blockDim.x):
        params[shared_from + k] = smem[base + k]


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


@cuda.jit(device=True)
def _dot_part(a, a_base, a_step, b, b_base, b_step, part, n, parts):
    """Σₖ a[a_base + k·a_step] · b[b_base + k·b_step] over k = part, part + parts, … < n."""
    acc = ZERO
    for k in range(part, n, parts):
        acc += a[a_base + k * a_step] * b[b_base + k * b_step]
    return acc


@cuda.jit(device=True)
def _sum_parts(partials, pair, parts):
    """The dot product ``pair`` from its ``parts`` partial sums."""
    acc = ZERO
    for p in range(parts):
        acc += partials[pair * parts + p]
    return acc


@cuda.jit(device=True)
def _forward_layer(plan, layer, params, smem, X, work, work_base, batch):
    """Layer ``layer``'s a = f(W a_below + b) for the batch rows (input rows ``batch`` of X
    for layer 0), with its dot products split over threads (``_parts``).

    The output layer keeps z: ``_output_phase`` applies f and takes exact losses from z.
    Ends before the phase's closing barrier (inside: one before the partial sums are added,
    one before a softmax row pass).
    """
    t = cuda.threadIdx.x
    T = cuda.blockDim.x
    rows = batch.shape[0]
    n_in = _layer(plan, layer, LAYER_SIZE)
    n_out = _layer(plan, layer + 1, LAYER_SIZE)
    w_buf, w_base = _weights(plan, layer, params, smem)
    b_base = w_base + n_out * n_in
    first = layer == 0
    in_buf = X if first else work
    in_base = work_base + _layer(plan, layer, LAYER_A_OFFSET)
    out_base = work_base + _layer(plan, layer + 1, LAYER_A_OFFSET)
    act = _layer(plan, layer, LAYER_ACTIVATION)
    if layer == plan[PLAN_N_LAYERS] - 1:
        act = IDENTITY
    pairs = rows * n_out
    parts = _parts(pairs, n_in, T, plan[PLAN_COALESCE_PARTS])
    for job in range(t, pairs * parts, T):
        pair = job // parts
        r = pair // n_out
        o = pair - r * n_out
        in_row = batch[r] * n_in if first else in_base + r * n_in
        acc = _dot_part(w_buf, w_base + o * n_in, 1, in_buf, in_row, 1, job - pair * parts,
                        n_in, parts)
        if parts == 1:
            work[out_base + pair] = activate(acc + w_buf[b_base + o], act)
        else:
            smem[job] = acc
    if parts > 1:
        cuda.syncthreads()
        for pair in range(t, pairs, T):
            acc = _sum_parts(smem, pair, parts) + w_buf[b_base + pair % n_out]
            work[out_base + pair] = activate(acc, act)
    if act == SOFTMAX:
        cuda.syncthreads()
        for r in range(t, rows, T):
            softmax_row(work, out_base + r * n_out, work, out_base + r * n_out, n_out)


@cuda.jit(device=True)
def _output_phase(plan, Y, work, work_base, d_cur, batch):
    """The output layer's f (on the z the forward pass left), loss and δᴸ (into d_cur) for
    this thread's batch rows; returns the sum of their losses."""
    n_layers = plan[PLAN_N_LAYERS]
    width = _layer(plan, n_layers, LAYER_SIZE)
    out_base = work_base + _layer(plan, n_layers, LAYER_A_OFFSET)
    act = _layer(plan, n_layers - 1, LAYER_ACTIVATION)
    loss = plan[PLAN_LOSS]
    rows = batch.shape[0]
    inv_rows = ONE / np.float32(rows)
    total = ZERO
    for r in range(cuda.threadIdx.x, rows, cuda.blockDim.x):
        y_base = batch[r] * width
        a_row = out_base + r * width
        total += activate_output_row(work, a_row, Y, y_base, width, loss, act)
        row_output_delta(work, d_cur + r * width, work, a_row, Y, y_base, width, loss, act,
                         inv_rows)
    return total


@cuda.jit(device=True)
def _backward_layer(plan, layer, params, smem, work, work_base, d_cur, d_other, rows):
    """δ of the layer below (into d_other) = f′(a below) ⊙ Wᵀδ (d_cur), for layer > 0, from
    the weights before this step's update; dot products split as in ``_forward_layer``.

    Ends before the phase's closing barrier (inside: one before the partial sums are added,
    one before a softmax row pass).
    """
    t = cuda.threadIdx.x
    T = cuda.blockDim.x
    n_in = _layer(plan, layer, LAYER_SIZE)
    n_out = _layer(plan, layer + 1, LAYER_SIZE)
    w_buf, w_base = _weights(plan, layer, params, smem)
    below = work_base + _layer(plan, layer, LAYER_A_OFFSET)
    act_below = _layer(plan, layer - 1, LAYER_ACTIVATION)
    pairs = rows * n_in
    parts = _parts(pairs, n_out, T, plan[PLAN_COALESCE_PARTS])
    for job in range(t, pairs * parts, T):
        pair = job // parts
        r = pair // n_in
        i = pair - r * n_in
        acc = _dot_part(work, d_cur + r * n_out, 1, w_buf, w_base + i, n_in, job - pair * parts,
                        n_out, parts)
        if parts == 1:
            work[d_other + pair] = activate_backward(acc, work[below + pair], act_below)
        else:
            smem[job] = acc
    if parts > 1:
        cuda.syncthreads()
        for pair in range(t, pairs, T):
            work[d_other + pair] = activate_backward(_sum_parts(smem, pair, parts),
                                                     work[below + pair], act_below)
    if act_below == SOFTMAX:  # activate_backward passed δ through: the row Jacobian now
        cuda.syncthreads()
        for r in range(t, rows, T):
            softmax_backward_row(work, d_other + r * n_in, work, d_other + r * n_in, work,
                                 below + r * n_in, n_in)


@cuda.jit(device=True)
def _update_layer(plan, layer, params, smem, X, work, work_base, d_cur, batch, learning_rate):
    """Layer ``layer``'s SGD step: W ← W − η Σ_rows δ aᵀ and b ← b − η Σ_rows δ, with δ in
    d_cur (it already carries the 1/B of the batch mean) and a the layer's input rows."""
    t = cuda.threadIdx.x
    T = cuda.blockDim.x
    rows = batch.shape[0]
    n_in = _layer(plan, layer, LAYER_SIZE)
    n_out = _layer(plan, layer + 1, LAYER_SIZE)
    w_buf, w_base = _weights(plan, layer, params, smem)
    b_base = w_base + n_out * n_in
    first = layer == 0
    in_buf = X if first else work
    below = work_base + _layer(plan, layer, LAYER_A_OFFSET)
    # (o, i) of element k, stepped along with k: no 64-bit division per element
    o = t // n_in
    i = t - o * n_in
    for k in range(t, n_out * n_in, T):
        grad = ZERO
        for r in range(rows):
            in_row = batch[r] * n_in if first else below + r * n_in
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


@cuda.jit(device=True)
def _one_block_epoch_body(params, plan, X, Y, order, learning_rate, scratch, smem):
    """A whole epoch of SGD in one block; see the module docstring for the memory layout and
    the plan's slots above it for ``plan``.  Returns the epoch's mean loss on thread 0 (0 on
    the others).

    ``smem``, the block's dynamic shared memory: [0, n_partials) partial sums (n_partials ≥
    T, and ≥ every layer's (row, unit) pairs × parts, see ``one_block_layout``), then
    params[shared_from:], then (when work_in_shared) the work buffer: each layer's
    activations for the batch rows and two δ buffers; otherwise the work buffer is
    ``scratch``.  X and Y are flat (N·IN,), (N·OUT,).  Each step's phases are separated by
    the barriers below; the phases' inner barriers are in their device functions.
    """
    _params_to_shared(plan, params, smem)
    work, work_base = _work_buffer(plan, params, smem, scratch)
    n_layers = plan[PLAN_N_LAYERS]
    batch_size = plan[PLAN_BATCH_SIZE]
    n = order.shape[0]
    my_loss = ZERO
    cuda.syncthreads()
    for start in range(0, n, batch_size):
        batch = order[start:min(start + batch_size, n)]  # the step's rows of X and Y
        for layer in range(n_layers):
            _forward_layer(plan, layer, params, smem, X, work, work_base, batch)
            cuda.syncthreads()
        d_cur = work_base + plan[PLAN_DELTA_A]
        d_other = work_base + plan[PLAN_DELTA_B]
        my_loss += _output_phase(plan, Y, work, work_base, d_cur, batch)
        cuda.syncthreads()
        for layer in range(n_layers - 1, -1, -1):
            if layer > 0:
                _backward_layer(plan, layer, params, smem, work, work_base, d_cur, d_other,
                                batch.shape[0])
                cuda.syncthreads()
            _update_layer(plan, layer, params, smem, X, work, work_base, d_cur, batch,
                          learning_rate)
            cuda.syncthreads()
            d_cur, d_other = d_other, d_cur
    # the epoch's mean loss from every thread's share, then the shared parameters back
    t = cuda.threadIdx.x
    smem[t] = my_loss
    cuda.syncthreads()
    total = ZERO
    if t == 0:
        for k in range(cuda.blockDim.x):
            total += smem[k]
    _params_from_shared(plan, params, smem)
    return total / np.float32(n)


@cuda.jit
def _sgd_epoch_one_block_kernel(params, plan, X, Y, order, learning_rate, scratch, loss_out):
    """One epoch of SGD for one network in one block (``_one_block_epoch_body``);
    loss_out[0] ← the epoch's mean loss."""
    smem = cuda.shared.array(0, FLOAT32_TYPE)
    value = _one_block_epoch_body(params, plan, X, Y, order, learning_rate, scratch, smem)
    if cuda.threadIdx.x == 0:
        loss_out[0] = value


@cuda.jit
def _sweep_one_block_kernel(params, plan, X, Y, order, learning_rates, active, scratch,
                            losses):
    """One epoch of SGD for each of K same-shaped networks, one block each: block b trains
    params[b] at learning_rates[b] (``_one_block_epoch_body``), its own scratch[b], and
    writes losses[b]; a network with active[b] == 0 is left as it is (losses[b] ← NaN).
    The blocks share X, Y, the order and the plan, and run on as many SMs at once."""
    b = cuda.blockIdx.x
    if active[b] == 0:  # the whole block leaves together: no barrier is skipped
        if cuda.threadIdx.x == 0:
            losses[b] = np.float32(np.nan)
        return
    smem = cuda.shared.array(0, FLOAT32_TYPE)
    value = _one_block_epoch_body(params[b], plan, X, Y, order, learning_rates[b], scratch[b],
                                  smem)
    if cuda.threadIdx.x == 0:
        losses[b] = value


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
    if budget < 0:  # not even one partial sum per thread fits (for the loss reduction)
        raise ValueError(f"the one-block kernel with {threads} threads needs at least "
                         f"{4 * threads} bytes of shared memory, not {shared_bytes}")
    shared_from = next(w for w in w_offsets if n_params - w <= budget)
    used = n_partials + (n_params - shared_from) + (work_size if work_in_shared else 0)
    return dict(w_offsets=w_offsets, a_offsets=a_offsets, delta_offsets=delta_offsets,
                work_size=work_size, work_in_shared=work_in_shared, shared_from=shared_from,
                n_partials=n_partials, coalesce_parts=coalesce_parts, shared_bytes=4 * used)


def one_block_fits(sizes, batch_size, threads=None, shared_bytes=None):
    """Whether the one-block kernel can launch for ``sizes`` and batches of ``batch_size``
    rows: its layout's dynamic shared memory within ``shared_bytes`` (default: the module's
    ONE_BLOCK_THREADS and SHARED_MEMORY_BYTES, read at call time).

    The layout moves parameters and then the work buffer to global memory until the rest
    fits, so this is false only when not even the partial sums (one per thread) fit.
    """
    threads = ONE_BLOCK_THREADS if threads is None else int(threads)
    shared_bytes = SHARED_MEMORY_BYTES if shared_bytes is None else int(shared_bytes)
    if 4 * threads > shared_bytes:
        return False
    return one_block_layout(sizes, batch_size, threads, shared_bytes)["shared_bytes"] \
        <= shared_bytes


def step_macs(sizes, batch_size):
    """Multiply-adds of one SGD step on ``batch_size`` rows: the forward pass, the δ of every
    layer but the first, and the weights' gradient-and-update, each one per weight per row."""
    forward = sum(n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    backward = forward - sizes[0] * sizes[1]
    return int(batch_size) * (2 * forward + backward)


def launch_plan(sizes, batch_size, n_samples):
    """How an epoch of SGD in batches of ``batch_size`` over ``n_samples`` samples runs on
    the GPU, as a dict: ``path`` ("one-block" or "tiled"), the estimated seconds per step of
    each (``one_block_step_s``, ``tiled_step_s``; None where that path cannot run) and why.

    One-block runs when the batch has at most ONE_BLOCK_MAX_BATCH rows, its layout fits in
    shared memory (``one_block_fits``) and its estimated step is no slower than the tiled
    step's; otherwise tiled (3L queued launches per step).
    """
    sizes = [int(s) for s in sizes]
    batch = max(1, min(int(batch_size), int(n_samples)))
    macs, n_layers = step_macs(sizes, batch), len(sizes) - 1
    tiled = 3 * n_layers * LAUNCH_S + macs / GRID_MACS_PER_S
    one_block, reason = None, None
    if int(batch_size) > ONE_BLOCK_MAX_BATCH:
        reason = f"batches above {ONE_BLOCK_MAX_BATCH} rows take the tiled launches"
    elif not one_block_fits(sizes, batch):
        reason = "the one-block layout does not fit in shared memory"
    else:
        one_block = macs / ONE_SM_MACS_PER_S + (3 * n_layers + 1) * BARRIER_S
        reason = (f"one SM does a step of {macs:,} multiply-adds in ~{one_block * 1e6:.0f} µs "
                  f"against ~{tiled * 1e6:.0f} µs for {3 * n_layers} launches")
    path = "one-block" if one_block is not None and one_block <= tiled else "tiled"
    return dict(path=path, one_block_step_s=one_block, tiled_step_s=tiled, reason=reason)


def sgd_epoch_path(sizes, batch_size, n_samples):
    """Which kernels an epoch of SGD in batches of ``batch_size`` over ``n_samples`` samples
    runs: "one-block" (one launch per epoch) or "tiled" (3L queued launches per step), as
    ``launch_plan`` chooses from the batch and the widths."""
    return launch_plan(sizes, batch_size, n_samples)["path"]


def one_block_shared_limit():
    """Dynamic shared memory per block the one-block kernel may plan for on this device:
    the device's opt-in maximum (Hopper: 227 KB) when SHARED_MEMORY_OPT_IN, else (and on the
    simulator) SHARED_MEMORY_BYTES."""
    if not SHARED_MEMORY_OPT_IN:
        return SHARED_MEMORY_BYTES
    return max(SHARED_MEMORY_BYTES, _cuda.shared_memory_opt_in_bytes() or 0)


def _launch_one_block(kernel, n_blocks, sizes, batch_size, arguments):
    """Launch ``kernel`` (one of the one-block kernels) on ``n_blocks`` blocks with the layout
    for ``sizes`` and batches of ``batch_size``: planned for the device's opt-in limit of
    shared memory, and for 48 KB when the driver refuses to raise the kernel's limit.
    ``arguments(layout)`` gives the kernel's arguments; returns the layout launched."""
    layout = one_block_layout(sizes, batch_size, ONE_BLOCK_THREADS, one_block_shared_limit())
    args = arguments(layout)
    if layout["shared_bytes"] > SHARED_MEMORY_BYTES and not _cuda.raise_dynamic_shared_memory(
            kernel, args, layout["shared_bytes"]):
        layout = one_block_layout(sizes, batch_size, ONE_BLOCK_THREADS, SHARED_MEMORY_BYTES)
        args = arguments(layout)
    kernel[n_blocks, ONE_BLOCK_THREADS, 0, layout["shared_bytes"]](*args)
    return layout


def _plan_and_scratch(sizes, activations, loss, batch_size, layout, n_blocks):
    """The plan on the device and each block's scratch (one float when the work buffer is in
    shared memory), as (n_blocks, size)."""
    plan = device_ints(one_block_plan(sizes, activations, loss, batch_size, layout))
    width = 1 if layout["work_in_shared"] else layout["work_size"]
    return plan, cuda.device_array((n_blocks, width), np.float32)


def _one_block_epoch(params, sizes, activations, loss, X, Y, order, batch_size, learning_rate):
    """Per-sample or small-batch SGD as ONE launch; returns (mean loss, the layout used)."""
    batch_size = max(1, min(int(batch_size), int(order.shape[0])))
    loss_out = cuda.device_array(1, np.float32)

    def arguments(layout):
        plan, scratch = _plan_and_scratch(sizes, activations, loss, batch_size, layout, 1)
        return (params, plan, flat(X), flat(Y), order, np.float32(learning_rate), scratch[0],
                loss_out)

    layout = _launch_one_block(_sgd_epoch_one_block_kernel, 1, sizes, batch_size, arguments)
    return float(loss_out.copy_to_host()[0]), layout


def sweep_one_block_epoch(params, sizes, activations, loss, X, Y, order, batch_size,
                          learning_rates, active):
    """K networks' epochs of per-sample or small-batch SGD as ONE launch, a block each
    (``_sweep_one_block_kernel``); returns (the mean losses (K,) on the host, NaN for an
    inactive network, and the layout used).  params (K, P) device, updated in place;
    learning_rates (K,), active (K,) host or device."""
    n_blocks = int(params.shape[0])
    batch_size = max(1, min(int(batch_size), int(order.shape[0])))
    losses = cuda.device_array(n_blocks, np.float32)
    rates, flags = on_device(learning_rates, np.float32), on_device(active, np.int64)

    def arguments(layout):
        plan, scratch = _plan_and_scratch(sizes, activations, loss, batch_size, layout,
                                          n_blocks)
        return params, plan, flat(X), flat(Y), order, rates, flags, scratch, losses

    layout = _launch_one_block(_sweep_one_block_kernel, n_blocks, sizes, batch_size, arguments)
    return losses.copy_to_host(), layout


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
        workspace.backward(views, views, X, Y_flat, loss, n_rows, -float(learning_rate), False,
                           1.0 / n, order, start)
    return workspace.read_loss()


def sgd_epoch_minibatch(params, sizes, activations, loss, X, Y, order, batch_size,
                        learning_rate):
    """One epoch of mini-batch SGD over the samples in ``order``; the last batch may be short.

    Batches of up to ONE_BLOCK_MAX_BATCH rows of a narrow enough network run as one launch
    (one block), larger ones (and wide networks, and any whose one-block layout would not
    fit in shared memory, see ``launch_plan``) as 3L queued tiled launches per step.
    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    activations = check_codes("activations", activations, "activation")
    loss = check_code("loss", loss, "loss")
    if sgd_epoch_path(sizes, batch_size, order.shape[0]) == "one-block":
        return _one_block_epoch(params, sizes, activations, loss, X, Y, order, batch_size,
                                learning_rate)[0]
    return _tiled_epoch(params, sizes, activations, loss, X, Y, order, batch_size,
                        learning_rate)


def sgd_epoch_per_sample(params, sizes, activations, loss, X, Y, order, learning_rate):
    """One epoch of per-sample SGD: an update after every sample, in ``order``, in ONE launch
    (tiled steps of one row for a network too wide for one SM, see ``launch_plan``).

    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    activations = check_codes("activations", activations, "activation")
    loss = check_code("loss", loss, "loss")
    if sgd_epoch_path(sizes, 1, order.shape[0]) == "tiled":
        return _tiled_epoch(params, sizes, activations, loss, X, Y, order, 1, learning_rate)
    return _one_block_epoch(params, sizes, activations, loss, X, Y, order, 1, learning_rate)[0]


def gd_step_full_batch(params, sizes, activations, loss, X, Y, learning_rate):
    """One step of full-batch gradient descent on all of X; returns the loss before the step.

    params (P,) updated in place; X (N, IN), Y (N, OUT)
    """
    activations = check_codes("activations", activations, "activation")
    loss = check_code("loss", loss, "loss")
    return _tiled_epoch(params, sizes, activations, loss, X, Y, None, X.shape[0],
                        learning_rate)


def optimizer_epoch_minibatch(params, state, step, sizes, activations, loss, optimizer, hyper,
                              X, Y, order, batch_size):
    """One epoch of mini-batch training by any optimiser, over the samples in ``order``.

    batch_size 1 is per-sample training, batch_size ≥ N one full-batch step; the last batch
    may be short.  Returns the epoch's mean loss over samples, each batch's loss taken before
    its update.  params (P,), state (slots, P) and step (1,) int64 are updated in place
    (``step`` is read once and written once per call); hyper (N_HYPER,) float32 (or the 5
    slots of before α); with α = hyper[HYPER_L2] > 0 scikit-learn's penalty as in
    ``reference.optimizer_epoch_minibatch`` ((α/B)·W on the weights' gradient before each
    step, Σ over batches of ½α‖W‖² / N on the returned loss).
    X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    activations = check_codes("activations", activations, "activation")
    loss = check_code("loss", loss, "loss")
    optimizer = check_code("optimizer", optimizer, "optimizer")
    n = int(order.shape[0])
    batch = max(1, min(int(batch_size), n))
    workspace = Workspace(sizes, activations, batch)
    views = layer_views(params, workspace.sizes)
    grads = cuda.device_array(params.shape[0], np.float32)
    grad_views = layer_views(grads, workspace.sizes)
    alpha = l2_alpha(hyper)
    if alpha != 0:
        ranges, squares = weight_ranges(workspace.sizes), l2_sums(params.shape[0])
    hyper = on_device(hyper, np.float32)
    Y_flat = flat(Y)
    t = read_step(step)
    workspace.reset_loss()
    for start in range(0, n, batch):
        n_rows = min(batch, n - start)
        workspace.forward(views, X, n_rows, order, start, keep_z=True)
        workspace.backward(views, grad_views, X, Y_flat, loss, n_rows, 1.0, True, 1.0 / n,
                           order, start)
        if alpha != 0:  # W of the batch's start: queued before the update
            launch_l2_penalty(grads, params, ranges, alpha, n_rows, squares)
        t += 1
        launch_optimizer(params, state, grads, optimizer, hyper, t)
    write_step(step, t)
    value = workspace.read_loss()
    if alpha != 0:  # Σ over batches of ½α‖W‖², over N
        value += 0.5 * float(alpha) * float(squares.copy_to_host().sum(dtype=np.float64)) / n
    return value
